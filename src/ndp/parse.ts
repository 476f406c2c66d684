/**
 * Neighbor Solicitation parser for the hot path: Ethernet II (at most one 802.1Q tag),
 * IPv6 with ICMPv6 directly as next header, and the NS with its options
 * (RFC 4861 sections 4.3, 4.6 and 7.1.1).
 *
 * It never allocates, never builds strings and never throws: every reason a frame is not
 * a valid NS is a {@link NsError}.
 */
import { icmp6ChecksumValid } from './checksum.js';
import {
  ETHERTYPE_IPV6,
  ETHERTYPE_QINQ,
  ETHERTYPE_VLAN,
  ETH_HLEN,
  ICMPV6_NS,
  IPPROTO_ICMPV6,
  IPV6_HLEN,
  ND_HOP_LIMIT,
  NS_LEN,
  OPT_NONCE,
  OPT_SOURCE_LLA,
  VLAN_HLEN,
} from './constants.js';
import { NsError } from './ns-error.js';
import type { NsView } from './ns-view.js';

/**
 * Parse and validate one Neighbor Solicitation frame.
 *
 * `view` is reset and then filled with offsets into `frame`; its fields are meaningful only
 * when the result is {@link NsError.None}. When `length` exceeds the bytes available after
 * `start`, the available bytes are the frame. Bytes after the IPv6 payload (Ethernet padding)
 * are ignored.
 *
 * Checks, in this order (the first failing one is returned):
 *  1. `TooShort`: fewer than 14 + 40 bytes (14 + 4 + 40 with a VLAN tag).
 *  2. `StackedVlan` (0x88a8, or a second 0x8100 tag) / `NotIPv6` (any other ethertype).
 *  3. `BadIPVersion`: IP version field is not 6.
 *  4. `Truncated`: the frame holds fewer bytes than 40 + payload length.
 *  5. `NotICMPv6`: next header is not 58 (extension headers are not followed).
 *  6. `NotNS`: ICMPv6 type is not 135 (`IcmpTooShort` when the payload is empty).
 *  7. `IcmpTooShort`: ICMPv6 length below 24 (RFC 4861 7.1.1).
 *  8. `BadHopLimit`: hop limit is not 255 (RFC 4861 7.1.1).
 *  9. `BadChecksum`: ICMPv6 checksum with pseudo-header does not verify (RFC 4861 7.1.1, RFC 4443 2.3).
 * 10. `BadCode`: ICMP code is not 0 (RFC 4861 7.1.1).
 * 11. `TargetMulticast`: target is a multicast address (RFC 4861 7.1.1).
 * 12. `MulticastSource`: IPv6 source is multicast (RFC 4291 2.7: never a source).
 * 13. What Linux's IPv6 input (net/ipv6/ip6_input.c, ip6_rcv_core) drops on a non-loopback
 *     device before ND sees the packet: `Ipv4MappedSource` (::ffff:0:0/96; dropped there by
 *     Linux 5.4 to 5.11, and never a source by RFC 6890), `LoopbackSource` (::1),
 *     `InterfaceLocalDestination` (multicast scope 1), `ReservedScopeDestination` (multicast
 *     scope 0), `LoopbackDestination` (::1). These name destinations that check 15 would
 *     otherwise call a mismatch.
 * 14. `UnspecifiedSourceBadDestination`: source is :: and destination is not a solicited-node
 *     address (RFC 4861 7.1.1).
 * 15. `DestinationMismatch`: destination is neither the target (unicast NUD probe) nor the
 *     target's solicited-node group (RFC 4861 7.2.2).
 * 16. Options, walked to the end (RFC 4861 4.6): `BadOptionLength` for a zero length or an
 *     option running past the ICMPv6 payload; `BadSourceLinkLayer` for an SLLAO that is not
 *     length 1 (6-byte MAC) or carries a group MAC. Unknown options are skipped. The first
 *     SLLAO and the first Nonce option (RFC 3971 5.3.2) are recorded.
 * 17. `UnspecifiedSourceWithSllao`: source is :: and an SLLAO is present (RFC 4861 7.1.1).
 * 18. `BadSourceLinkLayer` again: a specified source, no SLLAO, and a group Ethernet source MAC
 *     (the answer would go to that MAC, and a group MAC is never a sender).
 *
 * Cost for a typical NS: the checksum over 72 bytes dominates (see bench/codec.bench.ts).
 */
