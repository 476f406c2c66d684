/**
 * Docker benchmark (issue 4): how fast does ndp-responder --docker follow a real Docker engine?
 *
 *   node --import tsx bench/docker-latency.ts [--containers 50] [--naive 10] [--sync 1000]
 *                                             [--sync-steps 250,500] [--parallel 8]
 *                                             [--create-budget-s 900] [--no-sync]
 *
 * (a) Start latency: N containers started one after another on Docker host d1, with the
 *     responder running in d1 (`run --interface eth0 --docker`). A C peer in d2 (same link)
 *     solicits each container's address every 1 ms from BEFORE `docker start` is called, and
 *     timestamps (kernel SO_TIMESTAMPNS) every NA it receives. Per container:
 *       answered  = first solicited NA for the address  - `docker start` returning
 *       announced = first unsolicited NA (to ff02::1)   - `docker start` returning
 *     The address is known in advance because the container is created (Docker API, 1.41) with
 *     an explicit MacAddress and Docker 20.10 derives the default bridge's IPv6 address from the
 *     MAC (--fixed-cidr-v6 prefix + MAC in the low 48 bits); each prediction is checked against
 *     `docker inspect` afterwards, and a mismatch drops the sample.
 *     K more containers ("naive" method) are started with plain `docker run -d` and their address
 *     is read with `docker inspect` first: their "answered" includes that read.
 * (b) Start-up sync: M running containers (created `--parallel` at a time, bounded by
 *     --create-budget-s), then a fresh responder: process spawn -> "ready" line, -> the table
 *     holding every address (its own "docker addresses updated" line, and the
 *     ndp_docker_addresses gauge polled on --metrics), RSS, and the unsolicited NAs on the wire.
 *
 * Writes bench/results/docker-DATE.json and prints a plain-text summary. The lab
 * (scripts/docker-lab.sh, --hosts 2) and every process started here are torn down at the end,
 * on error and on Ctrl-C. Root only. See bench/README-docker.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import { DockerLab, IMAGE, run, stopProcess } from '../test/lab/support/docker-lab.js';
import { formatAddress, parseAddress } from '../src/addr/index.js';

// ---------------------------------------------------------------------------------------------
// Paths and options

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(REPO, 'bench');
const BUILD = path.join(BENCH, 'build');
const RESULTS = path.join(BENCH, 'results');
const REPO_CLI = path.join(REPO, 'dist', 'src', 'cli.js');
const ADDON = path.join(REPO, 'build', 'Release', 'ndp_native.node');
/** The responder actually run: a private copy of dist/ and the addon (see snapshotBuild). */
let CLI = REPO_CLI;
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const METRICS = '[::1]:9464';

interface Options {
  containers: number;
  naive: number;
  sync: number;
  syncSteps: number[];
  parallel: number;
  createBudgetS: number;
  doSync: boolean;
  periodUs: number;
}

function usage(): never {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 27).map((l) => l.replace(/^ \*\/? ?/, '')).join('\n'));
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { containers: 50, naive: 10, sync: 1000, syncSteps: [250, 500], parallel: 8, createBudgetS: 900, doSync: true, periodUs: 1000 };
  const num = (v: string | undefined, name: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--containers': o.containers = num(v, a, 1, 500); i++; break;
      case '--naive': o.naive = num(v, a, 0, 200); i++; break;
      case '--sync': o.sync = num(v, a, 1, 1020); i++; break;
      case '--sync-steps': o.syncSteps = (v ?? '').split(',').filter((s) => s !== '').map((s) => num(s, a, 1, 1020)); i++; break;
      case '--parallel': o.parallel = num(v, a, 1, 32); i++; break;
      case '--create-budget-s': o.createBudgetS = num(v, a, 10, 3600); i++; break;
      case '--period-us': o.periodUs = num(v, a, 100, 100_000); i++; break;
      case '--no-sync': o.doSync = false; break;
      case '-h': case '--help': usage();
      default: throw new Error(`unknown option ${a} (--help)`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const monoNs = (): bigint => process.hrtime.bigint();
const loadavg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const canon = (a: string): string => formatAddress(parseAddress(a.split('/')[0]!));

function pct(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

interface Stats {
  n: number;
  min: number | null;
  median: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

function stats(values: readonly (number | null)[]): Stats {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  const r = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    n: v.length,
    min: r(v[0] ?? null),
    median: r(v.length === 0 ? null : v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2),
    p90: r(pct(v, 0.9)),
    p99: r(pct(v, 0.99)),
    max: r(v[v.length - 1] ?? null),
    mean: r(v.length ? v.reduce((s, x) => s + x, 0) / v.length : null),
  };
}

function fmtStats(s: Stats, unit = 'ms'): string {
  const f = (x: number | null): string => (x === null ? '-' : x.toFixed(2));
  return `n=${s.n} median ${f(s.median)} p90 ${f(s.p90)} p99 ${f(s.p99)} min ${f(s.min)} max ${f(s.max)} ${unit}`;
}

/** Everything we start; killed on any exit path (the lab's own hook then tears the lab down). */
const children = new Set<ChildProcess>();
function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}
function killAll(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
// Registered before DockerLab.up() hooks its own handlers, so these run first.
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAll();
    // Before the lab exists nobody else listens: exit as the signal would have.
    if (process.listenerCount(sig) === 0) process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

/** Reads `child`'s stdout line by line into `onLine`, with the monotonic time of arrival. */
function lines(child: ChildProcess, onLine: (line: string, atNs: bigint) => void, logFile?: string): void {
  const log = logFile ? fs.createWriteStream(logFile) : undefined;
  const rl = readline.createInterface({ input: child.stdout! });
  rl.on('line', (l) => {
    const at = monoNs();
    log?.write(l + '\n');
    onLine(l, at);
  });
  child.stderr?.on('data', (d: Buffer) => log?.write('[stderr] ' + d.toString()));
  child.once('close', () => log?.end());
}

async function waitUntil<T>(fn: () => T | undefined | null | false, timeoutMs: number, stepMs = 2): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() >= end) return undefined;
    await sleep(stepMs);
  }
}

