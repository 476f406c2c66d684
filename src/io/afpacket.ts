/**
 * The AF_PACKET back end: a packet socket on one interface (native/packet-socket.cc), with a
 * classic BPF filter attached before bind, batched receive (recvmmsg into one buffer we own)
 * and batched send (sendmmsg). Linux only; needs CAP_NET_RAW.
 *
 * Frames up to the interface's MTU arrive whole: receive slots and ring frames are sized from
 * it (an MTU-9000 link delivers 9,000-byte NS). The receive buffer is JS memory that the addon
 * writes into; it checks before every batch that the buffer is still attached, and stops with
 * an error (code ERR_RX_BUFFER_DETACHED) if a consumer transferred it.
 *
 * Native does syscalls and counting; everything else (argument checks, reference counts for
 * memberships, error wording) is here.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';

import type { BackendStats, FrameBatch, PacketBackend } from './backend.js';
import { type BpfProgram, encodeBpf, NS_AND_MLD_QUERY } from './bpf.js';

/** Options of {@link AfPacketBackend.open}. */
export interface AfPacketOptions {
  /** Interface name, e.g. `eth0`. */
  ifname: string;
  /** Interface index; looked up from `ifname` (in this process's network namespace) when absent. */
  ifindex?: number;
  /** Frames per receive batch (recvmmsg vlen), 1..1024. Default 64. */
  batchSize?: number;
  /**
   * The link's MTU (IPv6 packet bytes): ring frames and the default slot size hold a frame of
   * this size plus Ethernet and two VLAN tags. Default: the interface's MTU now (ioctl), else 1500.
   */
  mtu?: number;
  /**
   * Bytes per receive slot, 64..65540; the last 4 bytes are kept for a re-inserted VLAN tag.
   * Default {@link slotSizeFor}(mtu): an MTU-sized frame with two VLAN tags fits, at least 2048.
   */
  slotSize?: number;
  /** Send with PACKET_QDISC_BYPASS (skips the qdisc and local taps such as tcpdump). Default false. */
  qdiscBypass?: boolean;
  /**
   * Receive buffer in bytes: the size of the RX ring (see `rxRing`), else the socket's receive
   * buffer (SO_RCVBUFFORCE with CAP_NET_ADMIN, else SO_RCVBUF; 0 keeps the kernel's default).
   * Default {@link ringBytesFor}(mtu): 4 MiB, more on a jumbo-frame link so that the ring still
   * holds {@link MIN_RING_FRAMES} frames.
   */
  rcvbuf?: number;
  /**
   * Receive through a TPACKET_V2 ring mapped into this process instead of recvmmsg(): the kernel
   * copies each frame straight into the ring in its receive path (no socket queue, no per-frame
   * syscall work); frames reach `onBatch` exactly as without it. Falls back to recvmmsg() when
   * the ring cannot be set up (stats().ringFrames is then 0). Default true.
   */
  rxRing?: boolean;
  /** Classic BPF filter. Default {@link NS_AND_MLD_QUERY}. */
  filter?: BpfProgram;
  /** Do not receive frames this host sends on the interface (PACKET_IGNORE_OUTGOING). Default true. */
  ignoreOutgoing?: boolean;
  /** Bound on batches handed to JS per readiness event, so one busy socket cannot starve the loop. Default 16. */
  maxBatchesPerWake?: number;
  /**
   * Called when polling the socket fails, when `onBatch` throws, or when the receive buffer was
   * transferred or detached (code ERR_RX_BUFFER_DETACHED: receiving has stopped, reopen). Without
   * it, such an error is rethrown from the event loop (an 'uncaughtException', like any failing
   * Node callback).
   */
  onError?: (err: Error) => void;
}

