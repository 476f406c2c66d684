/**
 * Build fixtures/malformed.in.pcap and fixtures/malformed.json from REAL captured NS frames
 * (fixtures/kernel-ns.pcap, nud-ns.pcap, dad-ns.pcap; see fixtures/README.md).
 *
 * Each drop case breaks exactly ONE rule of the NS validation (RFC 4861 section 7.1.1 and the
 * project's own rules, see src/ndp/ns-error.ts); every other field stays valid, and the
 * ICMPv6 checksum is recomputed after the change (except in the bad-checksum case, and in the
 * truncated case where the missing bytes make it undefined). A few valid edge cases follow.
 * The "expect" of valid frames assumes the rules `--prefix 2003:ab11::8000:0:0:0/66`, a host
 * MAC other than the soliciting peer's (replay with `--mac 02:00:00:bb:00:02`) and `--vlan 42`.
 *
 * Deterministic: the same input captures give the same bytes (timestamps are the frame index).
 * Usage: node --import tsx scripts/make-malformed.ts [FIXTURES_DIR]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeIcmp6Checksum } from '../src/ndp/checksum.js';
import { ETH_HLEN, ETHERTYPE_QINQ, ETHERTYPE_VLAN, IPV6_HLEN, NS_LEN, OPT_NONCE, OPT_SOURCE_LLA } from '../src/ndp/constants.js';
import { encodePcap, LINKTYPE_ETHERNET } from '../src/io/pcap-writer.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.argv[2] ?? join(here, '..', 'fixtures'));

/** Read every frame of a classic pcap file (either byte order, us or ns timestamps, Ethernet only). */
function readPcap(path: string): Uint8Array[] {
  const buf = readFileSync(path);
  if (buf.length < 24) throw new Error(`${path}: shorter than a pcap header`);
  const magicLE = buf.readUInt32LE(0);
  let le: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) le = true;
  else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) le = false;
  else throw new Error(`${path}: not a classic pcap file`);
  const u32 = (off: number): number => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  if (u32(20) !== LINKTYPE_ETHERNET) throw new Error(`${path}: linktype ${u32(20)}, expected Ethernet`);
  const frames: Uint8Array[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > buf.length) throw new Error(`${path}: record runs past the end of the file`);
    frames.push(new Uint8Array(buf.subarray(off, off + incl)));
    off += incl;
  }
  return frames;
}

function firstFrame(name: string): Uint8Array {
  const f = readPcap(join(dir, name))[0];
  if (!f) throw new Error(`${name}: no frames (run scripts/capture-fixtures.sh first)`);
  return f;
}

// ---- frame surgery --------------------------------------------------------------------------

