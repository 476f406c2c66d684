/**
 * rtnetlink route messages: a pure reader of the datagrams a NETLINK_ROUTE socket receives
 * (RTM_NEWROUTE, RTM_DELROUTE, NLMSG_DONE, NLMSG_ERROR) and a builder of the RTM_GETROUTE dump
 * request. No I/O, no policy: src/service/routes.ts decides what the messages mean for the
 * route table.
 *
 * Layouts (linux/netlink.h, linux/rtnetlink.h), all in the host's byte order:
 *   nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32                (16 bytes)
 *   rtmsg     family u8, dst_len u8, src_len u8, tos u8, table u8, protocol u8, scope u8,
 *             type u8, flags u32                                            (12 bytes)
 *   rtattr    len u16, type u16, payload, padded to 4 bytes
 *   rtnexthop len u16, flags u8, hops u8, ifindex i32, then its own rtattrs (RTA_GATEWAY)
 *
 * Robustness: nothing in a datagram can make {@link parseNetlink} throw. A message whose header
 * lies about its length ends the datagram (the next header cannot be found); a route message
 * with a short body, an attribute running past its message, a wrong-sized address or interface
 * index, or a nexthop list that does not add up is skipped whole. Both are counted in
 * `malformed`: a reader that skipped something must assume it missed a change (re-dump).
 */
import { endianness } from 'node:os';

// ---------------------------------------------------------------------------------------------
// Constants (kernel ABI).

export const NLMSG_HDRLEN = 16;
export const RTMSG_LEN = 12;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** A dump was interrupted by changes: its result may be inconsistent (re-dump). */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/** On RTM_NEWROUTE: the route replaced the one(s) with the same table, prefix and metric. */
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** On RTM_NEWROUTE: the route was added beside the existing ones (a multipath sibling). */
export const NLM_F_APPEND = 0x800;

export const AF_INET6 = 10;

/** Multicast group bits for bind(): IPv6 route changes. */
export const RTMGRP_IPV6_ROUTE = 0x400;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;
export const RTA_NH_ID = 30;
const NLA_TYPE_MASK = 0x3fff;

/** rtm_flags: a cached clone (PMTU, redirect), not a configured route. */
export const RTM_F_CLONED = 0x200;

/** Route types (rtm_type). */
export const RTN_UNSPEC = 0;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BROADCAST = 3;
export const RTN_ANYCAST = 4;
export const RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;
export const RTN_PROHIBIT = 8;
export const RTN_THROW = 9;

/** Routing table ids. */
export const RT_TABLE_COMPAT = 252;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

// ---------------------------------------------------------------------------------------------
// Parsed messages.

/** One path of a route: the output interface and, when there is one, the gateway. */
export interface RouteNexthop {
  /** Output interface index (0 when the kernel gave none). */
  ifindex: number;
  /** Gateway address (16 bytes), or undefined for a direct (device) route. */
  gateway: Uint8Array | undefined;
  /** rtnh_flags (RTNH_F_DEAD, RTNH_F_LINKDOWN, ...), 0 for a single-path route. */
  flags: number;
}

/** An RTM_NEWROUTE or RTM_DELROUTE message. */
export interface RouteMessage {
  kind: 'route';
  /** RTM_NEWROUTE or RTM_DELROUTE. */
  type: number;
  /** nlmsg_flags (NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_REPLACE, NLM_F_APPEND, ...). */
  flags: number;
  seq: number;
  pid: number;
  /** rtm_family (AF_INET6 = 10 for the routes this project reads). */
  family: number;
  /** Destination prefix: 16 bytes, host bits as the kernel sent them (zero when RTA_DST is absent: ::/0). */
  dst: Uint8Array;
  dstLen: number;
  /** Table id: RTA_TABLE when present (ids above 255), else rtm_table. */
  table: number;
  /** RTA_PRIORITY (the metric); 0 when absent. */
  metric: number;
  /** rtm_type (RTN_UNICAST, RTN_LOCAL, RTN_BLACKHOLE, ...). */
  routeType: number;
  protocol: number;
  scope: number;
  /** rtm_flags (RTM_F_CLONED, ...). */
  rtmFlags: number;
  /** The paths: RTA_MULTIPATH's list, else one from RTA_OIF/RTA_GATEWAY, else none. */
  nexthops: RouteNexthop[];
  /** RTA_NH_ID: the route uses a nexthop object, whose interfaces this message does not name. */
  nhid: number | undefined;
}

