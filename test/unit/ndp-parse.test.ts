import t from 'tap';
import { NS_ERROR_NAMES } from '../../src/ndp/ns-error.js';
import { DropReason, dropReasonName } from '../../src/engine/verdict.js';
import { NsView } from '../../src/ndp/ns-view.js';
import { parseNS } from '../../src/ndp/parse.js';
import { encodeOptions, ip6, makeIcmp6Frame, makeNS, solicitedNode } from '../support/frames.js';
import { referenceAcceptsNS } from '../support/reference-ns.js';

const TARGET = '2001:db8::10';
const NONCE = [1, 2, 3, 4, 5, 6];

interface Case {
  name: string;
  frame: Uint8Array;
  want: DropReason;
}

const cases: Case[] = [
  // Accepted.
  { name: 'multicast NS with SLLAO', frame: makeNS({ target: TARGET }), want: DropReason.None },
  { name: 'multicast NS without SLLAO', frame: makeNS({ sllao: null }), want: DropReason.None },
  { name: 'unicast NUD probe', frame: makeNS({ dst: TARGET, src: '2001:db8::1' }), want: DropReason.None },
  { name: 'DAD probe', frame: makeNS({ src: '::' }), want: DropReason.None },
  { name: 'DAD probe with nonce', frame: makeNS({ src: '::', options: [{ type: 14, value: NONCE }] }), want: DropReason.None },
  { name: 'one VLAN tag', frame: makeNS({ vlan: 0x2064 }), want: DropReason.None },
  { name: 'VLAN 0 priority tag', frame: makeNS({ vlan: 0 }), want: DropReason.None },
  {
    name: 'unknown options are skipped',
    frame: makeNS({ options: [{ type: 200, value: [9, 9, 9, 9, 9, 9, 9, 9, 9] }] }),
    want: DropReason.None,
  },
  { name: 'ethernet padding after the payload', frame: makeNS({ padding: 20 }), want: DropReason.None },
  { name: 'non-zero reserved field is ignored', frame: makeNS({ reserved: 0xffffffff }), want: DropReason.None },
  { name: 'two SLLAOs, both valid', frame: makeNS({ options: [{ type: 1, value: '02:00:00:00:00:02' }] }), want: DropReason.None },

  // TooShort.
  { name: 'empty frame', frame: new Uint8Array(0), want: DropReason.TooShort },
  { name: '53 bytes', frame: makeNS().slice(0, 53), want: DropReason.TooShort },
  { name: 'tagged, 57 bytes', frame: makeNS({ vlan: 5 }).slice(0, 57), want: DropReason.TooShort },
  // NotIPv6 / StackedVlan.
  { name: 'ethertype IPv4', frame: makeNS({ etherType: 0x0800 }), want: DropReason.NotIPv6 },
  { name: 'tagged IPv4', frame: makeNS({ vlan: 5, etherType: 0x0800 }), want: DropReason.NotIPv6 },
  { name: 'two 802.1Q tags', frame: makeNS({ vlan: [5, 6] }), want: DropReason.StackedVlan },
  { name: '802.1ad outer tag', frame: makeNS({ vlan: [5, 6], tpid: [0x88a8, 0x8100] }), want: DropReason.StackedVlan },
  { name: '802.1Q then 802.1ad', frame: makeNS({ vlan: [5, 6], tpid: [0x8100, 0x88a8] }), want: DropReason.StackedVlan },
  // BadIPVersion.
  { name: 'version 4 in the IPv6 header', frame: makeNS({ version: 4 }), want: DropReason.BadIPVersion },
  // Truncated.
  { name: 'last 8 bytes cut off', frame: makeNS({ truncate: 8 }), want: DropReason.Truncated },
  { name: 'payload length larger than the frame', frame: makeNS({ payloadLength: 40 }), want: DropReason.Truncated },
  // NotICMPv6.
  { name: 'hop-by-hop header first', frame: makeNS({ nextHeader: 0, extHeaders: [58, 0, 1, 4, 0, 0, 0, 0] }), want: DropReason.NotICMPv6 },
  { name: 'UDP', frame: makeNS({ nextHeader: 17 }), want: DropReason.NotICMPv6 },
  // NotNS.
  { name: 'neighbor advertisement', frame: makeNS({ type: 136 }), want: DropReason.NotNS },
  { name: 'echo request', frame: makeIcmp6Frame({ icmp: [128, 0, 0, 0, 0, 1, 0, 1] }), want: DropReason.NotNS },
  // IcmpTooShort.
  { name: 'empty ICMPv6 payload', frame: makeIcmp6Frame({ icmp: [] }), want: DropReason.IcmpTooShort },
  { name: '16-byte NS', frame: makeIcmp6Frame({ icmp: [135, 0, 0, 0, ...new Array<number>(12).fill(0)] }), want: DropReason.IcmpTooShort },
  {
    name: 'NS cut to 20 bytes by the payload length, padding behind',
    frame: makeNS({ sllao: null, payloadLength: 20 }),
    want: DropReason.IcmpTooShort,
  },
  // BadHopLimit.
  { name: 'hop limit 254 (forwarded once)', frame: makeNS({ hopLimit: 254 }), want: DropReason.BadHopLimit },
  { name: 'hop limit 64', frame: makeNS({ hopLimit: 64 }), want: DropReason.BadHopLimit },
  // BadChecksum.
  { name: 'checksum off by one', frame: makeNS({ badChecksum: true }), want: DropReason.BadChecksum },
  { name: 'checksum zero', frame: makeNS({ checksum: 0 }), want: DropReason.BadChecksum },
  // BadCode.
  { name: 'code 1', frame: makeNS({ code: 1 }), want: DropReason.BadCode },
  // TargetMulticast.
  { name: 'multicast target', frame: makeNS({ target: 'ff02::1:ff00:10' }), want: DropReason.TargetMulticast },
  // BadOptionLength.
  { name: 'option of length 0', frame: makeNS({ options: [{ raw: [14, 0, 1, 2, 3, 4, 5, 6] }] }), want: DropReason.BadOptionLength },
  {
    name: 'option past the end',
    frame: makeNS({ options: [{ type: 14, value: NONCE, lengthUnits: 2 }] }),
    want: DropReason.BadOptionLength,
  },
  { name: 'one stray byte after the options', frame: makeNS({ options: [{ raw: [14] }] }), want: DropReason.BadOptionLength },
  { name: 'four stray bytes after the options', frame: makeNS({ options: [{ raw: [200, 1, 0, 0] }] }), want: DropReason.BadOptionLength },
  {
    name: 'bad option after a good SLLAO',
    frame: makeNS({ options: [{ raw: [1, 0, 0, 0, 0, 0, 0, 0] }] }),
    want: DropReason.BadOptionLength,
  },
  // UnspecifiedSource*.
  { name: 'DAD probe to the target itself', frame: makeNS({ src: '::', dst: TARGET }), want: DropReason.UnspecifiedSourceBadDestination },
  { name: 'DAD probe to all-nodes', frame: makeNS({ src: '::', dst: 'ff02::1' }), want: DropReason.UnspecifiedSourceBadDestination },
  { name: 'DAD probe with SLLAO', frame: makeNS({ src: '::', sllao: '02:00:00:00:00:01' }), want: DropReason.UnspecifiedSourceWithSllao },
  // MulticastSource.
  { name: 'multicast source', frame: makeNS({ src: 'ff02::1' }), want: DropReason.MulticastSource },
  // BadSourceLinkLayer.
  { name: 'SLLAO with a group MAC', frame: makeNS({ sllao: '01:00:5e:00:00:01' }), want: DropReason.BadSourceLinkLayer },
  { name: 'SLLAO with 33:33 MAC', frame: makeNS({ sllao: '33:33:00:00:00:01' }), want: DropReason.BadSourceLinkLayer },
  {
    name: 'no SLLAO and a group Ethernet source MAC (the answer would go to a group)',
    frame: makeNS({ sllao: null, ethSrc: '33:33:00:00:00:01' }),
    want: DropReason.BadSourceLinkLayer,
  },
  {
    name: 'DAD probe from a group Ethernet source is still defended (answer goes to ff02::1)',
    frame: makeNS({ src: '::', sllao: null, ethSrc: '03:00:00:00:00:01' }),
    want: DropReason.None,
  },
  {
    name: 'SLLAO of length 2 (16 bytes)',
    frame: makeNS({ sllao: null, options: [{ type: 1, value: [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0] }] }),
    want: DropReason.BadSourceLinkLayer,
  },
  {
    name: 'second SLLAO is a group MAC',
    frame: makeNS({ options: [{ type: 1, value: 'ff:ff:ff:ff:ff:ff' }] }),
    want: DropReason.BadSourceLinkLayer,
  },
  // DestinationMismatch.
  { name: 'to all-nodes', frame: makeNS({ dst: 'ff02::1' }), want: DropReason.DestinationMismatch },
  { name: "to another address's solicited-node group", frame: makeNS({ dst: 'ff02::1:ff00:11' }), want: DropReason.DestinationMismatch },
  { name: 'unicast to another address', frame: makeNS({ dst: '2001:db8::11' }), want: DropReason.DestinationMismatch },
  {
    name: 'solicited-node group with the wrong scope',
    frame: makeNS({ dst: 'ff05::1:ff00:10' }),
    want: DropReason.DestinationMismatch,
  },
  { name: 'DAD probe to another group', frame: makeNS({ src: '::', dst: 'ff02::1:ff00:11' }), want: DropReason.DestinationMismatch },

  // What Linux's IPv6 input (ip6_rcv_core) drops before ND: loopback and IPv4-mapped sources,
  // loopback destination, multicast destinations of scope 1 (interface-local) and 0 (reserved).
  { name: 'loopback source', frame: makeNS({ src: '::1' }), want: DropReason.LoopbackSource },
  { name: 'loopback source, unicast NUD probe', frame: makeNS({ src: '::1', dst: TARGET, sllao: null }), want: DropReason.LoopbackSource },
  { name: 'IPv4-mapped source', frame: makeNS({ src: '::ffff:192.0.2.1' }), want: DropReason.Ipv4MappedSource },
  { name: 'IPv4-mapped source ::ffff:0.0.0.0', frame: makeNS({ src: '::ffff:0.0.0.0' }), want: DropReason.Ipv4MappedSource },
  {
    name: 'IPv4-mapped ::ffff:127.0.0.1, unicast',
    frame: makeNS({ src: '::ffff:127.0.0.1', dst: TARGET }),
    want: DropReason.Ipv4MappedSource,
  },
  { name: 'loopback destination (target ::1 too)', frame: makeNS({ target: '::1', dst: '::1' }), want: DropReason.LoopbackDestination },
  { name: 'loopback destination, another target', frame: makeNS({ dst: '::1' }), want: DropReason.LoopbackDestination },
  { name: 'interface-local solicited-node group', frame: makeNS({ dst: 'ff01::1:ff00:10' }), want: DropReason.InterfaceLocalDestination },
  {
    name: 'interface-local scope with the T flag (ff11::)',
    frame: makeNS({ dst: 'ff11::1:ff00:10' }),
    want: DropReason.InterfaceLocalDestination,
  },
  {
    name: 'DAD probe to an interface-local group',
    frame: makeNS({ src: '::', sllao: null, dst: 'ff01::1:ff00:10' }),
    want: DropReason.InterfaceLocalDestination,
  },
  { name: 'multicast scope 0 (ff00::)', frame: makeNS({ dst: 'ff00::1:ff00:10' }), want: DropReason.ReservedScopeDestination },
  { name: 'multicast scope 0 with flags (ff30::)', frame: makeNS({ dst: 'ff30::1:ff00:10' }), want: DropReason.ReservedScopeDestination },
  // Near misses the kernel accepts, and so do we.
  { name: 'source ::2 (not loopback)', frame: makeNS({ src: '::2' }), want: DropReason.None },
  { name: 'source ::1:0:0:1 (not loopback)', frame: makeNS({ src: '::1:0:0:1' }), want: DropReason.None },
  { name: 'IPv4-compatible source ::192.0.2.1 (deprecated, not dropped)', frame: makeNS({ src: '::192.0.2.1' }), want: DropReason.None },
  { name: 'IPv4-translated source ::ffff:0:192.0.2.1 (not mapped)', frame: makeNS({ src: '::ffff:0:192.0.2.1' }), want: DropReason.None },
  { name: 'source ::fffe:c000:201 (not mapped)', frame: makeNS({ src: '::fffe:c000:201' }), want: DropReason.None },
  {
    name: 'admin-local group ff04::1:ff00:10 is just another group',
    frame: makeNS({ dst: 'ff04::1:ff00:10' }),
    want: DropReason.DestinationMismatch,
  },

  // Check order: the first failing rule wins.
  { name: 'order: checksum before loopback source', frame: makeNS({ src: '::1', badChecksum: true }), want: DropReason.BadChecksum },
  {
    name: 'order: multicast target before loopback destination',
    frame: makeNS({ target: 'ff02::1', dst: '::1' }),
    want: DropReason.TargetMulticast,
  },
  {
    name: 'order: loopback source before interface-local destination',
    frame: makeNS({ src: '::1', dst: 'ff01::1:ff00:10' }),
    want: DropReason.LoopbackSource,
  },
  { name: 'order: hop limit before checksum', frame: makeNS({ hopLimit: 1, badChecksum: true }), want: DropReason.BadHopLimit },
  { name: 'order: checksum before code', frame: makeNS({ code: 3, badChecksum: true }), want: DropReason.BadChecksum },
  { name: 'order: type before hop limit', frame: makeNS({ type: 128, hopLimit: 64 }), want: DropReason.NotNS },
  { name: 'order: truncation before next header', frame: makeNS({ nextHeader: 6, truncate: 1 }), want: DropReason.Truncated },
];

