/**
 * The file back end: replays a pcap file through the engine, offline. Frames are read with
 * node_pcap's offline session (libpcap, so classic pcap and pcapng both work) and delivered in
 * batches copied into one buffer; what the engine sends is collected, in order, into a sink
 * (a {@link PcapFileWriter}, or an array). Memberships are only recorded: there is no wire.
 *
 * node_pcap reads the whole file inside one setImmediate callback, so a replay runs start to
 * finish without yielding; {@link FileBackend.done} settles when it has.
 */
import type { PcapSession } from 'pcap';
import { formatMac } from '../addr/index.js';
import type { BackendStats, FrameBatch, PacketBackend } from './backend.js';
import { CodedError } from './coded-error.js';
import { headerU32, loadPcap } from './node-pcap.js';

/** The bit of node_pcap's session we use beyond its typings (pcap.js, `session.session`). */
interface NativeSession {
  dispatch(buf: Buffer, header: Buffer): number;
}
interface SessionInternals {
  session: NativeSession;
  buf: Buffer;
  header: Buffer;
}

/** Where output frames go: anything with PcapFileWriter's `write`, or an array (copies are pushed). */
export interface FrameWriter {
  write(data: Uint8Array, off: number, len: number, tsSec?: number, tsUsec?: number): void;
}
export type FrameSinkTarget = FrameWriter | Uint8Array[];

export interface FileBackendOptions {
  /** pcap (or pcapng) file to read. */
  path: string;
  /** Where `send` puts frames. Default: dropped (only counted). */
  sink?: FrameSinkTarget;
  /** Frames per batch, 1..4096. Default 64. */
  batchSize?: number;
  /** libpcap filter expression applied while reading. Default none. */
  filter?: string;
}

/** How a replay ended. */
export interface FileReplayResult {
  /** True when the whole file was read; false when close() came first. */
  completed: boolean;
  frames: number;
  batches: number;
}

/** An Error with a `code`. */
export class FileBackendError extends CodedError {}

/**
 * Open an offline session, turning libpcap's errors into coded ones.
 * @throws the fs error (ENOENT, EACCES, EISDIR...) when the file can't be opened;
 *   FileBackendError EBADPCAP when it is not a capture file or its link type is not Ethernet.
 */
function openOffline(path: string, filter: string): PcapSession {
  const pcap = loadPcap();
  let session: PcapSession;
  try {
    session = pcap.createOfflineSession(path, { filter });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const fsCode = /No such file/i.test(msg)
      ? 'ENOENT'
      : /Permission denied/i.test(msg)
        ? 'EACCES'
        : /Is a directory/i.test(msg)
          ? 'EISDIR'
          : undefined;
    if (fsCode !== undefined) {
      throw Object.assign(new Error(`${fsCode}: cannot open pcap file '${path}': ${msg}`), { code: fsCode, path, cause: err });
    }
    throw new FileBackendError('EBADPCAP', `'${path}' is not a readable pcap file: ${msg}`, { cause: err });
  }
  const linkType = session.link_type as string;
  if (linkType !== 'LINKTYPE_ETHERNET') {
    session.close();
    throw new FileBackendError(
      'EBADPCAP',
      `'${path}' has link type ${linkType}; only Ethernet (LINKTYPE_ETHERNET, 1) captures can be replayed`,
    );
  }
  return session;
}

/** A {@link PacketBackend} over a capture file. */
export class FileBackend implements PacketBackend {
  readonly name = 'file' as const;
  readonly path: string;
  readonly batchSize: number;
  /** Settles when the replay has ended (file read to the end, or close()). Never rejects. */
  readonly done: Promise<FileReplayResult>;

  readonly #filter: string;
  readonly #sink: FrameSinkTarget | undefined;
  #resolveDone!: (r: FileReplayResult) => void;
  #session: PcapSession | undefined;
  #onBatch: ((b: FrameBatch) => void) | undefined;
  #phase: 'idle' | 'reading' | 'done' | 'closed' = 'idle';

  // The batch: frames copied back to back into #buf.
  #buf = new Uint8Array(64 * 2048);
  #used = 0;
  readonly #offsets: Uint32Array;
  readonly #lengths: Uint32Array;
  #count = 0;
  /** Timestamp of the newest frame read: output frames are stamped with it. */
  #tsSec = 0;
  #tsUsec = 0;

  #frames = 0;
  #batches = 0;
  #sent = 0;
  readonly #macs = new Map<string, number>();
  #allMulti = false;
  #promisc = false;

