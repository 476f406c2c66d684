/**
 * Multicast Listener Discovery codec (RFC 3810 MLDv2 reports, RFC 2710 MLDv1 reports and done
 * messages, RFC 2710 / RFC 3810 queries), used to tell MLD-snooping switches which solicited-node
 * groups we listen to. Pure: no I/O. The builders allocate nothing; the query reader copies the
 * group and the destination of a valid query (rejects are shared frozen objects).
 */
import { isLinkLocalUnicast, multicastMac } from '../addr/index.js';
import { icmp6ChecksumValid, writeIcmp6Checksum } from './checksum.js';
import {
  ETH_HLEN,
  ICMPV6_MLD2_REPORT,
  ICMPV6_MLD_QUERY,
  ICMPV6_MLD1_DONE,
  ICMPV6_MLD1_REPORT,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMPV6,
  IPV6_HLEN,
  VLAN_HLEN,
} from './constants.js';
import { ethernetIPv6, writeEthernetTail } from './ethernet.js';

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

/** ff02::2, all routers: destination of an MLDv1 Done (RFC 2710 section 3.8). */
const ALL_ROUTERS = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]);
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

  // RFC 2464 section 7: 33:33 and the low 32 bits of ff02::16.
  multicastMac(ALL_MLDV2_ROUTERS, 0, out, outOff);
  const ip = writeEthernetTail(out, outOff, srcMac, tagged ? vlanTci : -1);
  const icmpLen = MLD2_REPORT_HLEN + groups.length * MLD2_RECORD_LEN;
  const icmp = writeMldIpHeaders(out, ip, srcLinkLocal, ALL_MLDV2_ROUTERS, icmpLen);
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

/** Bytes of an MLDv1 Report or Done frame (RFC 2710 section 3: a 24-byte message behind the Hop-by-Hop header). */
export function mldv1FrameLength(vlan = false): number {
  return ETH_HLEN + (vlan ? VLAN_HLEN : 0) + IPV6_HLEN + HBH_LEN + MLD1_LEN;
}

/**
 * Build an MLDv1 Multicast Listener Report (RFC 2710 section 3, type 131) for one group: sent to
 * the group itself (Ethernet 33:33 + the group's low 32 bits), from `srcLinkLocal` with hop
 * limit 1 and a Router Alert Hop-by-Hop header, Maximum Response Delay 0.
 *
 * @param group 16-byte IPv6 multicast address.
 * @param vlanTci 802.1Q TCI, or -1 / undefined for an untagged frame.
 * @returns bytes written, or 0 when `out` is too small.
 * @throws RangeError on a group that is not a 16-byte multicast address, or a bad MAC/source size.
 */
export function buildMldv1Report(
  out: Uint8Array,
  outOff: number,
  srcMac: Uint8Array,
  srcLinkLocal: Uint8Array,
  group: Uint8Array,
  vlanTci?: number,
): number {
  return buildMldv1(out, outOff, srcMac, srcLinkLocal, ICMPV6_MLD1_REPORT, group, group, vlanTci);
}

/**
 * Build an MLDv1 Multicast Listener Done (RFC 2710 section 3, type 132) for one group: sent to
 * ff02::2 (all routers), otherwise laid out like {@link buildMldv1Report}.
 *
 * @returns bytes written, or 0 when `out` is too small.
 * @throws RangeError as {@link buildMldv1Report}.
 */
export function buildMldv1Done(
  out: Uint8Array,
  outOff: number,
  srcMac: Uint8Array,
  srcLinkLocal: Uint8Array,
  group: Uint8Array,
  vlanTci?: number,
): number {
  return buildMldv1(out, outOff, srcMac, srcLinkLocal, ICMPV6_MLD1_DONE, group, ALL_ROUTERS, vlanTci);
}

