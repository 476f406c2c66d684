/**
 * Neighbor Advertisement builder (RFC 4861 sections 4.4, 7.2.4 and 7.2.6).
 *
 * Frames are written into a caller buffer from one prebuilt IPv6 + NA + TLLA template that is
 * copied and patched in place; nothing is allocated per packet. Every builder returns the
 * number of bytes written, or 0 when `out` has no room (it writes nothing then).
 *
 * `decodeNA` is the slow, allocating inverse used by tests and `--explain`.
 */
import { formatAddress, formatMac } from '../addr/index.js';
import { icmp6ChecksumValid } from './checksum.js';
import {
  ICMPV6_NA,
  IPPROTO_ICMPV6,
  IPV6_HLEN,
  NA_FLAG_OVERRIDE,
  NA_FLAG_ROUTER,
  NA_FLAG_SOLICITED,
  NA_FRAME_LEN,
  NA_FRAME_LEN_VLAN,
  NA_LEN,
  ND_HOP_LIMIT,
  OPT_TARGET_LLA,
} from './constants.js';
import type { NsView } from './ns-view.js';
import { ethernetIPv6, writeEthernetTail } from './ethernet.js';

/** Who answers: the interface's MAC (Ethernet source and TLLA) and link-local address. */
export interface NaSender {
  readonly mac: Uint8Array;
  /** 16 bytes; the NA's IPv6 source under the `link-local` source policy. */
  readonly linkLocal: Uint8Array;
}

/** `target`: the NA comes from the address it speaks for; `link-local`: from the sender's fe80:: address. */
export type SourcePolicy = 'link-local' | 'target';

/** How an NA is built: its IPv6 source and its R and O flags. */
export interface NaFlags {
  readonly sourcePolicy: SourcePolicy;
  /** R flag. */
  readonly router: boolean;
  /** O flag of solicited answers (unsolicited NAs always carry O=1). */
  readonly override: boolean;
}

/** IPv6 payload of every NA we send: the NA (24) plus one Target Link-Layer Address option (8). */
const NA_PAYLOAD_LEN = NA_LEN + 8;

/** Offsets inside the layer-3 template (IPv6 header at 0). */
const T_SRC = 8;
const T_DST = 24;
const T_ICMP = IPV6_HLEN;
const T_FLAGS = T_ICMP + 4;
const T_TARGET = T_ICMP + 8;
const T_TLLA_MAC = T_ICMP + NA_LEN + 2;

/**
 * The constant part of an NA from IPv6 header to TLLA option: version 6, traffic class and
 * flow label 0, payload length 32, next header 58, hop limit 255, type 136, code 0, and the
 * TLLA option header (type 2, length 1). Addresses, flags, MAC and checksum are patched in.
 */
const L3_TEMPLATE: Uint8Array = (() => {
  const t = new Uint8Array(IPV6_HLEN + NA_PAYLOAD_LEN);
  t[0] = 0x60;
  t[4] = NA_PAYLOAD_LEN >>> 8;
  t[5] = NA_PAYLOAD_LEN & 0xff;
  t[6] = IPPROTO_ICMPV6;
  t[7] = ND_HOP_LIMIT;
  t[T_ICMP] = ICMPV6_NA;
  t[T_ICMP + NA_LEN] = OPT_TARGET_LLA;
  t[T_ICMP + NA_LEN + 1] = 1;
  return t;
})();

/** ff02::1, all-nodes (RFC 4291 section 2.7.1). */
const ALL_NODES = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** 33:33:00:00:00:01, the Ethernet group of ff02::1 (RFC 2464 section 7). */
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);

function copy(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/** Copy `n` (even) bytes and return the sum of the big-endian 16-bit words copied (RFC 1071). */
function copySum(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i += 2) {
    const hi = src[srcOff + i]!;
    const lo = src[srcOff + i + 1]!;
    dst[dstOff + i] = hi;
    dst[dstOff + i + 1] = lo;
    sum += (hi << 8) | lo;
  }
  return sum;
}

/**
 * Checksum words of the template that never change: ICMPv6 type/code (136, 0), TLLA option
 * header (2, 1), and from the pseudo-header the upper-layer length 32 and next header 58.
 */
const CONSTANT_SUM = ((ICMPV6_NA << 8) | 0) + ((OPT_TARGET_LLA << 8) | 1) + NA_PAYLOAD_LEN + IPPROTO_ICMPV6;

