/**
 * The committed fixtures are well-formed: every pcap is classic pcap with LINKTYPE_ETHERNET and
 * has its tcpdump rendering beside it; captures and the malformed set are non-empty; the
 * malformed manifest has one entry per frame, covers every input drop reason, and each drop
 * frame breaks exactly ONE rule (checked by an independent all-rules checker, not the parser).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { icmp6ChecksumValid } from '../../src/ndp/checksum.js';
import { NS_ERROR_NAMES } from '../../src/ndp/ns-error.js';
import { DROP_REASON_NAMES, ANSWER_KIND_NAMES, DropReason, dropReasonName } from '../../src/engine/verdict.js';
import { readPcap } from '../support/pcap.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

/** The captured fixtures (scripts/capture-fixtures.sh). */
const CAPTURES = ['kernel-ns', 'ndisc6-ns', 'dad-ns', 'nud-ns', 'vlan-ns', 'kernel-na', 'kernel-dad-na', 'loopback-ns'];

/**
 * Drop reasons a single input frame can show: the codec's, and vlan-not-served and other-host
 * under the malformed set's stated `--vlan 42` and `--mac` (the rest need a table or an output).
 */
const INPUT_REASONS = [...NS_ERROR_NAMES.values(), dropReasonName(DropReason.VlanNotServed), dropReasonName(DropReason.OtherHost)];
/** VLAN IDs the malformed set's expectations assume served (`--vlan 42`). */
const SERVED_VLANS = [42];
/** The host MAC the malformed set's expectations assume (`--mac 02:00:00:bb:00:02`). */
const HOST_MAC = [0x02, 0, 0, 0xbb, 0, 0x02];

const LL = 'ff02:0000:0000:0000:0000:0001:ff';
const hex16 = (b: Uint8Array, o: number): string =>
  Array.from(b.subarray(o, o + 16), (x) => x.toString(16).padStart(2, '0'))
    .join('')
    .replace(/(....)(?!$)/g, '$1:');

/**
 * Every NS rule a frame breaks, all evaluated (not first-failure like the parser), as far as the
 * frame's structure allows. The rules are the ones of src/ndp/ns-error.ts.
 */
function violations(f: Uint8Array): string[] {
  const v: string[] = [];
  if (f.length < 54) return ['too-short'];
  if ((f[0]! & 1) === 0 && HOST_MAC.some((b, i) => f[i] !== b)) v.push('other-host');
  let off = 12;
  let tags = 0;
  let et = (f[off]! << 8) | f[off + 1]!;
  while (et === 0x8100 || et === 0x88a8) {
    if (et === 0x88a8 || tags === 1) v.push('stacked-vlan');
    tags++;
    off += 4;
    et = (f[off]! << 8) | f[off + 1]!;
  }
  if (tags === 1 && et === 0x86dd) {
    const vid = ((f[14]! << 8) | f[15]!) & 0xfff;
    if (vid !== 0 && !SERVED_VLANS.includes(vid)) v.push('vlan-not-served');
  }
  if (et !== 0x86dd) return [...new Set([...v, 'not-ipv6'])];
  const ip = off + 2;
  if (f.length < ip + 40) return [...v, 'too-short'];
  if (f[ip]! >>> 4 !== 6) v.push('bad-ip-version');
  const plen = (f[ip + 4]! << 8) | f[ip + 5]!;
  if (ip + 40 + plen > f.length) return [...v, 'truncated'];
  let nh = f[ip + 6]!;
  let icmp = ip + 40;
  if (nh !== 58) {
    v.push('not-icmpv6');
    if (nh !== 0) return v;
    nh = f[icmp]!; // follow one Hop-by-Hop header to judge the message behind it
    icmp += (f[icmp + 1]! + 1) * 8;
    if (nh !== 58) return v;
  }
  const icmpLen = ip + 40 + plen - icmp;
  if (icmpLen === 0) return [...v, 'icmp-too-short'];
  if (f[icmp] !== 135) v.push('not-ns');
  if (f[ip + 7] !== 255) v.push('bad-hop-limit');
  if (!icmp6ChecksumValid(f, ip + 8, ip + 24, icmp, icmpLen)) v.push('bad-checksum');
  if (f[icmp + 1] !== 0) v.push('bad-code');
  if (icmpLen < 24) return [...v, 'icmp-too-short'];
  const src = hex16(f, ip + 8);
  const dst = hex16(f, ip + 24);
  const target = hex16(f, icmp + 8);
  const unspecified = /^[0:]+$/.test(src);
  if (target.startsWith('ff')) v.push('target-multicast');
  if (src.startsWith('ff')) v.push('multicast-source');
  const LOOPBACK = '0000:0000:0000:0000:0000:0000:0000:0001';
  if (src === LOOPBACK) v.push('loopback-source');
  if (src.startsWith('0000:0000:0000:0000:0000:ffff:')) v.push('ipv4-mapped-source');
  const dstSolicited = dst.startsWith(LL);
  if (unspecified && !dstSolicited) v.push('unspecified-source-bad-destination');
  // One verdict on the destination: what IPv6 input drops (loopback, multicast scope 1 or 0)
  // comes before, and stands instead of, the ND mismatch those destinations would also be.
  if (dst === LOOPBACK) v.push('loopback-destination');
  else if (dst.startsWith('ff') && dst[3] === '1') v.push('interface-local-destination');
  else if (dst.startsWith('ff') && dst[3] === '0') v.push('reserved-scope-destination');
  else if (dst !== target && dst !== `${LL}${target.slice(32)}`) v.push('destination-mismatch');
  let o = icmp + 24;
  const end = icmp + icmpLen;
  let sllao = false;
  while (o < end) {
    const len = (f[o + 1] ?? 0) * 8;
    if (o + 2 > end || len === 0 || o + len > end) {
      v.push('bad-option-length');
      break;
    }
    if (f[o] === 1) {
      sllao = true;
      if (len !== 8 || (f[o + 2]! & 1) === 1) v.push('bad-source-link-layer');
    }
    o += len;
  }
  if (unspecified && sllao) v.push('unspecified-source-with-sllao');
  return [...new Set(v)];
}