function buildMldv1(
  out: Uint8Array,
  outOff: number,
  srcMac: Uint8Array,
  srcLinkLocal: Uint8Array,
  type: number,
  group: Uint8Array,
  dst: Uint8Array,
  vlanTci: number | undefined,
): number {
  if (srcMac.length !== 6) throw new RangeError('srcMac must be 6 bytes');
  if (srcLinkLocal.length !== 16) throw new RangeError('srcLinkLocal must be 16 bytes');
  if (group.length !== 16 || group[0] !== 0xff) throw new RangeError('group must be a 16-byte multicast address');
  const tagged = vlanTci !== undefined && vlanTci >= 0;
  const total = mldv1FrameLength(tagged);
  if (!Number.isInteger(outOff) || outOff < 0 || outOff + total > out.length) return 0;

  // RFC 2464 section 7: 33:33 and the low 32 bits of the IPv6 destination.
  multicastMac(dst, 0, out, outOff);
  const ip = writeEthernetTail(out, outOff, srcMac, tagged ? vlanTci : -1);
  const icmp = writeMldIpHeaders(out, ip, srcLinkLocal, dst, MLD1_LEN);
  out[icmp] = type;
  for (let i = 1; i < 8; i++) out[icmp + i] = 0; // code, checksum, max response delay, reserved
  for (let i = 0; i < 16; i++) out[icmp + 8 + i] = group[i]!;
  writeIcmp6Checksum(out, ip + 8, ip + 24, icmp, MLD1_LEN);
  return total;
}

/**
 * The IPv6 header of an MLD message at `ip` (hop limit 1, RFC 3810 section 5) from `src` to
 * `dst`, and its Hop-by-Hop header: next header 58, length 0 (8 bytes), Router Alert(2): 0 =
 * MLD, PadN(0). `icmpLen` is the MLD message's length.
 * @returns the offset of the MLD message.
 */
function writeMldIpHeaders(out: Uint8Array, ip: number, src: Uint8Array, dst: Uint8Array, icmpLen: number): number {
  const plen = HBH_LEN + icmpLen;
  out[ip] = 0x60;
  out[ip + 1] = 0;
  out[ip + 2] = 0;
  out[ip + 3] = 0;
  out[ip + 4] = plen >>> 8;
  out[ip + 5] = plen & 0xff;
  out[ip + 6] = IPPROTO_HOPOPTS;
  out[ip + 7] = 1;
  for (let i = 0; i < 16; i++) out[ip + 8 + i] = src[i]!;
  for (let i = 0; i < 16; i++) out[ip + 24 + i] = dst[i]!;
  const hbh = ip + IPV6_HLEN;
  out[hbh] = IPPROTO_ICMPV6;
  out[hbh + 1] = 0;
  out[hbh + 2] = OPT_ROUTER_ALERT;
  out[hbh + 3] = 2;
  out[hbh + 4] = 0;
  out[hbh + 5] = 0;
  out[hbh + 6] = 1;
  out[hbh + 7] = 0;
  return hbh + HBH_LEN;
}

/**
 * Why a Multicast Listener Query was not accepted (RFC 2710 section 3 / RFC 3810 section 5.1):
 * the numbers index {@link MLD_QUERY_ERROR_NAMES}.
 */
export const MldQueryError = {
  /** IPv6 hop limit other than 1 (RFC 3810 section 5). */
  HopLimit: 1,
  /** Source not a link-local unicast address (RFC 3810 section 5.1.14, RFC 2710 section 3). */
  Source: 2,
  /** No Router Alert option (value 0, MLD) in a well-formed Hop-by-Hop header (RFC 3810 section 5, RFC 2711). */
  RouterAlert: 3,
  /** ICMPv6 length neither 24 (MLDv1) nor at least 28 (MLDv2), sources past the message, or truncated (RFC 3810 section 8.1). */
  Length: 4,
  /** ICMPv6 code other than 0. */
  Code: 5,
  /** Bad ICMPv6 checksum. */
  Checksum: 6,
  /** Multicast Address field neither :: nor a multicast address. */
  Group: 7,
} as const;
export type MldQueryError = (typeof MldQueryError)[keyof typeof MldQueryError];