/** Write a complete NA frame; the caller has checked that it fits. Returns its length. */
function writeNA(
  out: Uint8Array,
  outOff: number,
  ethDst: Uint8Array,
  ethDstOff: number,
  vlanTci: number,
  mac: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  target: Uint8Array,
  targetOff: number,
  flags: number,
): number {
  copy(ethDst, ethDstOff, out, outOff, 6);
  const ip = writeEthernetTail(out, outOff, mac, vlanTci);
  out.set(L3_TEMPLATE, ip);
  // The checksum is summed while the variable fields are copied in: the template's other
  // ICMPv6 bytes are zero or in CONSTANT_SUM.
  let sum = CONSTANT_SUM + (flags << 8);
  sum += copySum(src, srcOff, out, ip + T_SRC, 16);
  sum += copySum(dst, dstOff, out, ip + T_DST, 16);
  out[ip + T_FLAGS] = flags;
  sum += copySum(target, targetOff, out, ip + T_TARGET, 16);
  sum += copySum(mac, 0, out, ip + T_TLLA_MAC, 6);
  // At most 27 words of 0xffff: two folds reach 16 bits.
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  out[ip + T_ICMP + 2] = c >>> 8;
  out[ip + T_ICMP + 3] = c & 0xff;
  return ip + IPV6_HLEN + NA_PAYLOAD_LEN - outOff;
}

function fits(out: Uint8Array, outOff: number, need: number): boolean {
  return Number.isInteger(outOff) && outOff >= 0 && outOff + need <= out.length;
}

/**
 * Answer a Neighbor Solicitation that {@link parseNS} accepted (`view` as it left it).
 *
 * - Specified source (RFC 4861 7.2.4): to the solicitor. Ethernet destination is the SLLAO MAC
 *   when present, else the NS's Ethernet source; IPv6 destination is the NS source; S=1.
 * - Unspecified source, a DAD probe (RFC 4861 7.2.4, RFC 4862 5.4.3): defend to all-nodes,
 *   ff02::1 / 33:33:00:00:00:01, S=0.
 *
 * In both: Ethernet source `host.mac`, the NS's single VLAN tag (same TCI) echoed, IPv6
 * source by `settings.sourcePolicy` (`target`: the NS target; `link-local`: `host.linkLocal`),
 * hop limit 255, R and O from `settings`, target = the NS target, one TLLA option = `host.mac`.
 * `out` must not overlap the NS frame.
 *
 * @returns bytes written (86, or 90 with a VLAN tag), or 0 if `out` is too small.
 */
export function buildNA(view: NsView, host: NaSender, settings: NaFlags, out: Uint8Array, outOff: number): number {
  const tagged = view.vlanTci >= 0;
  if (!fits(out, outOff, tagged ? NA_FRAME_LEN_VLAN : NA_FRAME_LEN)) return 0;
  const f = view.frame;
  const targetOff = view.targetOff;
  const linkLocal = settings.sourcePolicy === 'link-local';
  const src = linkLocal ? host.linkLocal : f;
  const srcOff = linkLocal ? 0 : targetOff;
  let flags = (settings.router ? NA_FLAG_ROUTER : 0) | (settings.override ? NA_FLAG_OVERRIDE : 0);
  if (view.unspecifiedSource) {
    return writeNA(out, outOff, ALL_NODES_MAC, 0, view.vlanTci, host.mac, src, srcOff, ALL_NODES, 0, f, targetOff, flags);
  }
  flags |= NA_FLAG_SOLICITED;
  const ethDstOff = view.sllaoOff >= 0 ? view.sllaoOff : view.start + 6;
  return writeNA(out, outOff, f, ethDstOff, view.vlanTci, host.mac, src, srcOff, f, view.srcOff, f, targetOff, flags);
}

/**
 * Unsolicited Neighbor Advertisement (RFC 4861 7.2.6), e.g. when a container appears:
 * to all-nodes ff02::1 / 33:33:00:00:00:01, S=0, O=1 whatever `settings.override` says,
 * R from `settings`, IPv6 source by `settings.sourcePolicy`, TLLA = `host.mac`.
 *
 * @param target 16-byte address at `targetOff` that is announced.
 * @param vlanTci 802.1Q TCI to tag the frame with, or -1 for an untagged frame.
 * @returns bytes written (86, or 90 with a VLAN tag), or 0 if `out` is too small.
 */
