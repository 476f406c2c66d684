/**
 * An NS flood from thousands of forged sources at the highest rate the lab gives, at
 * `ndp-responder run` (afpacket, --metrics): a legitimate peer in the middle of it is still
 * answered, RSS stays flat, the daemon never exits.
 *
 *   [l] eth0 ====veth==== eth0 [h]  ndp-responder run --prefix 2003:ab11:0:0:8000::/66
 *    |  flood (CPU 0)             (CPU 1; h's receive softirq on CPU 1 by RPS)
 *    +- mv0 (macvlan, moved into [p]): the peer, 150 NS one at a time, 10 ms apart
 *
 * The flood (support/ns-flood.c): FLOOD_SOURCES frames, each from its own forged MAC and IPv6
 * source, half for targets inside the rule (answered, to the forged MACs) and half outside
 * (dropped), sent round-robin with sendmmsg() as fast as the socket takes them, from FLOOD_LEAD_MS
 * before the peer starts until the peer is done (bounded by FLOOD_MAX_S).
 * The peer (bench/latency-probe.c) sits on a macvlan of the sender's link, so its NS share the
 * wire with the flood but the flood is not copied to it. Its latency is from just before the
 * send to the kernel's receive timestamp of the NA.
 *
 *   npx tap test/lab/flood.test.ts      (figures printed as '# ' comments)
 *   FLOOD_LEAD_MS=1000 FLOOD_SOURCES=4096 PEER_SAMPLES=150 (the defaults)
 */
import { existsSync } from 'node:fs';

import t from 'tap';

import { Lab, type Netns } from '../../src/lab/netns.js';
import { sleep, stopProcess, waitForLine } from '../../src/lab/process.js';
import { cTool, lastJson, removeCTools, rssKb, type FloodResult, type ProbeResult } from './support/c-tools.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const FLOOD_LEAD_MS = Number(process.env['FLOOD_LEAD_MS'] ?? 1000);
const SOURCES = Number(process.env['FLOOD_SOURCES'] ?? 4096);
const PEER_SAMPLES = Number(process.env['PEER_SAMPLES'] ?? 150);
/** The peer's sampling is bounded by this (all 150 timing out take 31.5 s); the flood by this plus its lead and a margin. */
const PEER_MAX_S = 40;
const FLOOD_MAX_S = PEER_MAX_S + FLOOD_LEAD_MS / 1000 + 10;
const PREFIX = '2003:ab11:0:0:8000::/66';
const PEER_TARGET = '2003:ab11:0:0:a000::42';
const METRICS = '127.0.0.1:9464';

/**
 * Bounds, from measurement with margin (figures in the closing note of issue 8):
 * - the peer's NS answered within PEER_TIMEOUT_MS (the daemon's p99 under the flood was
 *   ~30-90 ms on a loaded lab). Its NS wait in the same socket queue as the flood, so when the
 *   flood outruns the responder the kernel may drop them as it drops flood frames ("taken" is
 *   the share of frames the responder took in, from its own /metrics). Measured: 89-93 % of the
 *   peer's NS answered at 57k-180k NS/s, while the responder took in 35-92 % of the flood (on
 *   two cores the peer's process shares a CPU with the sender or the responder, which favours
 *   it). The bound is min(90 %, max(50 %, taken - 15 points)): 90 % when the responder keeps
 *   up, never below 50 % (a peer that sends 3 NS, as the kernel does, then resolves >= 87 % of
 *   the time), and never worse than the flood's own lot minus 15 points (> 4 sigma of 100
 *   samples).
 * - RSS: end <= start + 30 MB, peak <= start + 60 MB. The daemon keeps no per-source state
 *   except the bounded in-use table (scope.ts IN_USE_MAX), which forged sources outside the
 *   rules never enter; measured growth was < 1 MB.
 */
const MIN_SHARE = 0.9;
const FLOOR_SHARE = 0.5;
const SHARE_MARGIN = 0.15;
const PEER_TIMEOUT_MS = 200;
const RSS_END_MB = 30;
const RSS_PEAK_MB = 60;

async function rps(ns: Netns, dev: string, cpu: number): Promise<void> {
  await ns.execOk('sh', ['-c', `for q in /sys/class/net/${dev}/queues/rx-*; do echo ${(1 << cpu).toString(16)} > $q/rps_cpus; done`]);
}

