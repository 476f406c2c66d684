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
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { makeMldQuery } from '../support/frames.js';
import { Lab } from '../../src/lab/netns.js';
import { sleep, stopProcess, waitFor, waitForLine } from '../../src/lab/process.js';
import { cTool, lastJson, removeCTools, type ProbeResult } from './support/c-tools.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

/** DAD of h's link-local: DAD_TRANSMITS probes RETRANS_MS apart (the kernel's own timer). */
const DAD_TRANSMITS = 12;
const RETRANS_MS = 1000;
const TARGET = '2003:ab11:0:0:8000::42';
/** TARGET's solicited-node group (an --address rule: the daemon reports it). */
const GROUP = 'ff02::1:ff00:42';
const P_MAC = '02:00:5e:40:00:09';
const P_LL = 'fe80::ff:fe40:9';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');
/** The peer's NS: every 50 ms, each answered within 200 ms or counted lost (quiet p99 ~2 ms). */
const PROBE_GAP_MS = 50;
const PROBE_TIMEOUT_MS = 200;
/** How often the daemon re-reads the interface (service/link.ts default). */
const POLL_MS = 1000;

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
    // A random link-local (not the MAC's EUI-64): the daemon cannot guess it, it must read it.
    'net.ipv6.conf.eth0.addr_gen_mode=3',
  ]);
  await p.up('eth0');
  // p sees every MLDv2 report h sends (a Hop-by-Hop header of 8 bytes, then ICMPv6 type 143; tcpdump's icmp6 keyword does not look past the Hop-by-Hop header).
  const capture = p.spawn('tcpdump', ['-i', 'eth0', '-l', '-nn', '-tt', '-v', 'ip6[6] == 0 and ip6[48] == 143']);
  let captured = '';
  let capturedErr = '';
  capture.stderr!.setEncoding('utf8').on('data', (d: string) => (capturedErr += d));
  capture.stdout!.setEncoding('utf8').on('data', (d: string) => (captured += d));
  t.teardown(() => stopProcess(capture, 2000));
  const querier = p.spawnJsonLines(process.execPath, ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT });
  t.teardown(() => querier.end());
  await Promise.all([
    waitFor(() => capturedErr.includes('listening on'), { timeoutMs: 15_000, what: 'tcpdump to listen' }),
    querier.waitFor((r) => r['ev'] === 'ready', 30_000),
  ]);
  await querier.call({ op: 'open', ifname: 'eth0' });
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
    '--address',
    TARGET,
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
  // An MLDv2 general query from p (max response delay 500 ms) once the daemon has re-read the
  // interface (every second): h reports its groups again, now from its link-local address.
  await sleep(POLL_MS + 500);
  const queryAt = Date.now();
  const query = makeMldQuery({ ethSrc: P_MAC, src: P_LL, dst: 'ff02::1', maxResponseCode: 500 });
  await querier.call({ op: 'send', frames: [Buffer.from(query).toString('hex')] });
  // 2. A new global address, then it goes again (both are address changes the daemon sees).
  await sleep(1000);
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
  // The daemon's reports (the only ones carrying TARGET's solicited-node group): their sources.
  const reports = captured
    .split('\n')
    .filter((l) => l.includes(`gaddr ${GROUP}`))
    .map((l) => ({ at: Number(l.split(' ')[0]) * 1000, src: / ([0-9a-f:]+) > ff02::16:/.exec(l)?.[1] ?? '?' }));
  const before = reports.filter((r) => r.at < validAt);
  const after = reports.filter((r) => r.at >= queryAt);
  t.comment(
    `MLD reports for ${GROUP}: before the link-local was valid from ${[...new Set(before.map((r) => r.src))].join(', ') || '-'} (${before.length}), ` +
      `after from ${[...new Set(after.map((r) => r.src))].join(', ') || '-'} (${after.length}); h's link-local ${valid.addr}`,
  );
  t.ok(
    before.every((r) => r.src === '::'),
    'while it was tentative, MLD reports came from :: (RFC 3810 5.2.13), not from a guessed address',
  );
  t.ok(
    after.length > 0 && after.every((r) => r.src === valid.addr),
    `after it became valid, MLD reports come from the link-local ${valid.addr}`,
  );
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
