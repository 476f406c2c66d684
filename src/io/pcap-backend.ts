/**
 * The pcap back end: the portable fallback when the AF_PACKET addon is not built.
 *
 * Receive: a node_pcap (libpcap) live capture on the interface, not promiscuous, in immediate
 * mode, with a kernel-side filter for Neighbor Solicitations and MLD queries (untagged or with
 * one 802.1Q tag, see {@link PCAP_NS_AND_MLD_QUERY}) not sent from the interface's own MAC (the
 * host's own outgoing NS are seen by a capture too). node_pcap calls JavaScript once per frame;
 * frames are copied back to back into one buffer and handed over as a batch at the end of each
 * read (or when batchSize frames are waiting).
 * Why `not ether src MAC` rather than libpcap's `inbound`: libpcap runs the filter in user space
 * on the frames already in the ring when the filter is attached (the first one, here), and its
 * user-space BPF interpreter rejects the packet-type load that `inbound` compiles to: the first
 * NS after open would be lost (libpcap 1.10.3; docs/lab-notes.md).
 *
 * Send, two paths:
 *  - raw ICMPv6 socket (npm `raw-socket`, bound to the interface with SO_BINDTODEVICE, unicast
 *    and multicast hop limit 255, multicast loop off, every received type filtered out). Used for
 *    a frame that is an untagged IPv6 packet from the interface's link-local address, hop limit
 *    255, ICMPv6 right after the IPv6 header with an ND type (133..137), to a link-scoped
 *    destination (fe80::/10 or ff02::/16). We hand the kernel the ICMPv6 message and the
 *    destination; the kernel builds the IPv6 and Ethernet headers, picks the source (for a
 *    link-scoped destination: the link-local address), computes the checksum and resolves the
 *    destination's MAC through its own neighbor cache. That is the host's normal output path
 *    (ip6tables OUTPUT applies; no packet-socket write). Costs: our Ethernet header is replaced,
 *    and when the destination is not in the neighbor cache the kernel first resolves it (one
 *    NS/NA round trip before our NA leaves).
 *    Why only link-scoped destinations: a raw socket cannot pin its source address without
 *    bind() or an IPV6_PKTINFO control message, and raw-socket offers neither: an NA to a
 *    global destination leaves from the interface's global address even with a sticky
 *    IPV6_PKTINFO set. Source address selection (RFC 6724 rule 2) gives link-local only for
 *    link-scoped destinations.
 *  - pcap_inject of the whole frame (node_pcap `session.inject`) for everything else: NAs
 *    sourced from the target address (the default source policy), VLAN-tagged frames (the raw
 *    socket would send them untagged on the parent), MLD reports (hop limit 1 and a Hop-by-Hop
 *    Router Alert that the raw socket would not add), global destinations.
 *
 * Multicast membership: libpcap cannot do PACKET_ADD_MEMBERSHIP. For an IPv6 multicast MAC
 * (33:33:xx:xx:xx:xx, which is all the engine asks for) we join the IPv6 group that maps to it
 * (ff02::1:ffXX:XXXX for 33:33:ff:XX:XX:XX, else ff02::XXXX:XXXX) with IPV6_JOIN_GROUP on raw
 * ICMPv6 sockets that receive nothing (all types filtered). The kernel then adds the MAC to the
 * interface (`ip maddr` shows `link 33:33:ff:..` and `inet6 ff02::1:ff..`), counts references
 * itself, and drops the join when the socket closes, also when the process dies. One socket
 * holds as many joins as net.core.optmem_max allows (~2,300 at 131072 bytes); on ENOBUFS we open
 * another. Side effects of a kernel join: the kernel also sends its own MLD reports for the
 * group and answers queries for it (harmless beside the membership manager's), and it walks its
 * joins on every received multicast packet (tens of thousands of joins multiply multicast RTT,
 * docs/lab-notes.md): keep the group count bounded (the manager's maxGroups).
 * Any other multicast MAC is added with `ip maddr add MAC dev IF` (SIOCADDMULTI, a static entry
 * not tied to our process: it stays if we are killed). Note `ip -batch` applies only the first
 * `maddr` line of a batch (iproute2 6.1), so each is one `ip` run. An entry that was
 * static before we added it is not ours and is left alone.
 * All-multicast and promiscuous modes use `ip link set IF allmulticast|promisc on`, only undone
 * if we turned them on; close() undoes exactly what we did. Like static `ip maddr` entries these
 * flags are not tied to the process: if it is killed they stay until `ip link set IF
 * allmulticast off`.
 *
 * Closing: node_pcap's close() only asks libpcap to break its loop; the handle (socket, ring
 * buffer and a referenced poll handle that keeps Node alive) is released by the next read, and a
 * non-blocking libpcap read returns "break" only once a frame is waiting. So close() sends one
 * wake-up packet from the raw socket: ICMPv6 type 200 (private experimentation, RFC 4443) to
 * ff02::114 (IANA "any private experiment") with hop limit 1; the capture filter admits that
 * packet (from our MAC, type 200), and the read it triggers frees the handle. Frames of that
 * type are never delivered. Without a raw socket the handle is freed by the next captured frame.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PcapSession } from 'pcap';
import type { Logger } from 'pino';
import { formatAddress, formatMac } from '../addr/index.js';
import type { NaSender } from '../ndp/build.js';
import type { BackendStats, FrameBatch, PacketBackend } from './backend.js';
import { isValidIfname, readInterfaceFacts } from './interface.js';
import { CodedError } from './coded-error.js';
import { headerU32, loadPcap, type PcapModule } from './node-pcap.js';

const require = createRequire(import.meta.url);

/**
 * NS (ICMPv6 135 right after IPv6) and MLD queries (ICMPv6 130 after one 8-byte Hop-by-Hop
 * header), untagged or with one 802.1Q tag in the data. Explicit offsets, as in bpf.ts; Linux
 * strips a received tag into metadata before the kernel filter runs (so such frames match the
 * untagged half) and libpcap puts it back into the data (and before any user-space filtering).
 * The back end adds `not ether src <interface MAC>` around it (see the file header).
 */
