/**
 * NDP responder benchmark harness: kernel proxy_ndp, ndppd, npd6 and ndp-responder, side by
 * side, on a two-namespace veth lab. See bench/README.md for the method and what each number
 * means. Run as root through bench/run.sh (which also cleans up if this process is killed).
 *
 *   bash bench/run.sh --quick
 *   bash bench/run.sh                      # full run (about 20 minutes)
 *   bash bench/run.sh --help
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Paths

/** The repository root: the first ancestor of this file that holds bench/ns-blaster.c. */
function findRepo(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'bench', 'ns-blaster.c'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the repository root (bench/ns-blaster.c)');
}

const REPO = findRepo();
const BENCH = path.join(REPO, 'bench');
const BUILD = path.join(BENCH, 'build');
const RESULTS = path.join(BENCH, 'results');
const TOOLS = ['ns-blaster', 'latency-probe', 'na-counter', 'gen-addrs'] as const;

// ---------------------------------------------------------------------------------------------
// Options

type Rate = number | 'max';

interface Options {
  quick: boolean;
  sizes: number[];
  contenders: string[];
  rates: Rate[];
  stepS: number;
  settleMs: number;
  settleMaxS: number;
  latencySamples: number;
  latencyMaxS: number;
  kernelMax: number;
  layout: 'scatter' | 'seq';
  blastSample: number;
  readyTimeoutS: number;
  ndprCli: string;
  ndprArgs: string[];
  out: string;
}

const ALL_CONTENDERS = [
  'kernel0',
  'kernel',
  'ndppd',
  'ndppd-prefix',
  'npd6',
  'npd6-prefix',
  'ndpr-afpacket',
  'ndpr-pcap',
] as const;
const DEFAULT_CONTENDERS = [...ALL_CONTENDERS];

const USAGE = `usage: bash bench/run.sh [options]
  --quick                 sizes 1,1000; rates 10k,50k,200k,max; 1 s steps; 200 latency samples;
                          no *-prefix contenders
  --sizes LIST            table sizes, e.g. 1,1000,10000,100000,1000000 (default: all five)
  --contenders LIST       from ${ALL_CONTENDERS.join(',')}
                          (default: ${DEFAULT_CONTENDERS.join(',')})
  --rates LIST            offered NS/s ladder; "max" = unpaced (default 10000,25000,50000,100000,200000,max)
  --step S                seconds per ladder step (default 2; quick 1)
  --latency-samples N     latency probe samples (default 1000; quick 200)
  --kernel-max N          largest table for kernel proxy_ndp (default 10000: loading is O(N^2))
  --layout scatter|seq    how the N addresses are spread in 2003:ab11::8000:0:0:0/66 (default scatter)
  --blast-sample K        blast at most K distinct targets, evenly spread over the N (default 100000)
  --ready-timeout S       how long a daemon may take to load and answer (default 300)
  --ndpr-cli PATH         ndp-responder CLI (default dist/src/cli.js)
  --ndpr-args "ARGS"      extra arguments for ndp-responder run
  --out FILE              JSON result file (default bench/results/DATE.json)`;

