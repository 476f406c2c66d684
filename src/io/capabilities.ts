/**
 * Linux capabilities of this process: what it holds (from /proc), what the daemon needs once its
 * sockets are open, and the drop to exactly that (on every thread, with no_new_privs).
 *
 * The daemon parses frames anyone on the link can send. Once its packet socket is open it keeps
 * only CAP_NET_RAW (the link re-opens its socket when the interface flaps), plus a capability
 * an option asked for and still needs: CAP_NET_BIND_SERVICE for a metrics port below 1024,
 * CAP_SYS_NICE when `--nice` or `--realtime` could not be applied yet. Nothing else it does after start needs a
 * capability: packet-socket memberships (multicast MACs, all-multicast, promiscuous) are not
 * checked against CAP_NET_ADMIN, and without it the socket's receive buffer falls back from
 * SO_RCVBUFFORCE to SO_RCVBUF. See docs/privileges.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';

import { loadNative, type NativeModule } from './afpacket.js';
import { threadScheduling } from './scheduler.js';

/** Capability numbers (include/uapi/linux/capability.h) used here. */
export const CAP = {
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
  NET_ADMIN: 12,
  NET_RAW: 13,
  IPC_LOCK: 14,
  SYS_ADMIN: 21,
  SYS_NICE: 23,
} as const;

const NAMES = [
  'chown',
  'dac_override',
  'dac_read_search',
  'fowner',
  'fsetid',
  'kill',
  'setgid',
  'setuid',
  'setpcap',
  'linux_immutable',
  'net_bind_service',
  'net_broadcast',
  'net_admin',
  'net_raw',
  'ipc_lock',
  'ipc_owner',
  'sys_module',
  'sys_rawio',
  'sys_chroot',
  'sys_ptrace',
  'sys_pacct',
  'sys_admin',
  'sys_boot',
  'sys_nice',
  'sys_resource',
  'sys_time',
  'sys_tty_config',
  'mknod',
  'lease',
  'audit_write',
  'audit_control',
  'setfcap',
  'mac_override',
  'mac_admin',
  'syslog',
  'wake_alarm',
  'block_suspend',
  'audit_read',
  'perfmon',
  'bpf',
  'checkpoint_restore',
] as const;

/** The five capability sets of a thread, as bit masks (bit n = capability n). */
export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
  bounding: bigint;
  ambient: bigint;
}

/** The mask of one capability. */
export const capBit = (cap: number): bigint => 1n << BigInt(cap);

/** True when `mask` holds capability `cap`. */
export const hasCap = (mask: bigint, cap: number): boolean => (mask & capBit(cap)) !== 0n;

/** `cap_net_raw,cap_sys_nice` for a mask (`none` for 0); unnamed bits as `cap_N`. */
export function capNames(mask: bigint): string {
  const out: string[] = [];
  for (let c = 0; c < 64; c++) if (hasCap(mask, c)) out.push(`cap_${NAMES[c] ?? String(c)}`);
  return out.length === 0 ? 'none' : out.join(',');
}

/**
 * The capability lines (CapInh, CapPrm, CapEff, CapBnd, CapAmb) of a /proc/PID/status text.
 * @throws Error when one is missing or not hexadecimal.
 */