export function buildUnsolicitedNA(
  target: Uint8Array,
  targetOff: number,
  host: NaSender,
  settings: NaFlags,
  vlanTci: number,
  out: Uint8Array,
  outOff: number,
): number {
  const tagged = vlanTci >= 0;
  if (!fits(out, outOff, tagged ? NA_FRAME_LEN_VLAN : NA_FRAME_LEN)) return 0;
  const linkLocal = settings.sourcePolicy === 'link-local';
  const src = linkLocal ? host.linkLocal : target;
  const srcOff = linkLocal ? 0 : targetOff;
  const flags = (settings.router ? NA_FLAG_ROUTER : 0) | NA_FLAG_OVERRIDE;
  return writeNA(
    out,
    outOff,
    ALL_NODES_MAC,
    0,
    tagged ? vlanTci & 0xffff : -1,
    host.mac,
    src,
    srcOff,
    ALL_NODES,
    0,
    target,
    targetOff,
    flags,
  );
}

/** A decoded Neighbor Advertisement frame, as text, for tests and `--explain`. */
export interface DecodedNA {
  ethDst: string;
  ethSrc: string;
  /** TCI of the single 802.1Q tag, or -1. */
  vlanTci: number;
  trafficClass: number;
  flowLabel: number;
  /** IPv6 payload length. */
  payloadLength: number;
  src: string;
  dst: string;
  hopLimit: number;
  code: number;
  router: boolean;
  solicited: boolean;
  override: boolean;
  /** The 29 reserved bits after the flags (must be 0 on send). */
  reserved: number;
  target: string;
  /** MAC of the first Target Link-Layer Address option, or null. */
  tlla: string | null;
  /** Every option as `{type, length}` (length in bytes), in order. */
  options: { type: number; length: number }[];
  checksumOk: boolean;
  /** Bytes of the frame up to the end of the IPv6 payload. */
  frameLength: number;
}

/**
 * Decode a Neighbor Advertisement frame (Ethernet II, at most one 802.1Q tag, IPv6 with
 * ICMPv6 directly, RFC 4861 section 4.4). Not for the hot path: it allocates strings.
 *
 * @returns the decoded NA, or null when the frame is not a complete NA (wrong ethertype or
 * type, truncated, ICMPv6 shorter than 24, malformed options).
 */
export function decodeNA(frame: Uint8Array, start = 0, length = frame.length - start): DecodedNA | null {
  const end = start + Math.min(length, frame.length - start);
  if (!Number.isInteger(start) || start < 0) return null;
  const l2 = ethernetIPv6(frame, start, end);
  if (l2 === null) return null;
  const { ip, vlanTci } = l2;
  const plen = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  const icmp = ip + IPV6_HLEN;
  if (frame[ip + 6] !== IPPROTO_ICMPV6 || icmp + plen > end || plen < NA_LEN || frame[icmp] !== ICMPV6_NA) return null;
  const options: { type: number; length: number }[] = [];
  let tlla: string | null = null;
  for (let off = icmp + NA_LEN; off < icmp + plen;) {
    const len = (frame[off + 1] ?? 0) * 8;
    if (len === 0 || off + len > icmp + plen) return null;
    const type = frame[off]!;
    options.push({ type, length: len });
    if (type === OPT_TARGET_LLA && len === 8 && tlla === null) tlla = formatMac(frame, off + 2);
    off += len;
  }
  const flagsWord = ((frame[icmp + 4]! << 24) | (frame[icmp + 5]! << 16) | (frame[icmp + 6]! << 8) | frame[icmp + 7]!) >>> 0;
  return {
    ethDst: formatMac(frame, start),
    ethSrc: formatMac(frame, start + 6),
    vlanTci,
    trafficClass: ((frame[ip]! & 0x0f) << 4) | (frame[ip + 1]! >>> 4),
    flowLabel: ((frame[ip + 1]! & 0x0f) << 16) | (frame[ip + 2]! << 8) | frame[ip + 3]!,
    payloadLength: plen,
    src: formatAddress(frame, ip + 8),
    dst: formatAddress(frame, ip + 24),
    hopLimit: frame[ip + 7]!,
    code: frame[icmp + 1]!,
    router: (flagsWord & 0x80000000) !== 0,
    solicited: (flagsWord & 0x40000000) !== 0,
    override: (flagsWord & 0x20000000) !== 0,
    reserved: flagsWord & 0x1fffffff,
    target: formatAddress(frame, icmp + 8),
    tlla,
    options,
    checksumOk: icmp6ChecksumValid(frame, ip + 8, ip + 24, icmp, plen),
    frameLength: icmp + plen - start,
  };
}
