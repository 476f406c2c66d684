/** Ethernet framing: the walk for the decoders that are not on the hot path (decodeNA, parseMldQuery), and the header every builder writes. */
import { ETHERTYPE_IPV6, ETHERTYPE_VLAN, ETH_HLEN, IPV6_HLEN, VLAN_HLEN } from './constants.js';

/**
 * Where the IPv6 header of an Ethernet II frame starts, under at most one 802.1Q tag, and that
 * tag's TCI (-1 untagged). Null unless the ethertype is IPv6, the fixed IPv6 header fits before
 * `end`, and its version is 6.
 */
export function ethernetIPv6(frame: Uint8Array, start: number, end: number): { ip: number; vlanTci: number } | null {
  if (end - start < ETH_HLEN + IPV6_HLEN) return null;
  let ip = start + ETH_HLEN;
  let vlanTci = -1;
  let etherType = (frame[start + 12]! << 8) | frame[start + 13]!;
  if (etherType === ETHERTYPE_VLAN) {
    vlanTci = (frame[start + 14]! << 8) | frame[start + 15]!;
    etherType = (frame[start + 16]! << 8) | frame[start + 17]!;
    ip += VLAN_HLEN;
  }
  if (etherType !== ETHERTYPE_IPV6 || ip + IPV6_HLEN > end || frame[ip]! >>> 4 !== 6) return null;
  return { ip, vlanTci };
}

/**
 * Write the rest of an Ethernet II header whose destination MAC the caller wrote at `off`: the
 * source MAC, one 802.1Q tag when `vlanTci >= 0`, and the IPv6 ethertype. The caller has checked
 * the room. @returns the offset of the IPv6 header.
 */
export function writeEthernetTail(out: Uint8Array, off: number, srcMac: Uint8Array, vlanTci: number): number {
  for (let i = 0; i < 6; i++) out[off + 6 + i] = srcMac[i]!;
  let o = off + 12;
  if (vlanTci >= 0) {
    out[o++] = ETHERTYPE_VLAN >>> 8;
    out[o++] = ETHERTYPE_VLAN & 0xff;
    out[o++] = (vlanTci >>> 8) & 0xff;
    out[o++] = vlanTci & 0xff;
  }
  out[o++] = ETHERTYPE_IPV6 >>> 8;
  out[o++] = ETHERTYPE_IPV6 & 0xff;
  return o;
}
