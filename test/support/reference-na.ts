/**
 * An independent check that an NA frame is the right answer to an NS frame, written from
 * RFC 4861 sections 4.4, 7.2.4 and 7.2.6, sharing no code with src/ndp/build.ts.
 * Returns the list of problems (empty = right).
 */
import { referenceDecodeNS } from './reference-ns.js';
import { referenceIcmp6Checksum } from './frames.js';

export interface NaExpectation {
  mac: Uint8Array;
  sourcePolicy: 'target' | 'link-local';
  linkLocal?: Uint8Array;
  router: boolean;
  override: boolean;
}

const hex = (b: Uint8Array | number[]) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export function checkAnswer(ns: Uint8Array, na: Uint8Array, want: NaExpectation): string[] {
  const p: string[] = [];
  const req = referenceDecodeNS(ns);
  if (req.problem !== null) return [`the NS itself is invalid: ${req.problem}`];
  const tagged = req.vlanTci >= 0;
  const l2 = tagged ? 18 : 14;
  if (na.length !== l2 + 40 + 32) p.push(`length ${na.length}, want ${l2 + 72}`);
  const dv = new DataView(na.buffer, na.byteOffset, na.byteLength);
  const dad = req.unspecifiedSource;
  // Ethernet
  const wantDst = dad
    ? [0x33, 0x33, 0, 0, 0, 1]
    : req.sllaoMacOffset >= 0
      ? [...ns.subarray(req.sllaoMacOffset, req.sllaoMacOffset + 6)]
      : [...ns.subarray(6, 12)];
  if (hex(na.subarray(0, 6)) !== hex(wantDst)) p.push(`eth dst ${hex(na.subarray(0, 6))}, want ${hex(wantDst)}`);
  if (hex(na.subarray(6, 12)) !== hex(want.mac)) p.push(`eth src ${hex(na.subarray(6, 12))}, want ${hex(want.mac)}`);
  if (tagged) {
    if (dv.getUint16(12) !== 0x8100) p.push('VLAN tag missing');
    if (dv.getUint16(14) !== req.vlanTci) p.push(`TCI ${dv.getUint16(14)}, want ${req.vlanTci}`);
  }
  if (dv.getUint16(l2 - 2) !== 0x86dd) p.push('ethertype not IPv6');
  // IPv6
  const ip = l2;
  if (dv.getUint32(ip) !== 0x60000000) p.push(`version/class/flow 0x${dv.getUint32(ip).toString(16)}, want 0x60000000`);
  if (dv.getUint16(ip + 4) !== 32) p.push(`payload length ${dv.getUint16(ip + 4)}, want 32`);
  if (dv.getUint8(ip + 6) !== 58) p.push('next header not ICMPv6');
  if (dv.getUint8(ip + 7) !== 255) p.push(`hop limit ${dv.getUint8(ip + 7)}, want 255`);
  const target = ns.subarray(req.targetOffset, req.targetOffset + 16);
  const wantSrc = want.sourcePolicy === 'target' ? target : want.linkLocal!;
  if (hex(na.subarray(ip + 8, ip + 24)) !== hex(wantSrc)) p.push(`ip src ${hex(na.subarray(ip + 8, ip + 24))}, want ${hex(wantSrc)}`);
  const nsSrc = ns.subarray(req.ipOffset + 8, req.ipOffset + 24);
  const wantIpDst = dad ? Uint8Array.from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) : nsSrc;
  if (hex(na.subarray(ip + 24, ip + 40)) !== hex(wantIpDst)) p.push(`ip dst ${hex(na.subarray(ip + 24, ip + 40))}, want ${hex(wantIpDst)}`);
  // ICMPv6 NA
  const icmp = ip + 40;
  if (dv.getUint8(icmp) !== 136) p.push(`type ${dv.getUint8(icmp)}, want 136`);
  if (dv.getUint8(icmp + 1) !== 0) p.push('code not 0');
  const flags = dv.getUint32(icmp + 4);
  const wantFlags = ((want.router ? 1 : 0) << 31) | ((dad ? 0 : 1) << 30) | ((want.override ? 1 : 0) << 29);
  if (flags >>> 0 !== wantFlags >>> 0) p.push(`flags 0x${(flags >>> 0).toString(16)}, want 0x${(wantFlags >>> 0).toString(16)}`);
  if (hex(na.subarray(icmp + 8, icmp + 24)) !== hex(target)) p.push('target differs from the NS target');
  if (dv.getUint8(icmp + 24) !== 2 || dv.getUint8(icmp + 25) !== 1) p.push('no Target Link-Layer Address option of length 1');
  if (hex(na.subarray(icmp + 26, icmp + 32)) !== hex(want.mac)) p.push('TLLA is not the host MAC');
  const body = Uint8Array.from(na.subarray(icmp, icmp + 32));
  const sum = dv.getUint16(icmp + 2);
  body[2] = 0;
  body[3] = 0;
  const wantSum = referenceIcmp6Checksum(na.subarray(ip + 8, ip + 24), na.subarray(ip + 24, ip + 40), body);
  if (sum !== wantSum) p.push(`checksum 0x${sum.toString(16)}, want 0x${wantSum.toString(16)}`);
  return p;
}