/** True when the target of a valid untagged-or-tagged NS is inside 2003:ab11::8000:0:0:0/66. */
function targetInContainerRange(f: Uint8Array): boolean {
  let ip = 14;
  while (((f[ip - 2]! << 8) | f[ip - 1]!) === 0x8100) ip += 4;
  const t = f.subarray(ip + 48, ip + 64);
  const pre = [0x20, 0x03, 0xab, 0x11, 0, 0, 0, 0];
  return pre.every((b, i) => t[i] === b) && (t[8]! & 0xc0) === 0x80;
}

const pcaps = readdirSync(FIXTURES).filter((n) => n.endsWith('.pcap'));

t.test('every pcap is classic Ethernet pcap with a text rendering beside it', async (t) => {
  for (const c of [...CAPTURES.map((n) => `${n}.pcap`), 'malformed.in.pcap']) {
    t.ok(pcaps.includes(c), `${c} exists`);
  }
  for (const name of pcaps) {
    const p = readPcap(join(FIXTURES, name));
    t.equal(p.linktype, 1, `${name}: LINKTYPE_ETHERNET`);
    // Golden outputs (*.out.pcap) may legitimately hold no answer; inputs may not be empty.
    if (!name.endsWith('.out.pcap')) t.ok(p.frames.length > 0, `${name}: has frames`);
    t.ok(existsSync(join(FIXTURES, name.replace(/\.pcap$/, '.txt'))), `${name}: .txt rendering beside it`);
  }
  t.ok(existsSync(join(FIXTURES, 'README.md')), 'fixtures/README.md exists');
  t.ok(existsSync(join(FIXTURES, 'capture-info.txt')), 'capture provenance exists');
});

t.test('captured frames are what their names say', async (t) => {
  const one = (n: string): Uint8Array => readPcap(join(FIXTURES, `${n}.pcap`)).frames[0]!;
  for (const n of ['kernel-ns', 'ndisc6-ns', 'dad-ns', 'nud-ns', 'vlan-ns']) {
    t.same(violations(one(n)), [], `${n}: a valid NS`);
  }
  const vlan = one('vlan-ns');
  t.equal((vlan[12]! << 8) | vlan[13]!, 0x8100, 'vlan-ns: 802.1Q tag in-band');
  t.equal(((vlan[14]! << 8) | vlan[15]!) & 0xfff, 42, 'vlan-ns: VID 42');
  t.equal(one('dad-ns')[22], 0, 'dad-ns: source is ::');
  t.equal(one('nud-ns')[0]! & 1, 0, 'nud-ns: unicast Ethernet destination');
  t.same(violations(one('loopback-ns')), ['loopback-source'], 'loopback-ns: a valid NS but for its source ::1');
  for (const n of ['kernel-na', 'kernel-dad-na']) {
    const fr = readPcap(join(FIXTURES, `${n}.pcap`)).frames;
    t.equal(fr.length, 2, `${n}: NS then NA`);
    t.equal(fr[1]![54], 136, `${n}: second frame is an NA`);
  }
});

t.test('malformed manifest matches the pcap and covers every input drop reason', async (t) => {
  const frames = readPcap(join(FIXTURES, 'malformed.in.pcap')).frames;
  const manifest = JSON.parse(readFileSync(join(FIXTURES, 'malformed.json'), 'utf8')) as {
    index: number;
    name: string;
    expect: string;
    note: string;
  }[];
  t.equal(manifest.length, frames.length, 'one manifest entry per frame');
  t.same(
    manifest.map((m) => m.index),
    frames.map((_, i) => i),
    'indexes are 0..n-1 in order',
  );
  t.equal(new Set(manifest.map((m) => m.name)).size, manifest.length, 'names are unique');
  const known = new Set([...DROP_REASON_NAMES.values(), ...ANSWER_KIND_NAMES.slice(1)]);
  for (const m of manifest) {
    t.ok(known.has(m.expect), `${m.name}: expect '${m.expect}' is a known reason or answer kind`);
    t.ok(m.note.length > 0, `${m.name}: has a note`);
  }
  for (const r of INPUT_REASONS)
    t.ok(
      manifest.some((m) => m.expect === r),
      `covers ${r}`,
    );
  t.ok(
    manifest.some((m) => m.expect === 'answer'),
    'has valid frames to answer',
  );
  t.ok(
    manifest.some((m) => m.expect === 'in-use-on-link'),
    'has a DAD probe of another node (not ours to defend: golden dad-ns.out shows a defence)',
  );

  for (const m of manifest) {
    const f = frames[m.index]!;
    const got = violations(f);
    // A valid frame is answered, or (a DAD probe for an address only a prefix rule covers) is
    // another node claiming it: the conflict guard's verdict, not a broken rule.
    if (m.expect === 'answer' || m.expect === 'in-use-on-link') {
      t.same(got, [], `${m.name}: breaks no rule`);
      t.ok(targetInContainerRange(f), `${m.name}: target inside 2003:ab11::8000:0:0:0/66`);
      const ip = f[12] === 0x81 ? 18 : 14;
      const unspecified = f.subarray(ip + 8, ip + 24).every((b) => b === 0);
      t.equal(unspecified, m.expect === 'in-use-on-link', `${m.name}: source :: exactly when another node's DAD probe is expected`);
    } else {
      t.same(got, [m.expect], `${m.name}: breaks exactly one rule, ${m.expect}`);
    }
  }
});