/** {@link BackendStats} plus the back end's own counters. */
export interface AfPacketStats extends BackendStats {
  /** Batches handed to JS. */
  batches: number;
  /** Readiness events (each drains up to maxBatchesPerWake batches). */
  wakeups: number;
  /** Frames longer than a slot, handed over cut to slotSize - 4 bytes. */
  truncated: number;
  /** Frames whose stripped 802.1Q tag was put back from PACKET_AUXDATA. */
  vlanReinserted: number;
  /** recvmmsg() failures other than EAGAIN. */
  recvErrors: number;
  /** sendmmsg() calls. */
  sendCalls: number;
  /** Frames that passed the filter (kernel PACKET_STATISTICS tp_packets, including drops). */
  kernelPackets: number;
  /** Readiness events that found nothing to receive. */
  emptyWakeups: number;
  /** Frames in the RX ring; 0 when receiving with recvmmsg(). */
  ringFrames: number;
  /** errno of the last failed receive or send, 0 if none. */
  lastRecvErrno: number;
  lastSendErrno: number;
}

/** An Error with Node's system-error fields. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

// ---------------------------------------------------------------------------------------------
// The addon.

/** Counters as the addon reports them. */
export interface NativeStats {
  received: number;
  batches: number;
  wakeups: number;
  truncated: number;
  vlanReinserted: number;
  recvErrors: number;
  sent: number;
  sendErrors: number;
  sendCalls: number;
  kernelPackets: number;
  kernelDrops: number;
  /** Older builds of the addon do not report these. */
  emptyWakeups?: number;
  ringFrames?: number;
  lastRecvErrno: number;
  lastSendErrno: number;
}

/** The addon's socket class, as {@link AfPacketBackend} uses it. */
export interface NativePacketSocket {
  readonly fd: number;
  start(cb: (count: number) => void): void;
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  membership(add: boolean, type: number, mac?: Uint8Array): void;
  stats(): NativeStats;
  close(): void;
}

/** The addon's exports. Pass a fake to {@link AfPacketBackend.open} to test the logic above it without a kernel. */
export interface NativeModule {
  PacketSocket: new (opts: {
    ifindex: number;
    filter: Uint8Array;
    rxBuffer: Uint8Array;
    lengths: Uint32Array;
    slots: number;
    slotSize: number;
    /** 0..65535; 0 means 1500. */
    mtu: number;
    rcvbuf: number;
    qdiscBypass: boolean;
    ignoreOutgoing: boolean;
    maxBatchesPerWake: number;
    rxRing: boolean;
  }) => NativePacketSocket;
  ifNameToIndex(name: string): number;
  /** ioctl view of an interface in the calling thread's namespace. @throws ENODEV. */
  interfaceInfo?(name: string): { ifindex: number; mac?: Uint8Array; hwtype?: number; flags?: number; mtu?: number };
  PACKET_MR_MULTICAST: number;
  PACKET_MR_PROMISC: number;
  PACKET_MR_ALLMULTI: number;
  /** sched_setscheduler() for the calling thread; see src/io/scheduler.ts. @throws a system error. */
  setScheduler?(policy: number, priority: number, resetOnFork: boolean): void;
  /** The calling thread's scheduling policy and static priority. */
  getScheduler?(): { policy: number; priority: number };
  SCHED_OTHER?: number;
  SCHED_FIFO?: number;
  /** Keep only the capabilities in `keep` on every thread; see src/io/capabilities.ts. */
  restrictCapabilities?(keep: bigint): {
    signal: number;
    signalled: number;
    answered: number;
    failed: number;
    blocked: number[];
    bounding: boolean;
  };
}

let nativeModule: NativeModule | undefined;

/** The directory holding package.json, walking up from this file (src/io/ under tsx, dist/src/io/ compiled). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw Object.assign(new Error('afpacket: cannot find the package root (package.json) above ' + import.meta.url), {
    code: 'ERR_NATIVE_ADDON_MISSING',
  });
}

/**
 * Load build/Release/ndp_native.node once.
 * @throws Error with code ERR_NATIVE_ADDON_MISSING when the addon is not built.
 */
export function loadNative(): NativeModule {
  if (nativeModule) return nativeModule;
  const path = join(packageRoot(), 'build', 'Release', 'ndp_native.node');
  try {
    nativeModule = createRequire(import.meta.url)(path) as NativeModule;
  } catch (cause) {
    throw Object.assign(new Error(`afpacket: cannot load the native addon ${path} (build it with 'npm run build:native')`, { cause }), {
      code: 'ERR_NATIVE_ADDON_MISSING',
    });
  }
  return nativeModule;
}