/** Docker Engine API over the unix socket (the 28.x CLI cannot set a MAC against API 1.41). */
function dockerApi(sock: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath: sock, method, path: p, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}, timeout: 60_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`docker API ${method} ${p} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Resolves with the monotonic time at which `file args` exited, and its exit code. */
function timedRun(file: string, args: string[], timeoutMs: number): Promise<{ startNs: bigint; exitNs: bigint; code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const startNs = monoNs();
    const c = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('exit', (code) => {
      const exitNs = monoNs();
      clearTimeout(t);
      resolve({ startNs, exitNs, code, out });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The peer: a tiny C program in d2 that solicits and timestamps NAs

const PEER_C = String.raw`
/* docker-peer (generated by bench/docker-latency.ts): solicits targets every --period-us and
 * reports every NA received on --if with its kernel receive time (CLOCK_REALTIME, ns).
 * stdin commands:  clock | watch ADDR MAXMS | quit      (EOF = quit; --max-seconds bounds it)
 * stdout:  hello MAC | clock RT MONO | watching ADDR | na RT TARGET DST FLAGS |
 *          answered ADDR FIRST_NS_RT LAST_NS_RT NA_RT SENT | timeout ADDR SENT              */
#include "ndp-frames.h"
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/prctl.h>

#define MAXW 64
struct watch { int on; struct in6_addr t; char txt[64]; uint8_t frame[NS_FRAME_LEN]; double next, until; long long first_rt, last_rt; int sent; };
static struct watch w[MAXW];

static long long clk(clockid_t id) { struct timespec ts; clock_gettime(id, &ts); return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec; }