const view = new NsView();

t.test('table: one case per drop reason', async (t) => {
  const seen = new Set<number>();
  for (const c of cases) {
    const got = parseNS(c.frame, 0, c.frame.length, view);
    t.equal(dropReasonName(got), dropReasonName(c.want), c.name);
    // The independent reference agrees on accept/reject for every hand-made case.
    t.equal(referenceAcceptsNS(c.frame), c.want === DropReason.None, `reference: ${c.name}`);
    seen.add(c.want);
  }
  // Every reason the parser can produce has at least one case.
  for (const r of [DropReason.None, ...NS_ERROR_NAMES.keys()]) {
    t.ok(seen.has(r), `a case for ${dropReasonName(r)}`);
  }
});

t.test('view fields of an accepted multicast NS', async (t) => {
  const f = makeNS({ target: TARGET, ethSrc: '02:00:00:00:00:07', options: [{ type: 14, value: NONCE }] });
  t.equal(parseNS(f, 0, f.length, view), DropReason.None);
  t.equal(view.frame, f);
  t.equal(view.start, 0);
  t.equal(view.length, f.length);
  t.equal(view.vlanTci, -1);
  t.equal(view.ipOff, 14);
  t.equal(view.icmpOff, 54);
  t.equal(view.icmpLen, 24 + 8 + 8);
  t.equal(view.targetOff, 62);
  t.same([...f.subarray(view.targetOff, view.targetOff + 16)], [...ip6(TARGET)]);
  t.equal(view.sllaoOff, 54 + 24 + 2);
  t.same([...f.subarray(view.sllaoOff, view.sllaoOff + 6)], [2, 0, 0, 0, 0, 7]);
  t.equal(view.nonceOff, 54 + 32);
  t.equal(f[view.nonceOff], 14);
  t.equal(view.unspecifiedSource, false);
  t.equal(view.srcOff, 22);
  t.equal(view.dstOff, 38);
  t.same([...f.subarray(view.dstOff, view.dstOff + 16)], [...solicitedNode(TARGET)]);
});