// ---------------------------------------------------------------------------------------------
// Argument checks (all before native is called).

function argError(code: 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE' | 'ERR_INVALID_ARG_VALUE', message: string): Error {
  const e = code === 'ERR_INVALID_ARG_TYPE' ? new TypeError(message) : new RangeError(message);
  return Object.assign(e, { code });
}

function intOption(name: string, v: unknown, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw argError('ERR_INVALID_ARG_TYPE', `afpacket: ${name} must be a number`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw argError('ERR_OUT_OF_RANGE', `afpacket: ${name} must be an integer in ${min}..${max}, got ${v}`);
  }
  return v;
}

function boolOption(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw argError('ERR_INVALID_ARG_TYPE', `afpacket: ${name} must be a boolean`);
  return v;
}

function checkMac(mac: unknown): Uint8Array {
  if (!(mac instanceof Uint8Array)) throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: mac must be a Uint8Array');
  if (mac.length !== 6) throw argError('ERR_INVALID_ARG_VALUE', `afpacket: mac must be 6 bytes, got ${mac.length}`);
  if ((mac[0]! & 1) === 0) {
    throw argError('ERR_INVALID_ARG_VALUE', `afpacket: ${macText(mac)} is not a multicast MAC address`);
  }
  return mac;
}

function macText(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Node-style system error built in JS (same fields as the native ones). */
function systemError(code: string, errno: number, syscall: string, message: string): SystemError {
  return Object.assign(new Error(message), { code, errno: -errno, syscall });
}

/** The interface's MTU from the addon (ioctl SIOCGIFMTU), 1500 when it cannot tell. */
function interfaceMtu(native: NativeModule, ifname: string): number {
  try {
    const mtu = native.interfaceInfo?.(ifname).mtu;
    return mtu !== undefined && Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535 ? mtu : 1500;
  } catch {
    return 1500;
  }
}

/** Give a native open error a message that says what to do; keep code, errno, syscall. */
function explainOpenError(err: unknown, ifname: string): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as Partial<SystemError>).code;
  if (code === 'EPERM' || code === 'EACCES') {
    err.message = `afpacket: opening a packet socket on ${ifname} needs CAP_NET_RAW (run as root): ${err.message}`;
  } else if (code === 'ENODEV' || code === 'ENXIO') {
    err.message = `afpacket: no network interface '${ifname}' in this network namespace: ${err.message}`;
  } else if (typeof code === 'string' && !code.startsWith('ERR_')) {
    err.message = `afpacket: cannot open a packet socket on ${ifname}: ${err.message}`;
  }
  return err;
}

const EBADF = 9;
const EFAULT = 14;
const EADDRNOTAVAIL = 99;

/** Ethernet header plus two 802.1Q tags left in the frame, plus 4 bytes for a re-inserted tag. */
const L2_ROOM = 14 + 2 * 4 + 4;
/** The smallest number of frames the default RX ring holds, whatever the MTU. */
export const MIN_RING_FRAMES = 2048;
/**
 * The ring's layout, as native/packet-socket.cc makes it: each frame slot starts with 80 bytes
 * (tpacket2_hdr, sockaddr_ll, alignment) and is a multiple of 16; slots never straddle a 64 KiB
 * block.
 */
const RING_FRAME_OVERHEAD = 80;
const RING_BLOCK = 1 << 16;
const DEFAULT_RING_BYTES = 4 << 20;

/** Default receive slot for a link of `mtu`: an MTU-sized frame with two tags fits whole. */
export function slotSizeFor(mtu: number): number {
  return Math.min(65540, Math.max(2048, Math.ceil((mtu + L2_ROOM) / 64) * 64));
}