/** Offset of the IPv6 header (after the Ethernet header and 802.1Q/802.1ad tags). */
function ipOffset(f: Uint8Array): number {
  let off = 12;
  for (;;) {
    const et = (f[off]! << 8) | f[off + 1]!;
    if (et !== ETHERTYPE_VLAN && et !== ETHERTYPE_QINQ) return off + 2;
    off += 4;
  }
}
const plenOf = (f: Uint8Array): number => (f[ipOffset(f) + 4]! << 8) | f[ipOffset(f) + 5]!;
function setPlen(f: Uint8Array, plen: number): void {
  const ip = ipOffset(f);
  f[ip + 4] = plen >>> 8;
  f[ip + 5] = plen & 0xff;
}
/** Recompute the ICMPv6 checksum of the message right after the IPv6 header. */
function fixChecksum(f: Uint8Array): Uint8Array {
  const ip = ipOffset(f);
  writeIcmp6Checksum(f, ip + 8, ip + 24, ip + IPV6_HLEN, plenOf(f));
  return f;
}
const concat = (...parts: ArrayLike<number>[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** Append bytes to the IPv6 payload (options) and grow the payload length. */
function appendPayload(f: Uint8Array, bytes: ArrayLike<number>): Uint8Array {
  const out = concat(f, bytes);
  setPlen(out, plenOf(f) + bytes.length);
  return out;
}
/** Insert a 4-byte tag (TPID, VID) right after the MAC addresses (before any existing tag). */
function pushTag(f: Uint8Array, tpid: number, vid: number): Uint8Array {
  return concat(f.subarray(0, 12), [tpid >>> 8, tpid & 0xff, vid >>> 8, vid & 0xff], f.subarray(12));
}
const hex = (s: string): number[] => s.match(/../g)!.map((b) => parseInt(b, 16));
const ipv6Bytes = (groups: string): number[] => hex(groups.replace(/:/g, ''));
/** Offsets, for an untagged frame. */
const IP = ETH_HLEN;
const SRC = IP + 8;
const DST = IP + 24;
const ICMP = IP + IPV6_HLEN;
const TARGET = ICMP + 8;
const OPT = ICMP + NS_LEN;

// ---- inputs: real captures ------------------------------------------------------------------

const kernelNs = firstFrame('kernel-ns.pcap'); // multicast NS, source 2003:ab11::1, SLLAO
const nudNs = firstFrame('nud-ns.pcap'); // unicast NS (NUD probe), SLLAO
const dadNs = firstFrame('dad-ns.pcap'); // DAD probe: source ::, nonce, no SLLAO

function expectShape(f: Uint8Array, name: string, firstOption: number): void {
  const ok =
    f.length === ICMP + 32 &&
    f[12] === 0x86 &&
    f[13] === 0xdd &&
    f[IP + 6] === 58 &&
    f[ICMP] === 135 &&
    plenOf(f) === 32 &&
    f[OPT] === firstOption &&
    f[OPT + 1] === 1;
  if (!ok) throw new Error(`${name}: not the expected untagged 86-byte NS with option ${firstOption}`);
}
expectShape(kernelNs, 'kernel-ns.pcap', OPT_SOURCE_LLA);
expectShape(nudNs, 'nud-ns.pcap', OPT_SOURCE_LLA);
expectShape(dadNs, 'dad-ns.pcap', OPT_NONCE);

const copy = (f: Uint8Array): Uint8Array => new Uint8Array(f);

// ---- the cases ------------------------------------------------------------------------------

interface Case {
  name: string;
  expect: string;
  source: string;
  note: string;
  frame: Uint8Array;
}
const cases: Case[] = [];
const add = (name: string, expect: string, source: string, note: string, frame: Uint8Array): void => {
  cases.push({ name, expect, source, note, frame });
};
/** A mutated copy of `base`, checksum recomputed afterwards. */
const mutate = (base: Uint8Array, fn: (f: Uint8Array) => void): Uint8Array => {
  const f = copy(base);
  fn(f);
  return fixChecksum(f);
};

add('too-short', 'too-short', 'kernel-ns', 'first 50 bytes only: less than Ethernet (14) + IPv6 (40) header', kernelNs.slice(0, 50));
add(
  'ethertype-ipv4',
  'not-ipv6',
  'kernel-ns',
  'ethertype 0x0800 (IPv4); everything after it unchanged',
  (() => {
    const f = copy(kernelNs);
    f[12] = 0x08;
    f[13] = 0x00;
    return f;
  })(),
);
add(
  'qinq',
  'stacked-vlan',
  'kernel-ns',
  '802.1ad outer tag (0x88a8, VID 100) over an 802.1Q tag (VID 42); the NS inside is valid',
  fixChecksum(pushTag(pushTag(kernelNs, ETHERTYPE_VLAN, 42), ETHERTYPE_QINQ, 100)),
);
add(
  'ip-version-4',
  'bad-ip-version',
  'kernel-ns',
  'IPv6 version nibble 4 (first byte 0x40), ethertype still 0x86dd',
  mutate(kernelNs, (f) => (f[IP] = (f[IP]! & 0x0f) | 0x40)),
);
add(
  'truncated-payload',
  'truncated',
  'kernel-ns',
  'last 8 bytes (the SLLAO) cut off; payload length still says 32, frame holds 24 (checksum cannot apply)',
  kernelNs.slice(0, kernelNs.length - 8),
);
add(
  'hop-by-hop-header',
  'not-icmpv6',
  'kernel-ns',
  'valid NS behind an 8-byte Hop-by-Hop header (next header 0, PadN); extension headers are not followed',
  (() => {
    const hbh = [58, 0, 1, 4, 0, 0, 0, 0]; // next header ICMPv6, length 0 (8 bytes), PadN of 4
    const f = concat(kernelNs.subarray(0, ICMP), hbh, kernelNs.subarray(ICMP));
    f[IP + 6] = 0;
    setPlen(f, 32 + hbh.length);
    // The ICMPv6 checksum covers only the ICMPv6 message (upper-layer length 32).
    writeIcmp6Checksum(f, SRC, DST, ICMP + hbh.length, 32);
    return f;
  })(),
);
add(
  'hop-limit-64',
  'bad-hop-limit',
  'kernel-ns',
  'hop limit 64 instead of 255 (as if routed)',
  mutate(kernelNs, (f) => (f[IP + 7] = 64)),
);
add(
  'checksum-flipped',
  'bad-checksum',
  'kernel-ns',
  'last bit of the captured checksum flipped',
  (() => {
    const f = copy(kernelNs);
    f[ICMP + 3] = f[ICMP + 3]! ^ 0x01;
    return f;
  })(),
);
add(
  'code-1',
  'bad-code',
  'kernel-ns',
  'ICMPv6 code 1',
  mutate(kernelNs, (f) => (f[ICMP + 1] = 1)),
);
add(
  'icmp-16-bytes',
  'icmp-too-short',
  'kernel-ns',
  'ICMPv6 cut to 16 bytes (payload length 16, frame 70 bytes): the target is incomplete',
  (() => {
    const f = kernelNs.slice(0, ICMP + 16);
    setPlen(f, 16);
    return fixChecksum(f);
  })(),
);
add(
  'target-multicast',
  'target-multicast',
  'kernel-ns',
  'target ff02::1:ff00:1; destination ff02::1:ff00:1 is still its solicited-node group',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('ff02:0000:0000:0000:0000:0001:ff00:0001'), TARGET)),
);
add(
  'option-length-zero',
  'bad-option-length',
  'kernel-ns',
  'SLLAO length byte 0',
  mutate(kernelNs, (f) => (f[OPT + 1] = 0)),
);
add(
  'option-past-end',
  'bad-option-length',
  'kernel-ns',
  'SLLAO kept, then an unknown option (type 253) whose length 2 (16 bytes) runs past the 8 bytes present',
  fixChecksum(appendPayload(kernelNs, [253, 2, 0, 0, 0, 0, 0, 0])),
);
add(
  'dad-to-target',
  'unspecified-source-bad-destination',
  'dad-ns',
  'DAD probe (source ::) sent unicast: IPv6 destination = the target, Ethernet destination 02:00:00:bb:00:02',
  mutate(dadNs, (f) => {
    f.set(hex('020000bb0002'), 0);
    f.set(f.subarray(TARGET, TARGET + 16), DST);
  }),
);
add(
  'dad-with-sllao',
  'unspecified-source-with-sllao',
  'dad-ns',
  'DAD probe (source ::, nonce) with an SLLAO 02:00:00:aa:00:01 appended',
  fixChecksum(appendPayload(dadNs, [OPT_SOURCE_LLA, 1, ...hex('020000aa0001')])),
);
add(
  'source-multicast',
  'multicast-source',
  'kernel-ns',
  'IPv6 source ff02::1',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('ff02:0000:0000:0000:0000:0000:0000:0001'), SRC)),
);
add(
  'sllao-length-2',
  'bad-source-link-layer',
  'kernel-ns',
  'SLLAO length 2 (16 bytes: the MAC and 10 zero bytes), inside the payload',
  (() => {
    const f = appendPayload(kernelNs, [0, 0, 0, 0, 0, 0, 0, 0]);
    f[OPT + 1] = 2;
    return fixChecksum(f);
  })(),
);
add(
  'sllao-group-mac',
  'bad-source-link-layer',
  'kernel-ns',
  'SLLAO carries the group MAC 33:33:00:00:00:01',
  mutate(kernelNs, (f) => f.set(hex('333300000001'), OPT + 2)),
);
add(
  'dst-other-solicited-node',
  'destination-mismatch',
  'kernel-ns',
  "destination ff02::1:ff00:99 (Ethernet 33:33:ff:00:00:99): another address's solicited-node group",
  mutate(kernelNs, (f) => {
    f.set(hex('3333ff000099'), 0);
    f.set(ipv6Bytes('ff02:0000:0000:0000:0000:0001:ff00:0099'), DST);
  }),
);
add(
  'unicast-dst-not-target',
  'destination-mismatch',
  'nud-ns',
  'unicast NUD probe whose IPv6 destination is 2003:ab11::8000:0:0:99, not the target 2003:ab11::8000:0:0:3',
  mutate(nudNs, (f) => f.set(ipv6Bytes('2003:ab11:0000:0000:8000:0000:0000:0099'), DST)),
);

