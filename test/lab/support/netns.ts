/**
 * Network namespaces for lab tests: real kernels, real links, cleaned up by name.
 *
 * Typical use (tap):
 *
 *   const lab = await Lab.create(t);            // unique tag per run; t.teardown deletes everything
 *   const a = await lab.netns('a');             // namespace `${lab.tag}a`, lo up, DAD off
 *   const b = await lab.netns('b');
 *   await lab.veth(a, 'eth0', b, 'eth0');       // veth between them, both ends up
 *   await a.addr('eth0', '2001:db8::1/64');
 *   await b.execOk('ping', ['-6', '-c1', '-W1', '2001:db8::1']);
 *   const child = a.spawnJsonLines('node', ['--import', 'tsx', 'script.ts']); // JSON lines in/out
 *
 * Rules kept here (see shared/LAB.md): every namespace has a unique per-run name; traffic only
 * flows between namespaces the test made; everything is deleted by name, also when the test
 * fails or the process is killed (exit and signal handlers do a synchronous last sweep);
 * every wait is bounded.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** What `run` returns: the exit code (or -1 when killed by a signal) and the output. */
export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Kill the command after this many ms (SIGKILL). Default 20 000. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Run a command to completion. Never throws for a non-zero exit; see {@link runOk}. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the command may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Run a command; resolve with stdout.
 * @throws Error (with the command line, exit code and stderr) when it exits non-zero.
 */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`'${[cmd, ...args].join(' ')}' exited ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Poll `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 50, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

let counter = 0;

/**
 * A short tag unique to this process and call, e.g. `nl3f2a1`: prefix + pid (base 36) + a
 * counter. Short enough that `${tag}xx` stays within 15 characters (an interface name).
 */
export function uniqueTag(prefix = 'nl'): string {
  return `${prefix}${process.pid.toString(36)}${(counter++).toString(36)}`;
}

// ---------------------------------------------------------------------------------------------
// Last-resort cleanup: namespaces still alive when the process exits or is killed.

const liveNamespaces = new Set<string>();
const liveChildren = new Set<ChildProcess>();
let handlersInstalled = false;

function sweepSync(): void {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveChildren.clear();
  for (const name of liveNamespaces) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 });
    } catch {
      /* already gone */
    }
  }
  liveNamespaces.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', sweepSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      sweepSync();
      process.kill(process.pid, sig); // default action now that our listener is gone
    });
  }
}

// ---------------------------------------------------------------------------------------------

/** One network namespace (by name). Commands run in it with `ip netns exec NAME`. */
export class Netns {
  constructor(readonly name: string) {}

