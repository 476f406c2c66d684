import t from 'tap';
import {
  MLD2_CHANGE_TO_EXCLUDE,
  MLD2_CHANGE_TO_INCLUDE,
  MLD2_MODE_IS_EXCLUDE,
  MLD2_MODE_IS_INCLUDE,
  buildMldv2Report,
  decodeMaxResponseCode,
  mldv2ReportLength,
  mldv2ReportMaxGroups,
  parseMldQuery,
} from '../../src/ndp/mld.js';
import { MLD_HOP_BY_HOP, ip6, mac, makeIcmp6Frame, makeMldQuery, solicitedNode } from '../support/frames.js';

const SRC_MAC = mac('02:42:ac:11:00:09');
const LL = ip6('fe80::42:acff:fe11:9');
const GROUPS = [solicitedNode('2001:db8::10'), solicitedNode('2001:db8::8000:0:0:abcd'), ip6('ff02::1:ff00:1')];

/** Independent check: sum over pseudo-header (ICMPv6 length, next header 58) and ICMPv6 is 0xffff. */
function mldChecksumVerifies(frame: Uint8Array, ipOff: number, icmpOff: number): boolean {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const icmpLen = ipOff + 40 + dv.getUint16(ipOff + 4) - icmpOff;
  let sum = icmpLen + 58;
  for (let i = ipOff + 8; i < ipOff + 40; i += 2) sum += dv.getUint16(i);
  for (let i = 0; i < icmpLen; i += 2) sum += i + 1 < icmpLen ? dv.getUint16(icmpOff + i) : dv.getUint8(icmpOff + i) << 8;
  while (sum > 0xffff) sum = (sum >>> 16) + (sum & 0xffff);
  return sum === 0xffff;
}

/** The report as the independent test builder lays it out. */
function expectedReport(groups: Uint8Array[], recordType: number, vlan?: number): Uint8Array {
  const icmp: number[] = [143, 0, 0, 0, 0, 0, groups.length >> 8, groups.length & 0xff];
  for (const g of groups) icmp.push(recordType, 0, 0, 0, ...g);
  return makeIcmp6Frame({
    ethDst: '33:33:00:00:00:16',
    ethSrc: SRC_MAC,
    ...(vlan !== undefined ? { vlan } : {}),
    src: LL,
    dst: 'ff02::16',
    hopLimit: 1,
    nextHeader: 0,
    extHeaders: MLD_HOP_BY_HOP,
    icmp,
  });
}

t.test('MLDv2 report: every byte', async (t) => {
  const out = new Uint8Array(200);
  const n = buildMldv2Report(out, 0, SRC_MAC, LL, GROUPS, MLD2_CHANGE_TO_EXCLUDE);
  t.equal(n, 14 + 40 + 8 + 8 + 3 * 20);
  t.equal(n, mldv2ReportLength(3));
  const f = out.subarray(0, n);
  t.same([...f.subarray(0, 6)], [0x33, 0x33, 0, 0, 0, 0x16], 'Ethernet dst');
  t.same([...f.subarray(6, 12)], [...SRC_MAC], 'Ethernet src');
  t.same([...f.subarray(12, 14)], [0x86, 0xdd]);
  t.equal(f[14]! >> 4, 6);
  t.equal((f[18]! << 8) | f[19]!, 8 + 8 + 60, 'payload length includes the HBH header');
  t.equal(f[20], 0, 'next header HBH');
  t.equal(f[21], 1, 'hop limit 1');
  t.same([...f.subarray(22, 38)], [...LL]);
  t.same([...f.subarray(38, 54)], [...ip6('ff02::16')]);
  t.same([...f.subarray(54, 62)], [58, 0, 5, 2, 0, 0, 1, 0], 'HBH: next 58, Router Alert 0, PadN');
  t.equal(f[62], 143);
  t.equal((f[68]! << 8) | f[69]!, 3, 'number of records');
  for (let i = 0; i < 3; i++) {
    const r = 70 + 20 * i;
    t.same([...f.subarray(r, r + 4)], [MLD2_CHANGE_TO_EXCLUDE, 0, 0, 0], `record ${i} header`);
    t.same([...f.subarray(r + 4, r + 20)], [...GROUPS[i]!], `record ${i} group`);
  }
  t.ok(mldChecksumVerifies(f, 14, 62), 'checksum over ICMPv6 only, length excludes HBH');
  t.same([...f], [...expectedReport(GROUPS, MLD2_CHANGE_TO_EXCLUDE)], 'byte-equal to the independent builder');
});