/** Names of {@link MldQueryError} values (index = value; 0 unused), for counters and logs. */
export const MLD_QUERY_ERROR_NAMES = Object.freeze([
  '',
  'hop-limit',
  'source',
  'router-alert',
  'length',
  'code',
  'checksum',
  'group',
] as const);

/** A frame that is an MLD query (ICMPv6 type 130 behind a Hop-by-Hop header) but not a valid one. */
export interface MldQueryReject {
  readonly error: MldQueryError;
}

const REJECTS: readonly MldQueryReject[] = Object.freeze(MLD_QUERY_ERROR_NAMES.map((_, i) => Object.freeze({ error: i as MldQueryError })));

/** A valid Multicast Listener Query (RFC 2710 section 3.6, RFC 3810 section 5.1). */
export interface MldQuery {
  /** 0: valid (tells it apart from an {@link MldQueryReject}). */
  readonly error: 0;
  /** 1 for the 24-byte MLDv1 form, 2 for MLDv2 (RFC 3810 section 8.1). */
  version: 1 | 2;
  /** The group asked about, or null for a general query. */
  group: Uint8Array | null;
  /** The IPv6 destination (a copy): who the query was sent to. */
  destination: Uint8Array;
  /** Maximum Response Delay in milliseconds (decoded from the MLDv2 exponential form if needed). */
  maxResponseDelayMs: number;
  /** TCI of the frame's single 802.1Q tag, or -1. */
  vlanTci: number;
  /** MLDv2 Querier's Robustness Variable (RFC 3810 section 5.1.8); 0 for MLDv1 or when unset. */
  qrv: number;
  /** MLDv2 Querier's Query Interval in seconds, decoded (RFC 3810 section 5.1.9); 0 for MLDv1. */
  qqicSeconds: number;
  /** MLDv2 Number of Sources (a Multicast Address and Source Specific Query when > 0); 0 for MLDv1. */
  sources: number;
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
 * Decode an MLDv2 Querier's Query Interval Code (RFC 3810 section 5.1.9): below 128 it is
 * seconds; above, `1 exp(3) mant(4)` means `(mant | 0x10) << (exp + 3)`.
 */
export function decodeQqic(code: number): number {
  if (code < 0x80) return code;
  return ((code & 0x0f) | 0x10) << (((code >>> 4) & 0x7) + 3);
}

/**
 * Read a Multicast Listener Query. A frame is a query when it is Ethernet II (at most one 802.1Q
 * tag) carrying IPv6 with a Hop-by-Hop header that leads to ICMPv6 type 130; anything else is
 * null. A query is valid (an {@link MldQuery}) when the hop limit is 1, the source is link-local
 * (RFC 3810 section 5.1.14), the Hop-by-Hop header holds a Router Alert option with value 0
 * (RFC 3810 section 5, RFC 2711), the code is 0, the checksum is right, the ICMPv6 length is
 * exactly 24 (MLDv1) or at least 28 with all its sources (MLDv2; RFC 3810 section 8.1: other
 * lengths are ignored), and the group is :: (general query) or multicast; otherwise it is an
 * {@link MldQueryReject} naming the first rule broken. Whom the query is addressed to is the
 * caller's business (`destination`). Never throws.
 */
export function readMldQuery(frame: Uint8Array, start: number, length: number): MldQuery | MldQueryReject | null {
  let avail = frame.length - start;
  if (!(length >= avail)) avail = length;
  if (!Number.isInteger(start) || start < 0 || !Number.isInteger(avail) || avail < ETH_HLEN + IPV6_HLEN) return null;
  const end = start + avail;
  const l2 = ethernetIPv6(frame, start, end);
  if (l2 === null) return null;
  const { ip, vlanTci } = l2;
  if (frame[ip + 6] !== IPPROTO_HOPOPTS) return null;
  const plen = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  const payloadEnd = Math.min(ip + IPV6_HLEN + plen, end);
  const truncated = ip + IPV6_HLEN + plen > end;

  // Hop-by-Hop Options header (RFC 8200 section 4.3): leads to ICMPv6 type 130, or not a query.
  const hbh = ip + IPV6_HLEN;
  if (hbh + 2 > payloadEnd) return null;
  const hbhLen = (frame[hbh + 1]! + 1) * 8;
  const icmp = hbh + hbhLen;
  if (icmp >= payloadEnd || frame[hbh] !== IPPROTO_ICMPV6 || frame[icmp] !== ICMPV6_MLD_QUERY) return null;

  if (frame[ip + 7] !== 1) return REJECTS[MldQueryError.HopLimit]!;
  if (!isLinkLocalUnicast(frame, ip + 8)) return REJECTS[MldQueryError.Source]!;
  let routerAlert = false;
  for (let o = hbh + 2; o < icmp;) {
    const t = frame[o]!;
    if (t === 0) {
      o++; // Pad1
      continue;
    }
    // A malformed option area holds no valid Router Alert.
    if (o + 2 > icmp) return REJECTS[MldQueryError.RouterAlert]!;
    const l = frame[o + 1]!;
    if (o + 2 + l > icmp) return REJECTS[MldQueryError.RouterAlert]!;
    if (t === OPT_ROUTER_ALERT && l === 2 && frame[o + 2] === 0 && frame[o + 3] === 0) routerAlert = true;
    o += 2 + l;
  }
  if (!routerAlert) return REJECTS[MldQueryError.RouterAlert]!;

  const icmpLen = payloadEnd - icmp;
  if (truncated || (icmpLen !== MLD1_LEN && icmpLen < MLD2_QUERY_MIN_LEN)) return REJECTS[MldQueryError.Length]!;
  const version = icmpLen === MLD1_LEN ? 1 : 2;
  let sources = 0;
  if (version === 2) {
    sources = (frame[icmp + 26]! << 8) | frame[icmp + 27]!;
    if (MLD2_QUERY_MIN_LEN + sources * 16 > icmpLen) return REJECTS[MldQueryError.Length]!;
  }
  if (frame[icmp + 1] !== 0) return REJECTS[MldQueryError.Code]!;
  if (!icmp6ChecksumValid(frame, ip + 8, ip + 24, icmp, icmpLen)) return REJECTS[MldQueryError.Checksum]!;
  const code = (frame[icmp + 4]! << 8) | frame[icmp + 5]!;
  const groupOff = icmp + 8;
  let zero = true;
  for (let i = 0; i < 16; i++) {
    if (frame[groupOff + i] !== 0) {
      zero = false;
      break;
    }
  }
  if (!zero && frame[groupOff] !== 0xff) return REJECTS[MldQueryError.Group]!;
  // Copies (not `slice`, which on a Node Buffer returns a view into the receive buffer).
  let group: Uint8Array | null = null;
  if (!zero) {
    group = new Uint8Array(16);
    for (let i = 0; i < 16; i++) group[i] = frame[groupOff + i]!;
  }
  const destination = new Uint8Array(16);
  for (let i = 0; i < 16; i++) destination[i] = frame[ip + 24 + i]!;
  return {
    error: 0,
    version,
    group,
    destination,
    maxResponseDelayMs: version === 2 ? decodeMaxResponseCode(code) : code,
    vlanTci,
    qrv: version === 2 ? frame[icmp + 24]! & 0x07 : 0,
    qqicSeconds: version === 2 ? decodeQqic(frame[icmp + 25]!) : 0,
    sources,
  };
}

/**
 * The valid query in a frame, or null for anything else (not a query, or an invalid one):
 * {@link readMldQuery} without the reason. Never throws.
 */
export function parseMldQuery(frame: Uint8Array, start: number, length: number): MldQuery | null {
  const r = readMldQuery(frame, start, length);
  return r !== null && r.error === 0 ? (r as MldQuery) : null;
}