export function parseCapabilities(status: string): CapabilitySets {
  const field = (name: string): bigint => {
    const m = new RegExp(`^${name}:\\s*([0-9a-fA-F]{1,16})\\s*$`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} line in /proc status text`);
    return BigInt(`0x${m[1]!}`);
  };
  return {
    inheritable: field('CapInh'),
    permitted: field('CapPrm'),
    effective: field('CapEff'),
    bounding: field('CapBnd'),
    ambient: field('CapAmb'),
  };
}

/** This thread's (default: the main thread's) capability sets. */
export function readCapabilities(path = '/proc/self/status'): CapabilitySets {
  return parseCapabilities(readFileSync(path, 'utf8'));
}

/** What the daemon does after its sockets are open, as far as capabilities go. */
export interface PrivilegeNeeds {
  /** `--nice`: the wanted nice value (0: not asked). */
  nice: number;
  /** `--realtime`: the wanted SCHED_FIFO priority (0: not asked). */
  realtime?: number;
  /** The real-time priority the main thread has now, 0 if none (default: read from the addon). */
  currentRealtime?: number;
  /** The nice value the process has now (default: os.getPriority()). */
  currentNice?: number;
  /** `--metrics` listen address (`HOST:PORT` or `PORT`), when metrics are served. */
  metrics?: string | undefined;
  /** The metrics server is already listening (its port needs nothing more). */
  metricsBound?: boolean;
}

/** The port of a `--metrics` listen address, or undefined. */
function listenPort(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /(?:^|:)(\d{1,5})$/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The capabilities to keep after the sockets are open, each with the reason. */
export function neededCapabilities(needs: PrivilegeNeeds): Map<number, string> {
  const keep = new Map<number, string>([[CAP.NET_RAW, 're-open the packet socket after an interface flap']]);
  const current = needs.currentNice ?? getPriority();
  if (needs.nice < 0 && current > needs.nice) keep.set(CAP.SYS_NICE, `--nice ${needs.nice} is not applied yet`);
  const realtime = needs.realtime ?? 0;
  if (realtime > 0 && (needs.currentRealtime ?? currentRealtime()) < realtime) {
    keep.set(CAP.SYS_NICE, `--realtime ${realtime} is not applied yet`);
  }
  const port = listenPort(needs.metrics);
  if (port !== undefined && port > 0 && port < 1024 && needs.metricsBound !== true) {
    keep.set(CAP.NET_BIND_SERVICE, `--metrics port ${port} is below 1024`);
  }
  return keep;
}

/** The main thread's real-time priority, 0 when it runs at normal priority or cannot tell. */
function currentRealtime(): number {
  try {
    const s = threadScheduling();
    return s.policy === 'other' ? 0 : s.priority;
  } catch {
    return 0;
  }
}

/** What {@link restrictCapabilities} did. */
export interface RestrictResult {
  /** Capabilities asked to keep that the process held (the rest of `keep` it never had). */
  kept: bigint;
  /** Capabilities the main thread held before. */
  before: bigint;
  /** Threads of the process and how many now hold exactly `kept` (effective and permitted), no ambient, no_new_privs set. */
  threads: number;
  restricted: number;
  /**
   * Threads still holding more: thread id and effective|permitted set. A thread that blocks
   * every signal cannot be asked (`blocked`): Node's SIGUSR1 watchdog thread, started before
   * any JavaScript runs, is one; it keeps what the process started with (docs/privileges.md).
   */
  leftovers: { tid: number; effective: bigint; blocked: boolean }[];
  /** Whether the bounding set was reduced too (needs CAP_SETPCAP). */
  bounding: boolean;
}

/**
 * Keep only the capabilities in `keep` (and only those the process holds) in the effective and
 * permitted sets of every thread; clear inheritable and ambient, reduce the bounding set when
 * allowed, set no_new_privs. Verified afterwards from /proc/self/task/* /status.
 * @throws Error with code ERR_NATIVE_ADDON_MISSING when the addon is not built or lacks this
 *   function; a system error (syscall capset) when the main thread's drop fails.
 */
export function restrictCapabilities(keep: Iterable<number>, native?: NativeModule): RestrictResult {
  let mask = 0n;
  for (const c of keep) mask |= capBit(c);
  const mod = native ?? loadNative();
  if (mod.restrictCapabilities === undefined) {
    throw Object.assign(new Error('the native addon has no restrictCapabilities (rebuild it)'), { code: 'ERR_NATIVE_ADDON_MISSING' });
  }
  const before = readCapabilities().effective;
  const r = mod.restrictCapabilities(mask);
  const kept = readCapabilities().permitted;
  let threads = 0;
  let restricted = 0;
  const leftovers: { tid: number; effective: bigint; blocked: boolean }[] = [];
  const blocked = new Set(r.blocked);
  for (const name of readdirSync('/proc/self/task')) {
    let text: string;
    try {
      text = readFileSync(`/proc/self/task/${name}/status`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    threads++;
    const c = parseCapabilities(text);
    const nnp = /^NoNewPrivs:\s*1\s*$/m.test(text);
    if (c.effective === kept && c.permitted === kept && c.ambient === 0n && c.inheritable === 0n && nnp) restricted++;
    else if ((c.effective | c.permitted) & ~kept) {
      leftovers.push({ tid: Number(name), effective: c.effective | c.permitted, blocked: blocked.has(Number(name)) });
    }
  }
  return { kept, before, threads, restricted, leftovers, bounding: r.bounding };
}

/** The shape of pino's Logger this module uses. */
interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The daemon's one call once its sockets are open: warn about what an option needs and the
 * process lacks, drop everything else, and log one line with what is kept and why.
 * Never throws: a failed drop is logged as a warning (the daemon still works, with more
 * privileges than it needs).
 */
export function dropPrivileges(needs: PrivilegeNeeds, log: Log, native?: NativeModule): RestrictResult | undefined {
  const want = neededCapabilities(needs);
  let have: CapabilitySets;
  try {
    have = readCapabilities();
  } catch (e) {
    log.warn({ err: (e as Error).message }, "cannot read this process's capabilities; keeping them");
    return undefined;
  }
  for (const [cap, why] of want) {
    if (cap !== CAP.NET_RAW && !hasCap(have.permitted, cap)) {
      const hint = cap === CAP.SYS_NICE ? 'give it, or pass --nice 0 --realtime 0' : 'give it, or use a port of 1024 or above';
      log.warn({ missing: capNames(capBit(cap)) }, `${why} and the process lacks cap_${NAMES[cap] ?? cap}: ${hint} (docs/privileges.md)`);
    }
  }
  if (!hasCap(have.permitted, CAP.NET_RAW)) {
    log.warn(
      { missing: 'cap_net_raw' },
      'no CAP_NET_RAW left: the packet socket cannot be re-opened after an interface flap (see docs/privileges.md)',
    );
  }
  let r: RestrictResult;
  try {
    r = restrictCapabilities(want.keys(), native);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'cannot drop capabilities; running with all the process holds');
    return undefined;
  }
  const fields = {
    kept: capNames(r.kept),
    dropped: capNames(r.before & ~r.kept),
    why: Object.fromEntries([...want].filter(([c]) => hasCap(r.kept, c)).map(([c, w]) => [`cap_${NAMES[c] ?? c}`, w])),
    threads: r.threads,
    restricted: r.restricted,
    noNewPrivs: true,
  };
  const unreachable = r.leftovers.filter((l) => l.blocked).map((l) => l.tid);
  const failed = r.leftovers.filter((l) => !l.blocked);
  if (failed.length > 0) {
    log.warn(
      { ...fields, unreachable, failed: failed.map((l) => ({ tid: l.tid, caps: capNames(l.effective) })) },
      'capabilities dropped on the main thread, but not on every thread',
    );
  } else {
    // `unreachable`: threads that block every signal and run none of our code (Node's SIGUSR1
    // watchdog); they keep the capabilities the process started with.
    log.info({ ...fields, unreachable }, 'capabilities dropped');
  }
  return r;
}