t.test('record types, VLAN, offset, empty report', async (t) => {
  for (const type of [MLD2_MODE_IS_INCLUDE, MLD2_MODE_IS_EXCLUDE, MLD2_CHANGE_TO_INCLUDE, MLD2_CHANGE_TO_EXCLUDE]) {
    const out = new Uint8Array(300).fill(0x77);
    const n = buildMldv2Report(out, 33, SRC_MAC, LL, GROUPS.slice(0, 2), type, 0x3064);
    t.equal(n, mldv2ReportLength(2, true));
    t.ok(out.subarray(0, 33).every((b) => b === 0x77) && out.subarray(33 + n).every((b) => b === 0x77), 'outside untouched');
    t.same([...out.subarray(33, 33 + n)], [...expectedReport(GROUPS.slice(0, 2), type, 0x3064)], `type ${type}`);
  }
  const out = new Uint8Array(100);
  const n = buildMldv2Report(out, 0, SRC_MAC, LL, [], MLD2_CHANGE_TO_INCLUDE, -1);
  t.equal(n, 14 + 40 + 16);
  t.same([...out.subarray(0, n)], [...expectedReport([], MLD2_CHANGE_TO_INCLUDE)]);
});

t.test('report: out too small and bad arguments', async (t) => {
  const need = mldv2ReportLength(3);
  const small = new Uint8Array(need - 1).fill(1);
  t.equal(buildMldv2Report(small, 0, SRC_MAC, LL, GROUPS, 4), 0);
  t.ok(small.every((b) => b === 1), 'untouched');
  t.equal(buildMldv2Report(new Uint8Array(need), 0, SRC_MAC, LL, GROUPS, 4), need, 'exact fit');
  t.equal(buildMldv2Report(new Uint8Array(need + 3), 4, SRC_MAC, LL, GROUPS, 4), 0, 'offset pushes past the end');
  t.equal(buildMldv2Report(new Uint8Array(need), 0, SRC_MAC, LL, GROUPS, 4, 1), 0, 'VLAN tag needs 4 more');
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, GROUPS, 0), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, GROUPS, 7), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, [new Uint8Array(4)], 4), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, new Uint8Array(5), LL, GROUPS, 4), RangeError);
});

t.test('mldv2ReportMaxGroups splits at the MTU', async (t) => {
  t.equal(mldv2ReportMaxGroups(), 72);
  t.equal(mldv2ReportMaxGroups(1280), 61);
  for (const mtu of [1280, 1400, 1500, 9000]) {
    const max = mldv2ReportMaxGroups(mtu);
    const ipLen = (g: number): number => mldv2ReportLength(g) - 14;
    t.ok(ipLen(max) <= mtu && ipLen(max + 1) > mtu, `mtu ${mtu}: ${max} groups`);
  }
  t.equal(mldv2ReportMaxGroups(50), 0);
});

t.test('a full report parses as not-a-query', async (t) => {
  const out = new Uint8Array(200);
  const n = buildMldv2Report(out, 0, SRC_MAC, LL, GROUPS, 4);
  t.equal(parseMldQuery(out, 0, n), null);
});

t.test('parse MLD queries', async (t) => {
  const general = makeMldQuery();
  t.same(parseMldQuery(general, 0, general.length), { group: null, maxResponseDelayMs: 10000, vlanTci: -1 });

  const specific = makeMldQuery({ group: 'ff02::1:ff00:10', dst: 'ff02::1:ff00:10', maxResponseCode: 1000, vlan: 42 });
  const q = parseMldQuery(specific, 0, specific.length);
  t.same(q && { ...q, group: q.group && [...q.group] }, { group: [...ip6('ff02::1:ff00:10')], maxResponseDelayMs: 1000, vlanTci: 42 });

  // The group is a copy, not a view into the (reused) receive buffer; also for Node Buffers.
  const buf = Buffer.from(specific);
  const q2 = parseMldQuery(buf, 0, buf.length);
  buf.fill(0);
  t.same(q2?.group && [...q2.group], [...ip6('ff02::1:ff00:10')]);

  const v1 = makeMldQuery({ mldVersion: 1, maxResponseCode: 0x9000 });
  t.same(parseMldQuery(v1, 0, v1.length), { group: null, maxResponseDelayMs: 0x9000, vlanTci: -1 }, 'MLDv1: delay in ms as is');

  const withSources = makeMldQuery({ group: 'ff0e::1234', sources: ['2001:db8::1', '2001:db8::2'] });
  t.equal(parseMldQuery(withSources, 0, withSources.length)?.maxResponseDelayMs, 10000);

  const pad1 = makeMldQuery({ hopByHop: [58, 0, 0, 0, 5, 2, 0, 0] });
  t.not(parseMldQuery(pad1, 0, pad1.length), null, 'Pad1 before Router Alert');

  const padded = new Uint8Array(general.length + 30);
  padded.set(general, 10);
  t.not(parseMldQuery(padded, 10, general.length + 20), null, 'at an offset with trailing bytes');
});

