/**
 * An address change on the uplink does not close and reopen the packet socket: `run` starts
 * while the uplink's link-local address is still tentative (DAD slowed down to several
 * seconds), it becomes valid while running, then a global address is added and removed. All
 * along, a peer sends an NS every 50 ms for an address of the prefix rule and every one is
 * answered; the uplink's allmulti count (the responder's PACKET_MR_ALLMULTI, which a prefix rule
 * needs) is sampled every 100 ms and never drops to 0; the daemon never logs a reopen.
 *
 *   [p] eth0 --veth-- eth0 [h]  ndp-responder run --prefix 2003:ab11:0:0:8000::/66
 *
 *   npx tap test/lab/address-change.test.ts
 */
import { existsSync } from 'node:fs';

import t from 'tap';

import { Lab } from '../../src/lab/netns.js';
import { sleep, stopProcess, waitFor, waitForLine } from '../../src/lab/process.js';
import { cTool, lastJson, removeCTools, type ProbeResult } from './support/c-tools.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

/** DAD of h's link-local: DAD_TRANSMITS probes RETRANS_MS apart (the kernel's own timer). */
const DAD_TRANSMITS = 12;
const RETRANS_MS = 1000;
const TARGET = '2003:ab11:0:0:8000::42';
/** The peer's NS: every 50 ms, each answered within 200 ms or counted lost (quiet p99 ~2 ms). */
const PROBE_GAP_MS = 50;
const PROBE_TIMEOUT_MS = 200;

