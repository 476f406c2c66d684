/**
 * JIT warm-up. The first NS a fresh process sees would run the codec and the table in V8's
 * interpreter (tens of microseconds) instead of optimised code (well under one). Running the
 * real decision path on synthetic frames at start-up means the first real NS — a new
 * container's first packet — is answered at full speed. Nothing is sent.
 */
import { NA_FRAME_LEN_VLAN } from '../ndp/constants.js';
import { buildNS, NS_FRAME_LEN_MAX } from '../ndp/build-ns.js';
import { NsView } from '../ndp/ns-view.js';
import { Action } from '../table/rule.js';
import { TargetTable, makeRule } from '../table/target-table.js';
import { Decision, decide } from './decide.js';
import type { AnswerSettings, HostFacts } from './types.js';

const PEER_MAC = Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
const PEER_ADDRESS = Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

/** A valid NS from 2001:db8::1 (MAC `peerMac`, default 02:00:00:00:00:01) for `target` (16 bytes), with SLLAO. */
export function syntheticNS(target: Uint8Array, peerMac: Uint8Array = PEER_MAC): Uint8Array {
  const f = new Uint8Array(NS_FRAME_LEN_MAX);
  return f.subarray(0, buildNS({ mac: peerMac, src: PEER_ADDRESS, target }, f, 0));
}

/** A DAD probe (source ::, no SLLAO) for `target`. */
export function syntheticDAD(target: Uint8Array): Uint8Array {
  const f = new Uint8Array(NS_FRAME_LEN_MAX);
  return f.subarray(0, buildNS({ mac: PEER_MAC, src: null, target }, f, 0));
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
