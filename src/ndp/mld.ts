/**
 * Multicast Listener Discovery codec (RFC 3810 MLDv2 reports, RFC 2710 / RFC 3810 queries),
 * used to tell MLD-snooping switches which solicited-node groups we listen to.
 * Pure: no I/O. The report builder allocates nothing; the query parser copies the group.
 */
import { isLinkLocalUnicast } from '../addr/index.js';
import { icmp6ChecksumValid, writeIcmp6Checksum } from './checksum.js';
import {
  ETHERTYPE_IPV6,
  ETHERTYPE_VLAN,
  ETH_HLEN,
  ICMPV6_MLD2_REPORT,
  ICMPV6_MLD_QUERY,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMPV6,
  IPV6_HLEN,
  VLAN_HLEN,
} from './constants.js';
import { ethernetIPv6 } from './ethernet.js';

/** Multicast Address Record types, RFC 3810 section 5.2.12. */
export const MLD2_MODE_IS_INCLUDE = 1;
export const MLD2_MODE_IS_EXCLUDE = 2;
export const MLD2_CHANGE_TO_INCLUDE = 3;
export const MLD2_CHANGE_TO_EXCLUDE = 4;
export const MLD2_ALLOW_NEW_SOURCES = 5;
export const MLD2_BLOCK_OLD_SOURCES = 6;

/** Hop-by-Hop Options header carrying Router Alert (RFC 2711, value 0 = MLD) and PadN to 8 bytes. */
const HBH_LEN = 8;
/** MLDv2 report header: type, reserved, checksum, reserved(2), number of records(2). RFC 3810 5.2. */
const MLD2_REPORT_HLEN = 8;
/** One Multicast Address Record with no sources and no auxiliary data. RFC 3810 5.2.4. */
const MLD2_RECORD_LEN = 20;
/** MLDv1 query / report length (RFC 2710 section 3). */
const MLD1_LEN = 24;
/** Minimum MLDv2 query length (RFC 3810 section 5.1). */
const MLD2_QUERY_MIN_LEN = 28;
/** IPv6 Router Alert option type (RFC 2711). */
const OPT_ROUTER_ALERT = 5;

/** ff02::16, all MLDv2-capable routers (RFC 3810 section 5.2.14). */
const ALL_MLDV2_ROUTERS = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);

/** Bytes of an MLDv2 report frame with `groups` records (no sources). */
export function mldv2ReportLength(groups: number, vlan = false): number {
  return ETH_HLEN + (vlan ? VLAN_HLEN : 0) + IPV6_HLEN + HBH_LEN + MLD2_REPORT_HLEN + groups * MLD2_RECORD_LEN;
}

/**
 * How many groups fit in one MLDv2 report whose IPv6 packet must fit `mtu` bytes
 * (the link MTU, i.e. excluding the Ethernet header and VLAN tag). RFC 3810 section 5.2.15:
 * records that do not fit go in further reports.
 */
export function mldv2ReportMaxGroups(mtu = 1500): number {
  const n = Math.floor((mtu - IPV6_HLEN - HBH_LEN - MLD2_REPORT_HLEN) / MLD2_RECORD_LEN);
  return n > 0 ? Math.min(n, 0xffff) : 0;
}

/**
 * Build an MLDv2 Report (RFC 3810 section 5.2): Ethernet 33:33:00:00:00:16 from `srcMac`
 * (optionally one 802.1Q tag), IPv6 from `srcLinkLocal` to ff02::16 with hop limit 1, a
 * Hop-by-Hop header with Router Alert (value 0) and PadN, ICMPv6 type 143 with one record
 * of `recordType` and no sources per group. The checksum covers the ICMPv6 message only
 * (pseudo-header next header 58, RFC 8200 section 8.1).
 *
 * @param groups 16-byte IPv6 multicast group addresses; split large sets with {@link mldv2ReportMaxGroups}.
 * @param recordType one of the MLD2_* record types (1..6).
 * @param vlanTci 802.1Q TCI, or -1 / undefined for an untagged frame.
 * @returns bytes written, or 0 when `out` is too small.
 * @throws RangeError on a bad record type, more than 65535 groups, a group or address of the wrong size.
 */