t.test('MLDv2 Maximum Response Code (RFC 3810 5.1.3)', async (t) => {
  t.equal(decodeMaxResponseCode(0), 0);
  t.equal(decodeMaxResponseCode(32767), 32767);
  t.equal(decodeMaxResponseCode(0x8000), 0x1000 << 3, 'exp 0, mant 0');
  t.equal(decodeMaxResponseCode(0x8001), 0x1001 << 3);
  t.equal(decodeMaxResponseCode(0x9abc), (0xabc | 0x1000) << 4, 'exp 1');
  t.equal(decodeMaxResponseCode(0xffff), 0x1fff * 1024, 'largest: exp 7, mant 0xfff');
  const f = makeMldQuery({ maxResponseCode: 0xa123 });
  t.equal(parseMldQuery(f, 0, f.length)?.maxResponseDelayMs, (0x123 | 0x1000) << 5, 'parsed MLDv2 code uses it');
});

t.test('invalid queries are null', async (t) => {
  const icmpOfLen = (n: number): number[] => {
    const b = new Array<number>(n).fill(0);
    b[0] = 130;
    b[4] = 0x27;
    b[5] = 0x10;
    return b;
  };
  const bad: [string, Uint8Array][] = [
    ['hop limit 255', makeMldQuery({ hopLimit: 255 })],
    ['global source', makeMldQuery({ src: '2001:db8::1' })],
    ['unspecified source', makeMldQuery({ src: '::' })],
    ['no hop-by-hop header', makeMldQuery({ hopByHop: null })],
    ['hop-by-hop without Router Alert', makeMldQuery({ hopByHop: [58, 0, 1, 4, 0, 0, 0, 0] })],
    ['Router Alert for RSVP (value 1)', makeMldQuery({ hopByHop: [58, 0, 5, 2, 0, 1, 1, 0] })],
    ['hop-by-hop option runs past the header', makeMldQuery({ hopByHop: [58, 0, 5, 2, 0, 0, 1, 9] })],
    ['hop-by-hop leads to UDP', makeMldQuery({ hopByHop: [17, 0, 5, 2, 0, 0, 1, 0] })],
    ['bad checksum', makeMldQuery({ badChecksum: true })],
    ['report, not query', makeMldQuery({ type: 143 })],
    ['code 1', makeMldQuery({ code: 1 })],
    ['sources beyond the message', makeMldQuery({ numberOfSources: 1 })],
    ['group not multicast', makeMldQuery({ group: '2001:db8::1' })],
    ['truncated', makeMldQuery({ truncate: 1 })],
    ['IPv4 ethertype', makeMldQuery({ etherType: 0x0800 })],
    ['IP version 4', makeMldQuery({ version: 4 })],
    ['short frame', makeMldQuery().slice(0, 40)],
    ...[20, 25, 26, 27].map((n): [string, Uint8Array] => [
      `ICMPv6 length ${n}`,
      makeIcmp6Frame({ hopLimit: 1, nextHeader: 0, extHeaders: MLD_HOP_BY_HOP, icmp: icmpOfLen(n) }),
    ]),
  ];
  for (const [name, f] of bad) t.equal(parseMldQuery(f, 0, f.length), null, name);
  // Control: the same helper at 24 and 28 bytes is accepted, so the nulls above are for the stated reason.
  for (const n of [24, 28]) {
    const f = makeIcmp6Frame({ hopLimit: 1, nextHeader: 0, extHeaders: MLD_HOP_BY_HOP, icmp: icmpOfLen(n) });
    t.same(parseMldQuery(f, 0, f.length), { group: null, maxResponseDelayMs: 10000, vlanTci: -1 }, `ICMPv6 length ${n}`);
  }
  const g = makeMldQuery();
  for (const [s, l] of [[-1, g.length], [0, Number.NaN], [0.5, g.length], [g.length, 5]] as const) {
    t.equal(parseMldQuery(g, s, l), null, `start ${s} length ${l}`);
  }
});
