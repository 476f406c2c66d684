/**
 * A small classic-pcap writer (microsecond timestamps, LINKTYPE_ETHERNET).
 * Replay output and hand-made fixtures are written with it; reading goes through node_pcap.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const PCAP_MAGIC_US = 0xa1b2c3d4;
export const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

/** Encode a global pcap header (24 bytes). */
export function pcapGlobalHeader(linktype = LINKTYPE_ETHERNET): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(PCAP_MAGIC_US, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeInt32LE(0, 8);
  h.writeUInt32LE(0, 12);
  h.writeUInt32LE(SNAPLEN, 16);
  h.writeUInt32LE(linktype, 20);
  return h;
}

/** Encode one record header (16 bytes) for a frame of `len` bytes at `tsSec`.`tsUsec`. */
export function pcapRecordHeader(len: number, tsSec: number, tsUsec: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(tsSec >>> 0, 0);
  h.writeUInt32LE(tsUsec >>> 0, 4);
  h.writeUInt32LE(len, 8);
  h.writeUInt32LE(len, 12);
  return h;
}

/** Serialise whole frames to a pcap file image in memory. */
export function encodePcap(frames: readonly { data: Uint8Array; tsSec?: number; tsUsec?: number }[]): Buffer {
  const parts: Buffer[] = [pcapGlobalHeader()];
  for (const f of frames) {
    parts.push(pcapRecordHeader(f.data.length, f.tsSec ?? 0, f.tsUsec ?? 0), Buffer.from(f.data));
  }
  return Buffer.concat(parts);
}

/** Streams frames to a pcap file with synchronous writes. */
export class PcapFileWriter {
  private fd: number;
  private readonly owned: boolean;
  frames = 0;

  /**
   * @param target a path (created or truncated), or an open file descriptor (stdout is 1),
   *   which is written to but not closed.
   * @throws the fs error (with `code`) when the file cannot be created.
   */
  constructor(target: string | number) {
    this.owned = typeof target === 'string';
    this.fd = typeof target === 'string' ? openSync(target, 'w') : target;
    writeAll(this.fd, pcapGlobalHeader(), 0, 24);
  }

  write(data: Uint8Array, off: number, len: number, tsSec = 0, tsUsec = 0): void {
    writeAll(this.fd, pcapRecordHeader(len, tsSec, tsUsec), 0, 16);
    writeAll(this.fd, data, off, len);
    this.frames++;
  }

  close(): void {
    if (this.fd >= 0) {
      if (this.owned) closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** writeSync until every byte is out (a pipe takes partial writes; EAGAIN on a non-blocking one is retried). */
function writeAll(fd: number, data: Uint8Array, off: number, len: number): void {
  let done = 0;
  let spins = 0;
  while (done < len) {
    try {
      done += writeSync(fd, data, off + done, len - done);
    } catch (e) {
      // A non-blocking pipe that is full: wait briefly and try again (bounded).
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++spins > 100_000) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}
