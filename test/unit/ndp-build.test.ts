import t from 'tap';
import { buildNA, buildUnsolicitedNA, decodeNA } from '../../src/ndp/build.js';
import { NA_FRAME_LEN, NA_FRAME_LEN_VLAN } from '../../src/ndp/constants.js';
import { DropReason } from '../../src/engine/verdict.js';
import { NsView } from '../../src/ndp/ns-view.js';
import { parseNS } from '../../src/ndp/parse.js';
import type { AnswerSettings, HostFacts } from '../../src/engine/types.js';
import { ip6, mac, makeNA, makeNS } from '../support/frames.js';

const host: HostFacts = {
  ifname: 'eth0',
  mac: mac('02:42:ac:11:00:09'),
  linkLocal: ip6('fe80::42:acff:fe11:9'),
};
const TARGET = '2001:db8::8000:0:0:10';
const TARGET_POLICY: AnswerSettings = { sourcePolicy: 'target', router: false, override: true };
const LL_POLICY: AnswerSettings = { sourcePolicy: 'link-local', router: false, override: true };

/**
 * Independent checksum check: the 16-bit one's-complement sum of pseudo-header and ICMPv6
 * message (checksum included) must be 0xffff. Straight DataView arithmetic, no shared code.
 */
function checksumVerifies(frame: Uint8Array, ipOff: number): boolean {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const plen = dv.getUint16(ipOff + 4);
  let sum = 0;
  for (let i = ipOff + 8; i < ipOff + 40; i += 2) sum += dv.getUint16(i);
  sum += plen + 58;
  for (let i = 0; i < plen; i += 2) {
    sum += i + 1 < plen ? dv.getUint16(ipOff + 40 + i) : dv.getUint8(ipOff + 40 + i) << 8;
  }
  while (sum > 0xffff) sum = (sum >>> 16) + (sum & 0xffff);
  return sum === 0xffff;
}

function parsed(frame: Uint8Array): NsView {
  const v = new NsView();
  const r = parseNS(frame, 0, frame.length, v);
  if (r !== DropReason.None) throw new Error(`test frame does not parse: ${r}`);
  return v;
}

function build(ns: Uint8Array, settings: AnswerSettings): Uint8Array {
  const out = new Uint8Array(128);
  const n = buildNA(parsed(ns), host, settings, out, 0);
  return out.slice(0, n);
}

t.test('solicited NA to a multicast NS with SLLAO: every field', async (t) => {
  const ns = makeNS({ target: TARGET, src: 'fe80::1', ethSrc: '02:00:00:00:00:01', sllao: '02:00:00:00:00:aa' });
  const na = build(ns, TARGET_POLICY);
  t.equal(na.length, NA_FRAME_LEN);
  const d = decodeNA(na);
  t.ok(d);
  if (!d) return;
  t.same(d, {
    ethDst: '02:00:00:00:00:aa', // SLLAO wins over the Ethernet source
    ethSrc: '02:42:ac:11:00:09',
    vlanTci: -1,
    trafficClass: 0,
    flowLabel: 0,
    payloadLength: 32,
    src: '2001:db8::8000:0:0:10',
    dst: 'fe80::1',
    hopLimit: 255,
    code: 0,
    router: false,
    solicited: true,
    override: true,
    reserved: 0,
    target: '2001:db8::8000:0:0:10',
    tlla: '02:42:ac:11:00:09',
    options: [{ type: 2, length: 8 }],
    checksumOk: true,
    frameLength: NA_FRAME_LEN,
  });
  t.ok(checksumVerifies(na, 14), 'independent checksum');
  // Byte for byte what the independent test builder makes.
  const want = makeNA({
    ethDst: '02:00:00:00:00:aa',
    ethSrc: host.mac,
    src: TARGET,
    dst: 'fe80::1',
    target: TARGET,
    solicited: true,
    override: true,
    tlla: host.mac,
  });
  t.same([...na], [...want]);
});