t.test('view fields of a tagged DAD probe at a non-zero offset with trailing bytes', async (t) => {
  const ns = makeNS({ src: '::', vlan: 0xa07b, options: [{ type: 14, value: NONCE }] });
  const buf = new Uint8Array(ns.length + 100).fill(0xee);
  buf.set(ns, 37);
  t.equal(parseNS(buf, 37, ns.length, view), DropReason.None);
  t.equal(view.start, 37);
  t.equal(view.vlanTci, 0xa07b);
  t.equal(view.ipOff, 37 + 18);
  t.equal(view.icmpOff, 37 + 58);
  t.equal(view.icmpLen, 32);
  t.equal(view.sllaoOff, -1);
  t.equal(view.nonceOff, 37 + 58 + 24);
  t.equal(view.unspecifiedSource, true);
  t.equal(view.ethSrcOff, 43);
});

t.test('the view is reset between frames', async (t) => {
  const a = makeNS({ vlan: 9, options: [{ type: 14, value: NONCE }] });
  t.equal(parseNS(a, 0, a.length, view), DropReason.None);
  const b = makeNS({ sllao: null });
  t.equal(parseNS(b, 0, b.length, view), DropReason.None);
  t.equal(view.vlanTci, -1);
  t.equal(view.sllaoOff, -1);
  t.equal(view.nonceOff, -1);
  t.equal(view.frame, b);
});

