/** A minimal classic-pcap reader for tests (independent of node_pcap, which the product uses). */
import { readFileSync } from 'node:fs';

export interface PcapFile {
  linktype: number;
  frames: Uint8Array[];
}

/** Minimal classic pcap reader. @throws on anything that is not classic pcap. */
export function readPcap(path: string): PcapFile {
  const buf = readFileSync(path);
  if (buf.length < 24) throw new Error('shorter than the global header');
  const m = buf.readUInt32LE(0);
  const le = m === 0xa1b2c3d4 || m === 0xa1b23c4d;
  const mb = buf.readUInt32BE(0);
  if (!le && mb !== 0xa1b2c3d4 && mb !== 0xa1b23c4d) throw new Error(`bad magic 0x${m.toString(16)}`);
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  if (u16(4) !== 2) throw new Error(`version ${u16(4)}.${u16(6)}`);
  const frames: Uint8Array[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) throw new Error('partial record header');
    const incl = u32(off + 8);
    const orig = u32(off + 12);
    if (incl > orig) throw new Error('captured length > original length');
    off += 16;
    if (off + incl > buf.length) throw new Error('record runs past the end');
    frames.push(new Uint8Array(buf.subarray(off, off + incl)));
    off += incl;
  }
  return { linktype: u32(20), frames };
}
