/**
 * JIT warm-up. The first NS a fresh process sees would run the codec and the table in V8's
 * interpreter (tens of microseconds) instead of optimised code (well under one). Running the
 * real decision path on synthetic frames at start-up means the first real NS — a new
 * container's first packet — is answered at full speed. Nothing is sent.
 */
import { ETHERTYPE_IPV6, ETH_HLEN, ICMPV6_NS, IPV6_HLEN, NA_FRAME_LEN_VLAN, ND_HOP_LIMIT, OPT_SOURCE_LLA } from '../ndp/constants.js';
import { writeIcmp6Checksum } from '../ndp/checksum.js';
import { solicitedNodeAddress, solicitedNodeMac } from '../ndp/address.js';
import { NsView } from '../ndp/ns-view.js';
import { Action } from '../table/rule.js';
import { TargetTable, makeRule } from '../table/target-table.js';
import { Decision, decide } from './decide.js';
import type { AnswerSettings, HostFacts } from './types.js';

const NS_FRAME_LEN = ETH_HLEN + IPV6_HLEN + 24 + 8;

/** A valid NS from 2001:db8::1 (02:00:00:00:00:01) for `target` (16 bytes), with SLLAO. */
export function syntheticNS(target: Uint8Array): Uint8Array {
  const f = new Uint8Array(NS_FRAME_LEN);
  solicitedNodeMac(target, 0, f, 0);
  f.set([0x02, 0, 0, 0, 0, 0x01], 6);
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
  f.set([0x02, 0, 0, 0, 0, 0x01], icmp + 26);
  writeIcmp6Checksum(f, ip + 8, ip + 24, icmp, 32);
  return f;
}

/**
 * Run decide() `iterations` times on an answered, a dropped and a DAD-shaped frame against a
 * scratch table of the same class as the live one. Returns the time it took in ms.
 */
export function warmUp(host: HostFacts, settings: AnswerSettings, iterations = 20_000): number {
  const t0 = performance.now();
  const table = new TargetTable();
  table.replaceGroup('warm-up', [makeRule('2001:db8:ffff::/64', Action.Answer, { kind: 'static', flag: '--prefix' })]);
  const hit = syntheticNS(Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10));
  const miss = syntheticNS(Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0xee, 0xee, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10));
  const view = new NsView();
  const d = new Decision();
  const out = new Uint8Array(NA_FRAME_LEN_VLAN);
  let answered = 0;
  for (let i = 0; i < iterations; i++) {
    const f = (i & 3) === 3 ? miss : hit;
    decide(f, 0, f.length, table, host, settings, view, out, 0, d);
    if (d.kind !== 0) answered++;
  }
  if (answered === 0) throw new Error('warm-up: the synthetic NS was never answered (codec and engine disagree)');
  return performance.now() - t0;
}