/** NLMSG_DONE: the end of a dump. */
export interface DoneMessage {
  kind: 'done';
  flags: number;
  seq: number;
  pid: number;
}

/** NLMSG_ERROR: an error (errno > 0) or an acknowledgement (errno 0) for request `seq`. */
export interface ErrorMessage {
  kind: 'error';
  /** Positive errno; 0 is an ACK. */
  errno: number;
  seq: number;
  pid: number;
}

/** NLMSG_OVERRUN: data was lost. */
export interface OverrunMessage {
  kind: 'overrun';
  seq: number;
  pid: number;
}

export type NetlinkMessage = RouteMessage | DoneMessage | ErrorMessage | OverrunMessage;

/** What {@link parseNetlink} found in one datagram. */
export interface ParseResult {
  messages: NetlinkMessage[];
  /** Messages skipped because they were malformed (see the file header). */
  malformed: number;
  /** Well-formed messages of other types (NLMSG_NOOP, RTM_NEWADDR, ...), not returned. */
  ignored: number;
}

const HOST_LE = endianness() === 'LE';

/**
 * Read every message of one netlink datagram `buf[off, off+len)`. Never throws for any content
 * (a bad `off`/`len` is clamped to the buffer).
 * @param littleEndian the byte order of the datagram: the host's (netlink is host-endian).
 */
