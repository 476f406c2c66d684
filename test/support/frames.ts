/**
 * Frame builders for tests and fixtures: Neighbor Solicitations, Neighbor Advertisements,
 * MLD queries and any other ICMPv6 message, over Ethernet II with any number of VLAN tags.
 *
 * Every builder produces a correct frame by default (right lengths, right checksum) and
 * every field can be overridden, including into nonsense, so tests can build exactly the
 * broken frame they mean. This file deliberately shares no code with src/: checksums and
 * address parsing are computed here independently, so tests do not check the codec against
 * itself.
 *
 * Addresses are given as text (`'2001:db8::1'`, `'02:00:00:00:00:01'`) or as bytes.
 *
 * @example
 *   makeNS({ target: '2001:db8::10' })                       // valid multicast NS with SLLAO
 *   makeNS({ target: '2001:db8::10', hopLimit: 64 })         // BadHopLimit
 *   makeNS({ src: '::', sllao: null })                       // valid DAD probe
 *   makeNS({ dst: '2001:db8::10', vlan: 100 })               // unicast NUD probe, VLAN 100
 *   makeNS({ options: [{ type: 14, value: nonce6 }] })       // with a Nonce option
 *   makeNS({ options: [{ raw: [1, 0] }], sllao: null })      // zero-length option (raw bytes)
 */

/** An IPv6 address or a MAC address: text or bytes. */
export type Addr = string | Uint8Array;

/** Parse IPv6 text (with `::`, optional dotted-quad tail) to 16 bytes. Throws on bad text. */
export function ip6(text: string): Uint8Array {
  let s = text;
  const words: number[] = [];
  let tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const o = dotted.slice(1).map(Number) as [number, number, number, number];
    tail = [o[0] * 256 + o[1], o[2] * 256 + o[3]];
    s = s.slice(0, dotted.index);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const parts = s.split('::');
  if (parts.length > 2) throw new Error(`bad IPv6 '${text}'`);
  const split = (p: string): number[] => (p === '' ? [] : p.split(':').map((h) => Number.parseInt(h, 16)));
  const left = split(parts[0]!);
  const right = parts.length === 2 ? split(parts[1]!) : [];
  const zeros = parts.length === 2 ? 8 - left.length - right.length - tail.length : 0;
  words.push(...left, ...Array<number>(Math.max(zeros, 0)).fill(0), ...right, ...tail);
  if (words.length !== 8 || words.some((w) => !(w >= 0 && w <= 0xffff))) throw new Error(`bad IPv6 '${text}'`);
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setUint16(2 * i, w));
  return b;
}

