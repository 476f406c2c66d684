/**
 * Neighbor Solicitation builder (RFC 4861 section 4.3): the frames we send ourselves, a
 * duplicate-address probe before a new address is announced (RFC 4862 section 5.4.2: source
 * `::`, to the target's solicited-node group, no Source Link-Layer Address option) and an NS
 * from an address we answer for to a router, so a router that ignores unsolicited NAs learns
 * the address (section 7.2.6 leaves caching unsolicited NAs to the receiver).
 *
 * Written into the caller's buffer; returns the bytes written, or 0 when it does not fit.
 */
import { multicastMac, solicitedNodeAddress } from '../addr/index.js';
import { writeIcmp6Checksum } from './checksum.js';
import { ETH_HLEN, ICMPV6_NS, IPPROTO_ICMPV6, IPV6_HLEN, ND_HOP_LIMIT, NS_LEN, OPT_SOURCE_LLA, VLAN_HLEN } from './constants.js';
import { writeEthernetTail } from './ethernet.js';

/** Longest NS we build: Ethernet, one VLAN tag, IPv6, NS, one SLLAO option. */
export const NS_FRAME_LEN_MAX = ETH_HLEN + VLAN_HLEN + IPV6_HLEN + NS_LEN + 8;

export interface NsSpec {
  /** Ethernet source and, unless `src` is null, the SLLAO. */
  readonly mac: Uint8Array;
  /** IPv6 source (16 bytes), or null for `::` (a DAD probe: no SLLAO then). */
  readonly src: Uint8Array | null;
  /** The address asked about (16 bytes). */
  readonly target: Uint8Array;
  /**
   * IPv6 destination: null for the target's solicited-node group, else a unicast address
   * (then `dstMac` is the Ethernet destination).
   */
  readonly dst?: Uint8Array | null;
  readonly dstMac?: Uint8Array | null;
  /** 802.1Q TCI, or -1 (default) for an untagged frame. */
  readonly vlanTci?: number;
}

/** Write an NS frame into `out` at `off`. @returns its length, or 0 when `out` is too small. */
export function buildNS(spec: NsSpec, out: Uint8Array, off: number): number {
  const tagged = (spec.vlanTci ?? -1) >= 0;
  const withSllao = spec.src !== null;
  const icmpLen = NS_LEN + (withSllao ? 8 : 0);
  const len = ETH_HLEN + (tagged ? VLAN_HLEN : 0) + IPV6_HLEN + icmpLen;
  if (off < 0 || off + len > out.length) return 0;
  out.fill(0, off, off + len);
  // Ethernet: to the solicited-node group's MAC, or the unicast destination's.
  const dst = new Uint8Array(16);
  if (spec.dst == null) solicitedNodeAddress(spec.target, 0, dst, 0);
  else dst.set(spec.dst.subarray(0, 16));
  if (spec.dst == null || spec.dstMac == null) multicastMac(dst, 0, out, off);
  else out.set(spec.dstMac.subarray(0, 6), off);
  const ip = writeEthernetTail(out, off, spec.mac, spec.vlanTci ?? -1);
  out[ip] = 0x60;
  out[ip + 4] = icmpLen >>> 8;
  out[ip + 5] = icmpLen & 0xff;
  out[ip + 6] = IPPROTO_ICMPV6;
  out[ip + 7] = ND_HOP_LIMIT;
  if (spec.src !== null) out.set(spec.src.subarray(0, 16), ip + 8);
  out.set(dst, ip + 24);
  const icmp = ip + IPV6_HLEN;
  out[icmp] = ICMPV6_NS;
  out.set(spec.target.subarray(0, 16), icmp + 8);
  if (withSllao) {
    out[icmp + NS_LEN] = OPT_SOURCE_LLA;
    out[icmp + NS_LEN + 1] = 1;
    out.set(spec.mac.subarray(0, 6), icmp + NS_LEN + 2);
  }
  writeIcmp6Checksum(out, ip + 8, ip + 24, icmp, icmpLen);
  return len;
}