  /** Run a command inside the namespace (exit code in the result). */
  exec(cmd: string, args: readonly string[] = [], opts?: RunOptions): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Run a command inside the namespace; stdout, or throw on non-zero exit. */
  execOk(cmd: string, args: readonly string[] = [], opts?: RunOptions): Promise<string> {
    return runOk('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** `ip -n NAME ARGS...` (iproute2 switches namespace itself: cheaper than exec). */
  ip(args: readonly string[], opts?: RunOptions): Promise<string> {
    return runOk('ip', ['-n', this.name, ...args], opts);
  }

  /** Set a sysctl inside the namespace, e.g. `net.ipv6.conf.all.forwarding`, `1`. */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.execOk('sysctl', ['-qw', `${key}=${value}`]);
  }

  /** Add an address (IPv6 without DAD, so it is usable at once). */
  async addr(ifname: string, cidr: string): Promise<void> {
    await this.ip(['addr', 'add', cidr, 'dev', ifname, ...(cidr.includes(':') ? ['nodad'] : [])]);
  }

  async up(ifname: string): Promise<void> {
    await this.ip(['link', 'set', ifname, 'up']);
  }

  /** The interface's MAC as `aa:bb:cc:dd:ee:ff`. */
  async mac(ifname: string): Promise<string> {
    const j = JSON.parse(await this.ip(['-j', 'link', 'show', 'dev', ifname])) as { address: string }[];
    const a = j[0]?.address;
    if (!a) throw new Error(`no MAC for ${ifname} in ${this.name}`);
    return a;
  }

  /** The interface's flags as `ip -j link` reports them (e.g. UP, ALLMULTI, PROMISC). */
  async linkFlags(ifname: string): Promise<string[]> {
    const j = JSON.parse(await this.ip(['-j', 'link', 'show', 'dev', ifname])) as { flags?: string[] }[];
    return j[0]?.flags ?? [];
  }

  /**
   * The interface's promiscuity and allmulti reference counts (`ip -d link`: "promiscuity N
   * allmulti N"). Packet-socket memberships (PACKET_MR_PROMISC / PACKET_MR_ALLMULTI) raise
   * these counters; the PROMISC / ALLMULTI words in `ip link` flags only show what was set with
   * `ip link set ... promisc|allmulticast on`.
   */
  async linkCounters(ifname: string): Promise<{ promiscuity: number; allmulti: number }> {
    const j = JSON.parse(await this.ip(['-d', '-j', 'link', 'show', 'dev', ifname])) as { promiscuity?: number; allmulti?: number }[];
    const promiscuity = j[0]?.promiscuity;
    const allmulti = j[0]?.allmulti;
    if (promiscuity === undefined || allmulti === undefined) throw new Error(`ip -d link shows no promiscuity/allmulti for ${ifname} (iproute2 >= 6.1 and Linux >= 6.3 needed)`);
    return { promiscuity, allmulti };
  }

  /** The interface's ifindex inside this namespace. */
  async ifindex(ifname: string): Promise<number> {
    const j = JSON.parse(await this.ip(['-j', 'link', 'show', 'dev', ifname])) as { ifindex: number }[];
    const i = j[0]?.ifindex;
    if (i === undefined) throw new Error(`no ifindex for ${ifname} in ${this.name}`);
    return i;
  }

  /** Link-layer multicast addresses of the interface (`link 33:33:...` lines of `ip maddr`). */
  async linkMulticast(ifname: string): Promise<string[]> {
    const out = await this.ip(['maddr', 'show', 'dev', ifname]);
    return [...out.matchAll(/^\s*link\s+([0-9a-f:]{17})/gm)].map((m) => m[1]!);
  }

  /**
   * Start a long-running command inside the namespace (e.g. tcpdump, a responder). It is killed
   * by {@link Lab.cleanup} and at process exit. Optionally pinned to CPUs with taskset.
   */
  spawn(cmd: string, args: readonly string[] = [], opts: { cpus?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
    installHandlers();
    const argv = opts.cpus !== undefined ? ['taskset', '-c', opts.cpus, cmd, ...args] : [cmd, ...args];
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    liveChildren.add(child);
    child.on('exit', () => liveChildren.delete(child));
    return child;
  }

  /** {@link spawn} a command that speaks JSON lines on stdin/stdout. */
  spawnJsonLines(cmd: string, args: readonly string[] = [], opts: { cpus?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): JsonLinesProcess {
    return new JsonLinesProcess(this.spawn(cmd, args, opts));
  }
}

/** A JSON object read from a {@link JsonLinesProcess}. */
export type JsonRecord = Record<string, unknown>;

/**
 * A child process that reads one JSON object per line on stdin and writes one per line on
 * stdout. `request` sends `{id, ...}` and waits for the line with the same `id`; every other
 * line is queued for `next`/`waitFor`. Lines that are not JSON are kept in `noise`.
 */
export class JsonLinesProcess {
  readonly records: JsonRecord[] = [];
  readonly noise: string[] = [];
  stderr = '';
  exitCode: number | null = null;
  #nextId = 1;
  #pending = new Map<number, (r: JsonRecord) => void>();
  #waiters = new Set<() => void>();
  #exited: Promise<number>;

  constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let rec: JsonRecord;
      try {
        rec = JSON.parse(line) as JsonRecord;
      } catch {
        this.noise.push(line);
        return;
      }
      const id = rec['id'];
      if (typeof id === 'number' && this.#pending.has(id)) {
        const done = this.#pending.get(id)!;
        this.#pending.delete(id);
        done(rec);
      } else {
        this.records.push(rec);
        for (const w of this.#waiters) w();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    child.stdin!.on('error', () => {});
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.exitCode = code ?? -1;
        for (const w of this.#waiters) w();
        for (const done of this.#pending.values()) done({ error: { message: `process exited (${code}): ${this.stderr.trim()}` } });
        this.#pending.clear();
        resolve(this.exitCode);
      });
    });
  }

  /** Send one request and wait (bounded) for the reply carrying its id. */
  request(msg: JsonRecord, timeoutMs = 10_000): Promise<JsonRecord> {
    if (this.exitCode !== null) return Promise.reject(new Error(`process already exited (${this.exitCode}): ${this.stderr.trim()}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${JSON.stringify(msg)} within ${timeoutMs} ms; stderr: ${this.stderr.trim()}`));
      }, timeoutMs);
      this.#pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.stdin!.write(JSON.stringify({ ...msg, id }) + '\n');
    });
  }

  /** Like {@link request}, but throw when the reply has an `error` field. */
  async call(msg: JsonRecord, timeoutMs?: number): Promise<JsonRecord> {
    const r = await this.request(msg, timeoutMs);
    if (r['error'] !== undefined) {
      const e = r['error'] as { message?: string };
      throw Object.assign(new Error(`${String(msg['op'] ?? 'request')}: ${e.message ?? JSON.stringify(e)}`), r['error'] as object);
    }
    return r;
  }

  /** Wait (bounded) until some unsolicited record satisfies `pred`; it is removed from `records`. */
  waitFor(pred: (r: JsonRecord) => boolean, timeoutMs = 5000): Promise<JsonRecord> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const i = this.records.findIndex(pred);
        if (i >= 0) {
          const [r] = this.records.splice(i, 1);
          finish();
          resolve(r!);
          return true;
        }
        if (this.exitCode !== null) {
          finish();
          reject(new Error(`process exited (${this.exitCode}) before the record came; stderr: ${this.stderr.trim()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching record within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (!check()) this.#waiters.add(waiter);
    });
  }

  /** Close stdin and wait (bounded) for exit; SIGKILL after `timeoutMs`. */
  async end(timeoutMs = 5000): Promise<number> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }
}

/** Anything with tap's `teardown` (so this file does not depend on tap's types). */
interface HasTeardown {
  teardown(fn: () => void | Promise<void>): void;
}

/**
 * A set of namespaces (and their links) made for one test, deleted together by name.
 * Links live inside the namespaces, so deleting the namespaces removes them too.
 */
export class Lab {
  readonly namespaces: Netns[] = [];
  #cleaned = false;

  private constructor(readonly tag: string) {}

  /**
   * Start a lab with a unique tag. With a tap test, cleanup is registered as its teardown.
   * @throws Error when not root (namespaces need CAP_SYS_ADMIN).
   */
  static async create(t?: HasTeardown, prefix = 'nl'): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('lab tests need root (they create network namespaces)');
    installHandlers();
    const lab = new Lab(uniqueTag(prefix));
    t?.teardown(() => lab.cleanup());
    return lab;
  }

  /**
   * Create namespace `${tag}${suffix}` with lo up and IPv6 DAD off for interfaces made later
   * (addresses are usable at once, link-local too).
   */
  async netns(suffix: string): Promise<Netns> {
    const ns = new Netns(`${this.tag}${suffix}`);
    liveNamespaces.add(ns.name);
    await runOk('ip', ['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    await ns.ip(['link', 'set', 'lo', 'up']);
    await ns.execOk('sh', [
      '-c',
      'sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 ' +
        'net.ipv6.conf.default.dad_transmits=0 net.ipv6.conf.all.dad_transmits=0',
    ]);
    return ns;
  }

  /**
   * A veth pair: `aIf` in `a`, `bIf` in `b`, both up. Created inside `a` with the peer placed
   * straight into `b`, so nothing ever appears in the machine's own namespace.
   */
  async veth(a: Netns, aIf: string, b: Netns, bIf: string, opts: { aMac?: string; bMac?: string } = {}): Promise<void> {
    await a.ip([
      'link', 'add', aIf, ...(opts.aMac ? ['address', opts.aMac] : []), 'type', 'veth',
      'peer', 'name', bIf, ...(opts.bMac ? ['address', opts.bMac] : []), 'netns', b.name,
    ]);
    await a.up(aIf);
    await b.up(bIf);
  }

  /**
   * A Linux bridge `name` in `ns` (an MLD-snooping switch when `querier` is set), up.
   * Attach ports with `ns.ip(['link', 'set', PORT, 'master', name])`.
   */
  async bridge(ns: Netns, name: string, opts: { snooping?: boolean; querier?: boolean; queryIntervalCs?: number } = {}): Promise<void> {
    const args = ['link', 'add', name, 'type', 'bridge', 'mcast_snooping', opts.snooping || opts.querier ? '1' : '0'];
    if (opts.querier) args.push('mcast_querier', '1');
    if (opts.queryIntervalCs !== undefined) args.push('mcast_query_interval', String(opts.queryIntervalCs));
    await ns.ip(args);
    await ns.up(name);
  }

  /** Kill spawned children and delete every namespace of this lab. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const c of liveChildren) {
      const argv = c.spawnargs;
      if (this.namespaces.some((ns) => argv[3] === ns.name)) c.kill('SIGKILL');
    }
    for (const ns of this.namespaces) {
      await run('ip', ['netns', 'del', ns.name], { timeoutMs: 10_000 });
      liveNamespaces.delete(ns.name);
    }
  }
}

/** Write one JSON line on stdout (the agent side of {@link JsonLinesProcess}). */
export function emitJsonLine(rec: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(rec) + '\n');
}

/**
 * The agent side of {@link JsonLinesProcess}: read one JSON request per stdin line, answer each
 * with `{ id, ...result }` or `{ id, error: { message, code } }`, then announce `{ ev: 'ready' }`.
 * Lines that are not JSON are ignored.
 */
export function serveJsonLines(handle: (req: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req: Record<string, unknown>;
    try {
      req = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    Promise.resolve()
      .then(() => handle(req))
      .then(
        (r) => emitJsonLine({ id: req['id'], ...r }),
        (err: { message?: string; code?: unknown }) => emitJsonLine({ id: req['id'], error: { message: err?.message ?? String(err), code: err?.code } }),
      );
  });
  emitJsonLine({ ev: 'ready' });
}
