/**
 * The one small interface every packet back end implements: frames in, in batches;
 * answers out, in batches; link-layer multicast membership; counters.
 * Back ends move frames. They never decide what to answer: that is the engine's job.
 */

/** A batch of received frames, all inside one buffer the back end owns. */
export interface FrameBatch {
  /**
   * Memory holding the frames. Valid only during the callback; copy what you keep, never
   * transfer or detach its buffer (the afpacket back end then stops: ERR_RX_BUFFER_DETACHED).
   */
  readonly buf: Uint8Array;
  /** Start of frame i in `buf`. */
  readonly offsets: Uint32Array;
  /** Captured length of frame i. */
  readonly lengths: Uint32Array;
  /** Number of valid entries in offsets/lengths. */
  readonly count: number;
}

export interface BackendStats {
  /** Frames handed to JavaScript. */
  received: number;
  /** Frames the kernel dropped before we read them (PACKET_STATISTICS tp_drops or pcap ps_drop). */
  kernelDrops: number;
  /** Frames sent. */
  sent: number;
  /** Frames the kernel refused to send. */
  sendErrors: number;
}

/** Anything that sends whole frames: a back end, or the daemon routing to whichever is open. */
export type FrameSink = Pick<PacketBackend, 'send'>;

export interface PacketBackend {
  readonly name: 'afpacket' | 'pcap' | 'file';
  /** Begin delivering batches. `onBatch` runs on the event loop, once per batch. */
  start(onBatch: (batch: FrameBatch) => void): void;
  /**
   * Send `count` complete Ethernet frames from `buf` (frame i at offsets[i], lengths[i]).
   * Returns the number of frames the kernel accepted.
   */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  /** Add a link-layer multicast address (e.g. 33:33:ff:xx:xx:xx) to the interface's filter. */
  addMulticast(mac: Uint8Array): void;
  removeMulticast(mac: Uint8Array): void;
  /** Receive all multicast frames (for prefix rules, which cannot be enumerated). */
  setAllMulticast(on: boolean): void;
  setPromiscuous(on: boolean): void;
  stats(): BackendStats;
  /** Release the socket and every membership. Safe to call twice and from inside onBatch. */
  close(): void;
}
