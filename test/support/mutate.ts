/**
 * The NS mutator shared by the codec and engine fuzz tests: start from valid NS frames (with and
 * without SLLAO, nonce, VLAN; DAD; unicast NUD) and apply seeded structural mutations that keep
 * frames close to valid, so the deep rules are exercised and not only the checksum.
 */
import { ip6, makeNS, referenceIcmp6Checksum, solicitedNode } from './frames.js';
import type { Prng } from './prng.js';

export const TARGET = '2001:db8::8000:0:0:10';
export const NONCE = { type: 14, value: [0xde, 0xad, 0xbe, 0xef, 0, 1] };

export const BASES: readonly Uint8Array[] = [
  makeNS({ target: TARGET }),
  makeNS({ target: TARGET, sllao: null }),
  makeNS({ target: TARGET, options: [NONCE] }),
  makeNS({ target: TARGET, vlan: 100 }),
  makeNS({ target: TARGET, src: '::' }),
  makeNS({ target: TARGET, src: '::', options: [NONCE] }),
  makeNS({ target: TARGET, src: '::', vlan: 0xe005, options: [NONCE] }),
  makeNS({ target: TARGET, src: '2001:db8::1', dst: TARGET }),
  makeNS({ target: TARGET, src: '2001:db8::1', dst: TARGET, sllao: null, vlan: 7 }),
  makeNS({ target: TARGET, options: [{ type: 200, value: [1, 2, 3, 4, 5, 6, 7, 8, 9] }, NONCE] }),
  makeNS({ target: 'fe80::abcd', padding: 12 }),
];

const ADDRS = [
  ip6('::'),
  ip6('ff02::1'),
  ip6('fe80::1'),
  ip6(TARGET),
  solicitedNode(TARGET),
  solicitedNode('2001:db8::11'),
  ip6('ff05::1:ff00:10'),
  // What IPv6 input drops (loopback, IPv4-mapped, multicast scopes 1 and 0) and near misses.
  ip6('::1'),
  ip6('::2'),
  ip6('::ffff:192.0.2.1'),
  ip6('::fffe:c000:201'),
  ip6('ff01::1:ff00:10'),
  ip6('ff10::1:ff00:10'),
  ip6('ff12::1:ff00:10'),
];

export function ipOffOf(f: Uint8Array): number {
  return f.length >= 14 && f[12] === 0x81 && f[13] === 0x00 ? 18 : 14;
}

/** Re-checksum the ICMPv6 message when the structure allows locating it. */
export function fixChecksum(f: Uint8Array): void {
  const ip = ipOffOf(f);
  if (f.length < ip + 40) return;
  const plen = (f[ip + 4]! << 8) | f[ip + 5]!;
  if (plen < 4 || ip + 40 + plen > f.length) return;
  const c = referenceIcmp6Checksum(f.subarray(ip + 8, ip + 24), f.subarray(ip + 24, ip + 40), f.subarray(ip + 40, ip + 40 + plen));
  f[ip + 42] = c >> 8;
  f[ip + 43] = c & 0xff;
}

