/**
 * Engine micro-benchmark: the whole decision path (Responder.handleBatch: decide() for each
 * frame, answers sent in one call) over the real fixture frames, on one core.
 *
 *   node --import=tsx bench/engine.bench.ts [seconds, default 3] [table-size, default 1000000]
 *
 * The frames are every NS in fixtures/*.pcap (kernel, ndisc6, DAD, NUD, VLAN, the malformed
 * set), replayed round-robin in batches of 64 as the live back ends deliver them. The table
 * holds the fixtures' prefixes plus `table-size` random /128 container addresses in the /66, so
 * lookups run against a large table. The sink counts answers instead of sending them.
 * Prints decisions per CPU second (process.cpuUsage), best of 3 rounds.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Responder } from '../src/engine/responder.js';
import type { FrameBatch } from '../src/io/backend.js';
import { parseMac } from '../src/addr/index.js';
import { linkLocalFromMac } from '../src/addr/index.js';
import { Action, type Rule } from '../src/table/rule.js';
import { TargetTable, makeRule } from '../src/table/target-table.js';
import { DEFAULT_ANSWER_SETTINGS } from '../src/engine/types.js';
import { readPcap } from '../test/support/pcap.js';

const seconds = Number(process.argv[2] ?? 3);
const tableSize = Number(process.argv[3] ?? 1_000_000);
const fixtures = new URL('../fixtures/', import.meta.url).pathname;

const frames: Uint8Array[] = [];
for (const name of readdirSync(fixtures)
  .filter((n) => n.endsWith('.pcap') && !n.includes('.out.'))
  .sort()) {
  frames.push(...readPcap(join(fixtures, name)).frames);
}

const table = new TargetTable();
table.replaceGroup('static', [
  makeRule('2003:ab11:0:0:8000::/66', Action.Answer, { kind: 'static', flag: '--prefix' }),
  makeRule('2001:db8:42:0:8000::/66', Action.Answer, { kind: 'static', flag: '--prefix' }),
]);
const docker: Rule[] = [];
const src = { kind: 'docker', containerId: 'bench', containerName: 'bench', network: 'bench' } as const;
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xffff;
const t0 = performance.now();
for (let i = 0; i < tableSize; i++) {
  const prefix = Uint8Array.of(
    0x20,
    0x03,
    0xab,
    0x11,
    0,
    0,
    0,
    0,
    0x80 | (rnd() & 0x3f),
    rnd() & 0xff,
    rnd() >> 8,
    rnd() & 0xff,
    rnd() >> 8,
    rnd() & 0xff,
    rnd() >> 8,
    rnd() & 0xff,
  );
  docker.push({ prefix, length: 128, action: Action.Answer, source: src, text: '' });
}
table.replaceGroup('docker', docker);
const loadMs = performance.now() - t0;

// Batches of 64 fixed 2048-byte slots, frames copied in round-robin, as the AF_PACKET back end delivers.
const SLOT = 2048;
const offsets = new Uint32Array(64).map((_, i) => i * SLOT);
const batches: FrameBatch[] = [];
for (let b = 0; b < frames.length; b++) {
  const bb = new Uint8Array(64 * SLOT);
  const ll = new Uint32Array(64);
  for (let i = 0; i < 64; i++) {
    const f = frames[(b * 64 + i) % frames.length]!;
    bb.set(f, i * SLOT);
    ll[i] = f.length;
  }
  batches.push({ buf: bb, offsets, lengths: ll, count: 64 });
}

let answered = 0;
const mac = parseMac('02:00:00:bb:00:02');
const responder = new Responder({
  sink: { send: (_b, _o, _l, n) => ((answered += n), n) },
  table,
  host: { ifname: 'bench0', mac, linkLocal: linkLocalFromMac(mac) },
  settings: DEFAULT_ANSWER_SETTINGS,
});

let best = 0;
for (let round = 0; round < 4; round++) {
  let n = 0;
  const w0 = performance.now();
  const c0 = process.cpuUsage();
  while (performance.now() - w0 < (seconds * 1000) / 3) {
    for (const b of batches) responder.handleBatch(b);
    n += batches.length * 64;
  }
  const c = process.cpuUsage(c0);
  if (round > 0) best = Math.max(best, n / ((c.user + c.system) / 1e6));
}
const snap = responder.counters.snapshot();
console.log(
  `fixture frames: ${frames.length} (answered share ${(snap.answered / snap.frames).toFixed(2)}), table: ${table.size} rules (${tableSize} /128 loaded in ${loadMs.toFixed(0)} ms)`,
);
console.log(`engine decisions/s: ${(best / 1e6).toFixed(2)} M per CPU second (${(1e9 / best).toFixed(0)} ns per frame)`);
if (answered === 0) throw new Error('nothing answered: the benchmark is broken');