/** Parse `aa:bb:cc:dd:ee:ff` to 6 bytes. Throws on bad text. */
export function mac(text: string): Uint8Array {
  const p = text.split(':').map((h) => Number.parseInt(h, 16));
  if (p.length !== 6 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad MAC '${text}'`);
  return Uint8Array.from(p);
}

function ipBytes(a: Addr): Uint8Array {
  return typeof a === 'string' ? ip6(a) : a;
}
function macBytes(a: Addr): Uint8Array {
  return typeof a === 'string' ? mac(a) : a;
}

/** The solicited-node group ff02::1:ffXX:XXXX of an address (RFC 4291 section 2.7.1). */
export function solicitedNode(addr: Addr): Uint8Array {
  const a = ipBytes(addr);
  const g = ip6('ff02::1:ff00:0');
  g.set(a.subarray(13, 16), 13);
  return g;
}

/** The Ethernet group 33:33:XX:XX:XX:XX of an IPv6 multicast group (RFC 2464 section 7). */
export function multicastMacOf(group: Addr): Uint8Array {
  const g = ipBytes(group);
  return Uint8Array.from([0x33, 0x33, g[12]!, g[13]!, g[14]!, g[15]!]);
}

/**
 * ICMPv6 checksum (RFC 4443 section 2.3) of `icmp` (checksum field taken as zero) under the
 * pseudo-header of RFC 8200 section 8.1, written plainly with a DataView.
 */
export function referenceIcmp6Checksum(src: Uint8Array, dst: Uint8Array, icmp: Uint8Array): number {
  const pseudo = new Uint8Array(40 + icmp.length + (icmp.length % 2));
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  const dv = new DataView(pseudo.buffer);
  dv.setUint32(32, icmp.length);
  dv.setUint32(36, 58);
  pseudo.set(icmp, 40);
  pseudo[42] = 0;
  pseudo[43] = 0;
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) sum += dv.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return ~sum & 0xffff;
}

/** Ethernet and IPv6 fields shared by every builder. Defaults make a correct frame. */
export interface FrameSpec {
  /** Ethernet destination. Default: the group MAC of a multicast `dst`, else 02:00:00:00:00:fe. */
  ethDst?: Addr;
  /** Ethernet source. Default 02:00:00:00:00:01. */
  ethSrc?: Addr;
  /** 802.1Q TCI, or a list of TCIs for stacked tags (outermost first). */
  vlan?: number | readonly number[];
  /** Tag protocol ID per tag (outermost first). Default 0x8100 for every tag. */
  tpid?: number | readonly number[];
  /** Ethertype after the tags. Default 0x86dd. */
  etherType?: number;
  /** IP version nibble. Default 6. */
  version?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** Overrides the IPv6 payload length field (default: the real length). */
  payloadLength?: number;
  /** IPv6 next header. Default 58 (or whatever the builder needs). */
  nextHeader?: number;
  /** Default 255 (NDP builders) or 1 (MLD). */
  hopLimit?: number;
  src?: Addr;
  dst?: Addr;
  /** Raw bytes placed between the IPv6 header and the ICMPv6 message (extension headers). */
  extHeaders?: Uint8Array | readonly number[];
  /** Exact checksum field value instead of the computed one. */
  checksum?: number;
  /** Store the correct checksum plus one (a wrong checksum). */
  badChecksum?: boolean;
  /** Zero bytes appended after the IPv6 packet (Ethernet padding). */
  padding?: number;
  /** Remove this many bytes from the end of the finished frame. */
  truncate?: number;
}

/** An ICMPv6 message in a frame: `icmp` is the whole message (its checksum field is rewritten). */
export interface Icmp6FrameSpec extends FrameSpec {
  icmp: Uint8Array | readonly number[];
}

/**
 * Build Ethernet [+ tags] + IPv6 [+ extHeaders] + ICMPv6 with the checksum computed over the
 * ICMPv6 message (upper-layer length = ICMPv6 length, next header 58, RFC 8200 section 8.1).
 * Defaults: src fe80::1, dst ff02::1, hop limit 255.
 */
export function makeIcmp6Frame(spec: Icmp6FrameSpec): Uint8Array {
  const src = ipBytes(spec.src ?? 'fe80::1');
  const dst = ipBytes(spec.dst ?? 'ff02::1');
  const icmp = Uint8Array.from(spec.icmp);
  if (icmp.length >= 4) {
    let c = spec.checksum ?? referenceIcmp6Checksum(src, dst, icmp);
    if (spec.badChecksum) c = (c + 1) & 0xffff;
    icmp[2] = c >> 8;
    icmp[3] = c & 0xff;
  }
  const ext = Uint8Array.from(spec.extHeaders ?? []);
  const tcis = spec.vlan === undefined ? [] : typeof spec.vlan === 'number' ? [spec.vlan] : [...spec.vlan];
  const tpids = spec.tpid === undefined ? [] : typeof spec.tpid === 'number' ? [spec.tpid] : [...spec.tpid];
  const l2 = 14 + 4 * tcis.length;
  const plen = ext.length + icmp.length;
  const total = l2 + 40 + plen + (spec.padding ?? 0);
  const f = new Uint8Array(total);
  const dv = new DataView(f.buffer);
  const ethDst = spec.ethDst !== undefined ? macBytes(spec.ethDst) : dst[0] === 0xff ? multicastMacOf(dst) : mac('02:00:00:00:00:fe');
  f.set(ethDst, 0);
  f.set(macBytes(spec.ethSrc ?? '02:00:00:00:00:01'), 6);
  let o = 12;
  tcis.forEach((tci, i) => {
    dv.setUint16(o, tpids[i] ?? 0x8100);
    dv.setUint16(o + 2, tci);
    o += 4;
  });
  dv.setUint16(o, spec.etherType ?? 0x86dd);
  o += 2;
  const version = spec.version ?? 6;
  dv.setUint32(o, ((version & 0xf) << 28) | (((spec.trafficClass ?? 0) & 0xff) << 20) | ((spec.flowLabel ?? 0) & 0xfffff));
  dv.setUint16(o + 4, spec.payloadLength ?? plen);
  f[o + 6] = spec.nextHeader ?? 58;
  f[o + 7] = spec.hopLimit ?? 255;
  f.set(src, o + 8);
  f.set(dst, o + 24);
  f.set(ext, o + 40);
  f.set(icmp, o + 40 + ext.length);
  return spec.truncate ? f.slice(0, Math.max(0, total - spec.truncate)) : f;
}

/**
 * One ND option (RFC 4861 section 4.6). `value` (bytes, or a MAC as text) is laid out after
 * the type and length bytes and zero-padded to a multiple of 8; `lengthUnits` overrides the
 * length byte. `raw` emits exactly the given bytes instead (for malformed options).
 */
export type NdOption = { type: number; value?: Addr | readonly number[]; lengthUnits?: number } | { raw: Uint8Array | readonly number[] };

/** Encode a list of options. */
export function encodeOptions(options: readonly NdOption[]): Uint8Array {
  const chunks: number[] = [];
  for (const opt of options) {
    if ('raw' in opt) {
      chunks.push(...opt.raw);
      continue;
    }
    const v = opt.value === undefined ? [] : typeof opt.value === 'string' ? [...mac(opt.value)] : [...opt.value];
    const size = Math.ceil((2 + v.length) / 8) * 8;
    const bytes = new Array<number>(size).fill(0);
    bytes[0] = opt.type;
    bytes[1] = opt.lengthUnits ?? size / 8;
    v.forEach((x, i) => (bytes[2 + i] = x));
    chunks.push(...bytes);
  }
  return Uint8Array.from(chunks);
}

/** Neighbor Solicitation fields (RFC 4861 section 4.3) on top of {@link FrameSpec}. */
export interface NsSpec extends FrameSpec {
  /** Default 2001:db8::10. */
  target?: Addr;
  /** ICMPv6 type. Default 135. */
  type?: number;
  /** Default 0. */
  code?: number;
  /** The 32-bit reserved field. Default 0. */
  reserved?: number;
  /**
   * Source Link-Layer Address option, placed first. Default: the Ethernet source when `src`
   * is specified, none when `src` is `::`. `null` omits it.
   */
  sllao?: Addr | null;
  /** Further options, after the SLLAO. */
  options?: readonly NdOption[];
}

/**
 * Build a Neighbor Solicitation frame. Defaults give a valid NS: src fe80::1, dst the target's
 * solicited-node group, hop limit 255, target 2001:db8::10, SLLAO = Ethernet source.
 */
export function makeNS(spec: NsSpec = {}): Uint8Array {
  const target = ipBytes(spec.target ?? '2001:db8::10');
  const src = ipBytes(spec.src ?? 'fe80::1');
  const unspecified = src.every((b) => b === 0);
  const ethSrc = macBytes(spec.ethSrc ?? '02:00:00:00:00:01');
  const sllao = spec.sllao === undefined ? (unspecified ? null : ethSrc) : spec.sllao;
  const opts: NdOption[] = [];
  if (sllao !== null) opts.push({ type: 1, value: macBytes(sllao) });
  opts.push(...(spec.options ?? []));
  const body = encodeOptions(opts);
  const icmp = new Uint8Array(24 + body.length);
  const dv = new DataView(icmp.buffer);
  icmp[0] = spec.type ?? 135;
  icmp[1] = spec.code ?? 0;
  dv.setUint32(4, spec.reserved ?? 0);
  icmp.set(target, 8);
  icmp.set(body, 24);
  return makeIcmp6Frame({ ...spec, src, ethSrc, dst: spec.dst ?? solicitedNode(target), icmp });
}

/** Neighbor Advertisement fields (RFC 4861 section 4.4) on top of {@link FrameSpec}. */
export interface NaSpec extends FrameSpec {
  target?: Addr;
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
  code?: number;
  /** Target Link-Layer Address option. Default: the Ethernet source. `null` omits it. */
  tlla?: Addr | null;
  options?: readonly NdOption[];
}

/** Build a Neighbor Advertisement frame (default: unsolicited, O=1, to ff02::1, with TLLA). */
export function makeNA(spec: NaSpec = {}): Uint8Array {
  const target = ipBytes(spec.target ?? '2001:db8::10');
  const ethSrc = macBytes(spec.ethSrc ?? '02:00:00:00:00:01');
  const tlla = spec.tlla === undefined ? ethSrc : spec.tlla;
  const opts: NdOption[] = [];
  if (tlla !== null) opts.push({ type: 2, value: macBytes(tlla) });
  opts.push(...(spec.options ?? []));
  const body = encodeOptions(opts);
  const icmp = new Uint8Array(24 + body.length);
  icmp[0] = 136;
  icmp[1] = spec.code ?? 0;
  icmp[4] = (spec.router ? 0x80 : 0) | (spec.solicited ? 0x40 : 0) | ((spec.override ?? true) ? 0x20 : 0);
  icmp.set(target, 8);
  icmp.set(body, 24);
  return makeIcmp6Frame({ ...spec, src: spec.src ?? target, ethSrc, icmp });
}

/** MLD query fields (RFC 2710 section 3, RFC 3810 section 5.1) on top of {@link FrameSpec}. */
export interface MldQuerySpec extends FrameSpec {
  /** 1: 24-byte MLDv1 query; 2: MLDv2 query (28 + 16 * sources bytes). Default 2. */
  mldVersion?: 1 | 2;
  /** Group, or `::` (the default) for a general query. */
  group?: Addr;
  /** The 16-bit Maximum Response Code / Delay field. Default 10000. */
  maxResponseCode?: number;
  /** MLDv2 source addresses. */
  sources?: readonly Addr[];
  /** Overrides the MLDv2 Number of Sources field. */
  numberOfSources?: number;
  /** MLDv2 Querier's Robustness Variable (low 3 bits of byte 24). Default 2. */
  qrv?: number;
  /** MLDv2 Querier's Query Interval Code (byte 25). Default 125. */
  qqic?: number;
  /** Raw Hop-by-Hop header. Default: next header 58, Router Alert 0, PadN. `null` omits it. */
  hopByHop?: Uint8Array | readonly number[] | null;
  /** ICMPv6 type. Default 130. */
  type?: number;
  code?: number;
}

/** Standard Hop-by-Hop header for MLD: next header 58, Router Alert (value 0), PadN(0). */
export const MLD_HOP_BY_HOP: readonly number[] = Object.freeze([58, 0, 5, 2, 0, 0, 1, 0]);

/** Build an MLD query frame. Defaults: MLDv2 general query from fe80::1 to ff02::1, hop limit 1. */
export function makeMldQuery(spec: MldQuerySpec = {}): Uint8Array {
  const v2 = (spec.mldVersion ?? 2) === 2;
  const sources = (spec.sources ?? []).map(ipBytes);
  const icmp = new Uint8Array(v2 ? 28 + 16 * sources.length : 24);
  const dv = new DataView(icmp.buffer);
  icmp[0] = spec.type ?? 130;
  icmp[1] = spec.code ?? 0;
  dv.setUint16(4, spec.maxResponseCode ?? 10000);
  icmp.set(ipBytes(spec.group ?? '::'), 8);
  if (v2) {
    icmp[24] = (spec.qrv ?? 2) & 0x07;
    icmp[25] = spec.qqic ?? 125;
    dv.setUint16(26, spec.numberOfSources ?? sources.length);
    sources.forEach((s, i) => icmp.set(s, 28 + 16 * i));
  }
  const hbh = spec.hopByHop === undefined ? MLD_HOP_BY_HOP : spec.hopByHop;
  return makeIcmp6Frame({
    ...spec,
    hopLimit: spec.hopLimit ?? 1,
    nextHeader: spec.nextHeader ?? (hbh === null ? 58 : 0),
    extHeaders: hbh ?? [],
    icmp,
  });
}