export const PCAP_NS_AND_MLD_QUERY =
  '(ether[12:2] = 0x86dd and ((ether[20] = 58 and ether[54] = 135) or ' +
  '(ether[20] = 0 and ether[54] = 58 and ether[55] = 0 and ether[62] = 130))) or ' +
  '(ether[12:2] = 0x8100 and ether[16:2] = 0x86dd and ((ether[24] = 58 and ether[58] = 135) or ' +
  '(ether[24] = 0 and ether[58] = 58 and ether[59] = 0 and ether[66] = 130)))';

/** ICMPv6 type of the close wake-up packet (RFC 4443 section 2.1: private experimentation). */
const WAKE_TYPE = 200;

/** The whole capture filter: `filter` from others, plus our own wake-up packets (file header). */
export function pcapCaptureFilter(filter: string, ownMac: string): string {
  return `(not ether src ${ownMac} and (${filter})) or (ether src ${ownMac} and ether[12:2] = 0x86dd and ether[20] = 58 and ether[54] = ${WAKE_TYPE})`;
}
/** ff02::114, "any private experiment" (IANA IPv6 multicast registry). */
const WAKE_DST = 'ff02::114';
const WAKE_MESSAGE = Buffer.concat([Buffer.from([WAKE_TYPE, 0, 0, 0]), Buffer.from('ndp-responder: capture closed')]);

// Socket option numbers (Linux, include/uapi/linux/in6.h, icmpv6.h, asm-generic/socket.h).
const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const IPPROTO_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;
const IPV6_DROP_MEMBERSHIP = 21;
const IPPROTO_ICMPV6 = 58;
const ICMP6_FILTER = 1;

// ---------------------------------------------------------------------------------------------
// The two CommonJS addons, typed as far as we use them.

interface NativeSession {
  dispatch(buf: Buffer, header: Buffer): number;
  read_callback: () => void;
}
interface SessionInternals {
  session: NativeSession;
  buf: Buffer;
  header: Buffer;
}

interface RawSocketWrap {
  send(buf: Buffer, off: number, len: number, addr: string, cb: (bytes: number) => void): void;
}
interface RawSocket {
  wrap: RawSocketWrap;
  setOption(level: number, option: number, value: number | Buffer, length?: number): void;
  pauseRecv(): RawSocket;
  close(): RawSocket;
  on(ev: 'error', fn: (err: Error) => void): RawSocket;
}
interface RawSocketModule {
  createSocket(opts: { protocol: number; addressFamily: number; bufferSize?: number }): RawSocket;
  Protocol: { ICMPv6: number };
  AddressFamily: { IPv6: number };
}

// ---------------------------------------------------------------------------------------------

export interface PcapBackendOptions {
  /** Interface name, e.g. `eth0`. */
  ifname: string;
  /**
   * The interface's link-local address: frames from it may take the raw-socket path. Default:
   * `host.linkLocal`, else read from the OS at open (null when there is none yet; see
   * {@link PcapBackend.setLinkLocal}).
   */
  linkLocal?: Uint8Array | null;
  /** The sender's facts; only `linkLocal` is used (see above). */
  host?: NaSender;
  /** Frames per batch, 1..1024. Default 64. */
  batchSize?: number;
  /** Capture snapshot length, 128..65535. Default 2048. */
  snapLength?: number;
  /** libpcap ring buffer in bytes. Default 2 MiB. */
  bufferSize?: number;
  /**
   * libpcap filter expression. Default {@link PCAP_NS_AND_MLD_QUERY}. Frames from the
   * interface's own MAC are never delivered, whatever the filter.
   */
  filter?: string;
  /** Send eligible ND frames through the raw ICMPv6 socket (see the file header). Default true. */
  rawSend?: boolean;
  /** The iproute2 binary. Default `ip` (from PATH). */
  ipCommand?: string;
  logger?: Logger | undefined;
  /** Called when `onBatch` throws; without it the error is rethrown (an uncaught exception). */
  onError?: (err: Error) => void;
}