t.test('address changes on the uplink: no reopen, allmulti never off, no gap in answers', async (t) => {
  const probe = cTool('latency-probe');
  t.teardown(removeCTools);
  const lab = await Lab.create(t, 'nac');
  const h = await lab.netns('h');
  const p = await lab.netns('p');
  // The veth is made down, h's eth0 gets slow DAD before it comes up: its link-local address
  // stays tentative for ~12 s after the link comes up. (Lab.netns turned DAD off by default; the
  // global addresses below use nodad.)
  await p.ip([
    'link',
    'add',
    'eth0',
    'address',
    '02:00:5e:40:00:09',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'address',
    '02:00:5e:40:00:02',
    'netns',
    h.name,
  ]);
  await h.execOk('sysctl', [
    '-qw',
    'net.ipv6.conf.eth0.accept_ra=0',
    'net.ipv6.conf.eth0.router_solicitations=0',
    'net.ipv6.conf.eth0.accept_dad=1',
    `net.ipv6.conf.eth0.dad_transmits=${DAD_TRANSMITS}`,
    `net.ipv6.neigh.eth0.retrans_time_ms=${RETRANS_MS}`,
  ]);
  await p.up('eth0');
  await h.up('eth0');
  const upAt = Date.now();
  await h.addr('eth0', '2003:ab11::2/64');
  await p.addr('eth0', '2003:ab11::9/64');
  const linkLocal = async (): Promise<{ addr: string; tentative: boolean } | undefined> => {
    const j = JSON.parse(await h.ip(['-6', '-j', 'addr', 'show', 'dev', 'eth0'])) as {
      addr_info?: { local: string; scope?: string; tentative?: boolean }[];
    }[];
    const a = j[0]?.addr_info?.find((x) => x.scope === 'link');
    return a ? { addr: a.local, tentative: a.tentative === true } : undefined;
  };

  const child = h.spawn(process.execPath, [
    CLI,
    'run',
    '--interface',
    'eth0',
    '--prefix',
    '2003:ab11:0:0:8000::/66',
    '--log-level',
    'info',
  ]);
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  t.teardown(() => stopProcess(child, 3000));
  await waitForLine(child, /"msg":"ready"/, 30_000);
  const ll0 = await linkLocal();
  t.ok(
    ll0?.tentative,
    `the link-local address (${ll0?.addr}) is still tentative when the daemon is ready (${Date.now() - upAt} ms after link up)`,
  );
  if (!ll0?.tentative) {
    t.comment(await h.ip(['-6', 'addr', 'show', 'dev', 'eth0']));
    return;
  }

  // allmulti sampled every 100 ms from now to the end.
  const allmulti: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      allmulti.push((await h.linkCounters('eth0')).allmulti);
      await sleep(100);
    }
  })();

  // The peer: one NS every 50 ms until the end of the changes (bounded by count and time).
  const samples = Math.ceil((DAD_TRANSMITS * RETRANS_MS + 8000) / PROBE_GAP_MS);
  const probeRun = p.exec(
    probe,
    [
      '--if',
      'eth0',
      '--src',
      '2003:ab11::9',
      '--target',
      TARGET,
      '--samples',
      String(samples),
      '--gap-us',
      String(PROBE_GAP_MS * 1000),
      '--timeout-ms',
      String(PROBE_TIMEOUT_MS),
      '--max-seconds',
      '60',
    ],
    { timeoutMs: 90_000 },
  );
  let probeEndAt = Infinity;
  void probeRun.then(() => (probeEndAt = Date.now()));

  // 1. The link-local address becomes valid while the daemon runs.
  const valid = await waitFor(
    async () => {
      const ll = await linkLocal();
      return ll && !ll.tentative ? ll : undefined;
    },
    { timeoutMs: DAD_TRANSMITS * RETRANS_MS + 20_000, intervalMs: 100, what: 'the link-local address to become valid' },
  );
  const validAt = Date.now();
  // 2. A new global address, then it goes again (both are address changes the daemon sees).
  await sleep(1500);
  await h.ip(['-6', 'addr', 'add', '2003:ab11::77/64', 'dev', 'eth0', 'nodad']);
  await waitFor(() => log.join('').includes('2003:ab11::77'), { timeoutMs: 10_000, what: 'the daemon to see the new address' });
  await sleep(1500);
  await h.ip(['-6', 'addr', 'del', '2003:ab11::77/64', 'dev', 'eth0']);
  await sleep(2500);
  const changesDoneAt = Date.now();

  const pr = await probeRun;
  sampling = false;
  await sampler;
  if (pr.code !== 0) throw new Error(`latency-probe exited ${pr.code}: ${pr.stderr}`);
  const r = lastJson<ProbeResult>('latency-probe', pr.stdout);
  const text = log.join('');
  const changes = text.split('\n').filter((l) => l.includes('"msg":"interface addresses changed"'));
  t.comment(
    `link-local ${valid.addr} valid ${validAt - upAt} ms after link up; peer: ${r.answered}/${r.samples} NS answered (${r.lost} lost), ` +
      `p50 ${r.p50_us.toFixed(0)} us p99 ${r.p99_us.toFixed(0)} us max ${r.max_us.toFixed(0)} us; ` +
      `allmulti: ${allmulti.length} samples, min ${Math.min(...allmulti)}, max ${Math.max(...allmulti)}; ${changes.length} address changes logged`,
  );
  t.ok(r.samples >= 100 && probeEndAt > changesDoneAt, `the peer's NS spanned the changes (${r.samples})`);
  t.equal(r.lost, 0, 'every NS of the peer answered: no gap');
  t.ok(allmulti.length >= 50 && Math.min(...allmulti) > 0, `allmulti never dropped to 0 (${allmulti.length} samples)`);
  t.ok(changes.length >= 2, 'the daemon saw the address changes (added, removed)');
  t.notMatch(text, /interface \(re\)opened/, 'the packet socket was never reopened');
  t.ok(child.exitCode === null && child.signalCode === null, 'the daemon never exited');
  // The interface's addresses are the scope's: never answered, the new one included.
  const own = await p.exec('ndisc6', ['-1', '-r', '1', '-w', '300', '2003:ab11::2', 'eth0'], { timeoutMs: 10_000 });
  t.ok(/Target link-layer address/.test(own.stdout), "h's own address is answered by h's kernel (sanity: the link works)");
});
