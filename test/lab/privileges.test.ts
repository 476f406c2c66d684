/**
 * The daemon's privileges against a real kernel: started as root it keeps only CAP_NET_RAW once
 * its socket is open (every thread it can reach, read back from /proc), and still answers and
 * survives a link flap; started as an unprivileged user with CAP_NET_RAW as an ambient
 * capability it works fully; without CAP_NET_RAW it exits 1 with one clear line.
 * Topology: src/lab/topology.ts (h1 runs the responder, h2's ndisc6 solicits).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { type ChildProcess, spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { nsExec, nsSpawn, nsTry } from '../../src/lab/netns.js';
import { waitFor, waitForLine } from '../../src/lab/process.js';
import { createLab, type TwoHostLab as Lab } from '../../src/lab/topology.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const H1_MAC = '02:00:00:00:01:01';
const NET_RAW = 1n << 13n;
const NET_BIND_SERVICE = 1n << 10n;
/** An unprivileged user and group (nobody/nogroup). */
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

function ndisc6(ns: string, addr: string): string | null {
  const r = nsTry(ns, ['ndisc6', '-1', '-r', '2', '-w', '400', addr, 'eth0'], 10_000);
  const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.out);
  return r.status === 0 && m ? m[1]!.toLowerCase() : null;
}

interface ProcCaps {
  eff: bigint;
  prm: bigint;
  inh: bigint;
  bnd: bigint;
  amb: bigint;
  nnp: boolean;
  uid: number;
  sigBlk: bigint;
}

function procCaps(path: string): ProcCaps {
  const s = readFileSync(path, 'utf8');
  const hex = (k: string): bigint => BigInt(`0x${new RegExp(`^${k}:\\s*([0-9a-f]+)`, 'm').exec(s)![1]!}`);
  return {
    eff: hex('CapEff'),
    prm: hex('CapPrm'),
    inh: hex('CapInh'),
    bnd: hex('CapBnd'),
    amb: hex('CapAmb'),
    nnp: /^NoNewPrivs:\s*1/m.test(s),
    uid: Number(/^Uid:\s*(\d+)/m.exec(s)![1]),
    sigBlk: hex('SigBlk'),
  };
}

/** Every thread of `pid`: [tid, caps]. */
function threadCaps(pid: number): [number, ProcCaps][] {
  const out: [number, ProcCaps][] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push([Number(tid), procCaps(`/proc/${pid}/task/${tid}/status`)]);
    } catch {
      /* thread ended */
    }
  }
  return out;
}

const lab: Lab = createLab({ tag: `pv${process.pid % 1000}` });
t.teardown(() => lab.destroy());

async function startDaemon(lab: Lab, wrapper: string[], extra: string[] = []): Promise<{ child: ChildProcess; log: string[] }> {
  const child = nsSpawn(lab.h1.ns, [
    ...wrapper,
    process.execPath,
    CLI,
    'run',
    '--interface',
    'eth0',
    '--prefix',
    lab.h1.range,
    '--log-level',
    'info',
    ...extra,
  ]);
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  await waitForLine(child, /"msg":"ready"/, 20_000);
  return { child, log };
}

/** SIGKILL and wait for the exit, so the next test's daemon has the link to itself. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** Answered at start, not while down, answered again after up (the socket re-opened). */
async function answersAcrossFlap(t: Test, lab: Lab, child: ChildProcess): Promise<void> {
  const target = '2003:ab11:0:0:8000::42';
  t.equal(ndisc6(lab.h2.ns, target), H1_MAC, 'ndisc6 answered after the drop');
  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'down']);
  await new Promise((r) => setTimeout(r, 1500));
  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'up']);
  await waitFor(() => ndisc6(lab.h2.ns, target) === H1_MAC, { timeoutMs: 10_000, what: 'answers after link down/up' });
  t.pass('answered again after link down/up: the socket re-opened with what was kept');
  t.equal(child.exitCode, null, 'still running');
}