/** {@link BackendStats} plus this back end's own counters. */
export interface PcapStats extends BackendStats {
  batches: number;
  /** Frames longer than snapLength, delivered cut. */
  truncated: number;
  /** Frames sent through the raw ICMPv6 socket / injected whole. */
  rawSent: number;
  injected: number;
  /** Frames that arrived before start() and did not fit the first batch. */
  droppedBeforeStart: number;
  /** Failed group joins/leaves, `ip maddr` and `ip link` changes. */
  linkErrors: number;
  /** Raw sockets holding group joins (one per ~optmem_max worth of joins). */
  joinSockets: number;
}

/** An Error with a `code`. */
export class PcapBackendError extends CodedError {}

function argError(message: string): Error {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' });
}

function intOption(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw argError(`pcap: ${name} must be an integer in ${min}..${max}, got ${v}`);
  return v;
}

/** Classify a libpcap open error. */
function openError(err: unknown, ifname: string): PcapBackendError {
  const msg = err instanceof Error ? err.message : String(err);
  let code = 'EPCAP';
  if (/permission|not permitted/i.test(msg)) code = 'EPERM';
  else if (/no such device/i.test(msg)) code = 'ENODEV';
  const hint = code === 'EPERM' ? ' (needs CAP_NET_RAW: run as root)' : '';
  return new PcapBackendError(code, `pcap: cannot capture on ${ifname}: ${msg}${hint}`, { cause: err });
}

/**
 * Compile `filter` for Ethernet without touching the interface (an offline session on an empty
 * capture file), so a bad expression is told apart from a capture failure.
 * @throws PcapBackendError EINVAL with libpcap's message.
 */
