/**
 * What a Router or Neighbor Advertisement from another node says is in use on the link
 * (RFC 4861 sections 4.2 and 4.4): a Neighbor Advertisement's target is the sender's address; a
 * Router Advertisement's source is the router's. The conflict guard reads this so that an address
 * someone else uses is never claimed. Validated as RFC 4861 sections 6.1.2 and 7.1.2 ask (hop
 * limit 255, code 0, length, checksum) before it is believed. No allocation.
 */
import { icmp6ChecksumValid } from './checksum.js';
import { ETHERTYPE_IPV6, ETHERTYPE_VLAN, ETH_HLEN, ICMPV6_NA, IPPROTO_ICMPV6, IPV6_HLEN, ND_HOP_LIMIT, VLAN_HLEN } from './constants.js';

/** ICMPv6 Router Advertisement. */
export const ICMPV6_RA = 134;

/**
 * Offset in `frame` of the address a valid NA (its target) or RA (its IPv6 source) shows in use,
 * or -1 when the frame is neither or fails validation.
 */
export function advertisedAddress(frame: Uint8Array, start: number, length: number): number {
  const end = Math.min(frame.length, start + length);
  if (end - start < ETH_HLEN + IPV6_HLEN + 16) return -1;
  let ip = start + ETH_HLEN;
  let etherType = (frame[start + 12]! << 8) | frame[start + 13]!;
  if (etherType === ETHERTYPE_VLAN) {
    etherType = (frame[start + 16]! << 8) | frame[start + 17]!;
    ip += VLAN_HLEN;
  }
  if (etherType !== ETHERTYPE_IPV6 || frame[ip]! >>> 4 !== 6) return -1;
  if (frame[ip + 6] !== IPPROTO_ICMPV6 || frame[ip + 7] !== ND_HOP_LIMIT) return -1;
  const icmp = ip + IPV6_HLEN;
  const icmpLen = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  if (icmp + icmpLen > end) return -1;
  const type = frame[icmp];
  if (frame[icmp + 1] !== 0) return -1;
  if (type === ICMPV6_NA) {
    if (icmpLen < 24 || !icmp6ChecksumValid(frame, ip + 8, ip + 24, icmp, icmpLen)) return -1;
    return icmp + 8;
  }
  if (type === ICMPV6_RA) {
    if (icmpLen < 16 || !icmp6ChecksumValid(frame, ip + 8, ip + 24, icmp, icmpLen)) return -1;
    return ip + 8;
  }
  return -1;
}
