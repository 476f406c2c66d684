import t from 'tap';
import {
  MLD2_CHANGE_TO_EXCLUDE,
  MLD2_CHANGE_TO_INCLUDE,
  MLD2_MODE_IS_EXCLUDE,
  MLD2_MODE_IS_INCLUDE,
  buildMldv1Done,
  buildMldv1Report,
  buildMldv2Report,
  decodeMaxResponseCode,
  mldv1FrameLength,
  mldv2ReportLength,
  mldv2ReportMaxGroups,
  parseMldQuery,
  readMldQuery,
  MLD_QUERY_ERROR_NAMES,
  decodeQqic,
  type MldQuery,
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
  t.ok(
    small.every((b) => b === 1),
    'untouched',
  );
  t.equal(buildMldv2Report(new Uint8Array(need), 0, SRC_MAC, LL, GROUPS, 4), need, 'exact fit');
  t.equal(buildMldv2Report(new Uint8Array(need + 3), 4, SRC_MAC, LL, GROUPS, 4), 0, 'offset pushes past the end');
  t.equal(buildMldv2Report(new Uint8Array(need), 0, SRC_MAC, LL, GROUPS, 4, 1), 0, 'VLAN tag needs 4 more');
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, GROUPS, 0), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, GROUPS, 7), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, SRC_MAC, LL, [new Uint8Array(4)], 4), RangeError);
  t.throws(() => buildMldv2Report(new Uint8Array(500), 0, new Uint8Array(5), LL, GROUPS, 4), RangeError);
});