/** Default RX ring size for a link of `mtu`: 4 MiB, or room for {@link MIN_RING_FRAMES} MTU-sized frames if more. */
export function ringBytesFor(mtu: number): number {
  const frame = Math.max(256, Math.ceil((RING_FRAME_OVERHEAD + mtu) / 16) * 16);
  const block = frame > RING_BLOCK ? Math.ceil(frame / 4096) * 4096 : RING_BLOCK;
  const perBlock = Math.floor(block / frame);
  return Math.max(DEFAULT_RING_BYTES, Math.ceil(MIN_RING_FRAMES / perBlock) * block);
}

// ---------------------------------------------------------------------------------------------

/** The batch handed to onBatch: one object per back end, refilled for every batch. */
class SlotBatch implements FrameBatch {
  count = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly offsets: Uint32Array,
    readonly lengths: Uint32Array,
  ) {}
}

/**
 * A {@link PacketBackend} on a Linux AF_PACKET socket.
 *
 * Frame i of a batch sits at the fixed offset i x slotSize of one receive buffer; frames carry
 * their 802.1Q tag as on the wire (re-inserted from PACKET_AUXDATA). Memberships are reference
 * counted per MAC; the kernel drops all of them when the socket closes.
 */
export class AfPacketBackend implements PacketBackend {
  readonly name = 'afpacket' as const;
  readonly ifname: string;
  readonly ifindex: number;
  readonly batchSize: number;
  readonly slotSize: number;
  readonly filter: BpfProgram;

  readonly #sock: NativePacketSocket;
  readonly #batch: SlotBatch;
  readonly #mr: { multicast: number; promisc: number; allmulti: number };
  readonly #macRefs = new Map<string, number>();
  readonly #onError: ((err: Error) => void) | undefined;
  #allMulti = false;
  #promisc = false;
  #started = false;
  #closed = false;
  #lastStats: NativeStats | undefined;

