/**
 * The Internet checksum (RFC 1071) over ICMPv6 with the IPv6 pseudo-header
 * (RFC 8200 section 8.1). Allocation-free; works on any Uint8Array view.
 */

/** One's-complement sum of `len` bytes at `off`, added to `sum` (not folded). */
export function sum16(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) sum += buf[i]! << 8;
  return sum;
}

/** Fold a 32-bit-or-wider accumulated sum to 16 bits. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Checksum field value for an ICMPv6 message of `icmpLen` bytes at `icmpOff`,
 * whose IPv6 source and destination are at `srcOff` and `dstOff`.
 * The checksum field itself (icmpOff+2..3) must be zero when building; when verifying,
 * use {@link icmp6ChecksumValid} instead.
 */
export function icmp6Checksum(buf: Uint8Array, srcOff: number, dstOff: number, icmpOff: number, icmpLen: number): number {
  let s = sum16(buf, srcOff, 16, 0);
  s = sum16(buf, dstOff, 16, s);
  s += (icmpLen >>> 16) + (icmpLen & 0xffff) + 58;
  s = sum16(buf, icmpOff, icmpLen, s);
  return ~fold(s) & 0xffff;
}

/** True when the ICMPv6 message (checksum field included) verifies. */
export function icmp6ChecksumValid(buf: Uint8Array, srcOff: number, dstOff: number, icmpOff: number, icmpLen: number): boolean {
  let s = sum16(buf, srcOff, 16, 0);
  s = sum16(buf, dstOff, 16, s);
  s += (icmpLen >>> 16) + (icmpLen & 0xffff) + 58;
  s = sum16(buf, icmpOff, icmpLen, s);
  return fold(s) === 0xffff;
}

/** Compute and store the ICMPv6 checksum of a message whose header sits at `icmpOff`. */
export function writeIcmp6Checksum(buf: Uint8Array, srcOff: number, dstOff: number, icmpOff: number, icmpLen: number): void {
  buf[icmpOff + 2] = 0;
  buf[icmpOff + 3] = 0;
  const c = icmp6Checksum(buf, srcOff, dstOff, icmpOff, icmpLen);
  buf[icmpOff + 2] = c >>> 8;
  buf[icmpOff + 3] = c & 0xff;
}