export function fixPayloadLength(f: Uint8Array): void {
  const ip = ipOffOf(f);
  const plen = f.length - ip - 40;
  if (plen < 0 || plen > 0xffff) return;
  f[ip + 4] = plen >> 8;
  f[ip + 5] = plen & 0xff;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function mutate(rng: Prng, input: Uint8Array): Uint8Array {
  let f: Uint8Array = input.slice();
  const ip = ipOffOf(f);
  const icmp = ip + 40;
  const set = (off: number, v: number): void => {
    if (off >= 0 && off < f.length) f[off] = v;
  };
  switch (rng.int(12)) {
    case 0: // random byte anywhere
      if (f.length > 0) f[rng.int(f.length)] = rng.byte();
      break;
    case 1: // single bit flip
      if (f.length > 0) f[rng.int(f.length)]! ^= 1 << rng.int(8);
      break;
    case 2: // ethertype / tags
      switch (rng.int(4)) {
        case 0:
          set(12, rng.pick([0x86, 0x81, 0x88, 0x08]));
          set(13, rng.pick([0xdd, 0x00, 0xa8]));
          break;
        case 1: // add a tag (possibly a second one)
          f = concat(
            f.subarray(0, 12),
            Uint8Array.from([rng.pick([0x81, 0x88]), rng.pick([0x00, 0xa8]), rng.byte(), rng.byte()]),
            f.subarray(12),
          );
          break;
        case 2: // remove a tag
          if (ip === 18) f = concat(f.subarray(0, 12), f.subarray(16));
          break;
        default: // inner ethertype of a tag
          set(16, rng.pick([0x86, 0x81, 0x08]));
          set(17, rng.pick([0xdd, 0x00]));
      }
      break;
    case 3: // IPv6 header fields
      switch (rng.int(4)) {
        case 0:
          set(ip, rng.pick([0x60, 0x40, 0x6f, 0x70, 0x00]));
          break;
        case 1:
          set(ip + 6, rng.pick([58, 0, 17, 59, 43]));
          break;
        case 2:
          set(ip + 7, rng.pick([255, 254, 1, 0, 64]));
          break;
        default: {
          const plen = (f[ip + 4] ?? 0) * 256 + (f[ip + 5] ?? 0);
          const v = rng.chance(0.5) ? plen + rng.pick([-9, -8, -4, -2, -1, 1, 2, 8, 16]) : rng.int(0x10000);
          set(ip + 4, (v >> 8) & 0xff);
          set(ip + 5, v & 0xff);
        }
      }
      break;
    case 4: // ICMPv6 type / code
      if (rng.chance(0.5)) set(icmp, rng.pick([135, 136, 133, 128, 0]));
      else set(icmp + 1, rng.pick([0, 1, 255]));
      break;
    case 5: // source or destination address
      {
        const a = rng.pick(ADDRS);
        const at = rng.chance(0.5) ? ip + 8 : ip + 24;
        for (let i = 0; i < 16; i++) set(at + i, a[i]!);
      }
      break;
    case 6: // target
      if (rng.chance(0.4)) set(icmp + 8, rng.pick([0xff, 0x20, 0xfe, 0x00]));
      else set(icmp + 8 + 13 + rng.int(3), rng.byte());
      break;
    case 7: // rewrite an option's type or length, or the SLLAO MAC's group bit
      {
        const plen = (f[ip + 4] ?? 0) * 256 + (f[ip + 5] ?? 0);
        const optStart = icmp + 24;
        const optEnd = Math.min(f.length, icmp + plen);
        if (optEnd <= optStart) break;
        const at = optStart + 8 * rng.int(Math.ceil((optEnd - optStart) / 8));
        const which = rng.int(3);
        if (which === 0) set(at, rng.pick([1, 2, 14, 0, 255, 1]));
        else if (which === 1) set(at + 1, rng.pick([0, 1, 2, 3, 255]));
        else set(at + 2, (f[at + 2] ?? 0) | 1);
      }
      break;
    case 8: // append an option and grow the payload
      {
        const units = rng.pick([1, 1, 2, 0, 3]);
        const opt = rng.bytes(Math.max(units, 1) * 8 - rng.int(2) * rng.int(8));
        opt[0] = rng.pick([1, 14, 2, 200, 0]);
        if (opt.length > 1) opt[1] = units;
        if (rng.chance(0.5) && opt.length > 2) opt[2] = 0x02; // unicast MAC for an SLLAO
        const plen = (f[ip + 4] ?? 0) * 256 + (f[ip + 5] ?? 0);
        const end = Math.min(f.length, icmp + plen);
        f = concat(f.subarray(0, end), opt, f.subarray(end));
        const np = plen + opt.length;
        set(ip + 4, (np >> 8) & 0xff);
        set(ip + 5, np & 0xff);
      }
      break;
    case 9: // truncate (mostly near the end)
      f = f.slice(0, rng.chance(0.7) ? Math.max(0, f.length - 1 - rng.int(12)) : rng.int(f.length + 1));
      break;
    case 10: // extend with junk (Ethernet padding, or inside the payload after a length fix)
      f = concat(f, rng.bytes(1 + rng.int(24)));
      break;
    default: // the solicited-node destination for a different target byte
      set(ip + 24 + 13 + rng.int(3), rng.byte());
  }
  return f;
}

/** One fuzz frame: a base, 1-3 mutations, then usually a repaired length and checksum. */
export function mutatedFrame(rng: Prng, bases: readonly Uint8Array[] = BASES): Uint8Array {
  let f: Uint8Array = rng.pick(bases);
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) f = mutate(rng, f);
  if (rng.chance(0.3)) fixPayloadLength(f);
  if (rng.chance(0.75)) fixChecksum(f);
  return f;
}