export function buildMldv2Report(
  out: Uint8Array,
  outOff: number,
  srcMac: Uint8Array,
  srcLinkLocal: Uint8Array,
  groups: readonly Uint8Array[],
  recordType: number,
  vlanTci?: number,
): number {
  if (!Number.isInteger(recordType) || recordType < 1 || recordType > 6) {
    throw new RangeError(`invalid MLDv2 record type ${recordType}`);
  }
  if (groups.length > 0xffff) throw new RangeError(`too many groups for one MLDv2 report (${groups.length})`);
  if (srcMac.length !== 6) throw new RangeError('srcMac must be 6 bytes');
  if (srcLinkLocal.length !== 16) throw new RangeError('srcLinkLocal must be 16 bytes');
  for (const g of groups) if (g.length !== 16) throw new RangeError('every group must be 16 bytes');
  const tagged = vlanTci !== undefined && vlanTci >= 0;
  const total = mldv2ReportLength(groups.length, tagged);
  if (!Number.isInteger(outOff) || outOff < 0 || outOff + total > out.length) return 0;

  let o = outOff;
  out[o++] = 0x33;
  out[o++] = 0x33;
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = 0;
  out[o++] = 0x16;
  for (let i = 0; i < 6; i++) out[o++] = srcMac[i]!;
  if (tagged) {
    out[o++] = ETHERTYPE_VLAN >>> 8;
    out[o++] = ETHERTYPE_VLAN & 0xff;
    out[o++] = (vlanTci >>> 8) & 0xff;
    out[o++] = vlanTci & 0xff;
  }
  out[o++] = ETHERTYPE_IPV6 >>> 8;
  out[o++] = ETHERTYPE_IPV6 & 0xff;

  const ip = o;
  const icmpLen = MLD2_REPORT_HLEN + groups.length * MLD2_RECORD_LEN;
  const plen = HBH_LEN + icmpLen;
  out[ip] = 0x60;
  out[ip + 1] = 0;
  out[ip + 2] = 0;
  out[ip + 3] = 0;
  out[ip + 4] = plen >>> 8;
  out[ip + 5] = plen & 0xff;
  out[ip + 6] = IPPROTO_HOPOPTS;
  out[ip + 7] = 1;
  for (let i = 0; i < 16; i++) out[ip + 8 + i] = srcLinkLocal[i]!;
  for (let i = 0; i < 16; i++) out[ip + 24 + i] = ALL_MLDV2_ROUTERS[i]!;

  // Hop-by-Hop: next header 58, length 0 (8 bytes), Router Alert(2): 0 = MLD, PadN(0).
  const hbh = ip + IPV6_HLEN;
  out[hbh] = IPPROTO_ICMPV6;
  out[hbh + 1] = 0;
  out[hbh + 2] = OPT_ROUTER_ALERT;
  out[hbh + 3] = 2;
  out[hbh + 4] = 0;
  out[hbh + 5] = 0;
  out[hbh + 6] = 1;
  out[hbh + 7] = 0;

  const icmp = hbh + HBH_LEN;
  out[icmp] = ICMPV6_MLD2_REPORT;
  out[icmp + 1] = 0;
  out[icmp + 2] = 0;
  out[icmp + 3] = 0;
  out[icmp + 4] = 0;
  out[icmp + 5] = 0;
  out[icmp + 6] = groups.length >>> 8;
  out[icmp + 7] = groups.length & 0xff;
  let r = icmp + MLD2_REPORT_HLEN;
  for (const g of groups) {
    out[r] = recordType;
    out[r + 1] = 0; // aux data len
    out[r + 2] = 0; // number of sources
    out[r + 3] = 0;
    for (let i = 0; i < 16; i++) out[r + 4 + i] = g[i]!;
    r += MLD2_RECORD_LEN;
  }
  writeIcmp6Checksum(out, ip + 8, ip + 24, icmp, icmpLen);
  return r - outOff;
}

/** A Multicast Listener Query (RFC 2710 section 3.6, RFC 3810 section 5.1). */
export interface MldQuery {
  /** The group asked about, or null for a general query. */
  group: Uint8Array | null;
  /** Maximum Response Delay in milliseconds (decoded from the MLDv2 exponential form if needed). */
  maxResponseDelayMs: number;
  /** TCI of the frame's single 802.1Q tag, or -1. */
  vlanTci: number;
}