  private constructor(
    sock: NativePacketSocket,
    native: NativeModule,
    ifname: string,
    ifindex: number,
    batchSize: number,
    slotSize: number,
    filter: BpfProgram,
    batch: SlotBatch,
    onError: ((err: Error) => void) | undefined,
  ) {
    this.#sock = sock;
    this.#mr = {
      multicast: native.PACKET_MR_MULTICAST,
      promisc: native.PACKET_MR_PROMISC,
      allmulti: native.PACKET_MR_ALLMULTI,
    };
    this.ifname = ifname;
    this.ifindex = ifindex;
    this.batchSize = batchSize;
    this.slotSize = slotSize;
    this.filter = filter;
    this.#batch = batch;
    this.#onError = onError;
  }

  /**
   * Open a packet socket on `opts.ifname`: socket (protocol 0) -> attach filter -> bind.
   * Nothing is delivered until {@link start}.
   * @throws TypeError/RangeError (code ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE) for bad options.
   * @throws SystemError code ENODEV when the interface does not exist; EPERM/EACCES ("needs
   *   CAP_NET_RAW (run as root)") when not permitted; ERR_NATIVE_ADDON_MISSING when not built.
   * @param native the addon (default: build/Release/ndp_native.node); injectable for unit tests.
   */
  static open(opts: AfPacketOptions, native?: NativeModule): AfPacketBackend {
    if (typeof opts !== 'object' || opts === null) throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: options must be an object');
    const { ifname } = opts;
    if (typeof ifname !== 'string' || ifname.length === 0) {
      throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: ifname must be a non-empty string');
    }
    const batchSize = intOption('batchSize', opts.batchSize, 64, 1, 1024);
    intOption('mtu', opts.mtu, 1500, 68, 65535);
    intOption('slotSize', opts.slotSize, 2048, 64, 65540);
    intOption('rcvbuf', opts.rcvbuf, 0, 0, 0x7fffffff);
    const maxBatchesPerWake = intOption('maxBatchesPerWake', opts.maxBatchesPerWake, 16, 1, 1024);
    const qdiscBypass = boolOption('qdiscBypass', opts.qdiscBypass, false);
    const ignoreOutgoing = boolOption('ignoreOutgoing', opts.ignoreOutgoing, true);
    const rxRing = boolOption('rxRing', opts.rxRing, true);
    const filter = opts.filter ?? NS_AND_MLD_QUERY;
    const filterBytes = encodeBpf(filter);
    if (opts.onError !== undefined && typeof opts.onError !== 'function') {
      throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: onError must be a function');
    }

    native ??= loadNative();
    let ifindex: number;
    try {
      ifindex = opts.ifindex === undefined ? native.ifNameToIndex(ifname) : intOption('ifindex', opts.ifindex, 0, 1, 0x7fffffff);
    } catch (err) {
      throw explainOpenError(err, ifname);
    }
    const mtu = opts.mtu ?? interfaceMtu(native, ifname);
    const slotSize = opts.slotSize ?? slotSizeFor(mtu);
    const rcvbuf = opts.rcvbuf ?? ringBytesFor(mtu);

    const rxBuffer = new Uint8Array(batchSize * slotSize);
    const lengths = new Uint32Array(batchSize);
    const offsets = new Uint32Array(batchSize);
    for (let i = 0; i < batchSize; i++) offsets[i] = i * slotSize;

    let sock: NativePacketSocket;
    try {
      sock = new native.PacketSocket({
        ifindex,
        filter: filterBytes,
        rxBuffer,
        lengths,
        slots: batchSize,
        slotSize,
        mtu,
        rcvbuf,
        qdiscBypass,
        ignoreOutgoing,
        maxBatchesPerWake,
        rxRing,
      });
    } catch (err) {
      throw explainOpenError(err, ifname);
    }
    const batch = new SlotBatch(rxBuffer, offsets, lengths);
    return new AfPacketBackend(sock, native, ifname, ifindex, batchSize, slotSize, filter, batch, opts.onError);
  }

  /** The socket's file descriptor (-1 once closed). For diagnostics only. */
  get fd(): number {
    return this.#sock.fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Begin delivering batches on the event loop. `batch` is reused: read it inside the callback.
   * @throws Error code ERR_ALREADY_STARTED on a second call; EBADF after close().
   */
  start(onBatch: (batch: FrameBatch) => void): void {
    if (typeof onBatch !== 'function') throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: onBatch must be a function');
    this.#checkOpen('uv_poll_start');
    if (this.#started) throw Object.assign(new Error('afpacket: already started'), { code: 'ERR_ALREADY_STARTED' });
    this.#started = true;
    const batch = this.#batch;
    const onError = this.#onError;
    this.#sock.start((count: number) => {
      if (count < 0) {
        const code = getSystemErrorName(count);
        const err =
          count === -EFAULT
            ? Object.assign(
                new Error(
                  `afpacket: the receive buffer of ${this.ifname} was detached or shrunk by JavaScript ` +
                    '(a batch buffer must not be transferred); receiving stopped, reopen the back end',
                ),
                { code: 'ERR_RX_BUFFER_DETACHED', errno: count, syscall: 'recv' },
              )
            : systemError(code, -count, 'uv_poll', `afpacket: polling ${this.ifname} failed: ${code}`);
        if (onError) onError(err);
        else throw err;
        return;
      }
      batch.count = count;
      if (!onError) {
        onBatch(batch);
        return;
      }
      try {
        onBatch(batch);
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /**
   * Send `count` frames (frame i at offsets[i], lengths[i] bytes) with sendmmsg(). A full queue
   * or a refused frame is counted in stats().sendErrors, not thrown.
   * @returns frames the kernel accepted.
   * @throws TypeError/RangeError for bad arguments; EBADF after close().
   */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (!(buf instanceof Uint8Array)) throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: buf must be a Uint8Array');
    if (!(offsets instanceof Uint32Array) || !(lengths instanceof Uint32Array)) {
      throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: offsets and lengths must be Uint32Arrays');
    }
    if (!Number.isInteger(count) || count < 0 || count > offsets.length || count > lengths.length || count > 1024) {
      throw argError(
        'ERR_OUT_OF_RANGE',
        `afpacket: count must be an integer in 0..min(1024, offsets.length, lengths.length), got ${count}`,
      );
    }
    for (let i = 0; i < count; i++) {
      const o = offsets[i]!;
      const l = lengths[i]!;
      if (l < 14 || o + l > buf.length) {
        throw argError('ERR_OUT_OF_RANGE', `afpacket: frame ${i} (offset ${o}, length ${l}) is outside buf or shorter than 14 bytes`);
      }
    }
    this.#checkOpen('sendmmsg');
    return this.#sock.send(buf, offsets, lengths, count);
  }

  /**
   * Add a link-layer multicast address to the interface (PACKET_MR_MULTICAST). Reference
   * counted: the address is added on the first call and stays until as many removes.
   * @throws RangeError when `mac` is not a 6-byte multicast MAC; a system error from setsockopt.
   */
  addMulticast(mac: Uint8Array): void {
    checkMac(mac);
    this.#checkOpen('setsockopt');
    const key = macText(mac);
    const n = this.#macRefs.get(key) ?? 0;
    if (n === 0) this.#sock.membership(true, this.#mr.multicast, Uint8Array.from(mac));
    this.#macRefs.set(key, n + 1);
  }

  /**
   * Drop one reference to a multicast address; the address leaves the interface with the last.
   * @throws SystemError code EADDRNOTAVAIL when the address was not added.
   */
  removeMulticast(mac: Uint8Array): void {
    checkMac(mac);
    this.#checkOpen('setsockopt');
    const key = macText(mac);
    const n = this.#macRefs.get(key) ?? 0;
    if (n === 0) {
      throw systemError('EADDRNOTAVAIL', EADDRNOTAVAIL, 'setsockopt', `afpacket: ${key} was not added on ${this.ifname}`);
    }
    if (n === 1) {
      this.#sock.membership(false, this.#mr.multicast, Uint8Array.from(mac));
      this.#macRefs.delete(key);
    } else {
      this.#macRefs.set(key, n - 1);
    }
  }

  /** Multicast addresses currently added, with their reference counts. */
  multicastMemberships(): ReadonlyMap<string, number> {
    return new Map(this.#macRefs);
  }

  /** Receive every multicast frame (PACKET_MR_ALLMULTI; `ip link` shows ALLMULTI). Idempotent. */
  setAllMulticast(on: boolean): void {
    if (typeof on !== 'boolean') throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: on must be a boolean');
    this.#checkOpen('setsockopt');
    if (on === this.#allMulti) return;
    this.#sock.membership(on, this.#mr.allmulti);
    this.#allMulti = on;
  }

  /** Promiscuous mode (PACKET_MR_PROMISC; `ip link` shows PROMISC). Idempotent. */
  setPromiscuous(on: boolean): void {
    if (typeof on !== 'boolean') throw argError('ERR_INVALID_ARG_TYPE', 'afpacket: on must be a boolean');
    this.#checkOpen('setsockopt');
    if (on === this.#promisc) return;
    this.#sock.membership(on, this.#mr.promisc);
    this.#promisc = on;
  }

  /** Counters since open (kernel statistics accumulated; still readable after close). */
  stats(): AfPacketStats {
    const s = this.#closed ? (this.#lastStats ??= this.#sock.stats()) : this.#sock.stats();
    return {
      received: s.received,
      kernelDrops: s.kernelDrops,
      sent: s.sent,
      sendErrors: s.sendErrors,
      batches: s.batches,
      wakeups: s.wakeups,
      truncated: s.truncated,
      vlanReinserted: s.vlanReinserted,
      recvErrors: s.recvErrors,
      sendCalls: s.sendCalls,
      kernelPackets: s.kernelPackets,
      emptyWakeups: s.emptyWakeups ?? 0,
      ringFrames: s.ringFrames ?? 0,
      lastRecvErrno: s.lastRecvErrno,
      lastSendErrno: s.lastSendErrno,
    };
  }

  /** Close the socket; the kernel drops every membership. Safe twice and inside onBatch. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
    this.#lastStats = this.#sock.stats();
    this.#macRefs.clear();
    this.#allMulti = false;
    this.#promisc = false;
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) throw systemError('EBADF', EBADF, syscall, `afpacket: ${syscall} on ${this.ifname}: socket is closed`);
  }
}