int main(int argc, char **argv) {
  const char *ifname = "eth0", *src_s = "2003:ab11::2";
  double period = 0.001, max_s = 3600;
  static struct option opts[] = {{"if", 1, 0, 'i'}, {"src", 1, 0, 's'}, {"period-us", 1, 0, 'p'}, {"max-seconds", 1, 0, 'M'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (o == 'i') ifname = optarg; else if (o == 's') src_s = optarg;
    else if (o == 'p') period = atoi(optarg) / 1e6; else if (o == 'M') max_s = atof(optarg);
    else die_msg("usage: docker-peer --if IF --src ADDR [--period-us US] [--max-seconds S]");
  }
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct in6_addr src;
  if (inet_pton(AF_INET6, src_s, &src) != 1) die_msg("bad --src");
  int ifindex; uint8_t mac[6];
  int tx = open_tx_socket(ifname, &ifindex, mac);
  int rx = open_na_socket(ifname, 4 << 20);
  int one = 1;
  if (setsockopt(rx, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) die("SO_TIMESTAMPNS");
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  printf("hello %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  char in[4096]; size_t inlen = 0;
  double t_end = now_s() + max_s;
  for (;;) {
    double now = now_s();
    if (now > t_end) break;
    double next = now + 0.2;
    for (int i = 0; i < MAXW; i++) if (w[i].on && w[i].next < next) next = w[i].next;
    double left = next - now; if (left < 0) left = 0;
    struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = rx, .events = POLLIN}};
    struct timespec to = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    int r = ppoll(pf, 2, &to, NULL);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r > 0 && (pf[1].revents & POLLIN)) {
      for (;;) {
        uint8_t buf[2048]; char ctrl[256]; struct sockaddr_ll from;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
        ssize_t n = recvmsg(rx, &mh, MSG_DONTWAIT);
        if (n < 0) { if (errno == EAGAIN || errno == EINTR) break; die("recvmsg"); }
        if (from.sll_pkttype == PACKET_OUTGOING || n < ND_TARGET_OFF + 16) continue;
        long long ts = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) { struct timespec t; memcpy(&t, CMSG_DATA(c), sizeof t); ts = (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }
        if (!ts) ts = clk(CLOCK_REALTIME);
        char tt[64], dd[64];
        inet_ntop(AF_INET6, buf + ND_TARGET_OFF, tt, sizeof tt);
        inet_ntop(AF_INET6, buf + ETH_HLEN_ + 24, dd, sizeof dd);
        int flags = buf[ETH_HLEN_ + IP6_HLEN_ + 4];
        printf("na %lld %s %s %d\n", ts, tt, dd, flags);
        if (flags & 0x40)
          for (int i = 0; i < MAXW; i++)
            if (w[i].on && memcmp(w[i].t.s6_addr, buf + ND_TARGET_OFF, 16) == 0) {
              printf("answered %s %lld %lld %lld %d\n", w[i].txt, w[i].first_rt, w[i].last_rt, ts, w[i].sent);
              w[i].on = 0;
            }
      }
    }
    if (r > 0 && (pf[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, in + inlen, sizeof in - 1 - inlen);
      if (n == 0) break;
      if (n > 0) inlen += (size_t)n;
      char *nl;
      while ((nl = memchr(in, '\n', inlen))) {
        *nl = 0;
        char a[64]; int ms;
        if (strcmp(in, "quit") == 0) return 0;
        if (strcmp(in, "clock") == 0) { long long rt = clk(CLOCK_REALTIME), mo = clk(CLOCK_MONOTONIC), rt2 = clk(CLOCK_REALTIME); printf("clock %lld %lld\n", rt + (rt2 - rt) / 2, mo); }
        else if (sscanf(in, "watch %63s %d", a, &ms) == 2) {
          int k = -1;
          for (int i = 0; i < MAXW; i++) if (!w[i].on) { k = i; break; }
          if (k < 0 || inet_pton(AF_INET6, a, &w[k].t) != 1) printf("error %s\n", a);
          else {
            snprintf(w[k].txt, sizeof w[k].txt, "%s", a);
            build_ns(w[k].frame, mac, &src, &w[k].t);
            w[k].next = now_s(); w[k].until = w[k].next + ms / 1000.0; w[k].first_rt = 0; w[k].sent = 0; w[k].on = 1;
            printf("watching %s\n", a);
          }
        } else printf("error %s\n", in);
        size_t used = (size_t)(nl - in) + 1;
        memmove(in, nl + 1, inlen - used); inlen -= used;
      }
      if (inlen >= sizeof in - 1) inlen = 0;
    }
    now = now_s();
    for (int i = 0; i < MAXW; i++) {
      if (!w[i].on) continue;
      if (now > w[i].until) { printf("timeout %s %d\n", w[i].txt, w[i].sent); w[i].on = 0; continue; }
      if (w[i].next > now) continue;
      long long rt = clk(CLOCK_REALTIME);
      if (send(tx, w[i].frame, NS_FRAME_LEN, 0) == NS_FRAME_LEN) { if (!w[i].first_rt) w[i].first_rt = rt; w[i].last_rt = rt; w[i].sent++; }
      w[i].next += period;
      if (w[i].next < now) w[i].next = now + period;
    }
  }
  return 0;
}
`;

/**
 * Other sessions may rebuild dist/ and the addon in this working tree while we run: a rebuilt
 * .node file under a running responder kills it with SIGBUS (seen here). So the responder runs
 * from a copy (package.json, dist/, build/Release/ndp_native.node, node_modules symlinked),
 * taken once both have been quiet for 5 s. Returns what was copied, for the results.
 */
async function snapshotBuild(dir: string): Promise<Record<string, unknown>> {
  const quiet = (): boolean => {
    const newest = Math.max(fs.statSync(ADDON).mtimeMs, fs.statSync(REPO_CLI).mtimeMs, fs.statSync(path.join(REPO, 'dist', 'src', 'service', 'daemon.js')).mtimeMs);
    return Date.now() - newest > 5000;
  };
  if ((await waitUntil(quiet, 120_000, 500)) === undefined) throw new Error('dist/ or the addon keep changing (someone is building); try again later');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
  fs.copyFileSync(ADDON, path.join(dir, 'build', 'Release', 'ndp_native.node'));
  fs.cpSync(path.join(REPO, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  CLI = path.join(dir, 'dist', 'src', 'cli.js');
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      return '?';
    }
  };
  return {
    snapshot: path.relative(REPO, dir),
    gitHead: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'src', 'native']).split('\n').filter((l) => l !== ''),
    addonMtime: fs.statSync(ADDON).mtime.toISOString(),
    distMtime: fs.statSync(REPO_CLI).mtime.toISOString(),
  };
}

function buildPeer(): string {
  fs.mkdirSync(BUILD, { recursive: true });
  const src = path.join(BUILD, 'docker-peer.c');
  const bin = path.join(BUILD, 'docker-peer');
  if (!fs.existsSync(src) || fs.readFileSync(src, 'utf8') !== PEER_C || !fs.existsSync(bin)) {
    fs.writeFileSync(src, PEER_C);
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-I', BENCH, '-o', bin, src], { stdio: 'inherit', timeout: 60_000 });
  }
  return bin;
}

interface NaEvent {
  rtNs: bigint;
  dst: string;
  flags: number;
}

class Peer {
  readonly nas = new Map<string, NaEvent[]>();
  private waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  private constructor(readonly child: ChildProcess) {}

  static async start(lab: DockerLab, bin: string, periodUs: number, logFile: string): Promise<Peer> {
    const child = track(lab.spawnIn('d2', bin, ['--if', 'eth0', '--src', '2003:ab11::2', '--period-us', String(periodUs), '--max-seconds', '3600'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const p = new Peer(child);
    lines(child, (l) => p.onLine(l), logFile);
    const hello = await p.expect(/^hello /, 5000);
    if (hello === undefined) throw new Error('docker-peer did not start (see ' + logFile + ')');
    return p;
  }

  private onLine(l: string): void {
    if (l.startsWith('na ')) {
      const [, ts, target, dst, flags] = l.split(' ');
      const key = canon(target!);
      const list = this.nas.get(key) ?? [];
      list.push({ rtNs: BigInt(ts!), dst: dst!, flags: Number(flags) });
      this.nas.set(key, list);
      return;
    }
    const i = this.waiters.findIndex((w) => w.re.test(l));
    if (i >= 0) {
      const w = this.waiters[i]!;
      this.waiters.splice(i, 1);
      w.resolve(l);
    }
  }

  /** Registers interest in a line now; resolves with it, or undefined after timeoutMs. */
  expect(re: RegExp, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const w = { re, resolve: (l: string) => { clearTimeout(t); resolve(l); } };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(cmd: string): void {
    this.child.stdin!.write(cmd + '\n');
  }

  /** CLOCK_REALTIME - CLOCK_MONOTONIC, in ns, read by the peer back to back. */
  async clockOffset(): Promise<bigint> {
    const p = this.expect(/^clock /, 2000);
    this.send('clock');
    const l = await p;
    if (l === undefined) throw new Error('docker-peer: no clock answer');
    const [, rt, mono] = l.split(' ');
    return BigInt(rt!) - BigInt(mono!);
  }

  firstUnsolicited(addr: string, afterRtNs: bigint): NaEvent | undefined {
    return this.nas.get(canon(addr))?.find((e) => (e.flags & 0x40) === 0 && e.dst === 'ff02::1' && e.rtNs >= afterRtNs);
  }
}

// ---------------------------------------------------------------------------------------------
// The responder under test

/** pino's `time` (epoch ms, or an ISO string with ms resolution as this CLI logs it). */
function pinoTime(rec: Record<string, unknown>): number {
  const t = rec['time'];
  return typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
}

interface ResponderLine {
  atNs: bigint;
  rec: Record<string, unknown>;
}

class Responder {
  readonly log: ResponderLine[] = [];
  readonly spawnNs: bigint;
  /** Set when the process ended (by itself or by us). */
  exited: { code: number | null; signal: string | null; atMs: number } | null = null;
  private stopping = false;
  private constructor(readonly child: ChildProcess, spawnNs: bigint) {
    this.spawnNs = spawnNs;
  }

  static start(lab: DockerLab, logFile: string, extra: string[] = []): Responder {
    const spawnNs = monoNs();
    const child = track(
      lab.spawnIn('d1', process.execPath, [CLI, 'run', '--interface', 'eth0', '--docker', lab.host('d1').url, '--log-level', 'info', ...extra]),
    );
    const r = new Responder(child, spawnNs);
    child.once('exit', (code, signal) => {
      r.exited = { code, signal, atMs: Date.now() };
      if (!r.stopping) console.log(`  ! responder (pid ${child.pid}) exited by itself: code ${code} signal ${signal}; see ${logFile}`);
    });
    lines(
      child,
      (l, at) => {
        try {
          r.log.push({ atNs: at, rec: JSON.parse(l) as Record<string, unknown> });
        } catch {
          /* not JSON */
        }
      },
      logFile,
    );
    return r;
  }

  find(pred: (rec: Record<string, unknown>) => boolean): ResponderLine | undefined {
    return this.log.find((l) => pred(l.rec));
  }

  async waitReady(timeoutMs: number): Promise<ResponderLine> {
    const l = await waitUntil(() => this.find((r) => r['msg'] === 'ready') ?? (this.child.exitCode !== null ? null : undefined), timeoutMs, 1);
    if (l === undefined) throw new Error(`responder not ready within ${timeoutMs} ms (exit ${this.child.exitCode})`);
    return l;
  }

  /** pino's time (ms since the epoch) of the "docker addresses updated" line that added addr. */
  addedAt(addr: string): number | undefined {
    const c = canon(addr);
    const l = this.find(
      (r) => r['msg'] === 'docker addresses updated' && Array.isArray(r['added']) && (r['added'] as { address?: string }[]).some((a) => a.address !== undefined && canon(a.address) === c),
    );
    return l ? pinoTime(l.rec) : undefined;
  }

  rss(): { rssKb: number; hwmKb: number } | undefined {
    try {
      const s = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
      return { rssKb: get('VmRSS'), hwmKb: get('VmHWM') };
    } catch {
      return undefined;
    }
  }

  comm(): string {
    try {
      return fs.readFileSync(`/proc/${this.child.pid}/comm`, 'utf8').trim();
    } catch {
      return '?';
    }
  }

  stop(): Promise<void> {
    this.stopping = true;
    return stopProcess(this.child, 5000);
  }
}

async function metricsGauge(lab: DockerLab, name: string): Promise<number | undefined> {
  const r = await lab.exec('d1', ['curl', '-sg', '-m', '2', `http://${METRICS}/metrics`], { timeoutMs: 5000 });
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// (a) start latency

/** A MAC in 02:42:bb:00:xx:yy (Docker's own are 02:42:ac:11:...), and the IPv6 address Docker derives from it. */
function macFor(i: number, cidrBase: string): { mac: string; addr: string } {
  const hi = (i >> 8) & 0xff;
  const lo = i & 0xff;
  const mac = `02:42:bb:00:${hi.toString(16).padStart(2, '0')}:${lo.toString(16).padStart(2, '0')}`;
  const b = parseAddress(cidrBase);
  const m = [0x02, 0x42, 0xbb, 0x00, hi, lo];
  for (let k = 0; k < 6; k++) b[10 + k] = m[k]!;
  return { mac, addr: formatAddress(b) };
}

interface Sample {
  name: string;
  method: 'predicted' | 'inspect';
  address: string;
  predictedOk: boolean;
  /** Wall time of `docker start` / `docker run -d` itself, ms. */
  cliMs: number;
  /** All below: ms relative to the CLI returning (negative = before). */
  answeredMs: number | null;
  announcedMs: number | null;
  /** Docker's own "start" event (dockerd clock). */
  dockerEventMs: number | null;
  /** The responder's "docker addresses updated" line (pino time, 1 ms resolution). */
  responderTableMs: number | null;
  /** inspect method: when the address was known. */
  addressKnownMs: number | null;
  /** NSs sent before the answer, and the answered NS's last send (ms rel. CLI return). */
  nsSent: number | null;
  lastNsMs: number | null;
  note?: string;
}

async function startLatency(lab: DockerLab, peer: Peer, resp: Responder, opts: Options, events: Map<string, bigint>): Promise<Sample[]> {
  const d1 = lab.host('d1');
  const base = d1.cidr.split('/')[0]!;
  const out: Sample[] = [];
  const rel = (rtNs: bigint | undefined | null, refRtNs: bigint): number | null => (rtNs === undefined || rtNs === null ? null : Number(rtNs - refRtNs) / 1e6);
  const total = opts.containers + opts.naive;
  for (let i = 0; i < total; i++) {
    const predicted = i < opts.containers;
    const name = `${predicted ? 'lat' : 'naive'}${i}`;
    let addr: string;
    let mac = '';
    if (predicted) {
      ({ mac, addr } = macFor(i + 1, base));
      const c = await dockerApi(d1.sock, 'POST', `/v1.41/containers/create?name=${name}`, { Image: IMAGE, Cmd: SLEEPER, MacAddress: mac });
      if (c.status !== 201) throw new Error(`create ${name}: ${c.status} ${JSON.stringify(c.json)}`);
    } else {
      addr = '';
    }
    if (resp.exited) throw new Error(`the responder exited during (a) (code ${resp.exited.code}, signal ${resp.exited.signal}) after ${out.length} containers`);
    const offset = await peer.clockOffset();
    let answered: Promise<string | undefined> | undefined;
    if (predicted) {
      answered = peer.expect(new RegExp(`^(answered|timeout) ${addr} `), 8000);
      const ack = peer.expect(new RegExp(`^watching ${addr}$`), 2000);
      peer.send(`watch ${addr} 6000`);
      if ((await ack) === undefined) throw new Error('docker-peer did not take the watch');
    }
    const cli = predicted
      ? await timedRun('docker', ['-H', d1.url, 'start', name], 30_000)
      : await timedRun('docker', ['-H', d1.url, 'run', '-d', '--name', name, IMAGE, ...SLEEPER], 30_000);
    if (cli.code !== 0) throw new Error(`docker ${predicted ? 'start' : 'run'} ${name} failed: ${cli.out.trim()}`);
    const refRt = cli.exitNs + offset;
    const cliMs = Number(cli.exitNs - cli.startNs) / 1e6;
    let knownMs: number | null = null;
    const got = (await lab.containerAddresses('d1', name))[0];
    if (!predicted) {
      knownMs = Number(monoNs() + offset - refRt) / 1e6;
      addr = got ?? '';
      if (addr !== '') {
        answered = peer.expect(new RegExp(`^(answered|timeout) ${addr} `), 8000);
        peer.send(`watch ${addr} 6000`);
      }
    }
    const line = answered ? await answered : undefined;
    let answeredMs: number | null = null;
    let nsSent: number | null = null;
    let lastNsMs: number | null = null;
    let note: string | undefined;
    if (line?.startsWith('answered ')) {
      const [, , , last, na, sent] = line.split(' ');
      answeredMs = rel(BigInt(na!), refRt);
      lastNsMs = rel(BigInt(last!), refRt);
      nsSent = Number(sent);
    } else {
      note = line === undefined ? 'peer gave no verdict' : `not answered within 6 s (${line})`;
    }
    // The first unsolicited NA comes within ~ms; the 2nd and 3rd a second apart. Wait for the first.
    const una = await waitUntil(() => peer.firstUnsolicited(addr, refRt - 5_000_000_000n), 3000, 5);
    const tableMs = resp.addedAt(addr);
    const ev = await waitUntil(() => events.get(name), 1000, 5);
    const predictedOk = got !== undefined && canon(got) === canon(addr);
    if (predicted && !predictedOk) note = `predicted ${addr} but docker says ${got}`;
    const s: Sample = {
      name,
      method: predicted ? 'predicted' : 'inspect',
      address: addr,
      predictedOk,
      cliMs: Math.round(cliMs * 1000) / 1000,
      answeredMs,
      announcedMs: una ? rel(una.rtNs, refRt) : null,
      dockerEventMs: ev === undefined ? null : rel(ev, refRt),
      responderTableMs: tableMs === undefined ? null : tableMs - Number(refRt) / 1e6,
      addressKnownMs: knownMs,
      nsSent,
      lastNsMs,
      ...(note ? { note } : {}),
    };
    out.push(s);
    const f = (x: number | null): string => (x === null ? '   -   ' : x.toFixed(2).padStart(7));
    console.log(
      `  ${name.padEnd(8)} ${addr.padEnd(28)} start ${f(s.cliMs)} | event ${f(s.dockerEventMs)} table ${f(s.responderTableMs)} answered ${f(s.answeredMs)} announced ${f(s.announcedMs)}${note ? '  ! ' + note : ''}`,
    );
    await sleep(100);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// (b) start-up sync

async function runningCount(lab: DockerLab): Promise<number> {
  const r = await lab.docker('d1', ['ps', '-q'], { timeoutMs: 60_000 });
  return r.stdout.split('\n').filter((s) => s.trim() !== '').length;
}

interface Fill {
  target: number;
  reached: number;
  created: number;
  failed: number;
  ms: number;
  perContainerMs: number | null;
  stoppedBecause: string | null;
  loadavgAfter: string;
  diskMb: number | null;
}

async function fillTo(lab: DockerLab, target: number, opts: Options, deadline: number): Promise<Fill> {
  const start = await runningCount(lab);
  const need = Math.max(0, target - start);
  const t0 = Date.now();
  let next = 0;
  let created = 0;
  let failed = 0;
  let stoppedBecause: string | null = null;
  const worker = async (w: number): Promise<void> => {
    while (next < need) {
      if (Date.now() > deadline) {
        stoppedBecause ??= `creation budget of ${opts.createBudgetS} s used up`;
        return;
      }
      if (failed > 20) {
        stoppedBecause ??= 'more than 20 docker run failures';
        return;
      }
      const k = next++;
      const name = `s${start + k}`;
      const r = await lab.docker('d1', ['run', '-d', '--name', name, IMAGE, ...SLEEPER], { timeoutMs: 120_000 });
      if (r.code === 0) created++;
      else {
        failed++;
        if (failed <= 3) console.log(`  docker run ${name} failed (worker ${w}): ${r.stderr.trim().slice(0, 200)}`);
      }
      if ((created + failed) % 100 === 0) console.log(`  ... ${start + created} running (${Math.round((Date.now() - t0) / 1000)} s, load ${loadavg()})`);
    }
  };
  await Promise.all(Array.from({ length: opts.parallel }, (_, w) => worker(w)));
  const ms = Date.now() - t0;
  const reached = await runningCount(lab);
  let diskMb: number | null = null;
  const du = await run('du', ['-sm', path.join(lab.dir, 'd1', 'data')], { timeoutMs: 120_000 });
  if (du.code === 0) diskMb = Number(du.stdout.split(/\s/)[0]);
  return { target, reached, created, failed, ms, perContainerMs: created ? Math.round(ms / created) : null, stoppedBecause, loadavgAfter: loadavg(), diskMb };
}

interface SyncRun {
  containers: number;
  addressesExpected: number;
  readyMs: number;
  readyPinoMs: number;
  syncLineMs: number | null;
  syncAddresses: number | null;
  syncDockerMs: number | null;
  gaugeFullMs: number | null;
  gaugeValue: number | null;
  rssAtReadyKb: number | null;
  rssSettledKb: number | null;
  hwmKb: number | null;
  unsolicitedTargets: number;
  lastFirstUnsolicitedMs: number | null;
  loadavg: string;
  comm: string;
}

async function measureSync(lab: DockerLab, peer: Peer, logFile: string): Promise<SyncRun> {
  const expected = await runningCount(lab);
  const la = loadavg();
  const offset = await peer.clockOffset();
  const r = Responder.start(lab, logFile, ['--metrics', METRICS]);
  const spawnRt = r.spawnNs + offset;
  const ready = await r.waitReady(120_000);
  const rssReady = r.rss();
  const readyMs = Number(ready.atNs - r.spawnNs) / 1e6;
  const readyPinoMs = pinoTime(ready.rec) - Number(spawnRt) / 1e6;
  const sync = r.find((x) => x['msg'] === 'docker addresses updated' && x['trigger'] === 'sync');
  let gaugeFullMs: number | null = null;
  let gaugeValue: number | null = null;
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const g = await metricsGauge(lab, 'ndp_docker_addresses');
    if (g !== undefined) gaugeValue = g;
    if (g !== undefined && g >= expected) {
      gaugeFullMs = Number(monoNs() - r.spawnNs) / 1e6;
      break;
    }
    await sleep(20);
  }
  // Unsolicited NAs: the first of each address, seen in d2 (bounded wait: they are paced).
  const firstNa = (): bigint[] => {
    const v: bigint[] = [];
    for (const list of peer.nas.values()) {
      const e = list.find((x) => (x.flags & 0x40) === 0 && x.dst === 'ff02::1' && x.rtNs >= spawnRt);
      if (e) v.push(e.rtNs);
    }
    return v;
  };
  await waitUntil(() => firstNa().length >= expected, 15_000, 100);
  await sleep(1500);
  const fn = firstNa();
  const rssSettled = r.rss();
  const comm = r.comm();
  await r.stop();
  const maxNa = fn.length ? fn.reduce((a, b) => (a > b ? a : b)) : undefined;
  return {
    containers: expected,
    addressesExpected: expected,
    readyMs: Math.round(readyMs * 10) / 10,
    readyPinoMs: Math.round(readyPinoMs * 10) / 10,
    syncLineMs: sync ? Math.round((pinoTime(sync.rec) - Number(spawnRt) / 1e6) * 10) / 10 : null,
    syncAddresses: sync ? Number(sync.rec['addresses']) : null,
    syncDockerMs: sync ? Number(sync.rec['ms']) : null,
    gaugeFullMs: gaugeFullMs === null ? null : Math.round(gaugeFullMs * 10) / 10,
    gaugeValue,
    rssAtReadyKb: rssReady?.rssKb ?? null,
    rssSettledKb: rssSettled?.rssKb ?? null,
    hwmKb: rssSettled?.hwmKb ?? null,
    unsolicitedTargets: fn.length,
    lastFirstUnsolicitedMs: maxNa === undefined ? null : Number(maxNa - spawnRt) / 1e6,
    loadavg: la,
    comm,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('run as root (namespaces, dockerd, packet sockets)');
  if (!fs.existsSync(REPO_CLI) || !fs.existsSync(ADDON)) throw new Error(`${REPO_CLI} or ${ADDON} is missing: run 'npm run build' first`);
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*$/, '');
  const logDir = path.join(BUILD, 'logs', `docker-${stamp}`);
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(RESULTS, { recursive: true });
  const bin = buildPeer();
  const command = `node --import tsx bench/docker-latency.ts ${process.argv.slice(2).join(' ')}`.trim();
  const result: Record<string, unknown> = {
    command,
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memMb: Math.round(os.totalmem() / 2 ** 20), kernel: os.release(), node: process.version },
    options: opts,
    loadavgStart: loadavg(),
    logs: path.relative(REPO, logDir),
  };
  const outFile = path.join(RESULTS, `docker-${stamp}.json`);
  const save = (): void => fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  const snapDir = path.join(BUILD, `snapshot-${stamp}`);
  result['build'] = await snapshotBuild(snapDir);
  process.on('exit', () => fs.rmSync(snapDir, { recursive: true, force: true }));
  console.log(`responder under test: copy of dist/ + addon in ${path.relative(REPO, snapDir)} (${JSON.stringify(result['build'])})`);

  console.log(`docker-latency: lab up (2 Docker hosts), load ${loadavg()}`);
  const lab = await DockerLab.up({ hosts: 2, containers: false });
  let status = 0;
  try {
    result['lab'] = { id: lab.id, upMs: Math.round(lab.upMs) };
    const ver = await lab.dockerOk('d1', ['version', '--format', '{{.Server.Version}}']);
    result['dockerd'] = ver;
    console.log(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms (dockerd ${ver}); logs in ${path.relative(REPO, logDir)}`);

    // Docker's own start events, dockerd's clock (realtime ns).
    const events = new Map<string, bigint>();
    const ev = track(spawn('docker', ['-H', lab.host('d1').url, 'events', '--filter', 'type=container', '--filter', 'event=start', '--format', '{{.Actor.Attributes.name}} {{.TimeNano}}'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    lines(ev, (l) => {
      const [n, t] = l.split(' ');
      if (n && t && /^\d+$/.test(t)) events.set(n, BigInt(t));
    });

    const peer = await Peer.start(lab, bin, opts.periodUs, path.join(logDir, 'peer.log'));

    // (a)
    console.log(`\n(a) start latency: ${opts.containers} containers (address predicted from MAC) + ${opts.naive} (address read by inspect), load ${loadavg()}`);
    const resp = Responder.start(lab, path.join(logDir, 'responder-a.log'));
    await resp.waitReady(30_000);
    await sleep(500);
    const la0 = loadavg();
    const samples = await startLatency(lab, peer, resp, opts, events);
    const la1 = loadavg();
    const rssA = resp.rss();
    await resp.stop();
    const pred = samples.filter((s) => s.method === 'predicted' && s.predictedOk);
    const naive = samples.filter((s) => s.method === 'inspect');
    const summaryA = {
      predicted: {
        n: pred.length,
        mispredicted: samples.filter((s) => s.method === 'predicted' && !s.predictedOk).length,
        unanswered: pred.filter((s) => s.answeredMs === null).length,
        answeredMs: stats(pred.map((s) => s.answeredMs)),
        announcedMs: stats(pred.map((s) => s.announcedMs)),
        dockerEventMs: stats(pred.map((s) => s.dockerEventMs)),
        responderTableMs: stats(pred.map((s) => s.responderTableMs)),
        answeredAfterEventMs: stats(pred.map((s) => (s.answeredMs !== null && s.dockerEventMs !== null ? s.answeredMs - s.dockerEventMs : null))),
        announcedAfterEventMs: stats(pred.map((s) => (s.announcedMs !== null && s.dockerEventMs !== null ? s.announcedMs - s.dockerEventMs : null))),
        dockerStartCliMs: stats(pred.map((s) => s.cliMs)),
      },
      inspect: {
        n: naive.length,
        answeredMs: stats(naive.map((s) => s.answeredMs)),
        announcedMs: stats(naive.map((s) => s.announcedMs)),
        addressKnownMs: stats(naive.map((s) => s.addressKnownMs)),
        dockerRunCliMs: stats(naive.map((s) => s.cliMs)),
      },
      responderRssKb: rssA?.rssKb ?? null,
      loadavgBefore: la0,
      loadavgAfter: la1,
    };
    result['startLatency'] = { summary: summaryA, samples };
    save();

    // (b)
    const syncRuns: SyncRun[] = [];
    const fills: Fill[] = [];
    if (opts.doSync) {
      const steps = [...new Set([...opts.syncSteps.filter((s) => s < opts.sync), opts.sync])].sort((a, b) => a - b);
      console.log(`\n(b) start-up sync at ${steps.join(', ')} running containers (creating ${opts.parallel} at a time, budget ${opts.createBudgetS} s)`);
      const deadline = Date.now() + opts.createBudgetS * 1000;
      for (const step of steps) {
        const f = await fillTo(lab, step, opts, deadline);
        fills.push(f);
        console.log(`  created ${f.created} (failed ${f.failed}) in ${(f.ms / 1000).toFixed(1)} s: ${f.reached} running, ${f.perContainerMs ?? '-'} ms each, vfs ${f.diskMb ?? '?'} MB, load ${f.loadavgAfter}${f.stoppedBecause ? ' -- stopped: ' + f.stoppedBecause : ''}`);
        await sleep(2000);
        const s = await measureSync(lab, peer, path.join(logDir, `responder-sync-${f.reached}.log`));
        syncRuns.push(s);
        console.log(
          `  ${s.containers} containers: ready ${s.readyMs} ms after spawn (sync line ${s.syncLineMs ?? '-'} ms: ${s.syncAddresses ?? '-'} addresses, list+select ${s.syncDockerMs ?? '-'} ms), gauge full ${s.gaugeFullMs ?? '-'} ms (${s.gaugeValue}), RSS ${Math.round((s.rssAtReadyKb ?? 0) / 1024)} MB at ready / ${Math.round((s.rssSettledKb ?? 0) / 1024)} MB settled / peak ${Math.round((s.hwmKb ?? 0) / 1024)} MB, first unsolicited NA seen for ${s.unsolicitedTargets} addresses (last ${s.lastFirstUnsolicitedMs?.toFixed(0) ?? '-'} ms), load ${s.loadavg}`,
        );
        result['sync'] = { fills, runs: syncRuns };
        save();
        if (f.stoppedBecause) break;
      }
    }
    result['loadavgEnd'] = loadavg();

    // Summary
    const p = summaryA.predicted;
    const txt: string[] = [];
    txt.push('', '=== docker-latency summary ===', `command: ${command}`, `dockerd ${ver}, ${os.cpus().length} CPUs, load at start ${String(result['loadavgStart'])}, during (a) ${la0} -> ${la1}, end ${String(result['loadavgEnd'])}`);
    txt.push(`(a) ${p.n} containers, address known before 'docker start' (${p.mispredicted} mispredicted, ${p.unanswered} unanswered); ms from 'docker start' returning:`);
    txt.push(`    first answered NS      ${fmtStats(p.answeredMs)}`);
    txt.push(`    first unsolicited NA   ${fmtStats(p.announcedMs)}`);
    txt.push(`    docker 'start' event   ${fmtStats(p.dockerEventMs)}`);
    txt.push(`    responder table update ${fmtStats(p.responderTableMs)}   (pino time, 1 ms resolution)`);
    txt.push(`    answered - event       ${fmtStats(p.answeredAfterEventMs)}`);
    txt.push(`    announced - event      ${fmtStats(p.announcedAfterEventMs)}`);
    txt.push(`    'docker start' itself  ${fmtStats(p.dockerStartCliMs)}`);
    const q = summaryA.inspect;
    if (q.n > 0) {
      txt.push(`    ${q.n} more with 'docker run -d' + 'docker inspect' first: answered ${fmtStats(q.answeredMs)}`);
      txt.push(`        address known ${fmtStats(q.addressKnownMs)}; announced ${fmtStats(q.announcedMs)}`);
    }
    txt.push(`    responder RSS after (a): ${rssA ? Math.round(rssA.rssKb / 1024) : '?'} MB; target p99 < 50 ms: answered ${p.answeredMs.p99 !== null && p.answeredMs.p99 < 50 ? 'met' : 'NOT met'}, announced ${p.announcedMs.p99 !== null && p.announcedMs.p99 < 50 ? 'met' : 'NOT met'}`);
    for (const s of syncRuns) {
      txt.push(`(b) ${s.containers} running: ready ${s.readyMs} ms after spawn, table full (own log) ${s.syncLineMs ?? '-'} ms, gauge seen full ${s.gaugeFullMs ?? '-'} ms, RSS ${Math.round((s.rssSettledKb ?? 0) / 1024)} MB (peak ${Math.round((s.hwmKb ?? 0) / 1024)} MB), load ${s.loadavg}`);
    }
    for (const f of fills) txt.push(`    fill to ${f.target}: ${f.reached} running after ${(f.ms / 1000).toFixed(0)} s (${f.perContainerMs ?? '-'} ms/container, ${f.failed} failed, vfs ${f.diskMb ?? '?'} MB)${f.stoppedBecause ? ', stopped: ' + f.stoppedBecause : ''}`);
    txt.push(`results: ${path.relative(REPO, outFile)}`);
    console.log(txt.join('\n'));
    result['summaryText'] = txt.join('\n');
    save();
    peer.send('quit');
  } catch (e) {
    status = 1;
    result['error'] = (e as Error).stack ?? String(e);
    save();
    console.error(`docker-latency failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    killAll();
    console.log(`tearing down lab ${lab.id} ...`);
    const t0 = Date.now();
    try {
      await lab.down();
      console.log(`lab ${lab.id} down in ${Math.round((Date.now() - t0) / 1000)} s`);
    } catch (e) {
      status = 1;
      console.error(`teardown: ${(e as Error).message}`);
    }
  }
  return status;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`docker-latency: ${(e as Error).message}`);
    process.exit(1);
  },
);
