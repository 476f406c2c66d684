/**
 * Network namespaces for the lab (tests, the demo, the benchmarks): real kernels, real links,
 * cleaned up by name.
 *
 *   const lab = await Lab.create(t);            // unique tag per run; t.teardown deletes everything
 *   const a = await lab.netns('a');             // namespace `${lab.tag}a`, lo up, DAD off
 *   const b = await lab.netns('b');
 *   await lab.veth(a, 'eth0', b, 'eth0');       // veth between them, both ends up
 *   await a.addr('eth0', '2001:db8::1/64');
 *   await b.execOk('ping', ['-6', '-c1', '-W1', '2001:db8::1']);
 *   const child = a.spawnJsonLines('node', ['--import', 'tsx', 'script.ts']); // JSON lines in/out
 *
 * Rules kept here (docs/lab-notes.md): every namespace has a unique per-run name; traffic only
 * flows between namespaces the caller made; everything is deleted by name, also when the caller
 * fails or the process is killed (sweep.ts does a synchronous last sweep on exit and signals);
 * every command and every wait is bounded.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

import { JsonLinesProcess } from './json-lines.js';
import { run, runOk, type RunOptions, type RunResult } from './process.js';
import { killAndDeleteNamespaceSync, trackChild, trackedChildren, trackNamespace, untrackNamespace } from './sweep.js';

// ---------------------------------------------------------------------------------------------
// Synchronous helpers (the demo's narrated steps and tests that drive a namespace step by step)

/** Run a command inside a namespace; returns stdout. @throws on non-zero exit or timeout. */
export function nsExec(ns: string, cmd: string[], timeoutMs = 10_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run a command inside a namespace; returns exit status and output, never throws. */
export function nsTry(ns: string, cmd: string[], timeoutMs = 10_000): { status: number; out: string } {
  try {
    return { status: 0, out: nsExec(ns, cmd, timeoutMs) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** Start a long-running process inside a namespace (tracked: killed by the sweep at exit). */
export function nsSpawn(ns: string, cmd: string[]): ChildProcess {
  return trackChild(spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

let counter = 0;

/**
 * A short tag unique to this process and call, e.g. `nl3f2a1`: prefix + pid (base 36) + a
 * counter. Short enough that `${tag}xx` stays within 15 characters (an interface name).
 */
export function uniqueTag(prefix = 'nl'): string {
  return `${prefix}${process.pid.toString(36)}${(counter++).toString(36)}`;
}

/** argv prefix that pins a command to CPUs with taskset (empty when `cpus` is undefined). */
function pinned(cpus: string | number | undefined, cmd: string, args: readonly string[]): string[] {
  return cpus !== undefined ? ['taskset', '-c', String(cpus), cmd, ...args] : [cmd, ...args];
}

/** {@link RunOptions} plus CPU pinning for commands run inside a namespace. */
export interface NsRunOptions extends RunOptions {
  /** Pin the command to these CPUs (taskset -c), e.g. `0` or `0,1`. */
  cpus?: string | number;
}

export interface NsSpawnOptions {
  cpus?: string | number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

// ---------------------------------------------------------------------------------------------
/** One network namespace (by name). Commands run in it with `ip netns exec NAME`. */
export class Netns {
  constructor(readonly name: string) {}

  /** Run a command inside the namespace (exit code in the result). */
  exec(cmd: string, args: readonly string[] = [], opts: NsRunOptions = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.name, ...pinned(opts.cpus, cmd, args)], opts);
  }

  /** Run a command inside the namespace; stdout, or throw on non-zero exit. */
  execOk(cmd: string, args: readonly string[] = [], opts: NsRunOptions = {}): Promise<string> {
    return runOk('ip', ['netns', 'exec', this.name, ...pinned(opts.cpus, cmd, args)], opts);
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
    if (promiscuity === undefined || allmulti === undefined)
      throw new Error(`ip -d link shows no promiscuity/allmulti for ${ifname} (iproute2 >= 6.1 and Linux >= 6.3 needed)`);
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
  spawn(cmd: string, args: readonly string[] = [], opts: NsSpawnOptions = {}): ChildProcess {
    return trackChild(
      spawn('ip', ['netns', 'exec', this.name, ...pinned(opts.cpus, cmd, args)], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
      }),
    );
  }

  /** {@link spawn} a command that speaks JSON lines on stdin/stdout. */
  spawnJsonLines(cmd: string, args: readonly string[] = [], opts: NsSpawnOptions = {}): JsonLinesProcess {
    return new JsonLinesProcess(this.spawn(cmd, args, opts));
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
   * Start a lab with a unique tag (or `opts.tag`, which the caller keeps unique). With a tap
   * test, cleanup is registered as its teardown.
   * @throws Error when not root (namespaces need CAP_SYS_ADMIN).
   */
  static async create(t?: HasTeardown, prefix = 'nl', opts: { tag?: string } = {}): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('the lab needs root (it creates network namespaces)');
    const lab = new Lab(opts.tag ?? uniqueTag(prefix));
    t?.teardown(() => lab.cleanup());
    return lab;
  }

  /**
   * Create namespace `${tag}${suffix}` with lo up and IPv6 DAD off for interfaces made later
   * (addresses are usable at once, link-local too).
   */
  async netns(suffix: string): Promise<Netns> {
    const ns = new Netns(`${this.tag}${suffix}`);
    trackNamespace(ns.name);
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
      'link',
      'add',
      aIf,
      ...(opts.aMac ? ['address', opts.aMac] : []),
      'type',
      'veth',
      'peer',
      'name',
      bIf,
      ...(opts.bMac ? ['address', opts.bMac] : []),
      'netns',
      b.name,
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

  /**
   * Kill every process inside this lab's namespaces (spawned here or not: they are ours by
   * construction), then delete the namespaces. Idempotent.
   */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    this.#cleaned = true;
    for (const c of trackedChildren()) {
      const argv = c.spawnargs;
      if (argv[1] === 'netns' && this.namespaces.some((ns) => argv[3] === ns.name)) c.kill('SIGKILL');
    }
    for (const ns of this.namespaces) {
      killAndDeleteNamespaceSync(ns.name);
      untrackNamespace(ns.name);
    }
  }
}
