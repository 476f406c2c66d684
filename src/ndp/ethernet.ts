/** Ethernet framing for the decoders that are not on the hot path (decodeNA, parseMldQuery). */
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