t.test('without SLLAO the answer goes to the Ethernet source', async (t) => {
  const ns = makeNS({ target: TARGET, ethSrc: '02:00:00:00:00:33', sllao: null });
  const d = decodeNA(build(ns, TARGET_POLICY));
  t.equal(d?.ethDst, '02:00:00:00:00:33');
  t.equal(d?.dst, 'fe80::1');
});

t.test('unicast NUD probe: answered to its source', async (t) => {
  const ns = makeNS({ target: TARGET, src: '2001:db8::99', dst: TARGET, sllao: null, ethSrc: '02:00:00:00:00:44' });
  const na = build(ns, TARGET_POLICY);
  const d = decodeNA(na);
  t.equal(d?.dst, '2001:db8::99');
  t.equal(d?.ethDst, '02:00:00:00:00:44');
  t.equal(d?.solicited, true);
  t.ok(checksumVerifies(na, 14));
});

t.test('source policies', async (t) => {
  const ns = makeNS({ target: TARGET });
  t.equal(decodeNA(build(ns, TARGET_POLICY))?.src, '2001:db8::8000:0:0:10', 'target');
  const ll = build(ns, LL_POLICY);
  t.equal(decodeNA(ll)?.src, 'fe80::42:acff:fe11:9', 'link-local');
  t.equal(decodeNA(ll)?.target, '2001:db8::8000:0:0:10', 'target field unchanged');
  t.ok(checksumVerifies(ll, 14), 'checksum covers the new source');
});

t.test('R and O flags follow the settings; S is set', async (t) => {
  const ns = makeNS({ target: TARGET });
  for (const router of [false, true]) {
    for (const override of [false, true]) {
      const na = build(ns, { sourcePolicy: 'target', router, override });
      const d = decodeNA(na);
      t.equal(d?.router, router, `R=${router}`);
      t.equal(d?.override, override, `O=${override}`);
      t.equal(d?.solicited, true);
      t.equal(d?.reserved, 0);
      t.ok(checksumVerifies(na, 14));
      t.equal(na[14 + 40 + 4], (router ? 0x80 : 0) | 0x40 | (override ? 0x20 : 0), 'flags byte');
    }
  }
});

t.test('VLAN tag is echoed with the same TCI', async (t) => {
  const ns = makeNS({ target: TARGET, vlan: 0xa07b });
  const na = build(ns, TARGET_POLICY);
  t.equal(na.length, NA_FRAME_LEN_VLAN);
  t.same([...na.subarray(12, 18)], [0x81, 0x00, 0xa0, 0x7b, 0x86, 0xdd]);
  const d = decodeNA(na);
  t.equal(d?.vlanTci, 0xa07b);
  t.equal(d?.checksumOk, true);
  t.ok(checksumVerifies(na, 18));
  const want = makeNA({
    ethDst: '02:00:00:00:00:01',
    ethSrc: host.mac,
    vlan: 0xa07b,
    src: TARGET,
    dst: 'fe80::1',
    target: TARGET,
    solicited: true,
    tlla: host.mac,
  });
  t.same([...na], [...want]);
});

t.test('DAD probe: defended to all-nodes with S=0', async (t) => {
  for (const settings of [TARGET_POLICY, LL_POLICY, { sourcePolicy: 'target', router: true, override: false } as const]) {
    const ns = makeNS({ target: TARGET, src: '::', options: [{ type: 14, value: [1, 2, 3, 4, 5, 6] }], vlan: 7 });
    const na = build(ns, settings);
    const d = decodeNA(na);
    t.equal(d?.dst, 'ff02::1');
    t.equal(d?.ethDst, '33:33:00:00:00:01');
    t.equal(d?.ethSrc, '02:42:ac:11:00:09');
    t.equal(d?.solicited, false);
    t.equal(d?.router, settings.router);
    t.equal(d?.override, settings.override);
    t.equal(d?.vlanTci, 7);
    t.equal(d?.src, settings.sourcePolicy === 'target' ? '2001:db8::8000:0:0:10' : 'fe80::42:acff:fe11:9');
    t.equal(d?.tlla, '02:42:ac:11:00:09');
    t.ok(checksumVerifies(na, 18));
  }
});