t.test('root: after start only CAP_NET_RAW on every reachable thread, no_new_privs; answers and re-opens', async (t) => {
  const { child, log } = await startDaemon(lab, [], ['--promiscuous']);
  t.teardown(() => stop(child));
  const pid = child.pid!;

  const main = procCaps(`/proc/${pid}/status`);
  t.equal(main.uid, 0, 'still uid 0');
  t.equal(main.eff, NET_RAW, `CapEff ${main.eff.toString(16)} is exactly cap_net_raw`);
  t.equal(main.prm, NET_RAW, 'CapPrm is exactly cap_net_raw');
  t.equal(main.inh, 0n, 'CapInh empty');
  t.equal(main.amb, 0n, 'CapAmb empty');
  t.equal(main.bnd, NET_RAW, 'CapBnd reduced to cap_net_raw');
  t.ok(main.nnp, 'NoNewPrivs: 1');

  const threads = threadCaps(pid);
  const wide = threads.filter(([, c]) => c.eff !== NET_RAW || c.prm !== NET_RAW || !c.nnp);
  t.ok(threads.length >= 5, `${threads.length} threads`);
  // Only a thread that blocks every real-time signal cannot be reached (Node's SIGUSR1 watchdog:
  // it runs no code of ours). Every other thread holds exactly cap_net_raw.
  for (const [tid, c] of wide) {
    t.equal(
      c.sigBlk & 0xfffffffe00000000n,
      0xfffffffe00000000n,
      `thread ${tid} keeping ${c.eff.toString(16)} blocks every real-time signal`,
    );
  }
  t.ok(wide.length <= 1, `at most one unreachable thread (${wide.length})`);
  const line = log
    .join('')
    .split('\n')
    .find((l) => l.includes('"msg":"capabilities dropped"'));
  t.ok(line, 'one log line says what was dropped');
  t.match(line ?? '', /"kept":"cap_net_raw"/);

  await answersAcrossFlap(t, lab, child);
  t.equal(procCaps(`/proc/${pid}/status`).eff, NET_RAW, 'still only cap_net_raw after the re-open');
  t.match(log.join(''), /interface \(re\)opened/);
});

t.test('root, pcap back end: only cap_net_raw, answers and re-opens', async (t) => {
  const { child } = await startDaemon(lab, [], ['--backend', 'pcap']);
  t.teardown(() => stop(child));
  const c = procCaps(`/proc/${child.pid!}/status`);
  t.equal(c.eff, NET_RAW, `CapEff ${c.eff.toString(16)}`);
  await answersAcrossFlap(t, lab, child);
});

t.test('root with --metrics on a port below 1024: cap_net_bind_service kept too', async (t) => {
  const { child } = await startDaemon(lab, [], ['--metrics', '[::1]:81']);
  t.teardown(() => stop(child));
  const c = procCaps(`/proc/${child.pid!}/status`);
  t.equal(c.eff, NET_RAW | NET_BIND_SERVICE, `CapEff ${c.eff.toString(16)}`);
  const metrics = nsTry(lab.h1.ns, ['ss', '-ltnH', 'sport = :81'], 5000);
  t.match(metrics.out, /:81\b/, 'the metrics server listens on port 81');
});

t.test('nobody with CAP_NET_RAW as an ambient capability: works fully', async (t) => {
  const { child, log } = await startDaemon(lab, ['setpriv', ...NOBODY, '--inh-caps=+net_raw', '--ambient-caps=+net_raw']);
  t.teardown(() => stop(child));
  const c = procCaps(`/proc/${child.pid!}/status`);
  t.equal(c.uid, 65534, 'runs as nobody');
  t.equal(c.eff, NET_RAW, 'CapEff cap_net_raw');
  t.equal(c.amb, 0n, 'ambient set cleared after start');
  t.ok(c.nnp, 'NoNewPrivs: 1');
  t.notMatch(log.join(''), /"level":[56]0/, 'no error or fatal line');
  await answersAcrossFlap(t, lab, child);
});

t.test('without CAP_NET_RAW: exit 1 and one clear line', async (t) => {
  // `env -i`: a clean environment, without the test runner's hooks (NODE_OPTIONS), which would
  // write their own files at exit (and fail as nobody).
  const argv = ['netns', 'exec', lab.h1.ns, 'env', '-i', `PATH=${process.env['PATH'] ?? '/usr/bin:/bin'}`, 'setpriv', ...NOBODY];
  const r = spawnSync('ip', [...argv, process.execPath, CLI, 'run', '--interface', 'eth0', '--prefix', lab.h1.range], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  t.equal(r.status, 1, 'exit code 1');
  const out = r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { msg?: string }).msg);
  t.same(out, ['configuration'], 'on stdout only the configuration line (what run chose), no other log line');
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${lines.join(' | ')}`);
  t.match(lines[0] ?? '', /needs CAP_NET_RAW/);
  t.match(lines[0] ?? '', /docs\/privileges\.md/);
});
