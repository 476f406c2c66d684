/**
 * JIT warm-up. The first NS a fresh process sees would run the codec and the table in V8's
 * interpreter (tens of microseconds) instead of optimised code (well under one). Running the
 * real decision path on synthetic frames at start-up means the first real NS — a new
 * container's first packet — is answered at full speed. Nothing is sent.
 */
import { ETHERTYPE_IPV6, ETH_HLEN, ICMPV6_NS, IPV6_HLEN, NA_FRAME_LEN_VLAN, ND_HOP_LIMIT, OPT_SOURCE_LLA } from '../ndp/constants.js';
import { writeIcmp6Checksum } from '../ndp/checksum.js';
import { solicitedNodeAddress, solicitedNodeMac } from '../addr/index.js';
import { NsView } from '../ndp/ns-view.js';
import { Action } from '../table/rule.js';
import { TargetTable, makeRule } from '../table/target-table.js';
import { Decision, decide } from './decide.js';
import type { AnswerSettings, HostFacts } from './types.js';

const NS_FRAME_LEN = ETH_HLEN + IPV6_HLEN + 24 + 8;

const PEER_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);

/** A valid NS from 2001:db8::1 (MAC `peerMac`, default 02:00:00:00:00:01) for `target` (16 bytes), with SLLAO. */
export function syntheticNS(target: Uint8Array, peerMac: Uint8Array = PEER_MAC): Uint8Array {
  const f = new Uint8Array(NS_FRAME_LEN);
  solicitedNodeMac(target, 0, f, 0);
  f.set(peerMac.subarray(0, 6), 6);
  f[12] = ETHERTYPE_IPV6 >> 8;
  f[13] = ETHERTYPE_IPV6 & 0xff;
  const ip = ETH_HLEN;
  f[ip] = 0x60;
  f[ip + 5] = 32;
  f[ip + 6] = 58;
  f[ip + 7] = ND_HOP_LIMIT;
  f.set([0x20, 0x01, 0x0d, 0xb8], ip + 8);
  f[ip + 23] = 1;
  solicitedNodeAddress(target, 0, f, ip + 24);
  const icmp = ip + IPV6_HLEN;
  f[icmp] = ICMPV6_NS;
  f.set(target, icmp + 8);
  f[icmp + 24] = OPT_SOURCE_LLA;
  f[icmp + 25] = 1;
  f.set(peerMac.subarray(0, 6), icmp + 26);
  writeIcmp6Checksum(f, ip + 8, ip + 24, icmp, 32);
  return f;
}

/** A DAD probe (source ::, no SLLAO) for `target`. */
export function syntheticDAD(target: Uint8Array): Uint8Array {
  const f = syntheticNS(target).subarray(0, NS_FRAME_LEN - 8).slice();
  const ip = ETH_HLEN;
  f.fill(0, ip + 8, ip + 24);
  f[ip + 5] = 24;
  writeIcmp6Checksum(f, ip + 8, ip + 24, ip + IPV6_HLEN, 24);
  return f;
}

/**
 * Run decide() `iterations` times on answered (prefix and exact), excluded, unmatched and DAD
 * frames against a scratch table of the same class as the live one. Returns the time it took in ms.
 */
export function warmUp(host: HostFacts, settings: AnswerSettings, iterations = 20_000): number {
  const t0 = performance.now();
  // The same kinds of rules the live table holds, so every path of match() and decide() runs:
  // exact /128 hits (the hash), prefix hits (the trie), exclusions, misses, and DAD probes.
  const table = new TargetTable();
  const prefix = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  const addr = (last: number, net = 0xff): Uint8Array => {
    const a = prefix.slice();
    a[4] = a[5] = net;
    a[15] = last;
    return a;
  };
  table.replaceGroup('static', [
    makeRule('2001:db8:ffff::/64', Action.Answer, { kind: 'static', flag: '--prefix' }),
    makeRule('2001:db8:ffff::20/124', Action.Exclude, { kind: 'static', flag: '--exclude' }),
  ]);
  table.replaceGroup('docker', [
    makeRule('2001:db8:eeee::10', Action.Answer, { kind: 'docker', containerId: 'warm-up', containerName: 'warm-up', network: 'warm-up' }),
  ]);
  const frames = [
    syntheticNS(addr(0x10)), // prefix hit
    syntheticNS(addr(0x10, 0xee)), // exact /128 hit
    syntheticNS(addr(0x21)), // excluded
    syntheticNS(addr(0x11, 0xdd)), // no rule
    syntheticDAD(addr(0x12)), // DAD probe: defended
  ];
  const view = new NsView();
  const d = new Decision();
  const out = new Uint8Array(NA_FRAME_LEN_VLAN);
  let answered = 0;
  for (let i = 0; i < iterations; i++) {
    const f = frames[i % frames.length]!;
    decide(f, 0, f.length, table, host, settings, view, out, 0, d);
    if (d.kind !== 0) answered++;
  }
  if (answered === 0) throw new Error('warm-up: the synthetic NS was never answered (codec and engine disagree)');
  return performance.now() - t0;
}