t.test('out too small writes nothing and returns 0', async (t) => {
  const view = parsed(makeNS({ target: TARGET }));
  const tagged = parsed(makeNS({ target: TARGET, vlan: 3 }));
  const small = new Uint8Array(NA_FRAME_LEN - 1).fill(0xaa);
  t.equal(buildNA(view, host, TARGET_POLICY, small, 0), 0);
  t.ok(
    small.every((b) => b === 0xaa),
    'untouched',
  );
  const exact = new Uint8Array(NA_FRAME_LEN);
  t.equal(buildNA(view, host, TARGET_POLICY, exact, 0), NA_FRAME_LEN, 'exact size fits');
  t.equal(buildNA(tagged, host, TARGET_POLICY, exact, 0), 0, 'a tagged answer needs 4 more');
  t.equal(buildNA(view, host, TARGET_POLICY, new Uint8Array(200), 200 - NA_FRAME_LEN + 1), 0, 'offset pushes it past the end');
  t.equal(buildNA(view, host, TARGET_POLICY, new Uint8Array(200), -1), 0, 'negative offset');
  t.equal(buildUnsolicitedNA(ip6(TARGET), 0, host, TARGET_POLICY, -1, small, 0), 0);
  t.equal(buildUnsolicitedNA(ip6(TARGET), 0, host, TARGET_POLICY, 5, new Uint8Array(NA_FRAME_LEN), 0), 0);
  t.ok(
    small.every((b) => b === 0xaa),
    'still untouched',
  );
});

t.test('writing at a non-zero offset leaves the rest of the buffer alone', async (t) => {
  const view = parsed(makeNS({ target: TARGET, vlan: 12 }));
  const out = new Uint8Array(300).fill(0x5a);
  const n = buildNA(view, host, TARGET_POLICY, out, 101);
  t.equal(n, NA_FRAME_LEN_VLAN);
  t.ok(
    out.subarray(0, 101).every((b) => b === 0x5a),
    'before',
  );
  t.ok(
    out.subarray(101 + n).every((b) => b === 0x5a),
    'after',
  );
  const frame = out.subarray(101, 101 + n);
  t.same([...frame], [...build(makeNS({ target: TARGET, vlan: 12 }), TARGET_POLICY)]);
  t.ok(checksumVerifies(out, 101 + 18));
  t.equal(decodeNA(out, 101, n)?.checksumOk, true);
});

t.test('the template is not disturbed by earlier builds', async (t) => {
  const a = makeNS({ target: '2001:db8::1', vlan: 9 });
  const b = makeNS({ target: TARGET });
  const first = build(b, TARGET_POLICY);
  build(a, { sourcePolicy: 'link-local', router: true, override: false });
  buildUnsolicitedNA(ip6('2001:db8::77'), 0, host, LL_POLICY, 99, new Uint8Array(100), 0);
  t.same([...build(b, TARGET_POLICY)], [...first]);
});

t.test('the answer reads from the NS at its offset in a larger buffer', async (t) => {
  const ns = makeNS({ target: TARGET, sllao: '02:00:00:00:00:bb' });
  const buf = new Uint8Array(ns.length + 64).fill(0xff);
  buf.set(ns, 50);
  const v = new NsView();
  t.equal(parseNS(buf, 50, ns.length, v), DropReason.None);
  const out = new Uint8Array(NA_FRAME_LEN);
  t.equal(buildNA(v, host, TARGET_POLICY, out, 0), NA_FRAME_LEN);
  t.same([...out], [...build(ns, TARGET_POLICY)]);
});