function parseList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function parseCount(s: string, what: string): number {
  const v = Number(s.replace(/_/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad ${what}: ${s}`);
  return Math.round(v);
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    sizes: quick ? [1, 1000] : [1, 1000, 10000, 100000, 1000000],
    contenders: quick ? DEFAULT_CONTENDERS.filter((c) => !c.endsWith('-prefix')) : [...DEFAULT_CONTENDERS],
    rates: quick ? [10000, 50000, 200000, 'max'] : [10000, 25000, 50000, 100000, 200000, 'max'],
    stepS: quick ? 1 : 2,
    settleMs: 300,
    settleMaxS: quick ? 3 : 5,
    latencySamples: quick ? 200 : 1000,
    latencyMaxS: quick ? 10 : 20,
    kernelMax: 10000,
    layout: 'scatter',
    blastSample: 100000,
    readyTimeoutS: 300,
    ndprCli: path.join(REPO, 'dist', 'src', 'cli.js'),
    ndprArgs: [],
    out: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      case '--sizes':
        o.sizes = parseList(next()).map((s) => parseCount(s, 'size'));
        break;
      case '--contenders': {
        o.contenders = parseList(next());
        for (const c of o.contenders) {
          if (!(ALL_CONTENDERS as readonly string[]).includes(c)) throw new Error(`unknown contender ${c}`);
        }
        break;
      }
      case '--rates':
        o.rates = parseList(next()).map((s) => (s === 'max' ? 'max' : parseCount(s, 'rate')));
        break;
      case '--step':
        o.stepS = Number(next());
        break;
      case '--latency-samples':
        o.latencySamples = parseCount(next(), 'samples');
        break;
      case '--kernel-max':
        o.kernelMax = parseCount(next(), 'kernel-max');
        break;
      case '--layout': {
        const v = next();
        if (v !== 'scatter' && v !== 'seq') throw new Error('--layout must be scatter or seq');
        o.layout = v;
        break;
      }
      case '--blast-sample':
        o.blastSample = parseCount(next(), 'blast-sample');
        break;
      case '--ready-timeout':
        o.readyTimeoutS = Number(next());
        break;
      case '--ndpr-cli':
        o.ndprCli = path.resolve(next());
        break;
      case '--ndpr-args':
        o.ndprArgs = next().split(/\s+/).filter((x) => x.length > 0);
        break;
      case '--out':
        o.out = path.resolve(next());
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (!(o.stepS > 0 && o.stepS <= 30)) throw new Error('--step must be in (0, 30]');
  if (o.sizes.some((n) => n < 1 || n > 4_000_000)) throw new Error('sizes must be in [1, 4000000]');
  if (!(o.readyTimeoutS > 0 && o.readyTimeoutS <= 1800)) throw new Error('--ready-timeout must be in (0, 1800]');
  return o;
}

// ---------------------------------------------------------------------------------------------
// Processes: everything we start is tracked so a signal or a failure can end it.

const live = new Set<ChildProcess>();
const TAG = process.env['NDPB_TAG'] ?? `ndpb${process.pid}`;
const namespaces = new Set<string>();

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Runs argv to completion, killing it after timeoutMs. Never throws for a non-zero exit. */
function run(argv: string[], timeoutMs: number): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      stderr += String(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
}

/** Synchronous command for lab setup; throws with the command's stderr on failure. */
function sh(argv: string[], timeoutMs = 20000): string {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  try {
    return execFileSync(cmd, args, { timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}

function trySh(argv: string[], timeoutMs = 10000): void {
  try {
    sh(argv, timeoutMs);
  } catch {
    // best effort (cleanup)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function inNs(ns: string, cpu: number, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, 'taskset', '-c', String(cpu), ...argv];
}

function cleanupAll(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const ns of namespaces) deleteNs(ns);
}

/** Ends every process inside one of our namespaces (ours by construction), then deletes it. */
function deleteNs(ns: string): void {
  try {
    const pids = sh(['ip', 'netns', 'pids', ns], 5000).split(/\s+/).filter((x) => /^\d+$/.test(x));
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // namespace already gone
  }
  trySh(['ip', 'netns', 'del', ns]);
  namespaces.delete(ns);
}

// ---------------------------------------------------------------------------------------------
// Build the C tools and the per-size input files

function buildTools(): void {
  fs.mkdirSync(BUILD, { recursive: true });
  for (const t of TOOLS) {
    const src = path.join(BENCH, `${t}.c`);
    const bin = path.join(BUILD, t);
    const hdr = path.join(BENCH, 'ndp-frames.h');
    const stale =
      !fs.existsSync(bin) ||
      fs.statSync(bin).mtimeMs < Math.max(fs.statSync(src).mtimeMs, fs.statSync(hdr).mtimeMs);
    if (stale) sh(['gcc', '-O2', '-Wall', '-Wextra', '-o', bin, src], 60000);
  }
}

const tool = (t: (typeof TOOLS)[number]): string => path.join(BUILD, t);

interface SizeFiles {
  n: number;
  addrs: string;
  last: string;
}

function writeLines(file: string, n: number, line: (i: number) => string, head = '', tail = ''): void {
  if (fs.existsSync(file)) return;
  const tmp = `${file}.tmp${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    if (head) fs.writeSync(fd, head);
    const chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      chunk.push(line(i));
      if (chunk.length === 10000) {
        fs.writeSync(fd, chunk.join(''));
        chunk.length = 0;
      }
    }
    fs.writeSync(fd, chunk.join('') + tail);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

const sizeCache = new Map<number, { files: SizeFiles; list: string[] }>();

function sizeFiles(n: number, layout: string): { files: SizeFiles; list: string[] } {
  const hit = sizeCache.get(n);
  if (hit) return hit;
  const addrs = path.join(BUILD, `addrs-${layout}-${n}.txt`);
  if (!fs.existsSync(addrs)) {
    const out = execFileSync(tool('gen-addrs'), ['--count', String(n), '--layout', layout], {
      maxBuffer: 1 << 30,
      encoding: 'utf8',
    });
    fs.writeFileSync(addrs, out);
  }
  const list = fs.readFileSync(addrs, 'utf8').split('\n').filter((x) => x.length > 0);
  const last = list[list.length - 1];
  if (list.length !== n || last === undefined) throw new Error(`${addrs}: expected ${n} addresses`);
  const r = { files: { n, addrs, last }, list };
  sizeCache.clear(); // keep at most one big list in memory
  sizeCache.set(n, r);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The lab: namespace "lan" (sender) and "host" (responder), one veth pair between them.

const PREFIX = '2003:ab11::8000:0:0:0/66';
const PREFIX_NPD6 = '2003:ab11:0:0:8000::/66';
const LAN_IP = '2003:ab11::1';
const HOST_IP = '2003:ab11::2';
const LAN_MAC = '02:00:5e:10:00:01';
const HOST_MAC = '02:00:5e:10:00:02';
const LAN_IF = 'v-lan';
const HOST_IF = 'v-host';
const SENDER_CPU = 0;
const RESPONDER_CPU = 1;

interface Lab {
  lan: string;
  host: string;
}

let labSeq = 0;

async function makeLab(): Promise<Lab> {
  labSeq++;
  const lab: Lab = { lan: `${TAG}-${labSeq}-lan`, host: `${TAG}-${labSeq}-host` };
  for (const ns of [lab.lan, lab.host]) {
    sh(['ip', 'netns', 'add', ns]);
    namespaces.add(ns);
    // no DAD and no RA/RS noise on the lab links; set before the links exist so they inherit it
    sh([
      'ip', 'netns', 'exec', ns, 'sysctl', '-qw',
      'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_ra=0', 'net.ipv6.conf.default.router_solicitations=0',
    ]);
  }
  // A Docker host forwards: forwarding=1 in the responder namespace for every contender.
  sh(['ip', 'netns', 'exec', lab.host, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  // both ends are created directly inside the namespaces: nothing ever appears in ours
  sh([
    'ip', 'link', 'add', LAN_IF, 'netns', lab.lan, 'address', LAN_MAC,
    'type', 'veth', 'peer', 'name', HOST_IF, 'netns', lab.host, 'address', HOST_MAC,
  ]);
  sh(['ip', '-n', lab.lan, 'addr', 'add', `${LAN_IP}/64`, 'dev', LAN_IF, 'nodad']);
  sh(['ip', '-n', lab.host, 'addr', 'add', `${HOST_IP}/64`, 'dev', HOST_IF, 'nodad']);
  for (const [ns, dev] of [[lab.lan, LAN_IF], [lab.host, HOST_IF]] as const) {
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  // RPS: each side's receive softirq runs on its own CPU (without it, the responder's kernel
  // work would run inside the sender's sendmmsg() on the sender's CPU).
  const rps = (ns: string, dev: string, cpu: number): void => {
    const mask = (1 << cpu).toString(16);
    sh(['ip', 'netns', 'exec', ns, 'sh', '-c',
      `for q in /sys/class/net/${dev}/queues/rx-*; do echo ${mask} > $q/rps_cpus; done; cat /sys/class/net/${dev}/queues/rx-*/rps_cpus`]);
  };
  rps(lab.lan, LAN_IF, SENDER_CPU);
  rps(lab.host, HOST_IF, RESPONDER_CPU);
  // The solicitor is a known, reachable neighbour (as an upstream router is): replies from the
  // kernel's IPv6 stack (kernel proxy, ndppd, npd6) need no resolution round trip of their own.
  sh(['ip', '-n', lab.host, '-6', 'neigh', 'replace', LAN_IP, 'lladdr', LAN_MAC, 'dev', HOST_IF, 'nud', 'permanent']);
  // wait for carrier + operstate (linkwatch may take up to a second)
  for (let i = 0; i < 50; i++) {
    const a = sh(['ip', 'netns', 'exec', lab.host, 'cat', `/sys/class/net/${HOST_IF}/operstate`]).trim();
    const b = sh(['ip', 'netns', 'exec', lab.lan, 'cat', `/sys/class/net/${LAN_IF}/operstate`]).trim();
    if (a === 'up' && b === 'up') break;
    await sleep(100);
  }
  // linkwatch also activates the device and addrconf marks the interface ready a moment later
  await sleep(1200);
  return lab;
}

function deleteLab(lab: Lab): void {
  deleteNs(lab.host);
  deleteNs(lab.lan);
}

// ---------------------------------------------------------------------------------------------
// Measurement tools

interface Step {
  target_rate: number;
  targets: number;
  offered: number;
  delivered: number;
  veth_drops: number;
  elapsed_s: number;
  offered_pps: number;
  answered: number;
  answered_in_window: number;
  answered_pps: number;
  loss: number;
  window_s: number;
  pid_cpu_s?: number | null;
  pid_cpu_pct?: number | null;
  cpu_busy_pct: number[];
  label?: string;
  /** time waited before the step for the responder to go quiet, and whether it did */
  settle_ms?: number;
  settled?: boolean;
}

interface Latency {
  samples: number;
  answered: number;
  lost: number;
  timeout_ms: number;
  min_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
  took_s: number;
}

async function blast(lab: Lab, files: SizeFiles, rate: Rate, o: Options, drainMs: number, pid: number | undefined): Promise<Step> {
  const argv = [
    tool('ns-blaster'), '--if', LAN_IF, '--targets', files.addrs, '--sample', String(o.blastSample),
    '--src', LAN_IP, '--rate', String(rate === 'max' ? 0 : rate), '--duration', String(o.stepS),
    '--count', String(Math.ceil(o.stepS * 2_000_000)), '--drain-ms', String(drainMs),
  ];
  if (pid !== undefined) argv.push('--watch-pid', String(pid));
  const quiet = await settle(lab, o.settleMs, o.settleMaxS * 1000);
  const r = await run(inNs(lab.lan, SENDER_CPU, argv), (o.stepS + drainMs / 1000 + 60) * 1000);
  if (r.code !== 0) throw new Error(`ns-blaster failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`);
  const step = JSON.parse(r.stdout.trim()) as Step;
  step.label = rate === 'max' ? 'max' : String(rate);
  step.settle_ms = quiet.ms;
  step.settled = quiet.quiet;
  return step;
}

async function probeLatency(lab: Lab, files: SizeFiles, samples: number, timeoutMs: number, maxS: number, gapUs: number): Promise<Latency> {
  const argv = [
    tool('latency-probe'), '--if', LAN_IF, '--targets', files.addrs, '--src', LAN_IP,
    '--samples', String(samples), '--timeout-ms', String(timeoutMs), '--max-seconds', String(maxS),
    '--gap-us', String(gapUs),
  ];
  const r = await run(inNs(lab.lan, SENDER_CPU, argv), (maxS + timeoutMs / 1000 + 60) * 1000);
  if (r.code !== 0) throw new Error(`latency-probe failed (${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim()) as Latency;
}

/**
 * Waits until the responder has stopped answering (no NA for 200 ms), at most maxMs: a daemon
 * still working through the backlog of the previous step would otherwise spill into the next.
 * Returns the time waited and whether it went quiet.
 */
async function settle(lab: Lab, minMs: number, maxMs: number): Promise<{ ms: number; quiet: boolean }> {
  const t0 = Date.now();
  await sleep(Math.max(0, minMs - 200));
  while (Date.now() - t0 < maxMs) {
    const r = await run(inNs(lab.lan, SENDER_CPU, [tool('na-counter'), '--if', LAN_IF, '--duration', '0.2']), 10000);
    const n = r.code === 0 ? (JSON.parse(r.stdout.trim()) as { answered: number }).answered : -1;
    if (n === 0) return { ms: Date.now() - t0, quiet: true };
  }
  return { ms: Date.now() - t0, quiet: false };
}

/** Solicits the LAST loaded address until it is answered; true when answered within ms. */
async function answers(lab: Lab, files: SizeFiles, ms: number): Promise<boolean> {
  const argv = [tool('latency-probe'), '--if', LAN_IF, '--target', files.last, '--src', LAN_IP, '--wait-ready', String(ms)];
  const r = await run(inNs(lab.lan, SENDER_CPU, argv), ms + 30000);
  return r.code === 0;
}

function readStatus(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKb: get('VmRSS'), hwmKb: get('VmHWM') };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Contenders

interface Started {
  pid?: number;
  /** seconds from start (or from the first proxy entry) until it answered the last address */
  readyS: number;
  /** for ndp-responder: seconds until the "ready" log line */
  readyLineS?: number;
  stop: () => Promise<void>;
  notes: string[];
}

interface Contender {
  name: string;
  label: string;
  family: 'kernel0' | 'kernel' | 'ndppd' | 'npd6' | 'ndpr';
  /** after the last NS of a step, how long NAs may still come */
  drainMs: number;
  latency: { samples?: number; timeoutMs: number; gapUs: number };
  skip: (n: number, o: Options) => string | undefined;
  start: (lab: Lab, files: SizeFiles, list: string[], o: Options, logDir: string) => Promise<Started>;
}

/** The last lines each daemon printed, for error messages. */
const tails = new WeakMap<ChildProcess, string[]>();

/** Starts a daemon in the host namespace pinned to the responder CPU; output goes to logFile. */
function startDaemon(lab: Lab, argv: string[], logFile: string, onLine?: (line: string) => void): ChildProcess {
  const [cmd, ...args] = inNs(lab.host, RESPONDER_CPU, argv);
  if (cmd === undefined) throw new Error('empty command');
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const log = fs.createWriteStream(logFile);
  const tail: string[] = [];
  tails.set(child, tail);
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const rl = readline.createInterface({ input: stream });
    rl.on('line', (l) => {
      log.write(`${l}\n`);
      tail.push(l);
      if (tail.length > 40) tail.shift();
      onLine?.(l);
    });
  }
  child.on('close', () => {
    live.delete(child);
    log.end();
  });
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  child.kill('SIGTERM');
  const t = await Promise.race([closed.then(() => 'closed'), sleep(5000).then(() => 'timeout')]);
  if (t === 'timeout') {
    child.kill('SIGKILL');
    await Promise.race([closed, sleep(3000)]);
  }
}

/** Waits until the daemon answers the last address, or fails when it exits or times out. */
async function waitAnswering(lab: Lab, files: SizeFiles, child: ChildProcess, t0: number, timeoutS: number): Promise<number> {
  while ((Date.now() - t0) / 1000 < timeoutS) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const last = (tails.get(child) ?? []).filter((l) => /error|fatal|fail/i.test(l)).slice(-1)[0] ?? tails.get(child)?.slice(-1)[0] ?? '';
      throw new Error(`exited during start (code ${child.exitCode}, signal ${child.signalCode}): ${last.trim().slice(0, 300)}`);
    }
    if (await answers(lab, files, 1000)) return (Date.now() - t0) / 1000;
  }
  throw new Error(`did not answer within ${timeoutS} s`);
}

function kernelContender(name: 'kernel0' | 'kernel'): Contender {
  const delay0 = name === 'kernel0';
  return {
    name,
    label: delay0 ? 'kernel proxy_ndp, proxy_delay 0' : 'kernel proxy_ndp, default proxy_delay (0.8 s)',
    family: name,
    // with the default delay, answers to multicast NS come up to 0.8 s late
    drainMs: delay0 ? 300 : 1000,
    latency: delay0 ? { timeoutMs: 200, gapUs: 500 } : { samples: 40, timeoutMs: 2000, gapUs: 0 },
    skip: (n, o) =>
      n > o.kernelMax
        ? `N=${n} > --kernel-max ${o.kernelMax} (each proxy entry joins a multicast group; 100,000 took 8 min to load here)`
        : undefined,
    async start(lab, files, list) {
      const sysctls = ['net.ipv6.conf.all.proxy_ndp=1', `net.ipv6.conf.${HOST_IF}.proxy_ndp=1`];
      if (delay0) sysctls.push(`net.ipv6.neigh.${HOST_IF}.proxy_delay=0`);
      sh(['ip', 'netns', 'exec', lab.host, 'sysctl', '-qw', ...sysctls]);
      const delay = sh(['ip', 'netns', 'exec', lab.host, 'sysctl', '-n', `net.ipv6.neigh.${HOST_IF}.proxy_delay`]).trim();
      const batch = path.join(BUILD, `kproxy-${path.basename(files.addrs, '.txt')}.batch`);
      writeLines(batch, list.length, (i) => `neigh add proxy ${list[i]} dev ${HOST_IF}\n`);
      const t0 = Date.now();
      const r = await run(['ip', '-n', lab.host, '-6', '-batch', batch], Math.max(120, files.n / 50) * 1000);
      if (r.code !== 0) throw new Error(`ip -batch failed: ${r.stderr.trim().slice(0, 300)}`);
      const loadS = (Date.now() - t0) / 1000;
      const t1 = Date.now();
      if (!(await answers(lab, files, 10000))) throw new Error('kernel proxy did not answer within 10 s');
      return {
        readyS: loadS + (Date.now() - t1) / 1000,
        stop: async () => {},
        notes: [`proxy_delay=${delay} (USER_HZ)`, `ip -batch load ${loadS.toFixed(2)} s`],
      };
    },
  };
}

function ndppdContender(prefix: boolean): Contender {
  return {
    name: prefix ? 'ndppd-prefix' : 'ndppd',
    label: prefix ? `ndppd 0.2.5, one static rule ${PREFIX}` : 'ndppd 0.2.5, one static /128 rule per address',
    family: 'ndppd',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: () => (fs.existsSync('/usr/sbin/ndppd') ? undefined : '/usr/sbin/ndppd not installed'),
    async start(lab, files, list, o, logDir) {
      const conf = path.join(BUILD, prefix ? 'ndppd-prefix.conf' : `ndppd-${path.basename(files.addrs, '.txt')}.conf`);
      // defaults spelled out: router yes, ttl 30000, timeout 500
      const head = `proxy ${HOST_IF} {\n  router yes\n  ttl 30000\n  timeout 500\n`;
      if (prefix) writeLines(conf, 1, () => `  rule ${PREFIX} {\n    static\n  }\n`, head, '}\n');
      else writeLines(conf, list.length, (i) => `  rule ${list[i]}/128 {\n    static\n  }\n`, head, '}\n');
      const t0 = Date.now();
      const child = startDaemon(lab, ['/usr/sbin/ndppd', '-c', conf], path.join(logDir, `${this.name}-${files.n}.log`));
      const readyS = await waitAnswering(lab, files, child, t0, o.readyTimeoutS);
      return { pid: child.pid, readyS, stop: () => stopChild(child), notes: [`config ${path.relative(REPO, conf)}`] };
    },
  };
}

function npd6Contender(prefix: boolean): Contender {
  return {
    name: prefix ? 'npd6-prefix' : 'npd6',
    label: prefix ? `npd6, prefix ${PREFIX}, no list` : `npd6, prefix ${PREFIX} + whitelist of the N addresses`,
    family: 'npd6',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: () => (fs.existsSync('/usr/bin/npd6') ? undefined : '/usr/bin/npd6 not installed'),
    async start(lab, files, list, o, logDir) {
      const conf = path.join(BUILD, prefix ? 'npd6-prefix.conf' : `npd6-${path.basename(files.addrs, '.txt')}.conf`);
      // everything below the list is npd6's documented default except collectTargets (0 = off:
      // it would keep a tree of every target seen, which only serves the USR2 debug dump)
      const head = `prefix=${PREFIX_NPD6}\ninterface=${HOST_IF}\nlisttype=${prefix ? 'none' : 'white'}\nlistlogging=off\n`;
      const tail = 'collectTargets=0\nlinkOption=false\nignoreLocal=true\nrouterNA=true\nmaxHops=255\npollErrorLimit=20\n';
      if (prefix) writeLines(conf, 0, () => '', head, tail);
      else writeLines(conf, list.length, (i) => `addrlist=${list[i]}\n`, head, tail);
      const t0 = Date.now();
      const log = path.join(logDir, `${this.name}-${files.n}.log`);
      // npd6 keeps a strdupa() copy of every config line on its stack until the whole file is
      // read (readConfig in config.c), so past ~150,000 addrlist lines it dies of SIGSEGV with
      // the default 8 MB stack. An unlimited stack lets it load any size; it changes nothing else.
      const argv = ['sh', '-c', 'ulimit -s unlimited && exec "$@"', 'npd6', '/usr/bin/npd6', '-c', conf, '-f', '-l', `${log}.npd6`];
      const child = startDaemon(lab, argv, log);
      const readyS = await waitAnswering(lab, files, child, t0, o.readyTimeoutS);
      return {
        pid: child.pid,
        readyS,
        stop: () => stopChild(child),
        notes: [`config ${path.relative(REPO, conf)}`, 'run with ulimit -s unlimited'],
      };
    },
  };
}

function ndprContender(backend: 'afpacket' | 'pcap'): Contender {
  return {
    name: `ndpr-${backend}`,
    label: `ndp-responder --backend ${backend}`,
    family: 'ndpr',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: (_n, o) =>
      fs.existsSync(o.ndprCli)
        ? undefined
        : `${path.relative(REPO, o.ndprCli)} missing: run \`npm run build\` first (ndp-responder not measured)`,
    async start(lab, files, _list, o, logDir) {
      const argv = [
        process.execPath, o.ndprCli, 'run', '--interface', HOST_IF, '--address-file', files.addrs,
        // info (its default) logs lifecycle events only, among them the "ready" line we time;
        // per-packet decisions are at debug
        '--backend', backend, '--log-level', 'info', ...o.ndprArgs,
      ];
      const t0 = Date.now();
      let readyLineS: number | undefined;
      const child = startDaemon(lab, argv, path.join(logDir, `${this.name}-${files.n}.log`), (line) => {
        if (readyLineS === undefined && line.includes('"msg":"ready"')) readyLineS = (Date.now() - t0) / 1000;
      });
      const readyS = await waitAnswering(lab, files, child, t0, o.readyTimeoutS);
      const notes: string[] = [];
      if (readyLineS === undefined) {
        // the line may come a moment after the first answer
        for (let i = 0; i < 20 && readyLineS === undefined; i++) await sleep(100);
      }
      if (readyLineS === undefined) notes.push('no "ready" log line seen');
      return { pid: child.pid, readyS, readyLineS, stop: () => stopChild(child), notes };
    },
  };
}

const CONTENDERS: Record<string, Contender> = {
  kernel0: kernelContender('kernel0'),
  kernel: kernelContender('kernel'),
  ndppd: ndppdContender(false),
  'ndppd-prefix': ndppdContender(true),
  npd6: npd6Contender(false),
  'npd6-prefix': npd6Contender(true),
  'ndpr-afpacket': ndprContender('afpacket'),
  'ndpr-pcap': ndprContender('pcap'),
};

// ---------------------------------------------------------------------------------------------
// One contender at one table size

interface Outcome {
  size: number;
  contender: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  ready_s?: number;
  ready_line_s?: number;
  notes?: string[];
  latency?: Latency;
  ladder?: Step[];
  at80?: Step;
  best?: { answered_pps: number; offered_pps: number; label: string };
  overload?: { answered_pps: number; offered_pps: number };
  rss_kb?: number;
  hwm_kb?: number;
  loadavg_before?: string;
}

function say(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

function fmtRate(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v >= 10000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)}k`;
  return v.toFixed(0);
}

async function measure(c: Contender, n: number, o: Options, logDir: string): Promise<Outcome> {
  const out: Outcome = { size: n, contender: c.name, label: c.label, status: 'ok' };
  const why = c.skip(n, o);
  if (why) {
    say(`[N=${n} ${c.name}] skipped: ${why}`);
    return { ...out, status: 'skipped', reason: why };
  }
  const { files, list } = sizeFiles(n, o.layout);
  out.loadavg_before = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const lab = await makeLab();
  let started: Started | undefined;
  try {
    say(`[N=${n} ${c.name}] starting`);
    started = await c.start(lab, files, list, o, logDir);
    out.ready_s = started.readyS;
    out.ready_line_s = started.readyLineS;
    out.notes = started.notes;
    say(`[N=${n} ${c.name}] answering after ${started.readyS.toFixed(2)} s${started.readyLineS !== undefined ? ` ("ready" line at ${started.readyLineS.toFixed(2)} s)` : ''}`);

    const lat = c.latency;
    out.latency = await probeLatency(lab, files, lat.samples ?? o.latencySamples, lat.timeoutMs, o.latencyMaxS, lat.gapUs);
    say(`[N=${n} ${c.name}] latency p50 ${out.latency.p50_us} us, p99 ${out.latency.p99_us} us, lost ${out.latency.lost}/${out.latency.samples}`);

    const ladder: Step[] = [];
    for (const rate of o.rates) {
      const s = await blast(lab, files, rate, o, c.drainMs, started.pid);
      ladder.push(s);
      say(`[N=${n} ${c.name}] ${s.settled ? '' : `(still answering old NS after ${s.settle_ms} ms) `}offered ${fmtRate(s.offered_pps)}/s -> answered ${fmtRate(s.answered_pps)}/s (loss ${(s.loss * 100).toFixed(1)}%${s.pid_cpu_pct != null ? `, cpu ${s.pid_cpu_pct.toFixed(0)}%` : ''}, cpu1 ${s.cpu_busy_pct[RESPONDER_CPU] ?? '-'}%)`);
      if (started.pid !== undefined && readStatus(started.pid) === undefined) throw new Error('responder died during the ladder');
    }
    // Refine: a daemon that collapses under overload peaks somewhere between two ladder rates;
    // measure the geometric midpoints on both sides of the best step so its best is not missed.
    const peak = ladder.reduce((a, b) => (b.answered_pps > a.answered_pps ? b : a));
    const byOffered = [...ladder].sort((a, b) => a.offered_pps - b.offered_pps);
    const at = byOffered.indexOf(peak);
    const extra: number[] = [];
    const below = byOffered[at - 1];
    const above = byOffered[at + 1];
    if (below) extra.push(Math.round(Math.sqrt(below.offered_pps * peak.offered_pps)));
    if (above) extra.push(Math.round(Math.sqrt(above.offered_pps * peak.offered_pps)));
    for (const rate of extra) {
      const s = await blast(lab, files, rate, o, c.drainMs, started.pid);
      s.label = `refine ${rate}`;
      ladder.push(s);
      say(`[N=${n} ${c.name}] refine: offered ${fmtRate(s.offered_pps)}/s -> answered ${fmtRate(s.answered_pps)}/s (loss ${(s.loss * 100).toFixed(1)}%)`);
    }
    out.ladder = ladder;
    const best = ladder.reduce((a, b) => (b.answered_pps > a.answered_pps ? b : a));
    out.best = { answered_pps: best.answered_pps, offered_pps: best.offered_pps, label: best.label ?? '' };
    const top = ladder[o.rates.length - 1];
    if (top) out.overload = { answered_pps: top.answered_pps, offered_pps: top.offered_pps };
    const r80 = Math.max(1, Math.round(best.answered_pps * 0.8));
    out.at80 = await blast(lab, files, r80, o, c.drainMs, started.pid);
    out.at80.label = `80% of best (${r80}/s)`;
    say(`[N=${n} ${c.name}] at 80% of best (${fmtRate(r80)}/s): loss ${(out.at80.loss * 100).toFixed(2)}%`);
    if (started.pid !== undefined) {
      const st = readStatus(started.pid);
      out.rss_kb = st?.rssKb;
      out.hwm_kb = st?.hwmKb;
    }
  } catch (e) {
    out.status = 'failed';
    out.reason = (e as Error).message;
    say(`[N=${n} ${c.name}] FAILED: ${out.reason}`);
  } finally {
    if (started) await started.stop();
    deleteLab(lab);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Report

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return '-';
  const r = a / b;
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

function bestOf(rows: Outcome[], family: string): number | undefined {
  const v = rows
    .filter((r) => r.status === 'ok' && CONTENDERS[r.contender]?.family === family)
    .map((r) => r.best?.answered_pps ?? 0);
  return v.length ? Math.max(...v) : undefined;
}

function report(outcomes: Outcome[], o: Options, cmdline: string): string {
  const lines: string[] = [];
  const sizes = [...new Set(outcomes.map((r) => r.size))];
  const cols: [string, number][] = [
    ['contender', 14], ['ready s', 8], ['best NA/s', 10], ['@offered', 9], ['overload', 9], ['(offered)', 10],
    ['loss@80%', 9], ['p50 us', 8], ['p99 us', 8], ['lost', 6], ['CPU%', 6], ['cpu1%', 6], ['RSS MB', 7],
    ['x kern0', 8], ['x ndppd', 8], ['x npd6', 8],
  ];
  lines.push(`command: ${cmdline}`);
  lines.push(
    `lab: veth lan<->host, RPS lan->cpu${SENDER_CPU} host->cpu${RESPONDER_CPU}, sender pinned cpu${SENDER_CPU}, responder pinned cpu${RESPONDER_CPU}; ` +
      `steps ${o.stepS} s; rates ${o.rates.join(',')}; layout ${o.layout}; blast targets <= ${o.blastSample}`,
  );
  for (const n of sizes) {
    const rows = outcomes.filter((r) => r.size === n);
    const k0 = rows.find((r) => r.contender === 'kernel0' && r.status === 'ok')?.best?.answered_pps;
    const nd = bestOf(rows, 'ndppd');
    const np = bestOf(rows, 'npd6');
    lines.push('');
    lines.push(`== N = ${n.toLocaleString('en-US')} proxied addresses ==`);
    lines.push(cols.map(([h, w], i) => pad(h, w, i > 0)).join(' '));
    for (const r of rows) {
      if (r.status !== 'ok') {
        lines.push(`${pad(r.contender, 14)} ${r.status}: ${r.reason ?? ''}`);
        continue;
      }
      const b = r.best?.answered_pps;
      const a80 = r.at80;
      const cells = [
        r.contender,
        r.ready_s?.toFixed(2) ?? '-',
        fmtRate(b),
        fmtRate(r.best?.offered_pps),
        fmtRate(r.overload?.answered_pps),
        `(${fmtRate(r.overload?.offered_pps)})`,
        a80 ? `${(a80.loss * 100).toFixed(2)}%` : '-',
        r.latency?.answered ? r.latency.p50_us.toFixed(0) : '-',
        r.latency?.answered ? r.latency.p99_us.toFixed(0) : '-',
        r.latency ? `${r.latency.lost}` : '-',
        a80?.pid_cpu_pct != null ? a80.pid_cpu_pct.toFixed(0) : '-',
        a80 ? (a80.cpu_busy_pct[RESPONDER_CPU] ?? NaN).toFixed(0) : '-',
        r.rss_kb !== undefined ? (r.rss_kb / 1024).toFixed(1) : '-',
        r.contender === 'kernel0' ? '' : ratio(b, k0),
        CONTENDERS[r.contender]?.family === 'ndppd' ? '' : ratio(b, nd),
        CONTENDERS[r.contender]?.family === 'npd6' ? '' : ratio(b, np),
      ];
      lines.push(cells.map((c, i) => pad(c, cols[i]?.[1] ?? 8, i > 0)).join(' '));
    }
    lines.push('ladder (offered -> answered NA/s):');
    for (const r of rows) {
      if (!r.ladder) continue;
      const steps = [...r.ladder].sort((a, b) => a.offered_pps - b.offered_pps);
      lines.push(`  ${pad(r.contender, 14)} ${steps.map((s) => `${fmtRate(s.offered_pps)}->${fmtRate(s.answered_pps)}`).join('  ')}`);
    }
  }
  const ndprBig = outcomes.filter((r) => r.contender.startsWith('ndpr-') && r.status === 'ok' && r.size >= 1_000_000);
  lines.push('');
  if (ndprBig.length) {
    for (const r of ndprBig) {
      lines.push(
        `ndp-responder load time, ${r.size.toLocaleString('en-US')} addresses, ${r.contender}: "ready" line ${r.ready_line_s?.toFixed(2) ?? '-'} s, first answer for the last address ${r.ready_s?.toFixed(2)} s`,
      );
    }
  } else {
    lines.push('ndp-responder load time at 1,000,000 addresses: not measured in this run');
  }
  lines.push(
    'columns: best = highest answered NA/s over the ladder, @offered = offered NS/s at that step; overload = answered at the last (highest) step; ' +
      'loss@80% = loss at 80% of best; p50/p99 = idle NS->NA latency; lost = probe timeouts; CPU% = responder process utime+stime at the 80% step; ' +
      'cpu1% = whole responder core busy at the 80% step (includes softirq and other load); x = best NA/s ratio (vs ndppd/npd6: their better config).',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('must run as root (network namespaces)');
  if (os.cpus().length < 2) throw new Error('needs at least 2 CPUs (sender and responder pinned apart)');
  const cmdline = process.env['NDPB_CMDLINE'] ?? `node --import tsx bench/run.ts ${process.argv.slice(2).join(' ')}`;
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  fs.mkdirSync(RESULTS, { recursive: true });
  const outFile = o.out || path.join(RESULTS, `${stamp}.json`);
  const logDir = path.join(BUILD, 'logs', stamp);
  fs.mkdirSync(logDir, { recursive: true });
  buildTools();
  console.log(`command: ${cmdline}`);
  say(`results -> ${path.relative(process.cwd(), outFile)}, daemon logs -> ${path.relative(process.cwd(), logDir)}`);

  const host = {
    kernel: os.release(),
    cpus: os.cpus().length,
    node: process.version,
    ndppd: fs.existsSync('/usr/sbin/ndppd') ? trySpawnText(['dpkg-query', '-W', '-f', '${Version}', 'ndppd']) : null,
    npd6: fs.existsSync('/usr/bin/npd6') ? trySpawnText(['dpkg-query', '-W', '-f', '${Version}', 'npd6']) : null,
    loadavg_start: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    loadavg_end: '',
  };
  const outcomes: Outcome[] = [];
  const save = (): void => {
    host.loadavg_end = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    const doc = {
      command: cmdline,
      started: startedAt.toISOString(),
      finished: new Date().toISOString(),
      host,
      options: o,
      lab: { prefix: PREFIX, lan_ip: LAN_IP, host_ip: HOST_IP, sender_cpu: SENDER_CPU, responder_cpu: RESPONDER_CPU },
      runs: outcomes,
    };
    fs.writeFileSync(outFile, `${JSON.stringify(doc, null, 2)}\n`);
  };
  for (const n of o.sizes) {
    for (const name of o.contenders) {
      const c = CONTENDERS[name];
      if (!c) continue;
      outcomes.push(await measure(c, n, o, logDir));
      save();
    }
  }
  const text = report(outcomes, o, cmdline);
  fs.writeFileSync(outFile.replace(/\.json$/, '.txt'), `${text}\n`);
  console.log(text);
  console.log(`\nJSON: ${path.relative(process.cwd(), outFile)}`);
}

function trySpawnText(argv: string[]): string | null {
  try {
    return sh(argv).trim();
  } catch {
    return null;
  }
}

let exiting = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (exiting) return;
    exiting = true;
    say(`${sig}: cleaning up`);
    cleanupAll();
    process.exit(130);
  });
}
process.on('exit', () => cleanupAll());

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (e: unknown) => {
    say(`error: ${(e as Error).message}`);
    cleanupAll();
    process.exit(1);
  },
);
