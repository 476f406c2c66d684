/**
 * A deliberately slow and plain reference validator for Neighbor Solicitation frames,
 * written from the RFC text and sharing no code with src/ndp/parse.ts. The fuzz test checks
 * that the fast parser accepts exactly the frames this one accepts.
 *
 * Everything is decoded into plain objects first, then each rule is checked on its own.
 */

interface Option {
  type: number;
  /** Length in bytes (the length field times 8). */
  bytes: number;
  /** Offset of the option's type byte in the whole frame. */
  frameOffset: number;
}

/** What the reference decoded from an NS frame; `problem` is null when the frame is a valid NS. */
export interface ReferenceNs {
  problem: string | null;
  vlanTci: number;
  ipOffset: number;
  targetOffset: number;
  unspecifiedSource: boolean;
  /** Frame offset of the SLLAO MAC (first SLLAO), or -1. */
  sllaoMacOffset: number;
  /** Frame offset of the first Nonce option, or -1. */
  nonceOffset: number;
}

function bytesAt(dv: DataView, off: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(dv.getUint8(off + i));
  return out;
}

function checksumOk(src: number[], dst: number[], icmp: number[]): boolean {
  // RFC 8200 section 8.1 pseudo-header: src, dst, 32-bit upper-layer length, 3 zero bytes, 58.
  const len = icmp.length;
  const words: number[] = [...src, ...dst, (len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255, 0, 0, 0, 58, ...icmp];
  if (words.length % 2 === 1) words.push(0);
  let total = 0;
  for (let i = 0; i < words.length; i += 2) total += words[i]! * 256 + words[i + 1]!;
  total = total % 65535; // one's-complement sum modulo 2^16 - 1 (end-around carry)
  // Sum including the checksum field must be all ones, i.e. 0 modulo 65535 (and not empty).
  return total === 0 && words.some((b) => b !== 0);
}

/**
 * Decode and judge one frame (Ethernet II from offset 0 to the end of `frame`).
 * RFC 4861 sections 4.3, 4.6 and 7.1.1; RFC 4291 section 2.7 for multicast and solicited-node
 * addresses; RFC 2464 section 6 for the Ethernet link-layer option.
 */
export function referenceDecodeNS(frame: Uint8Array): ReferenceNs {
  const r: ReferenceNs = {
    problem: null,
    vlanTci: -1,
    ipOffset: -1,
    targetOffset: -1,
    unspecifiedSource: false,
    sllaoMacOffset: -1,
    nonceOffset: -1,
  };
  const fail = (why: string): ReferenceNs => {
    r.problem = why;
    return r;
  };
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);

  // Ethernet II: dst(6) src(6) type(2); a single 802.1Q tag may sit before the type.
  if (frame.length < 14) return fail('no ethernet header');
  let typeAt = 12;
  let type = dv.getUint16(typeAt);
  if (type === 0x8100) {
    if (frame.length < 18) return fail('no room for the tag');
    r.vlanTci = dv.getUint16(14);
    typeAt = 16;
    type = dv.getUint16(typeAt);
  }
  if (type !== 0x86dd) return fail('not IPv6 (or more than one tag)');

  // IPv6 fixed header (RFC 8200 section 3).
  const ipAt = typeAt + 2;
  r.ipOffset = ipAt;
  if (frame.length < ipAt + 40) return fail('no IPv6 header');
  const ip = {
    version: dv.getUint8(ipAt) >> 4,
    payloadLength: dv.getUint16(ipAt + 4),
    nextHeader: dv.getUint8(ipAt + 6),
    hopLimit: dv.getUint8(ipAt + 7),
    src: bytesAt(dv, ipAt + 8, 16),
    dst: bytesAt(dv, ipAt + 24, 16),
  };
  if (ip.version !== 6) return fail('version');
  if (frame.length < ipAt + 40 + ip.payloadLength) return fail('payload truncated');
  if (ip.nextHeader !== 58) return fail('next header is not ICMPv6');

  const icmpAt = ipAt + 40;
  const icmpBytes = bytesAt(dv, icmpAt, ip.payloadLength);
  if (icmpBytes.length < 1 || icmpBytes[0] !== 135) return fail('not a neighbor solicitation');

  // RFC 4861 section 7.1.1, in the order the RFC lists them.
  if (ip.hopLimit !== 255) return fail('hop limit');
  if (!checksumOk(ip.src, ip.dst, icmpBytes)) return fail('checksum');
  if (icmpBytes[1] !== 0) return fail('code');
  if (icmpBytes.length < 24) return fail('ICMP length < 24');
  const target = icmpBytes.slice(8, 24);
  r.targetOffset = icmpAt + 8;
  if (target[0] === 0xff) return fail('target is multicast');

  const options: Option[] = [];
  let at = 24;
  while (at < icmpBytes.length) {
    if (icmpBytes.length - at < 2) return fail('option header cut off');
    const bytes = icmpBytes[at + 1]! * 8;
    if (bytes === 0) return fail('option length 0');
    if (at + bytes > icmpBytes.length) return fail('option past the end');
    options.push({ type: icmpBytes[at]!, bytes, frameOffset: icmpAt + at });
    at += bytes;
  }

  const unspecified = ip.src.every((b) => b === 0);
  r.unspecifiedSource = unspecified;
  const isSolicitedNodeGroup = (a: number[]): boolean =>
    a[0] === 0xff && a[1] === 0x02 && a.slice(2, 11).every((b) => b === 0) && a[11] === 1 && a[12] === 0xff;
  const sllaos = options.filter((o) => o.type === 1);
  if (unspecified && !isSolicitedNodeGroup(ip.dst)) return fail('unspecified source, destination not solicited-node');
  if (unspecified && sllaos.length > 0) return fail('unspecified source with SLLAO');

  // Beyond 7.1.1: what we require before answering.
  if (ip.src[0] === 0xff) return fail('multicast source');

  // What an IPv6 node drops on input before ND ever runs (RFC 4291 2.5.3: ::1 is never sent
  // outside a node and a packet to ::1 arriving on an interface is dropped; RFC 4291 2.7 and
  // errata 3480: multicast scope 0 is reserved and interface-local scope 1 never leaves a node;
  // RFC 6890: ::ffff:0:0/96 is never a source). Linux's ip6_rcv_core has the same rules.
  const loopback = [...new Array<number>(15).fill(0), 1];
  const same = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  const v4MappedPrefix = [...new Array<number>(10).fill(0), 0xff, 0xff];
  if (same(ip.src, loopback)) return fail('loopback source');
  if (same(ip.src.slice(0, 12), v4MappedPrefix)) return fail('IPv4-mapped source');
  if (same(ip.dst, loopback)) return fail('loopback destination');
  if (ip.dst[0] === 0xff) {
    const scope = ip.dst[1]! % 16;
    if (scope === 1) return fail('interface-local multicast destination');
    if (scope === 0) return fail('multicast destination with reserved scope 0');
  }
  for (const o of sllaos) {
    if (o.bytes !== 8) return fail('SLLAO is not 8 bytes');
    if ((frame[o.frameOffset + 2]! & 1) === 1) return fail('SLLAO carries a group MAC');
  }
  const dstIsTarget = ip.dst.every((b, i) => b === target[i]);
  const dstIsTargetsGroup =
    isSolicitedNodeGroup(ip.dst) && ip.dst[13] === target[13] && ip.dst[14] === target[14] && ip.dst[15] === target[15];
  if (!dstIsTarget && !dstIsTargetsGroup) return fail('destination is neither the target nor its solicited-node group');
  if (!unspecified && sllaos.length === 0 && (frame[6]! & 1) === 1) return fail('no SLLAO and a group Ethernet source: nowhere to answer');

  r.sllaoMacOffset = sllaos.length > 0 ? sllaos[0]!.frameOffset + 2 : -1;
  const nonce = options.find((o) => o.type === 14);
  r.nonceOffset = nonce ? nonce.frameOffset : -1;
  return r;
}

/** True when `frame` (the whole array) is a Neighbor Solicitation we may answer. */
export function referenceAcceptsNS(frame: Uint8Array): boolean {
  return referenceDecodeNS(frame).problem === null;
}