t.test('NS flood from thousands of sources: the peer is answered, RSS flat, the daemon stays', async (t) => {
  const flood = cTool('ns-flood');
  const probe = cTool('latency-probe');
  t.teardown(removeCTools);
  const lab = await Lab.create(t, 'nfl');
  const l = await lab.netns('l');
  const h = await lab.netns('h');
  const p = await lab.netns('p');
  for (const ns of [l, h, p])
    await ns.execOk('sysctl', ['-qw', 'net.ipv6.conf.default.accept_ra=0', 'net.ipv6.conf.default.router_solicitations=0']);
  await lab.veth(l, 'eth0', h, 'eth0', { aMac: '02:00:5e:20:00:01', bMac: '02:00:5e:20:00:02' });
  await l.ip(['link', 'add', 'link', 'eth0', 'name', 'mv0', 'address', '02:00:5e:20:00:03', 'type', 'macvlan', 'mode', 'bridge']);
  await l.ip(['link', 'set', 'mv0', 'netns', p.name]);
  await p.up('mv0');
  await l.addr('eth0', '2003:ab11::1/64');
  await h.addr('eth0', '2003:ab11::2/64');
  await p.addr('mv0', '2003:ab11::3/64');
  await rps(l, 'eth0', 0);
  await rps(h, 'eth0', 1);

  const child = h.spawn(
    process.execPath,
    [CLI, 'run', '--interface', 'eth0', '--prefix', PREFIX, '--no-route-check', '--metrics', METRICS, '--log-level', 'info'],
    { cpus: 1 },
  );
  const out: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d));
  t.teardown(() => stopProcess(child, 3000));
  await waitForLine(child, /"msg":"ready"/, 30_000);
  const pid = child.pid!;
  t.ok(rssKb(pid) !== undefined, 'the daemon is the spawned process (ip netns exec and taskset exec it)');

  const runProbe = async (samples: number, maxSeconds: number): Promise<ProbeResult> => {
    // Not pinned: pinned with the sender at a higher priority, it would pause the flood at the
    // very moment it sends (and look better than a peer on another machine would).
    const r = await p.exec(
      probe,
      [
        '--if',
        'mv0',
        '--target',
        PEER_TARGET,
        '--src',
        '2003:ab11::3',
        '--samples',
        String(samples),
        '--gap-us',
        '10000',
        '--timeout-ms',
        String(PEER_TIMEOUT_MS),
        '--max-seconds',
        String(maxSeconds),
      ],
      { timeoutMs: (maxSeconds + 15) * 1000 },
    );
    if (r.code !== 0) throw new Error(`latency-probe exited ${r.code}: ${r.stderr}`);
    return lastJson<ProbeResult>('latency-probe', r.stdout);
  };
  // /metrics is served inside h: read it from there (node's fetch, no extra package).
  const metrics = async (): Promise<string> =>
    h.execOk(process.execPath, [
      '-e',
      `fetch('http://${METRICS}/metrics', { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((b) => process.stdout.write(b))`,
    ]);
  const counter = (text: string, name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);

  // Quiet baseline: the peer is answered, and the latency without a flood.
  const quiet = await runProbe(50, 10);
  t.equal(quiet.answered, quiet.samples, `quiet: every NS of the peer answered (${quiet.answered}/${quiet.samples})`);

  const m0 = await metrics();
  const rss: number[] = [rssKb(pid)!];
  const sampler = setInterval(() => {
    const v = rssKb(pid);
    if (v !== undefined) rss.push(v);
  }, 1000);
  // The flood runs until the peer is done (SIGTERM ends it with its summary), so the peer's
  // whole sample falls inside it however slow the machine is; FLOOD_MAX_S bounds it.
  const floodChild = l.spawn(
    flood,
    [
      '--if',
      'eth0',
      '--sources',
      String(SOURCES),
      '--in',
      '2003:ab11:0:0:8000::',
      '--out',
      '2003:ab11:0:0:c000::',
      '--src-base',
      '2003:ab11:0:0:1::',
      '--duration',
      String(FLOOD_MAX_S),
    ],
    { cpus: 0 },
  );
  t.teardown(() => stopProcess(floodChild, 3000));
  const floodOut: string[] = [];
  const floodErr: string[] = [];
  floodChild.stdout!.setEncoding('utf8').on('data', (d: string) => floodOut.push(d));
  floodChild.stderr!.setEncoding('utf8').on('data', (d: string) => floodErr.push(d));
  let stopping = false;
  let floodEndedEarly = false;
  const floodExit = new Promise<number | null>((resolve) => floodChild.once('exit', (code) => resolve(code)));
  void floodExit.then(() => (floodEndedEarly = !stopping));
  // The peer starts once the flood has run FLOOD_LEAD_MS.
  await sleep(FLOOD_LEAD_MS);
  const during = await runProbe(PEER_SAMPLES, PEER_MAX_S);
  stopping = true;
  await stopProcess(floodChild, 5000);
  const floodCode = await floodExit;
  clearInterval(sampler);
  if (floodCode !== 0) throw new Error(`ns-flood exited ${floodCode}: ${floodErr.join('')}`);
  const f = lastJson<FloodResult>('ns-flood', floodOut.join(''));
  await sleep(1000);
  const rssEnd = rssKb(pid);
  const m1 = await metrics();
  const after = await runProbe(20, 10);

  const received = counter(m1, 'ndp_backend_received_total') - counter(m0, 'ndp_backend_received_total');
  const kernelDrops = counter(m1, 'ndp_backend_kernel_drops_total') - counter(m0, 'ndp_backend_kernel_drops_total');
  const taken = received / (received + kernelDrops);
  const share = during.answered / during.samples;
  const start = rss[0]!;
  const peak = Math.max(...rss);
  t.comment(
    `flood: ${f.sent} NS from ${f.sources} forged sources in ${f.elapsed_s.toFixed(2)} s = ${Math.round(f.rate)} NS/s ` +
      `(${f.errors} full-queue retries), ${f.na} NAs seen by the sender (${Math.round(f.na / f.elapsed_s)} NA/s); ` +
      `the responder took in ${received} frames, the kernel dropped ${kernelDrops} at its socket (taken ${(taken * 100).toFixed(1)} %)`,
  );
  t.comment(
    `peer quiet: ${quiet.answered}/${quiet.samples} p50 ${quiet.p50_us.toFixed(0)} us p99 ${quiet.p99_us.toFixed(0)} us; ` +
      `during the flood: ${during.answered}/${during.samples} answered (${during.unsent} refused by the link) within ${PEER_TIMEOUT_MS} ms (${(share * 100).toFixed(1)} %), ` +
      `p50 ${during.p50_us.toFixed(0)} us p90 ${during.p90_us.toFixed(0)} us p99 ${during.p99_us.toFixed(0)} us max ${during.max_us.toFixed(0)} us; ` +
      `after: ${after.answered}/${after.samples}`,
  );
  t.comment(`RSS (kB, every second): ${rss.join(' ')}; start ${start}, peak ${peak}, 1 s after the flood ${rssEnd}`);

  t.ok(f.sent > 0 && !floodEndedEarly, `the flood lasted until the peer was done (${f.elapsed_s.toFixed(1)} s)`);
  t.ok(f.na > 0, 'the flood was answered too (targets inside the rule)');
  t.ok(
    during.samples >= PEER_SAMPLES / 2,
    `the peer sent its NS in the middle of the flood: ${during.samples} of ${PEER_SAMPLES} (${during.unsent} refused by the saturated link)`,
  );
  const bound = Math.min(MIN_SHARE, Math.max(FLOOR_SHARE, taken - SHARE_MARGIN));
  t.ok(share >= bound, `the peer's NS answered during the flood: ${(share * 100).toFixed(1)} % >= ${(bound * 100).toFixed(1)} %`);
  t.ok(rssEnd !== undefined && rssEnd <= start + RSS_END_MB * 1024, `RSS flat: end ${rssEnd} kB <= start ${start} kB + ${RSS_END_MB} MB`);
  t.ok(peak <= start + RSS_PEAK_MB * 1024, `RSS peak ${peak} kB <= start + ${RSS_PEAK_MB} MB`);
  t.equal(after.answered, after.samples, 'answered after the flood');
  t.ok(child.exitCode === null && child.signalCode === null, 'the daemon never exited');
  t.notMatch(out.join(''), /interface \(re\)opened/, 'the socket was never reopened');
});