export function parseNetlink(buf: Uint8Array, off = 0, len = buf.length - off, littleEndian = HOST_LE): ParseResult {
  const result: ParseResult = { messages: [], malformed: 0, ignored: 0 };
  const start = Math.max(0, Math.min(off | 0, buf.length));
  const end = Math.max(start, Math.min(start + Math.max(0, len | 0), buf.length));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = start;
  while (end - p >= NLMSG_HDRLEN) {
    const mlen = dv.getUint32(p, littleEndian);
    if (mlen < NLMSG_HDRLEN || mlen > end - p) {
      result.malformed++;
      break; // the next header cannot be found
    }
    const type = dv.getUint16(p + 4, littleEndian);
    const flags = dv.getUint16(p + 6, littleEndian);
    const seq = dv.getUint32(p + 8, littleEndian);
    const pid = dv.getUint32(p + 12, littleEndian);
    const body = p + NLMSG_HDRLEN;
    const mend = p + mlen;
    switch (type) {
      case NLMSG_DONE:
        result.messages.push({ kind: 'done', flags, seq, pid });
        break;
      case NLMSG_ERROR:
        if (mend - body < 4) result.malformed++;
        else result.messages.push({ kind: 'error', errno: -dv.getInt32(body, littleEndian), seq, pid });
        break;
      case NLMSG_OVERRUN:
        result.messages.push({ kind: 'overrun', seq, pid });
        break;
      case RTM_NEWROUTE:
      case RTM_DELROUTE: {
        const m = parseRoute(dv, buf, body, mend, type, flags, seq, pid, littleEndian);
        if (m === undefined) result.malformed++;
        else result.messages.push(m);
        break;
      }
      default:
        result.ignored++;
    }
    p += align4(mlen);
  }
  // Trailing bytes too short for a header: the kernel never sends them.
  if (p < end && end - p < NLMSG_HDRLEN) result.malformed++;
  return result;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** The route message in `[body, mend)`, or undefined when malformed. */
function parseRoute(
  dv: DataView,
  buf: Uint8Array,
  body: number,
  mend: number,
  type: number,
  flags: number,
  seq: number,
  pid: number,
  le: boolean,
): RouteMessage | undefined {
  if (mend - body < RTMSG_LEN) return undefined;
  const family = buf[body]!;
  const dstLen = buf[body + 1]!;
  const m: RouteMessage = {
    kind: 'route',
    type,
    flags,
    seq,
    pid,
    family,
    dst: new Uint8Array(16),
    dstLen,
    table: buf[body + 4]!,
    metric: 0,
    routeType: buf[body + 7]!,
    protocol: buf[body + 5]!,
    scope: buf[body + 6]!,
    rtmFlags: dv.getUint32(body + 8, le),
    nexthops: [],
    nhid: undefined,
  };
  const addrLen = family === AF_INET6 ? 16 : family === 2 ? 4 : -1;
  if (addrLen > 0 && dstLen > addrLen * 8) return undefined;
  let oif = -1;
  let gateway: Uint8Array | undefined;
  let a = body + RTMSG_LEN;
  while (mend - a >= 4) {
    const alen = dv.getUint16(a, le);
    const atype = dv.getUint16(a + 2, le) & NLA_TYPE_MASK;
    if (alen < 4 || alen > mend - a) return undefined;
    const pay = a + 4;
    const plen = alen - 4;
    switch (atype) {
      case RTA_DST:
        if (plen !== addrLen) return undefined;
        m.dst.set(buf.subarray(pay, pay + plen));
        break;
      case RTA_OIF:
        if (plen !== 4) return undefined;
        oif = dv.getUint32(pay, le);
        break;
      case RTA_GATEWAY:
        if (plen !== addrLen) return undefined;
        gateway = copyAddr(buf, pay, plen);
        break;
      case RTA_PRIORITY:
        if (plen !== 4) return undefined;
        m.metric = dv.getUint32(pay, le);
        break;
      case RTA_TABLE:
        if (plen !== 4) return undefined;
        m.table = dv.getUint32(pay, le);
        break;
      case RTA_NH_ID:
        if (plen !== 4) return undefined;
        m.nhid = dv.getUint32(pay, le);
        break;
      case RTA_MULTIPATH:
        if (!parseMultipath(dv, buf, pay, pay + plen, addrLen, le, m.nexthops)) return undefined;
        break;
      default:
        break; // RTA_PREF, RTA_CACHEINFO, RTA_METRICS, RTA_EXPIRES, ...: not needed
    }
    a += align4(alen);
  }
  // 1..3 bytes left over: not an attribute, and the kernel never pads past the last one.
  if (a < mend) return undefined;
  if (m.nexthops.length === 0 && (oif >= 0 || gateway !== undefined)) {
    m.nexthops.push({ ifindex: oif >= 0 ? oif : 0, gateway, flags: 0 });
  }
  return m;
}

function copyAddr(buf: Uint8Array, at: number, len: number): Uint8Array {
  const out = new Uint8Array(16);
  out.set(buf.subarray(at, at + len));
  return out;
}

/** Append the rtnexthop list in `[p, end)` to `out`; false when it does not add up. */
function parseMultipath(dv: DataView, buf: Uint8Array, p: number, end: number, addrLen: number, le: boolean, out: RouteNexthop[]): boolean {
  while (end - p >= 8) {
    const nlen = dv.getUint16(p, le);
    if (nlen < 8 || nlen > end - p) return false;
    const nh: RouteNexthop = { ifindex: dv.getInt32(p + 4, le), gateway: undefined, flags: buf[p + 2]! };
    const nend = p + nlen;
    let a = p + 8;
    while (nend - a >= 4) {
      const alen = dv.getUint16(a, le);
      const atype = dv.getUint16(a + 2, le) & NLA_TYPE_MASK;
      if (alen < 4 || alen > nend - a) return false;
      if (atype === RTA_GATEWAY) {
        if (alen - 4 !== addrLen) return false;
        nh.gateway = copyAddr(buf, a + 4, addrLen);
      }
      a += align4(alen);
    }
    if (a < nend) return false;
    out.push(nh);
    p += align4(nlen);
  }
  return p >= end;
}

/**
 * The RTM_GETROUTE dump request for every IPv6 route of every table: nlmsghdr + rtmsg with
 * family AF_INET6 and table 0 (28 bytes).
 */
export function routeDumpRequest(seq: number, littleEndian = HOST_LE): Uint8Array {
  const b = new Uint8Array(NLMSG_HDRLEN + RTMSG_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, b.length, littleEndian);
  dv.setUint16(4, RTM_GETROUTE, littleEndian);
  dv.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, littleEndian);
  dv.setUint32(8, seq >>> 0, littleEndian);
  dv.setUint32(12, 0, littleEndian);
  b[NLMSG_HDRLEN] = AF_INET6;
  return b;
}

/** The name of a route type, as `ip route` prints it ('unicast', 'local', 'blackhole', ...). */
export function routeTypeName(type: number): string {
  return ROUTE_TYPE_NAMES[type] ?? `type-${type}`;
}

const ROUTE_TYPE_NAMES: Record<number, string> = {
  [RTN_UNSPEC]: 'unspec',
  [RTN_UNICAST]: 'unicast',
  [RTN_LOCAL]: 'local',
  [RTN_BROADCAST]: 'broadcast',
  [RTN_ANYCAST]: 'anycast',
  [RTN_MULTICAST]: 'multicast',
  [RTN_BLACKHOLE]: 'blackhole',
  [RTN_UNREACHABLE]: 'unreachable',
  [RTN_PROHIBIT]: 'prohibit',
  [RTN_THROW]: 'throw',
};