t.test('start and length select the frame', async (t) => {
  const ns = makeNS();
  const buf = new Uint8Array(ns.length + 8);
  buf.set(ns, 8);
  t.equal(parseNS(buf, 8, ns.length, view), DropReason.None, 'exact window');
  t.equal(parseNS(buf, 8, ns.length - 1, view), DropReason.Truncated, 'length one short: truncated');
  t.equal(parseNS(buf, 8, ns.length + 1000, view), DropReason.None, 'length beyond the buffer: the available bytes count');
  t.equal(view.length, ns.length);
  t.equal(parseNS(buf, 0, buf.length, view), DropReason.NotIPv6, 'wrong start');
});

t.test('nonsense start/length never throw', async (t) => {
  const ns = makeNS();
  const odd: [number, number][] = [
    [-1, ns.length],
    [ns.length, 10],
    [ns.length + 5, 10],
    [0, -5],
    [0, Number.NaN],
    [Number.NaN, ns.length],
    [0.5, ns.length],
    [0, ns.length - 0.5],
    [Number.POSITIVE_INFINITY, 1],
    [0, Number.POSITIVE_INFINITY],
  ];
  for (const [s, l] of odd) {
    const got = parseNS(ns, s, l, view);
    if (s === 0 && l === Number.POSITIVE_INFINITY) t.equal(got, DropReason.None, `start ${s} length ${l}`);
    else t.equal(got, DropReason.TooShort, `start ${s} length ${l}`);
  }
});

t.test('a Node Buffer works like a Uint8Array', async (t) => {
  const ns = makeNS();
  const b = Buffer.alloc(ns.length + 4);
  b.set(ns, 4);
  t.equal(parseNS(b, 4, ns.length, view), DropReason.None);
  t.equal(view.sllaoOff, 4 + 54 + 26);
});

t.test('encodeOptions helper lays out options in 8-byte units', async (t) => {
  t.same([...encodeOptions([{ type: 1, value: '02:00:00:00:00:01' }])], [1, 1, 2, 0, 0, 0, 0, 1]);
  t.same([...encodeOptions([{ type: 14, value: NONCE, lengthUnits: 3 }])], [14, 3, 1, 2, 3, 4, 5, 6]);
  t.equal(encodeOptions([{ type: 9, value: new Uint8Array(7) }]).length, 16);
});
