/**
 * Codec micro-benchmark: parseNS and buildNA on one core, typical frames.
 *
 *   node --import=tsx bench/codec.bench.ts [seconds-per-case, default 1]
 *
 * Prints frames per second of CPU time (process.cpuUsage, so time the process spends
 * descheduled on a busy machine does not count) per case, best of 3 rounds after a warm-up.
 */
import { buildNA } from '../src/ndp/build.js';
import { DropReason } from '../src/engine/verdict.js';
import { NsView } from '../src/ndp/ns-view.js';
import { parseNS } from '../src/ndp/parse.js';
import type { HostFacts } from '../src/engine/types.js';
import { DEFAULT_ANSWER_SETTINGS } from '../src/engine/types.js';
import { ip6, mac, makeNS } from '../test/support/frames.js';

const seconds = Number(process.argv[2] ?? 1);
const view = new NsView();
const host: HostFacts = { ifname: 'bench0', mac: mac('02:42:ac:11:00:09'), linkLocal: ip6('fe80::1') };
const out = new Uint8Array(128);

/** Run `batch` (10,000 frames per call) for about `seconds`; best of 3 rounds, after a warm-up. */
function rate(name: string, batch: () => number): void {
  batch();
  let best = 0;
  let sink = 0;
  for (let round = 0; round < 3; round++) {
    let n = 0;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    while (performance.now() - t0 < (seconds * 1000) / 3) {
      sink += batch();
      n += 10000;
    }
    const c = process.cpuUsage(c0);
    best = Math.max(best, n / ((c.user + c.system) / 1e6));
  }
  if (sink === -1) console.log(sink);
  console.log(`${name.padEnd(40)} ${(best / 1e6).toFixed(2).padStart(6)} M frames/s  (${(1e9 / best).toFixed(0)} ns/frame)`);
}

/** A fresh loop per case, so each call site sees one frame shape (as the real loop does). */
function parseLoop(f: Uint8Array): () => number {
  return new Function(
    'parseNS',
    'f',
    'view',
    `return () => { let s = 0; for (let i = 0; i < 10000; i++) s += parseNS(f, 0, f.length, view); return s; };`,
  )(parseNS, f, view) as () => number;
}

const typical = makeNS({ target: '2003:ab11::8000:0:0:10' });
const withNonceVlan = makeNS({ target: '2003:ab11::8000:0:0:10', vlan: 100, options: [{ type: 14, value: [1, 2, 3, 4, 5, 6] }] });
const dad = makeNS({ target: '2003:ab11::8000:0:0:10', src: '::' });
const badChecksum = makeNS({ badChecksum: true });
const notNs = makeNS({ type: 128 });

for (const [name, f, want] of [
  ['parseNS typical (multicast, SLLAO)', typical, DropReason.None],
  ['parseNS VLAN + SLLAO + nonce', withNonceVlan, DropReason.None],
  ['parseNS DAD probe', dad, DropReason.None],
  ['parseNS bad checksum', badChecksum, DropReason.BadChecksum],
  ['parseNS not an NS (early reject)', notNs, DropReason.NotNS],
] as const) {
  if (parseNS(f, 0, f.length, view) !== want) throw new Error(`${name}: unexpected verdict`);
  rate(name, parseLoop(f));
}

rate('parseNS + buildNA typical', () => {
  let s = 0;
  for (let i = 0; i < 10000; i++) {
    parseNS(typical, 0, typical.length, view);
    s += buildNA(view, host, DEFAULT_ANSWER_SETTINGS, out, 0);
  }
  return s;
});