// Valid edge cases (expectations under --prefix 2003:ab11::8000:0:0:0/66).
add(
  'ethernet-padding',
  'answer',
  'kernel-ns',
  'valid NS followed by 8 bytes of zero padding after the IPv6 payload (ignored)',
  concat(kernelNs, new Uint8Array(8)),
);
add(
  'unknown-option',
  'answer',
  'kernel-ns',
  'valid NS with an extra unknown option (type 253, length 1) after the SLLAO',
  fixChecksum(appendPayload(kernelNs, [253, 1, ...hex('0102030405a6')])),
);
add(
  'nonce-option',
  'answer',
  'kernel-ns',
  'valid NS (source 2003:ab11::1, SLLAO) plus a Nonce option (type 14, length 1) copied from dad-ns',
  fixChecksum(appendPayload(kernelNs, dadNs.subarray(OPT, OPT + 8))),
);
add(
  'vlan-42',
  'answer',
  'kernel-ns',
  'valid NS with one 802.1Q tag (VID 42) inserted; the answer must carry the same tag',
  pushTag(kernelNs, ETHERTYPE_VLAN, 42),
);
add('nud-unicast', 'answer', 'nud-ns', 'the captured unicast NUD probe, unchanged (destination = target)', copy(nudNs));
add(
  'dad-probe',
  'in-use-on-link',
  'dad-ns',
  'the captured DAD probe (source ::, nonce), unchanged: the replay covers its target with a prefix rule only, so this is another node claiming an address we do not hold: not defended, and in use from now on (golden dad-ns.out shows the defence of an exact --address)',
  copy(dadNs),
);