/**
 * Decode an MLDv2 Maximum Response Code (RFC 3810 section 5.1.3): below 32768 it is the delay
 * in milliseconds; above, `1 exp(3) mant(12)` means `(mant | 0x1000) << (exp + 3)`.
 */
export function decodeMaxResponseCode(code: number): number {
  if (code < 0x8000) return code;
  const exp = (code >>> 12) & 0x7;
  const mant = code & 0x0fff;
  return (mant | 0x1000) * 2 ** (exp + 3);
}

/**
 * Parse a Multicast Listener Query: Ethernet II (at most one 802.1Q tag), IPv6 with hop limit 1
 * and a link-local source, a Hop-by-Hop header carrying a Router Alert option (RFC 3810 section 5,
 * RFC 2711) whose next header is 58, ICMPv6 type 130 code 0 with a valid checksum, and a length of
 * exactly 24 (MLDv1) or at least 28 (MLDv2, including all its sources). RFC 3810 section 8.1:
 * other lengths are ignored. The group must be :: (general query) or multicast.
 *
 * @returns the query, or null for anything else (never throws).
 */
export function parseMldQuery(frame: Uint8Array, start: number, length: number): MldQuery | null {
  let avail = frame.length - start;
  if (!(length >= avail)) avail = length;
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(avail) || avail < ETH_HLEN + IPV6_HLEN) return null;
  const end = start + avail;
  const l2 = ethernetIPv6(frame, start, end);
  if (l2 === null) return null;
  const { ip, vlanTci } = l2;
  if (frame[ip + 7] !== 1 || frame[ip + 6] !== IPPROTO_HOPOPTS) return null;
  if (!isLinkLocalUnicast(frame, ip + 8)) return null;
  const plen = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  const payloadEnd = ip + IPV6_HLEN + plen;
  if (payloadEnd > end) return null;

  // Hop-by-Hop Options header (RFC 8200 section 4.3): must hold Router Alert and lead to ICMPv6.
  const hbh = ip + IPV6_HLEN;
  if (hbh + 2 > payloadEnd) return null;
  const hbhLen = (frame[hbh + 1]! + 1) * 8;
  if (hbh + hbhLen > payloadEnd || frame[hbh] !== IPPROTO_ICMPV6) return null;
  let routerAlert = false;
  for (let o = hbh + 2; o < hbh + hbhLen; ) {
    const t = frame[o]!;
    if (t === 0) {
      o++; // Pad1
      continue;
    }
    if (o + 2 > hbh + hbhLen) return null;
    const l = frame[o + 1]!;
    if (o + 2 + l > hbh + hbhLen) return null;
    if (t === OPT_ROUTER_ALERT && l === 2 && frame[o + 2] === 0 && frame[o + 3] === 0) routerAlert = true;
    o += 2 + l;
  }
  if (!routerAlert) return null;

  const icmp = hbh + hbhLen;
  const icmpLen = payloadEnd - icmp;
  if (icmpLen !== MLD1_LEN && icmpLen < MLD2_QUERY_MIN_LEN) return null;
  if (frame[icmp] !== ICMPV6_MLD_QUERY || frame[icmp + 1] !== 0) return null;
  if (!icmp6ChecksumValid(frame, ip + 8, ip + 24, icmp, icmpLen)) return null;
  const code = (frame[icmp + 4]! << 8) | frame[icmp + 5]!;
  let maxResponseDelayMs = code;
  if (icmpLen >= MLD2_QUERY_MIN_LEN) {
    const nSources = (frame[icmp + 26]! << 8) | frame[icmp + 27]!;
    if (MLD2_QUERY_MIN_LEN + nSources * 16 > icmpLen) return null;
    maxResponseDelayMs = decodeMaxResponseCode(code);
  }
  const groupOff = icmp + 8;
  let zero = true;
  for (let i = 0; i < 16; i++) {
    if (frame[groupOff + i] !== 0) {
      zero = false;
      break;
    }
  }
  if (!zero && frame[groupOff] !== 0xff) return null;
  let group: Uint8Array | null = null;
  if (!zero) {
    // A copy (not `slice`, which on a Node Buffer returns a view into the receive buffer).
    group = new Uint8Array(16);
    for (let i = 0; i < 16; i++) group[i] = frame[groupOff + i]!;
  }
  return {
    group,
    maxResponseDelayMs,
    vlanTci,
  };
}