export function parseNS(frame: Uint8Array, start: number, length: number, view: NsView): NsError {
  // Clamp to the bytes actually present; NaN, negative or fractional values become "too short".
  let avail = frame.length - start;
  if (!(length >= avail)) avail = length;
  if (!(avail >= ETH_HLEN + IPV6_HLEN) || !Number.isInteger(start) || start < 0 || !Number.isInteger(avail)) {
    view.reset(frame, start, avail > 0 ? avail : 0);
    return NsError.TooShort;
  }
  view.reset(frame, start, avail);
  const end = start + avail;

  // Ethernet II, optionally one 802.1Q tag.
  let ipOff = start + ETH_HLEN;
  let etherType = (frame[start + 12]! << 8) | frame[start + 13]!;
  if (etherType !== ETHERTYPE_IPV6) {
    if (etherType === ETHERTYPE_VLAN) {
      if (avail < ETH_HLEN + VLAN_HLEN + IPV6_HLEN) return NsError.TooShort;
      view.vlanTci = (frame[start + 14]! << 8) | frame[start + 15]!;
      etherType = (frame[start + 16]! << 8) | frame[start + 17]!;
      ipOff += VLAN_HLEN;
      if (etherType !== ETHERTYPE_IPV6) {
        return etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ ? NsError.StackedVlan : NsError.NotIPv6;
      }
    } else {
      return etherType === ETHERTYPE_QINQ ? NsError.StackedVlan : NsError.NotIPv6;
    }
  }
  view.ipOff = ipOff;

  // IPv6 fixed header (RFC 8200 section 3).
  if (frame[ipOff]! >>> 4 !== 6) return NsError.BadIPVersion;
  const plen = (frame[ipOff + 4]! << 8) | frame[ipOff + 5]!;
  const icmpOff = ipOff + IPV6_HLEN;
  if (icmpOff + plen > end) return NsError.Truncated;
  if (frame[ipOff + 6] !== IPPROTO_ICMPV6) return NsError.NotICMPv6;
  view.icmpOff = icmpOff;
  view.icmpLen = plen;

  if (plen === 0) return NsError.IcmpTooShort;
  if (frame[icmpOff] !== ICMPV6_NS) return NsError.NotNS;
  if (plen < NS_LEN) return NsError.IcmpTooShort;
  if (frame[ipOff + 7] !== ND_HOP_LIMIT) return NsError.BadHopLimit;

  const srcOff = ipOff + 8;
  const dstOff = ipOff + 24;
  if (!icmp6ChecksumValid(frame, srcOff, dstOff, icmpOff, plen)) return NsError.BadChecksum;
  if (frame[icmpOff + 1] !== 0) return NsError.BadCode;

  const targetOff = icmpOff + 8;
  view.targetOff = targetOff;
  if (frame[targetOff] === 0xff) return NsError.TargetMulticast;
  if (frame[srcOff] === 0xff) return NsError.MulticastSource;

  // Source :: (DAD probe, RFC 4862 5.4.2), ::1 or ::ffff:0:0/96? All start with ten zero bytes;
  // the usual source (fe80::/10, a global address) is told apart by its first byte.
  let unspecified = false;
  if (frame[srcOff] === 0 && zero(frame, srcOff + 1, 9)) {
    const b10 = frame[srcOff + 10]!;
    const b11 = frame[srcOff + 11]!;
    // Mirrors Linux 5.4-5.11 ip6_rcv_core `ipv6_addr_v4mapped(&hdr->saddr)` (since 5.12 only TCP
    // drops it); RFC 6890 lists ::ffff:0:0/96 as never a source, and the NA would carry it.
    if (b10 === 0xff && b11 === 0xff) return NsError.Ipv4MappedSource;
    if (b10 === 0 && b11 === 0 && zero(frame, srcOff + 12, 3)) {
      const last = frame[srcOff + 15]!;
      // Mirrors ip6_rcv_core `ipv6_addr_loopback(&hdr->saddr)` on a non-loopback device.
      if (last === 1) return NsError.LoopbackSource;
      unspecified = last === 0;
    }
  }
  view.unspecifiedSource = unspecified;

  // Destinations ip6_rcv_core drops on a non-loopback device, before any routing or ND.
  const d0 = frame[dstOff]!;
  const d1 = frame[dstOff + 1]!;
  if (d0 === 0xff) {
    // ff02 (link-local scope, every solicited-node group) is the usual case: one comparison.
    if (d1 !== 0x02) {
      const scope = d1 & 0x0f;
      // `IPV6_ADDR_MC_SCOPE(&hdr->daddr) == 1` for a frame not looped back (RFC 4291 errata 3480).
      if (scope === 1) return NsError.InterfaceLocalDestination;
      // `IPV6_ADDR_MC_SCOPE(&hdr->daddr) == 0` (RFC 4291 2.7: reserved scope, silently dropped).
      if (scope === 0) return NsError.ReservedScopeDestination;
    }
  } else if (d0 === 0 && zero(frame, dstOff + 1, 14) && frame[dstOff + 15] === 1) {
    // `ipv6_addr_loopback(&hdr->daddr)` on a non-loopback device (RFC 4291 2.5.3).
    return NsError.LoopbackDestination;
  }

  // Destination: the target's solicited-node group ff02::1:ffXX:XXXX, or (unicast NUD) the target.
  const solicitedForm =
    d0 === 0xff &&
    d1 === 0x02 &&
    frame[dstOff + 2] === 0 &&
    frame[dstOff + 3] === 0 &&
    frame[dstOff + 4] === 0 &&
    frame[dstOff + 5] === 0 &&
    frame[dstOff + 6] === 0 &&
    frame[dstOff + 7] === 0 &&
    frame[dstOff + 8] === 0 &&
    frame[dstOff + 9] === 0 &&
    frame[dstOff + 10] === 0 &&
    frame[dstOff + 11] === 0x01 &&
    frame[dstOff + 12] === 0xff;
  if (unspecified && !solicitedForm) return NsError.UnspecifiedSourceBadDestination;
  if (solicitedForm) {
    if (
      frame[dstOff + 13] !== frame[targetOff + 13] ||
      frame[dstOff + 14] !== frame[targetOff + 14] ||
      frame[dstOff + 15] !== frame[targetOff + 15]
    ) {
      return NsError.DestinationMismatch;
    }
  } else {
    for (let i = 0; i < 16; i++) {
      if (frame[dstOff + i] !== frame[targetOff + i]) return NsError.DestinationMismatch;
    }
  }

  // Options (RFC 4861 section 4.6): type, length in units of 8 octets, value.
  const optEnd = icmpOff + plen;
  let off = icmpOff + NS_LEN;
  let sllaoOff = -1;
  let nonceOff = -1;
  while (off < optEnd) {
    if (off + 2 > optEnd) return NsError.BadOptionLength;
    const optLen = frame[off + 1]! << 3;
    if (optLen === 0 || off + optLen > optEnd) return NsError.BadOptionLength;
    const type = frame[off]!;
    if (type === OPT_SOURCE_LLA) {
      // Ethernet SLLAO: exactly 8 bytes (RFC 2464 section 6), unicast MAC (I/G bit clear).
      if (optLen !== 8 || (frame[off + 2]! & 1) !== 0) return NsError.BadSourceLinkLayer;
      if (sllaoOff < 0) sllaoOff = off + 2;
    } else if (type === OPT_NONCE) {
      if (nonceOff < 0) nonceOff = off;
    }
    off += optLen;
  }
  if (unspecified && sllaoOff >= 0) return NsError.UnspecifiedSourceWithSllao;
  // The answer goes to the SLLAO, else to the frame's source MAC: that must then be unicast.
  if (!unspecified && sllaoOff < 0 && (frame[start + 6]! & 1) !== 0) return NsError.BadSourceLinkLayer;
  view.sllaoOff = sllaoOff;
  view.nonceOff = nonceOff;
  return NsError.None;
}

/** True when the `n` bytes of `b` from `off` are all zero. */
function zero(b: Uint8Array, off: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[off + i] !== 0) return false;
  return true;
}