// What Linux's IPv6 input (ip6_rcv_core) drops before ND, and the VLAN policy (appended, so the
// frames above keep their indexes and timestamps).
add(
  'source-loopback',
  'loopback-source',
  'kernel-ns',
  'IPv6 source ::1 (fixtures/loopback-ns.pcap is the same from ndisc6 -s ::1)',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('0000:0000:0000:0000:0000:0000:0000:0001'), SRC)),
);
add(
  'source-ipv4-mapped',
  'ipv4-mapped-source',
  'kernel-ns',
  'IPv6 source ::ffff:192.0.2.1 (IPv4-mapped)',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('0000:0000:0000:0000:0000:ffff:c000:0201'), SRC)),
);
add(
  'dst-loopback',
  'loopback-destination',
  'nud-ns',
  'unicast NUD probe with target and IPv6 destination ::1 (destination = target, so only the loopback rule breaks)',
  mutate(nudNs, (f) => {
    f.set(ipv6Bytes('0000:0000:0000:0000:0000:0000:0000:0001'), TARGET);
    f.set(ipv6Bytes('0000:0000:0000:0000:0000:0000:0000:0001'), DST);
  }),
);
add(
  'dst-interface-local',
  'interface-local-destination',
  'kernel-ns',
  'destination ff01::1:ff00:1: the solicited-node group with interface-local scope 1 (Ethernet 33:33:ff:00:00:01 unchanged)',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('ff01:0000:0000:0000:0000:0001:ff00:0001'), DST)),
);
add(
  'dst-scope-0',
  'reserved-scope-destination',
  'kernel-ns',
  'destination ff00::1:ff00:1: the solicited-node group with the reserved multicast scope 0',
  mutate(kernelNs, (f) => f.set(ipv6Bytes('ff00:0000:0000:0000:0000:0001:ff00:0001'), DST)),
);
add(
  'vlan-999',
  'vlan-not-served',
  'kernel-ns',
  'valid NS with one 802.1Q tag, VID 999, which the replay does not serve (only --vlan 42)',
  pushTag(kernelNs, ETHERTYPE_VLAN, 999),
);
add(
  'nud-other-host',
  'other-host',
  'nud-ns',
  "the captured unicast NUD probe sent to another host's MAC 02:00:00:cc:00:03 instead of 02:00:00:bb:00:02 (as a promiscuous or bridged interface sees it)",
  (() => {
    const f = copy(nudNs);
    f.set(hex('020000cc0003'), 0);
    return f;
  })(),
);

// Last: as an NA it is valid (the NS body reads as an NA for the same target from the same
// node), so the conflict guard learns from it that the target is in use; every frame after it
// for that target would be dropped as in-use-on-link.
add(
  'type-na',
  'not-ns',
  'kernel-ns',
  'ICMPv6 type 136 (Neighbor Advertisement) with the NS body',
  mutate(kernelNs, (f) => (f[ICMP] = 136)),
);

// ---- write ----------------------------------------------------------------------------------

const pcapPath = join(dir, 'malformed.in.pcap');
writeFileSync(pcapPath, encodePcap(cases.map((c, i) => ({ data: c.frame, tsSec: i, tsUsec: 0 }))));
const manifest = cases.map((c, index) => ({ index, name: c.name, expect: c.expect, source: c.source, note: c.note }));
writeFileSync(join(dir, 'malformed.json'), `${JSON.stringify(manifest, null, 2)}\n`);

// Text rendering beside the pcap (same command as for the captures; UTC so it is stable).
try {
  const txt = execFileSync('tcpdump', ['-vvv', '-e', '-nn', '-r', pcapPath], {
    env: { ...process.env, TZ: 'UTC' },
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 1 << 22,
  });
  writeFileSync(join(dir, 'malformed.in.txt'), txt);
} catch (e) {
  process.stderr.write(`make-malformed: tcpdump rendering failed (${(e as Error).message}); malformed.in.txt not updated\n`);
  process.exitCode = 1;
}
process.stdout.write(`make-malformed: ${cases.length} frames -> ${pcapPath}\n`);