  /**
   * Check the file now (open it with libpcap and close it again) so a bad path fails here,
   * not later inside start().
   * @throws the fs error (code ENOENT, EACCES, ...) or FileBackendError EBADPCAP
   *   (not a capture file, or not Ethernet); RangeError ERR_OUT_OF_RANGE for a bad batchSize.
   */
  constructor(opts: FileBackendOptions) {
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 4096) {
      throw Object.assign(new RangeError(`file: batchSize must be an integer in 1..4096, got ${batchSize}`), {
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    this.path = opts.path;
    this.batchSize = batchSize;
    this.#filter = opts.filter ?? '';
    this.#sink = opts.sink;
    this.#offsets = new Uint32Array(batchSize);
    this.#lengths = new Uint32Array(batchSize);
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    // Probe. close() only asks libpcap to break; node_pcap's pending read then sees the break
    // and frees the handle (pcap_close) without reading anything.
    openOffline(this.path, this.#filter).close();
  }

  /**
   * Start reading; `onBatch` gets up to batchSize frames at a time, in file order.
   * @throws Error code ERR_ALREADY_STARTED on a second call, EBADF after close(); the open
   *   errors of the constructor if the file changed since.
   */
  start(onBatch: (batch: FrameBatch) => void): void {
    if (this.#phase === 'closed') throw Object.assign(new Error('file: back end is closed'), { code: 'EBADF' });
    if (this.#phase !== 'idle') throw Object.assign(new Error('file: already started'), { code: 'ERR_ALREADY_STARTED' });
    const session = openOffline(this.path, this.#filter);
    this.#session = session;
    this.#onBatch = onBatch;
    this.#phase = 'reading';
    session.on('packet', (p: { buf: Buffer; header: Buffer }) => this.#onPacket(p.buf, p.header));
    session.on('complete', () => this.#onComplete());
  }

  #onPacket(data: Buffer, header: Buffer): void {
    if (this.#phase !== 'reading') return;
    const tsSec = headerU32(header, 0);
    const tsUsec = headerU32(header, 4);
    let len = headerU32(header, 8);
    if (len > data.length) len = data.length;
    if (this.#count === this.batchSize || this.#used + len > this.#buf.length) this.#flush();
    if (this.#phase !== 'reading') return; // closed from inside onBatch
    if (len > this.#buf.length) this.#buf = new Uint8Array(len);
    this.#buf.set(data.subarray(0, len), this.#used);
    this.#offsets[this.#count] = this.#used;
    this.#lengths[this.#count] = len;
    this.#count++;
    this.#used += len;
    this.#tsSec = tsSec;
    this.#tsUsec = tsUsec;
  }

  #flush(): void {
    const count = this.#count;
    if (count === 0) return;
    this.#count = 0;
    this.#used = 0;
    this.#frames += count;
    this.#batches++;
    this.#onBatch?.({ buf: this.#buf, offsets: this.#offsets, lengths: this.#lengths, count });
  }

  #onComplete(): void {
    if (this.#phase !== 'reading') return;
    this.#flush();
    if (this.#phase !== 'reading') return; // closed from inside the last onBatch
    this.#phase = 'done';
    this.#release();
    this.#resolveDone({ completed: true, frames: this.#frames, batches: this.#batches });
  }

  /** Free libpcap's handle after the end of file (we are outside node_pcap's read loop here). */
  #release(): void {
    const s = this.#session;
    if (s === undefined) return;
    this.#session = undefined;
    s.close();
    // At end of file node_pcap leaves the handle open; a dispatch after close() sees the break
    // request and frees it (returns -2).
    const internals = s as unknown as SessionInternals;
    internals.session.dispatch(internals.buf, internals.header);
  }

  /**
   * Append `count` frames to the sink, in order, stamped with the time of the newest frame read.
   * @returns frames accepted (all of them; 0 after close()).
   * @throws RangeError ERR_OUT_OF_RANGE when a frame lies outside `buf`.
   */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.#phase === 'closed') return 0;
    if (!Number.isInteger(count) || count < 0 || count > offsets.length || count > lengths.length) {
      throw Object.assign(new RangeError(`file: bad frame count ${count}`), { code: 'ERR_OUT_OF_RANGE' });
    }
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      const len = lengths[i]!;
      if (off + len > buf.length) {
        throw Object.assign(new RangeError(`file: frame ${i} (offset ${off}, length ${len}) is outside buf`), {
          code: 'ERR_OUT_OF_RANGE',
        });
      }
      const sink = this.#sink;
      if (Array.isArray(sink)) sink.push(buf.slice(off, off + len));
      else if (sink !== undefined) sink.write(buf, off, len, this.#tsSec, this.#tsUsec);
      this.#sent++;
    }
    return count;
  }

  /** Recorded only (reference counted, like the live back ends). */
  addMulticast(mac: Uint8Array): void {
    const key = formatMac(mac);
    this.#macs.set(key, (this.#macs.get(key) ?? 0) + 1);
  }

  /** @throws Error code EADDRNOTAVAIL when `mac` was not added. */
  removeMulticast(mac: Uint8Array): void {
    const key = formatMac(mac);
    const n = this.#macs.get(key) ?? 0;
    if (n === 0) throw Object.assign(new Error(`file: ${key} was not added`), { code: 'EADDRNOTAVAIL' });
    if (n === 1) this.#macs.delete(key);
    else this.#macs.set(key, n - 1);
  }

  setAllMulticast(on: boolean): void {
    this.#allMulti = on;
  }

  setPromiscuous(on: boolean): void {
    this.#promisc = on;
  }

  /** What the live back end would have joined: MACs with reference counts, allmulti, promisc. */
  membership(): { macs: ReadonlyMap<string, number>; allMulticast: boolean; promiscuous: boolean } {
    return { macs: new Map(this.#macs), allMulticast: this.#allMulti, promiscuous: this.#promisc };
  }

  stats(): BackendStats {
    return { received: this.#frames, kernelDrops: 0, sent: this.#sent, sendErrors: 0 };
  }

  /** Stop reading (frames not yet delivered are dropped). Safe twice and inside onBatch. */
  close(): void {
    const phase = this.#phase;
    if (phase === 'closed') return;
    this.#phase = 'closed';
    this.#macs.clear();
    this.#allMulti = false;
    this.#promisc = false;
    if (phase === 'reading') {
      // Inside node_pcap's read loop (onBatch), or before it ran: either way its next read
      // sees the break request and frees the handle. Do not dispatch here.
      const s = this.#session;
      this.#session = undefined;
      s?.close();
    }
    this.#count = 0;
    this.#used = 0;
    this.#resolveDone({ completed: phase === 'done', frames: this.#frames, batches: this.#batches });
  }
}