t.test('unsolicited NA (RFC 4861 7.2.6)', async (t) => {
  const target = new Uint8Array(20);
  target.set(ip6(TARGET), 4);
  for (const settings of [TARGET_POLICY, LL_POLICY, { sourcePolicy: 'target', router: true, override: false } as const]) {
    for (const vlan of [-1, 0x0123]) {
      const out = new Uint8Array(120);
      const n = buildUnsolicitedNA(target, 4, host, settings, vlan, out, 10);
      t.equal(n, vlan < 0 ? NA_FRAME_LEN : NA_FRAME_LEN_VLAN);
      const na = out.slice(10, 10 + n);
      const d = decodeNA(na);
      t.equal(d?.dst, 'ff02::1');
      t.equal(d?.ethDst, '33:33:00:00:00:01');
      t.equal(d?.solicited, false);
      t.equal(d?.override, true, 'O=1 whatever the setting');
      t.equal(d?.router, settings.router);
      t.equal(d?.vlanTci, vlan);
      t.equal(d?.hopLimit, 255);
      t.ok(checksumVerifies(na, vlan < 0 ? 14 : 18));
      const src = settings.sourcePolicy === 'target' ? TARGET : 'fe80::42:acff:fe11:9';
      const want = makeNA({
        ethDst: '33:33:00:00:00:01',
        ethSrc: host.mac,
        ...(vlan >= 0 ? { vlan } : {}),
        src,
        dst: 'ff02::1',
        target: TARGET,
        router: settings.router,
        solicited: false,
        override: true,
        tlla: host.mac,
      });
      t.same([...na], [...want], `bytes: ${settings.sourcePolicy} R=${settings.router} vlan ${vlan}`);
    }
  }
});

t.test('round trip: parse(make) -> build -> decode, over many targets', async (t) => {
  const v = new NsView();
  const out = new Uint8Array(NA_FRAME_LEN_VLAN);
  let checked = 0;
  for (let i = 0; i < 64; i++) {
    const target = `2001:db8:${i.toString(16)}::${((i * 7919) & 0xffff).toString(16)}:${i + 1}`;
    const vlan = i % 3 === 0 ? i : undefined;
    const src = i % 5 === 0 ? '::' : `fe80::${i + 1}`;
    const ns = makeNS({ target, src, ...(vlan !== undefined ? { vlan } : {}) });
    t.equal(parseNS(ns, 0, ns.length, v), DropReason.None);
    const n = buildNA(v, host, TARGET_POLICY, out, 0);
    const d = decodeNA(out, 0, n);
    if (!d) {
      t.fail('decodes');
      continue;
    }
    if (d.target !== decodeNA(makeNA({ target }))?.target) t.fail(`target ${target}`);
    if (d.src !== d.target) t.fail('source = target');
    if (d.vlanTci !== (vlan ?? -1)) t.fail('vlan');
    if (d.solicited === (src === '::')) t.fail('S flag');
    if (!checksumVerifies(out, vlan !== undefined ? 18 : 14)) t.fail('checksum');
    // The NA is not mistaken for an NS.
    if (parseNS(out, 0, n, v) !== DropReason.NotNS) t.fail('NA parses as not-ns');
    checked++;
  }
  t.equal(checked, 64);
});

t.test('decodeNA rejects what is not an NA', async (t) => {
  t.equal(decodeNA(makeNS()), null, 'an NS');
  t.equal(decodeNA(new Uint8Array(10)), null, 'too short');
  t.equal(decodeNA(makeNA({ truncate: 1 })), null, 'truncated');
  t.equal(decodeNA(makeNA({ options: [{ raw: [2, 0, 0, 0, 0, 0, 0, 0] }] })), null, 'zero-length option');
  t.equal(decodeNA(makeNA({ badChecksum: true }))?.checksumOk, false, 'bad checksum is reported, not hidden');
  t.equal(decodeNA(makeNA({ tlla: null }))?.tlla, null, 'no TLLA');
});
