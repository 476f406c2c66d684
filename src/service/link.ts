/**
 * The link: one uplink's packet back end, kept open across flaps, and the single sink for every
 * frame we send (answers, unsolicited NAs, MLD reports). While the link is down, sends return 0
 * and are counted as failed by their senders; nothing holds a closed back end.
 *
 * The interface is re-read every `pollMs`:
 *  - gone: the socket is closed; it is reopened when the interface is back (new ifindex, MAC);
 *  - came up again, or the socket reported an error, or the ifindex, MAC or MTU changed: reopened
 *    (the kernel unhooks a packet socket whose device went down; the ring's slots are sized from
 *    the MTU);
 *  - addresses or the link-local address changed: reported to the listeners; the socket stays
 *    open, so answering never pauses for an address change.
 */
import type { Logger } from 'pino';
import { AfPacketBackend } from '../io/afpacket.js';
import { ND_AND_MLD_QUERY } from '../io/bpf.js';
import type { BackendStats, FrameBatch, FrameSink, PacketBackend } from '../io/backend.js';
import { readInterfaceFacts, toSenderFacts, type InterfaceFacts, type SenderFacts } from '../io/interface.js';
import { PcapBackend } from '../io/pcap-backend.js';
import { equal16, equal6 } from '../addr/index.js';
import { DaemonError } from './errors.js';

export type BackendKind = 'afpacket' | 'pcap';

export interface LinkOptions {
  readonly ifname: string;
  readonly backend: BackendKind;
  readonly promiscuous?: boolean;
  readonly logger: Logger;
  /** How often the interface is re-read; default 1000 ms. */
  readonly pollMs?: number;
}

export interface LinkListener {
  /** Frames received (one call per batch). */
  onBatch(batch: FrameBatch): void;
  /** The socket is open (first time and after every reopen): set up memberships. */
  onOpen(): void;
  /** The socket is about to close: leave groups while frames can still be sent. */
  onClose(): void;
  /** MAC or link-local address changed (answers must use the new ones). */
  onSender(sender: SenderFacts): void;
  /** The interface's addresses changed. */
  onAddresses(facts: InterfaceFacts): void;
}

/**
 * Read an uplink's facts. With `wait`, a missing interface gives undefined instead of an error.
 * @throws DaemonError when the interface does not exist (and `wait` is false) or cannot be read.
 */
export function readUplinkFacts(ifname: string, wait = false): InterfaceFacts | undefined {
  try {
    return readInterfaceFacts(ifname);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (wait && code === 'ENODEV') return undefined;
    if (code === 'ENODEV') throw new DaemonError(`interface '${ifname}' does not exist`, code);
    throw new DaemonError(`interface '${ifname}': ${(e as Error).message}`, code);
  }
}

const ZERO_STATS: BackendStats = Object.freeze({ received: 0, kernelDrops: 0, sent: 0, sendErrors: 0 });

export class Link implements FrameSink {
  private facts: InterfaceFacts | undefined;
  private backend: PacketBackend | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reopenWanted = false;
  private closed = false;
  /** Back-end counters of sockets already closed, so the series keep counting across reopens. */
  private past: BackendStats = { ...ZERO_STATS };
  private readonly log: Logger;
  /** Times the socket was (re)opened. */
  opens = 0;

  constructor(
    private readonly opts: LinkOptions,
    private readonly listener: LinkListener,
  ) {
    this.log = opts.logger;
  }

  get ifname(): string {
    return this.opts.ifname;
  }

  /** True while a packet socket is open. */
  get up(): boolean {
    return this.backend !== undefined;
  }

  /** The interface as last read (undefined before the first read or while it is gone). */
  interfaceFacts(): InterfaceFacts | undefined {
    return this.facts;
  }

  /**
   * Read the interface. With `wait`, a missing interface is not an error: the link comes up
   * when the interface appears.
   * @throws DaemonError when the interface does not exist (and `wait` is false).
   */
  readFacts(wait = false): InterfaceFacts | undefined {
    this.facts = readUplinkFacts(this.opts.ifname, wait);
    return this.facts;
  }

  /**
   * Open the socket now (facts must have been read) and start following the interface.
   * @throws DaemonError when the socket cannot be opened (privileges, interface gone).
   */
  start(): void {
    this.open();
    this.poll = setInterval(() => this.check(), this.opts.pollMs ?? 1000);
  }

  /** Follow the interface without opening now (it does not exist yet: `--wait-interface`). */
  startWaiting(): void {
    this.poll = setInterval(() => this.check(), this.opts.pollMs ?? 1000);
  }

  stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.poll !== undefined) clearInterval(this.poll);
    this.closeBackend();
  }

  /** FrameSink: every sender's frames go out here, to whichever socket is open now. */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.backend === undefined) return 0;
    return this.backend.send(buf, offsets, lengths, count);
  }

  addMulticast(mac: Uint8Array): void {
    this.backend?.addMulticast(mac);
  }

  removeMulticast(mac: Uint8Array): void {
    this.backend?.removeMulticast(mac);
  }

  setAllMulticast(on: boolean): void {
    this.backend?.setAllMulticast(on);
  }

  /** Back-end counters summed over every socket this link has had. */
  stats(): BackendStats {
    const b = this.backend?.stats() ?? ZERO_STATS;
    return {
      received: this.past.received + b.received,
      kernelDrops: this.past.kernelDrops + b.kernelDrops,
      sent: this.past.sent + b.sent,
      sendErrors: this.past.sendErrors + b.sendErrors,
    };
  }

  private open(): void {
    const facts = this.facts;
    if (facts === undefined) throw new DaemonError(`interface '${this.opts.ifname}' has not been read`, 'ENODEV');
    let backend: PacketBackend;
    try {
      backend =
        this.opts.backend === 'pcap'
          ? PcapBackend.open({ ifname: this.opts.ifname, host: toSenderFacts(facts) })
          : AfPacketBackend.open({
              ifname: this.opts.ifname,
              ifindex: facts.ifindex,
              filter: ND_AND_MLD_QUERY,
              onError: (e) => this.socketError(e),
            });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'EPERM' || code === 'EACCES') {
        throw new DaemonError(
          `cannot open a packet socket on '${this.opts.ifname}': needs CAP_NET_RAW (run as root, or give it: docs/privileges.md)`,
          code,
        );
      }
      if (code === 'ENODEV' || code === 'ENXIO') throw new DaemonError(`interface '${this.opts.ifname}' does not exist`, code);
      throw new DaemonError(`cannot open '${this.opts.ifname}' (${this.opts.backend}): ${(e as Error).message}`, code);
    }
    this.backend = backend;
    this.opens++;
    if (this.opts.promiscuous) backend.setPromiscuous(true);
    backend.start((batch) => this.listener.onBatch(batch));
    this.listener.onOpen();
  }

  private closeBackend(): void {
    const b = this.backend;
    if (b === undefined) return;
    try {
      this.listener.onClose();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'leaving multicast groups failed');
    }
    const s = b.stats();
    this.past = {
      received: this.past.received + s.received,
      kernelDrops: this.past.kernelDrops + s.kernelDrops,
      sent: this.past.sent + s.sent,
      sendErrors: this.past.sendErrors + s.sendErrors,
    };
    this.backend = undefined;
    b.close();
  }

  /** The socket reported an error (e.g. ENETDOWN when the link went down): reopen on the next check. */
  private socketError(e: Error): void {
    this.log.warn({ err: e.message, code: (e as NodeJS.ErrnoException).code, reason: 'socket-error' }, 'packet socket error; reopening');
    this.reopenWanted = true;
  }

  /** Follow the interface: gone, back (new ifindex), MAC or addresses changed, down and up again. */
  private check(): void {
    if (this.closed) return;
    let f: InterfaceFacts | undefined;
    try {
      f = readInterfaceFacts(this.opts.ifname);
    } catch {
      f = undefined;
    }
    const prev = this.facts;
    if (f === undefined) {
      if (this.backend !== undefined) {
        this.log.warn({ interface: this.opts.ifname, reason: 'interface-gone' }, 'interface gone; waiting for it to come back');
        this.closeBackend();
      }
      return;
    }
    this.facts = f;
    if (prev !== undefined && !f.up && prev.up) this.log.warn({ interface: f.ifname, reason: 'interface-down' }, 'interface down');
    const reopen =
      this.backend === undefined ||
      this.reopenWanted ||
      prev === undefined ||
      (f.up && !prev.up) ||
      f.ifindex !== prev.ifindex ||
      f.mtu !== prev.mtu ||
      !equal6(f.mac, 0, prev.mac, 0);
    const senderChanged = prev === undefined || !equal6(f.mac, 0, prev.mac, 0) || !sameAddress(f.linkLocal, prev.linkLocal);
    const addressesChanged =
      prev === undefined ||
      f.addresses.length !== prev.addresses.length ||
      f.addresses.some((a, i) => {
        const b = prev.addresses[i];
        return b === undefined || a.prefixLength !== b.prefixLength || !equal16(a.addr, 0, b.addr, 0);
      });
    if (senderChanged) this.listener.onSender(toSenderFacts(f));
    if (addressesChanged) this.listener.onAddresses(f);
    if (!reopen) return;
    this.reopenWanted = false;
    this.closeBackend();
    try {
      this.open();
      this.log.info({ interface: f.ifname, ifindex: f.ifindex }, 'interface (re)opened');
    } catch (e) {
      this.log.warn({ err: (e as Error).message, reason: 'reopen-failed' }, 'cannot reopen interface; will retry');
    }
  }
}

function sameAddress(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return equal16(a, 0, b, 0);
}
