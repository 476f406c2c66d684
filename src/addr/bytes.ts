/**
 * IPv6 and MAC addresses as bytes: tests, comparisons, prefix masks and covers, the
 * solicited-node group and its MAC, the EUI-64 link-local address. For the hot path: no strings,
 * no allocation (except where a function says it returns a new array).
 */

/** True when the 16 bytes at `off` are ff00::/8. */
export function isMulticast(b: Uint8Array, off: number): boolean {
  return b[off] === 0xff;
}

/** True when the 16 bytes at `off` are all zero (::). */
export function isUnspecified(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) return false;
  return true;
}

/** Compare 16 bytes. */
export function equal16(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Compare 6 bytes (MAC addresses). */
export function equal6(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 6; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** The solicited-node prefix ff02::1:ff00:0/104 (RFC 4291 section 2.7.1). */
const SOLICITED_NODE_PREFIX = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/** True when the 16 bytes at `groupOff` are the solicited-node group of the address at `addrOff`. */
export function isSolicitedNodeOf(group: Uint8Array, groupOff: number, addr: Uint8Array, addrOff: number): boolean {
  for (let i = 0; i < 13; i++) if (group[groupOff + i] !== SOLICITED_NODE_PREFIX[i]) return false;
  return (
    group[groupOff + 13] === addr[addrOff + 13] &&
    group[groupOff + 14] === addr[addrOff + 14] &&
    group[groupOff + 15] === addr[addrOff + 15]
  );
}

/** True when the 16 bytes at `off` are some solicited-node group (ff02::1:ffxx:xxxx). */
export function isSolicitedNode(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 13; i++) if (b[off + i] !== SOLICITED_NODE_PREFIX[i]) return false;
  return true;
}

/** Write the solicited-node group of the address at `addrOff` into `out` at `outOff`. */
export function solicitedNodeAddress(addr: Uint8Array, addrOff: number, out: Uint8Array, outOff: number): void {
  for (let i = 0; i < 13; i++) out[outOff + i] = SOLICITED_NODE_PREFIX[i]!;
  out[outOff + 13] = addr[addrOff + 13]!;
  out[outOff + 14] = addr[addrOff + 14]!;
  out[outOff + 15] = addr[addrOff + 15]!;
}

/** Write the Ethernet multicast MAC (33:33:ff:xx:xx:xx) of the solicited-node group of an address. */
export function solicitedNodeMac(addr: Uint8Array, addrOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  out[outOff + 2] = 0xff;
  out[outOff + 3] = addr[addrOff + 13]!;
  out[outOff + 4] = addr[addrOff + 14]!;
  out[outOff + 5] = addr[addrOff + 15]!;
}

/** Write the Ethernet multicast MAC for any IPv6 multicast group (33:33 + low 32 bits, RFC 2464 section 7). */
export function multicastMac(group: Uint8Array, groupOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  out[outOff + 2] = group[groupOff + 12]!;
  out[outOff + 3] = group[groupOff + 13]!;
  out[outOff + 4] = group[groupOff + 14]!;
  out[outOff + 5] = group[groupOff + 15]!;
}

/** True when the 16 bytes at `off` are a link-local unicast address (fe80::/10, RFC 4291 section 2.5.6). */
export function isLinkLocalUnicast(b: Uint8Array, off: number): boolean {
  return b[off] === 0xfe && (b[off + 1]! & 0xc0) === 0x80;
}

/** Zero the bits beyond `length` of the 16 bytes at `off`, in place. */
export function maskBytes(b: Uint8Array, off: number, length: number): void {
  for (let i = 0; i < 16; i++) {
    const bits = length - i * 8;
    if (bits >= 8) continue;
    b[off + i] = bits <= 0 ? 0 : b[off + i]! & (0xff << (8 - bits));
  }
}

/** True when the first `length` bits of `prefix` (16 bytes) equal those of the address at `off`. */
export function prefixCovers(prefix: Uint8Array, length: number, addr: Uint8Array, off = 0): boolean {
  const full = length >> 3;
  for (let i = 0; i < full; i++) if (prefix[i] !== addr[off + i]) return false;
  const rem = length & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((prefix[full]! ^ addr[off + full]!) & mask) === 0;
}

/** The modified EUI-64 link-local address of a MAC (RFC 4291 appendix A), fe80::/64. Returns a new array. */
export function linkLocalFromMac(mac: Uint8Array): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xfe;
  a[1] = 0x80;
  a[8] = mac[0]! ^ 0x02;
  a[9] = mac[1]!;
  a[10] = mac[2]!;
  a[11] = 0xff;
  a[12] = 0xfe;
  a[13] = mac[3]!;
  a[14] = mac[4]!;
  a[15] = mac[5]!;
  return a;
}