function checkFilter(pcap: PcapModule, filter: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'ndp-filter-'));
  try {
    const file = join(dir, 'empty.pcap');
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(65535, 16);
    header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
    writeFileSync(file, header);
    // close() asks libpcap to break; node_pcap's pending read frees the handle.
    pcap.createOfflineSession(file, { filter }).close();
  } catch (err) {
    throw new PcapBackendError('EINVAL', `pcap: bad capture filter: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Static (global_use) link-layer multicast entries of an interface, from /proc/net/dev_mcast. */
export function parseDevMcast(text: string, ifname: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    // ifindex name users global_use address(hex)
    const c = line.trim().split(/\s+/);
    if (c.length !== 5 || c[1] !== ifname || c[3] === '0' || !/^[0-9a-f]{12}$/i.test(c[4]!)) continue;
    out.add(c[4]!.toLowerCase().replace(/(..)(?!$)/g, '$1:'));
  }
  return out;
}

/** A {@link PacketBackend} on libpcap (capture, inject) plus a raw ICMPv6 socket (send). */
export class PcapBackend implements PacketBackend {
  readonly name = 'pcap' as const;
  readonly ifname: string;
  readonly ifindex: number;
  readonly batchSize: number;
  readonly snapLength: number;
  readonly filter: string;

  readonly #session: PcapSession;
  readonly #native: NativeSession;
  readonly #raw: RawSocket | undefined;
  readonly #rawSend: boolean;
  readonly #logger: Logger | undefined;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #ip: string;
  #linkLocal: Uint8Array | null;
  #onBatch: ((b: FrameBatch) => void) | undefined;
  #started = false;
  #closed = false;
  /** libpcap's handle has been freed (node_pcap's dispatch returned -2). */
  #finalized = false;
  #inDispatch = false;
  #flushQueued = false;

  #buf: Uint8Array;
  #used = 0;
  readonly #offsets: Uint32Array;
  readonly #lengths: Uint32Array;
  #count = 0;

  #received = 0;
  #batches = 0;
  #truncated = 0;
  #sent = 0;
  #sendErrors = 0;
  #rawSent = 0;
  #injected = 0;
  #droppedBeforeStart = 0;
  #linkErrors = 0;
  #lastKernelDrops = 0;

  // Multicast (see the file header).
  readonly #macRefs = new Map<string, number>();
  /** Raw ICMPv6 sockets holding group joins, and which one holds each joined MAC's group. */
  readonly #joinSockets: RawSocket[] = [];
  readonly #joinedBy = new Map<string, RawSocket>();
  /** Non-IPv6 MACs we added with `ip maddr add` (and so remove). */
  readonly #ownedMacs = new Set<string>();
  #allMulti = false;
  #allMultiOwned = false;
  #promisc = false;
  #promiscOwned = false;

  private constructor(
    opts: PcapBackendOptions,
    ifindex: number,
    linkLocal: Uint8Array | null,
    session: PcapSession,
    raw: RawSocket | undefined,
    batchSize: number,
    snapLength: number,
    filter: string,
  ) {
    this.ifname = opts.ifname;
    this.ifindex = ifindex;
    this.#linkLocal = linkLocal;
    this.#session = session;
    this.#native = (session as unknown as SessionInternals).session;
    this.#raw = raw;
    this.#rawSend = opts.rawSend ?? true;
    this.#logger = opts.logger;
    this.#onError = opts.onError;
    this.#ip = opts.ipCommand ?? 'ip';
    this.batchSize = batchSize;
    this.snapLength = snapLength;
    this.filter = filter;
    this.#buf = new Uint8Array(batchSize * Math.min(snapLength, 2048));
    this.#offsets = new Uint32Array(batchSize);
    this.#lengths = new Uint32Array(batchSize);

    // Own the read: node_pcap's poll callback looks `read_callback` up on every wake-up. Ours
    // knows when a read is running (close() must not free the handle under it) and flushes
    // the batch once the read has drained what was waiting.
    this.#native.read_callback = () => this.#onReadable();
    session.on('packet', (p: { buf: Buffer; header: Buffer }) => this.#onPacket(p.buf, p.header));
  }

  /**
   * Open a live capture on `opts.ifname` and the raw ICMPv6 socket. Frames that arrive before
   * {@link start} are kept (up to one batch) and delivered by it.
   * @throws InterfaceError ENODEV when the interface does not exist; PcapBackendError EPERM
   *   (not root), EINVAL (bad filter) or EPCAP (other libpcap failure); RangeError
   *   ERR_OUT_OF_RANGE for bad options.
   */
  static open(opts: PcapBackendOptions): PcapBackend {
    if (typeof opts?.ifname !== 'string' || !isValidIfname(opts.ifname)) {
      throw Object.assign(new TypeError(`pcap: invalid interface name '${String(opts?.ifname)}'`), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const { ifname } = opts;
    const batchSize = intOption('batchSize', opts.batchSize, 64, 1, 1024);
    const snapLength = intOption('snapLength', opts.snapLength, 2048, 128, 65535);
    const bufferSize = intOption('bufferSize', opts.bufferSize, 2 << 20, 65536, 1 << 30);
    const facts = readInterfaceFacts(ifname);
    const linkLocal = opts.linkLocal !== undefined ? opts.linkLocal : (opts.host?.linkLocal ?? facts.linkLocal);
    const filter = pcapCaptureFilter(opts.filter ?? PCAP_NS_AND_MLD_QUERY, formatMac(facts.mac));

    const pcap = loadPcap();
    checkFilter(pcap, filter);
    const warnings: string[] = [];
    const prevWarn = pcap.warningHandler;
    pcap.warningHandler = (text: string) => warnings.push(text);
    let session: PcapSession;
    try {
      session = pcap.createSession(ifname, {
        filter,
        promiscuous: false,
        buffer_timeout: 0, // immediate mode: every frame is readable at once
        snap_length: snapLength,
        buffer_size: bufferSize,
      });
    } catch (err) {
      throw openError(err, ifname);
    } finally {
      pcap.warningHandler = prevWarn;
    }
    // libpcap warns when the interface has no IPv4 address: irrelevant to us.
    for (const w of warnings) opts.logger?.debug({ ifname, warning: w }, 'pcap warning');
    if ((session.link_type as string) !== 'LINKTYPE_ETHERNET') {
      const lt = session.link_type as string;
      session.close();
      throw new PcapBackendError('EPCAP', `pcap: ${ifname} has link type ${lt}; only Ethernet interfaces are supported`);
    }

    let raw: RawSocket | undefined;
    try {
      raw = openRawSocket(ifname);
    } catch (err) {
      opts.logger?.warn(
        { ifname, err: (err as Error).message },
        'pcap: no raw ICMPv6 socket; every frame is injected, and close() cannot wake libpcap',
      );
    }
    return new PcapBackend(opts, facts.ifindex, linkLocal, session, raw, batchSize, snapLength, filter);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True when a raw ICMPv6 socket is open (see the file header). */
  get hasRawSocket(): boolean {
    return this.#raw !== undefined;
  }

  /** The link-local address that selects the raw-socket path, as text (null: none, every frame is injected). */
  get linkLocalText(): string | null {
    return this.#linkLocal === null ? null : formatAddress(this.#linkLocal);
  }

  /** Change the link-local address that selects the raw-socket path (after an interface flap). */
  setLinkLocal(addr: Uint8Array | null): void {
    if (addr !== null && addr.length !== 16) throw argError('pcap: link-local address must be 16 bytes');
    this.#linkLocal = addr === null ? null : Uint8Array.from(addr);
  }

  /**
   * Begin delivering batches. The batch is reused: read it inside the callback.
   * @throws Error code ERR_ALREADY_STARTED on a second call; EBADF after close().
   */
  start(onBatch: (batch: FrameBatch) => void): void {
    if (typeof onBatch !== 'function') {
      throw Object.assign(new TypeError('pcap: onBatch must be a function'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    if (this.#closed) throw Object.assign(new Error('pcap: back end is closed'), { code: 'EBADF' });
    if (this.#started) throw Object.assign(new Error('pcap: already started'), { code: 'ERR_ALREADY_STARTED' });
    this.#started = true;
    this.#onBatch = onBatch;
    if (this.#count > 0) this.#queueFlush();
  }

  #onReadable(): void {
    if (this.#finalized) return;
    this.#inDispatch = true;
    let r: number;
    try {
      r = this.#native.dispatch((this.#session as unknown as SessionInternals).buf, (this.#session as unknown as SessionInternals).header);
    } finally {
      this.#inDispatch = false;
    }
    if (r === -2) this.#finalized = true;
    this.#flush();
  }

  #onPacket(data: Buffer, header: Buffer): void {
    if (this.#closed) return;
    const caplen = headerU32(header, 8);
    const wireLen = headerU32(header, 12);
    const len = Math.min(caplen, data.length);
    // Wake-up packets (ours or another instance's) are not for the engine.
    if (len > 54 && data[12] === 0x86 && data[13] === 0xdd && data[20] === 58 && data[54] === WAKE_TYPE) return;
    if (!this.#started) {
      if (this.#count === this.batchSize || this.#used + len > this.#buf.length) {
        this.#droppedBeforeStart++;
        return;
      }
    } else if (this.#count === this.batchSize || this.#used + len > this.#buf.length) {
      this.#flush();
      if (this.#closed) return;
    }
    if (len > this.#buf.length) this.#buf = new Uint8Array(len);
    this.#buf.set(data.subarray(0, len), this.#used);
    this.#offsets[this.#count] = this.#used;
    this.#lengths[this.#count] = len;
    this.#count++;
    this.#used += len;
    if (wireLen > len) this.#truncated++;
    // Reads started by node_pcap itself (its first kick) are not ours to follow: flush after.
    if (!this.#inDispatch) this.#queueFlush();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    const count = this.#count;
    if (count === 0 || !this.#started || this.#closed) return;
    this.#count = 0;
    this.#used = 0;
    this.#received += count;
    this.#batches++;
    const batch: FrameBatch = { buf: this.#buf, offsets: this.#offsets, lengths: this.#lengths, count };
    const onBatch = this.#onBatch!;
    if (this.#onError === undefined) {
      onBatch(batch);
      return;
    }
    try {
      onBatch(batch);
    } catch (err) {
      this.#onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Send `count` whole Ethernet frames, each by the raw socket or by injection (see the file
   * header). A refused frame is counted in stats().sendErrors, never thrown.
   * @returns frames the kernel accepted (0 after close()).
   * @throws RangeError ERR_OUT_OF_RANGE when a frame lies outside `buf` or is shorter than 14 bytes.
   */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (!Number.isInteger(count) || count < 0 || count > offsets.length || count > lengths.length) {
      throw argError(`pcap: count must be an integer in 0..min(offsets.length, lengths.length), got ${count}`);
    }
    for (let i = 0; i < count; i++) {
      if (lengths[i]! < 14 || offsets[i]! + lengths[i]! > buf.length) {
        throw argError(`pcap: frame ${i} (offset ${offsets[i]}, length ${lengths[i]}) is outside buf or shorter than 14 bytes`);
      }
    }
    if (this.#closed) return 0;
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      const len = lengths[i]!;
      const view = Buffer.from(buf.buffer, buf.byteOffset + off, len);
      const rawDst = this.#rawDestination(view);
      try {
        if (rawDst !== null) {
          this.#raw!.wrap.send(view, 14 + 40, len - 54, rawDst, () => {});
          this.#rawSent++;
        } else {
          this.#session.inject(view);
          this.#injected++;
        }
        ok++;
      } catch (err) {
        this.#sendErrors++;
        if (this.#sendErrors <= 10 || this.#sendErrors % 1000 === 0) {
          this.#logger?.warn(
            { ifname: this.ifname, path: rawDst !== null ? 'raw' : 'inject', err: (err as Error).message, sendErrors: this.#sendErrors },
            'pcap: send failed',
          );
        }
      }
    }
    this.#sent += ok;
    return ok;
  }

  /**
   * The raw-socket destination (`fe80::1%eth0`) when this frame may go through the raw socket,
   * else null. See the file header for the rule and why.
   */
  #rawDestination(f: Buffer): string | null {
    const ll = this.#linkLocal;
    if (!this.#rawSend || this.#raw === undefined || ll === null || f.length < 14 + 40 + 4) return null;
    if (f[12] !== 0x86 || f[13] !== 0xdd) return null; // tagged, or not IPv6
    const ip = 14;
    if (f[ip]! >>> 4 !== 6 || f[ip + 6] !== 58 || f[ip + 7] !== 255) return null;
    const plen = (f[ip + 4]! << 8) | f[ip + 5]!;
    if (ip + 40 + plen !== f.length) return null;
    const type = f[ip + 40]!;
    if (type < 133 || type > 137) return null;
    for (let i = 0; i < 16; i++) if (f[ip + 8 + i] !== ll[i]) return null;
    const d0 = f[ip + 24]!;
    const d1 = f[ip + 25]!;
    const linkScoped = (d0 === 0xfe && (d1 & 0xc0) === 0x80) || (d0 === 0xff && (d1 & 0x0f) === 0x02);
    if (!linkScoped) return null;
    return `${formatAddress(f, ip + 24)}%${this.ifname}`;
  }

  // -------------------------------------------------------------------------------------------
  // Multicast.

  /**
   * Add a link-layer multicast address (reference counted): an IPv6 group join for a 33:33 MAC,
   * else `ip maddr add` (see the file header).
   * @throws RangeError when `mac` is not a 6-byte multicast MAC; PcapBackendError with the
   *   errno code (ENOBUFS, ENODEV...) or ELINK when the kernel or `ip` refuses; EBADF after close().
   */
  addMulticast(mac: Uint8Array): void {
    const key = this.#checkMac(mac);
    const n = this.#macRefs.get(key) ?? 0;
    if (n === 0) {
      if (mac[0] === 0x33 && mac[1] === 0x33) this.#join(key, mac);
      else this.#maddr('add', key);
    }
    this.#macRefs.set(key, n + 1);
  }

  /**
   * Drop one reference; the address leaves the interface with the last (if we added it).
   * @throws Error code EADDRNOTAVAIL when the address was not added; EBADF after close().
   */
  removeMulticast(mac: Uint8Array): void {
    const key = this.#checkMac(mac);
    const n = this.#macRefs.get(key) ?? 0;
    if (n === 0) throw Object.assign(new Error(`pcap: ${key} was not added on ${this.ifname}`), { code: 'EADDRNOTAVAIL' });
    if (n > 1) {
      this.#macRefs.set(key, n - 1);
      return;
    }
    this.#macRefs.delete(key);
    const sock = this.#joinedBy.get(key);
    if (sock !== undefined) {
      this.#joinedBy.delete(key);
      try {
        sock.setOption(IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, this.#mreq(mac), 20);
      } catch (err) {
        this.#linkErrors++;
        this.#logger?.warn({ ifname: this.ifname, mac: key, err: (err as Error).message }, 'pcap: leaving the group failed');
      }
    } else if (this.#ownedMacs.has(key)) {
      this.#ownedMacs.delete(key);
      this.#maddr('del', key);
    }
  }

  /** Multicast addresses currently added, with their reference counts. */
  multicastMemberships(): ReadonlyMap<string, number> {
    return new Map(this.#macRefs);
  }

  #checkMac(mac: Uint8Array): string {
    if (!(mac instanceof Uint8Array) || mac.length !== 6 || (mac[0]! & 1) === 0) {
      throw argError('pcap: a multicast MAC must be 6 bytes with the group bit set');
    }
    if (this.#closed) throw Object.assign(new Error(`pcap: ${this.ifname}: back end is closed`), { code: 'EBADF' });
    return formatMac(mac);
  }

  /** struct ipv6_mreq for the group a 33:33 MAC maps to (RFC 2464 section 7, reversed). */
  #mreq(mac: Uint8Array): Buffer {
    const m = Buffer.alloc(20);
    m[0] = 0xff;
    m[1] = 0x02;
    if (mac[2] === 0xff) {
      m[11] = 0x01; // ff02::1:ffXX:XXXX, the solicited-node group
    }
    m[12] = mac[2]!;
    m[13] = mac[3]!;
    m[14] = mac[4]!;
    m[15] = mac[5]!;
    // struct ipv6_mreq's ifindex is a host-order int.
    if (endianness() === 'LE') m.writeUInt32LE(this.ifindex, 16);
    else m.writeUInt32BE(this.ifindex, 16);
    return m;
  }

  /** Join the group of a 33:33 MAC on the newest join socket; when it is full, on a new one. */
  #join(key: string, mac: Uint8Array): void {
    const mreq = this.#mreq(mac);
    const fail = (err: unknown): PcapBackendError => {
      this.#linkErrors++;
      return new PcapBackendError(errnoCode(err), `pcap: joining the group of ${key} on ${this.ifname} failed: ${(err as Error).message}`, {
        cause: err,
      });
    };
    const last = this.#joinSockets[this.#joinSockets.length - 1];
    if (last !== undefined) {
      try {
        last.setOption(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, 20);
        this.#joinedBy.set(key, last);
        return;
      } catch (err) {
        const code = errnoCode(err);
        if (code !== 'ENOBUFS' && code !== 'ENOMEM') throw fail(err); // else: full, take a new socket
      }
    }
    let sock: RawSocket;
    try {
      sock = openRawSocket(this.ifname);
    } catch (err) {
      throw fail(err);
    }
    try {
      sock.setOption(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, 20);
    } catch (err) {
      sock.close();
      throw fail(err);
    }
    this.#joinSockets.push(sock);
    this.#joinedBy.set(key, sock);
  }

  /** `ip maddr add|del MAC dev IF` for a non-IPv6 MAC, with ownership (see the file header). */
  #maddr(op: 'add' | 'del', key: string): void {
    if (op === 'add' && this.#staticMacs().has(key)) return; // someone else's static entry
    const err = this.#ip1(['maddr', op, key, 'dev', this.ifname]);
    const present = this.#staticMacs().has(key);
    if (op === 'add' && present) {
      this.#ownedMacs.add(key);
      return;
    }
    if (op === 'del' && !present) return;
    this.#linkErrors++;
    const msg = `pcap: ip maddr ${op} ${key} dev ${this.ifname} failed: ${err || 'no effect'}`;
    if (op === 'add') throw new PcapBackendError('ELINK', msg);
    this.#logger?.warn({ ifname: this.ifname }, msg);
  }

  #staticMacs(): Set<string> {
    try {
      return parseDevMcast(readFileSync('/proc/net/dev_mcast', 'utf8'), this.ifname);
    } catch {
      return new Set();
    }
  }

  /** Run `ip ARGS`; returns stderr (empty on success). Never throws. */
  #ip1(args: string[]): string {
    const r = spawnSync(this.#ip, args, { encoding: 'utf8', timeout: 10_000 });
    if (r.error) return `${this.#ip}: ${r.error.message}`;
    return r.status === 0 ? '' : (r.stderr || `exit ${r.status}`).trim();
  }

  /** `ip -j link show` flags of the interface (user-set ALLMULTI / PROMISC show here). */
  #linkFlags(): string[] {
    const r = spawnSync(this.#ip, ['-j', 'link', 'show', 'dev', this.ifname], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0 || r.error) return [];
    try {
      return (JSON.parse(r.stdout) as { flags?: string[] }[])[0]?.flags ?? [];
    } catch {
      return [];
    }
  }

  #setLinkFlag(flag: 'allmulticast' | 'promisc', on: boolean): void {
    const err = this.#ip1(['link', 'set', 'dev', this.ifname, flag, on ? 'on' : 'off']);
    if (err !== '') {
      this.#linkErrors++;
      throw new PcapBackendError('ELINK', `pcap: ip link set ${this.ifname} ${flag} ${on ? 'on' : 'off'} failed: ${err}`);
    }
  }

  /**
   * Receive every multicast frame (`ip link set IF allmulticast on`; `ip link` shows ALLMULTI).
   * Idempotent; off only undoes what we turned on.
   * @throws PcapBackendError ELINK when `ip` fails; EBADF after close().
   */
  setAllMulticast(on: boolean): void {
    if (this.#closed) throw Object.assign(new Error(`pcap: ${this.ifname}: back end is closed`), { code: 'EBADF' });
    if (on === this.#allMulti) return;
    if (on) {
      const already = this.#linkFlags().includes('ALLMULTI');
      if (!already) this.#setLinkFlag('allmulticast', true);
      this.#allMultiOwned = !already;
    } else if (this.#allMultiOwned) {
      this.#setLinkFlag('allmulticast', false);
      this.#allMultiOwned = false;
    }
    this.#allMulti = on;
  }

  /**
   * Promiscuous mode (`ip link set IF promisc on`). Idempotent; off only undoes what we turned on.
   * @throws PcapBackendError ELINK when `ip` fails; EBADF after close().
   */
  setPromiscuous(on: boolean): void {
    if (this.#closed) throw Object.assign(new Error(`pcap: ${this.ifname}: back end is closed`), { code: 'EBADF' });
    if (on === this.#promisc) return;
    if (on) {
      const already = this.#linkFlags().includes('PROMISC');
      if (!already) this.#setLinkFlag('promisc', true);
      this.#promiscOwned = !already;
    } else if (this.#promiscOwned) {
      this.#setLinkFlag('promisc', false);
      this.#promiscOwned = false;
    }
    this.#promisc = on;
  }

  // -------------------------------------------------------------------------------------------

  stats(): PcapStats {
    if (!this.#closed && !this.#finalized) {
      try {
        this.#lastKernelDrops = this.#session.stats().ps_drop;
      } catch {
        /* handle already freed: keep the last value */
      }
    }
    return {
      received: this.#received,
      kernelDrops: this.#lastKernelDrops,
      sent: this.#sent,
      sendErrors: this.#sendErrors,
      batches: this.#batches,
      truncated: this.#truncated,
      rawSent: this.#rawSent,
      injected: this.#injected,
      droppedBeforeStart: this.#droppedBeforeStart,
      linkErrors: this.#linkErrors,
      joinSockets: this.#joinSockets.length,
    };
  }

  /**
   * Stop delivery, undo every membership and mode we set, close the capture and the raw socket.
   * Never throws (failures are logged). Safe twice and inside onBatch.
   */
  close(): void {
    if (this.#closed) return;
    this.stats(); // keep the final kernel counters
    this.#closed = true;
    this.#count = 0;

    // Memberships: joins go with their sockets (below); static entries we added are deleted.
    for (const key of this.#ownedMacs) this.#maddr('del', key);
    this.#ownedMacs.clear();
    this.#macRefs.clear();
    for (const [flag, owned] of [
      ['allmulticast', this.#allMultiOwned],
      ['promisc', this.#promiscOwned],
    ] as const) {
      if (!owned) continue;
      try {
        this.#setLinkFlag(flag, false);
      } catch (err) {
        this.#logger?.warn({ ifname: this.ifname, err: (err as Error).message }, `pcap: could not turn ${flag} off on close`);
      }
    }
    this.#allMulti = this.#allMultiOwned = this.#promisc = this.#promiscOwned = false;

    // Capture: ask libpcap to break; free the handle via a wake-up read unless a read is running
    // now (inside onBatch), which frees it itself.
    this.#session.close();
    if (!this.#inDispatch && !this.#finalized && this.#raw !== undefined) {
      try {
        this.#raw.setOption(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 1);
        this.#raw.wrap.send(WAKE_MESSAGE, 0, WAKE_MESSAGE.length, `${WAKE_DST}%${this.ifname}`, () => {});
      } catch (err) {
        this.#logger?.debug({ ifname: this.ifname, err: (err as Error).message }, 'pcap: wake-up send failed');
      }
    }
    for (const sock of [this.#raw, ...this.#joinSockets]) {
      try {
        sock?.close();
      } catch {
        /* already closed */
      }
    }
    this.#joinSockets.length = 0;
    this.#joinedBy.clear();
  }
}

/** The errno name in a raw-socket error (it only gives strerror text). */
function errnoCode(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const known: [RegExp, string][] = [
    [/No buffer space/i, 'ENOBUFS'],
    [/Cannot allocate memory/i, 'ENOMEM'],
    [/No such device/i, 'ENODEV'],
    [/Operation not permitted/i, 'EPERM'],
    [/Permission denied/i, 'EACCES'],
    [/Address already in use/i, 'EADDRINUSE'],
    [/Invalid argument/i, 'EINVAL'],
  ];
  for (const [re, code] of known) if (re.test(msg)) return code;
  return 'EIO';
}

/**
 * The raw ICMPv6 socket for sending: bound to the interface, hop limit 255 (RFC 4861 requires it
 * on every ND message), no multicast loopback, and an ICMPv6 filter that blocks every type so
 * nothing queues on its receive side (its reading is paused anyway).
 * @throws Error when the socket can't be made or configured (not root, no such device).
 */
function openRawSocket(ifname: string): RawSocket {
  let raw: RawSocketModule;
  try {
    raw = require('raw-socket') as RawSocketModule;
  } catch (cause) {
    // An optional dependency: missing, or installed without its addon built.
    const first = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0];
    throw Object.assign(new Error(`cannot load the optional npm package 'raw-socket': ${first}`), {
      code: 'ERR_RAW_SOCKET_MISSING',
      cause,
    });
  }
  const sock = raw.createSocket({ protocol: raw.Protocol.ICMPv6, addressFamily: raw.AddressFamily.IPv6, bufferSize: 64 });
  sock.on('error', () => {});
  sock.pauseRecv();
  try {
    const dev = Buffer.from(`${ifname}\0`);
    sock.setOption(SOL_SOCKET, SO_BINDTODEVICE, dev, dev.length);
    sock.setOption(IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255);
    sock.setOption(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255);
    sock.setOption(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0);
    const blockAll = Buffer.alloc(32, 0xff);
    sock.setOption(IPPROTO_ICMPV6, ICMP6_FILTER, blockAll, blockAll.length);
  } catch (err) {
    sock.close();
    throw err;
  }
  return sock;
}