t.test('MLDv1 report and done (RFC 2710 section 3): every byte, against the independent builder', async (t) => {
  const group = solicitedNode('2001:db8::8000:0:0:abcd');
  const expected = (type: number, dst: string | Uint8Array, ethDst: string, vlan?: number): Uint8Array =>
    makeIcmp6Frame({
      ethDst,
      ethSrc: SRC_MAC,
      ...(vlan !== undefined ? { vlan } : {}),
      src: LL,
      dst,
      hopLimit: 1,
      nextHeader: 0,
      extHeaders: MLD_HOP_BY_HOP,
      icmp: [type, 0, 0, 0, 0, 0, 0, 0, ...group],
    });
  for (const vlan of [undefined, 0x2064]) {
    const out = new Uint8Array(200).fill(0x55);
    const n = buildMldv1Report(out, 7, SRC_MAC, LL, group, vlan);
    t.equal(n, mldv1FrameLength(vlan !== undefined));
    t.equal(n, (vlan !== undefined ? 18 : 14) + 40 + 8 + 24);
    const f = out.subarray(7, 7 + n);
    t.same([...f.subarray(0, 6)], [0x33, 0x33, 0xff, 0x00, 0xab, 0xcd], 'report: Ethernet to the group');
    t.same([...f], [...expected(131, group, '33:33:ff:00:ab:cd', vlan)], `report, vlan ${vlan}`);
    t.ok(mldChecksumVerifies(f, vlan !== undefined ? 18 : 14, n - 24), 'report checksum');
    t.ok(out.subarray(0, 7).every((b) => b === 0x55) && out.subarray(7 + n).every((b) => b === 0x55), 'outside untouched');

    const d = new Uint8Array(200);
    const m = buildMldv1Done(d, 0, SRC_MAC, LL, group, vlan);
    t.equal(m, n);
    t.same([...d.subarray(0, m)], [...expected(132, 'ff02::2', '33:33:00:00:00:02', vlan)], `done to ff02::2, vlan ${vlan}`);
  }
  const need = mldv1FrameLength();
  t.equal(buildMldv1Report(new Uint8Array(need - 1), 0, SRC_MAC, LL, group), 0, 'too small');
  t.equal(buildMldv1Report(new Uint8Array(need), 0, SRC_MAC, LL, group, 5), 0, 'the tag needs 4 more');
  t.equal(buildMldv1Done(new Uint8Array(need), 0, SRC_MAC, LL, group), need, 'exact fit');
  t.throws(() => buildMldv1Report(new Uint8Array(200), 0, SRC_MAC, LL, ip6('2001:db8::1')), RangeError, 'unicast group');
  t.throws(() => buildMldv1Done(new Uint8Array(200), 0, SRC_MAC, LL, new Uint8Array(4)), RangeError);
  t.throws(() => buildMldv1Report(new Uint8Array(200), 0, new Uint8Array(5), LL, group), RangeError);
  // Our own v1 report is not a query.
  const out = new Uint8Array(200);
  const n = buildMldv1Report(out, 0, SRC_MAC, LL, group);
  t.equal(readMldQuery(out, 0, n), null);
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

/** The parsed query with its byte arrays as plain arrays (for t.same). */
function plain(q: MldQuery | null): Record<string, unknown> | null {
  return q && { ...q, group: q.group && [...q.group], destination: [...q.destination] };
}
const ALL_NODES = [...ip6('ff02::1')];
const V2_DEFAULTS = { error: 0, version: 2, qrv: 2, qqicSeconds: 125, sources: 0 };

t.test('parse MLD queries', async (t) => {
  const general = makeMldQuery();
  t.same(plain(parseMldQuery(general, 0, general.length)), {
    ...V2_DEFAULTS,
    group: null,
    destination: ALL_NODES,
    maxResponseDelayMs: 10000,
    vlanTci: -1,
  });

  const specific = makeMldQuery({ group: 'ff02::1:ff00:10', dst: 'ff02::1:ff00:10', maxResponseCode: 1000, vlan: 42 });
  t.same(plain(parseMldQuery(specific, 0, specific.length)), {
    ...V2_DEFAULTS,
    group: [...ip6('ff02::1:ff00:10')],
    destination: [...ip6('ff02::1:ff00:10')],
    maxResponseDelayMs: 1000,
    vlanTci: 42,
  });

  // The group and destination are copies, not views into the (reused) receive buffer; also for Node Buffers.
  const buf = Buffer.from(specific);
  const q2 = parseMldQuery(buf, 0, buf.length);
  buf.fill(0);
  t.same(q2?.group && [...q2.group], [...ip6('ff02::1:ff00:10')]);
  t.same(q2 && [...q2.destination], [...ip6('ff02::1:ff00:10')]);

  const unicast = makeMldQuery({ dst: '2001:db8::99' });
  t.same(plain(parseMldQuery(unicast, 0, unicast.length))?.['destination'], [...ip6('2001:db8::99')], 'destination as sent');

  const v1 = makeMldQuery({ mldVersion: 1, maxResponseCode: 0x9000 });
  t.same(
    plain(parseMldQuery(v1, 0, v1.length)),
    {
      error: 0,
      version: 1,
      group: null,
      destination: ALL_NODES,
      maxResponseDelayMs: 0x9000,
      vlanTci: -1,
      qrv: 0,
      qqicSeconds: 0,
      sources: 0,
    },
    'MLDv1: delay in ms as is, version 1',
  );

  const withSources = makeMldQuery({ group: 'ff0e::1234', sources: ['2001:db8::1', '2001:db8::2'] });
  t.match(parseMldQuery(withSources, 0, withSources.length), { maxResponseDelayMs: 10000, sources: 2 });

  const qrvQqic = makeMldQuery({ qrv: 5, qqic: 0x8a });
  t.match(parseMldQuery(qrvQqic, 0, qrvQqic.length), { qrv: 5, qqicSeconds: (0xa | 0x10) << 3 }, 'QRV and QQIC decoded');

  const pad1 = makeMldQuery({ hopByHop: [58, 0, 0, 0, 5, 2, 0, 0] });
  t.not(parseMldQuery(pad1, 0, pad1.length), null, 'Pad1 before Router Alert');

  const padded = new Uint8Array(general.length + 30);
  padded.set(general, 10);
  t.not(parseMldQuery(padded, 10, general.length + 20), null, 'at an offset with trailing bytes');
});

t.test('QQIC (RFC 3810 5.1.9)', async (t) => {
  t.equal(decodeQqic(0), 0);
  t.equal(decodeQqic(125), 125);
  t.equal(decodeQqic(127), 127);
  t.equal(decodeQqic(0x80), 0x10 << 3, 'exp 0, mant 0');
  t.equal(decodeQqic(0xff), 0x1f << 10, 'largest: exp 7, mant 15');
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

t.test('invalid queries: null from parseMldQuery, the broken rule from readMldQuery', async (t) => {
  const icmpOfLen = (n: number): number[] => {
    const b = new Array<number>(n).fill(0);
    b[0] = 130;
    b[4] = 0x27;
    b[5] = 0x10;
    return b;
  };
  // [name, frame, reason: an MLD_QUERY_ERROR_NAMES entry, or null for not a query at all]
  const bad: [string, Uint8Array, string | null][] = [
    ['hop limit 255', makeMldQuery({ hopLimit: 255 }), 'hop-limit'],
    ['global source', makeMldQuery({ src: '2001:db8::1' }), 'source'],
    ['unspecified source', makeMldQuery({ src: '::' }), 'source'],
    ['no hop-by-hop header', makeMldQuery({ hopByHop: null }), null],
    ['hop-by-hop without Router Alert', makeMldQuery({ hopByHop: [58, 0, 1, 4, 0, 0, 0, 0] }), 'router-alert'],
    ['Router Alert for RSVP (value 1)', makeMldQuery({ hopByHop: [58, 0, 5, 2, 0, 1, 1, 0] }), 'router-alert'],
    ['hop-by-hop option runs past the header', makeMldQuery({ hopByHop: [58, 0, 5, 2, 0, 0, 1, 9] }), 'router-alert'],
    ['hop-by-hop leads to UDP', makeMldQuery({ hopByHop: [17, 0, 5, 2, 0, 0, 1, 0] }), null],
    ['bad checksum', makeMldQuery({ badChecksum: true }), 'checksum'],
    ['report, not query', makeMldQuery({ type: 143 }), null],
    ['code 1', makeMldQuery({ code: 1 }), 'code'],
    ['sources beyond the message', makeMldQuery({ numberOfSources: 1 }), 'length'],
    ['group not multicast', makeMldQuery({ group: '2001:db8::1' }), 'group'],
    ['truncated', makeMldQuery({ truncate: 1 }), 'length'],
    ['IPv4 ethertype', makeMldQuery({ etherType: 0x0800 }), null],
    ['IP version 4', makeMldQuery({ version: 4 }), null],
    ['short frame', makeMldQuery().slice(0, 40), null],
    ...[20, 25, 26, 27].map((n): [string, Uint8Array, string] => [
      `ICMPv6 length ${n}`,
      makeIcmp6Frame({ hopLimit: 1, nextHeader: 0, extHeaders: MLD_HOP_BY_HOP, icmp: icmpOfLen(n) }),
      'length',
    ]),
  ];
  for (const [name, f, reason] of bad) {
    t.equal(parseMldQuery(f, 0, f.length), null, name);
    const r = readMldQuery(f, 0, f.length);
    t.equal(r === null ? null : MLD_QUERY_ERROR_NAMES[r.error], reason, `${name}: ${reason ?? 'not a query'}`);
  }
  // Control: the same helper at 24 and 28 bytes is accepted, so the nulls above are for the stated reason.
  for (const n of [24, 28]) {
    const f = makeIcmp6Frame({ hopLimit: 1, nextHeader: 0, extHeaders: MLD_HOP_BY_HOP, icmp: icmpOfLen(n) });
    t.match(
      parseMldQuery(f, 0, f.length),
      { error: 0, version: n === 24 ? 1 : 2, group: null, maxResponseDelayMs: 10000, vlanTci: -1 },
      `ICMPv6 length ${n}`,
    );
  }
  const g = makeMldQuery();
  for (const [s, l] of [
    [-1, g.length],
    [0, Number.NaN],
    [0.5, g.length],
    [g.length, 5],
  ] as const) {
    t.equal(parseMldQuery(g, s, l), null, `start ${s} length ${l}`);
    t.equal(readMldQuery(g, s, l), null, `read: start ${s} length ${l}`);
  }
});
