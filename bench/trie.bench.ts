/**
 * RadixTrie benchmark: heap bytes per entry, insert/s, lookup/s (longest-prefix match, half hits,
 * half misses), delete/s, at 1,000 / 100,000 / 1,000,000 entries.
 *
 * Run: node --expose-gc --import tsx bench/trie.bench.ts [sizes...]
 *   e.g. node --expose-gc --import tsx bench/trie.bench.ts 1000 100000 --only=random
 *
 * Memory is (heapUsed + arrayBuffers) after a full GC, minus the same before building, divided
 * by the entry count. Every entry stores the same value object (as the budget says: values are
 * shared), and the keys and query addresses are pre-generated in one big Uint8Array each, before
 * the first measurement. Queries are hits (a random inserted key) or misses (a random address of
 * the same shape) at random, about half each, over the whole table. Lookups read the address in
 * place from that array.
 *
 * Rates are per CPU second of this process (process.cpuUsage, user + system): the machine is
 * shared, and wall time would count time the scheduler gave to others. The lookup loop runs three
 * times and the best is reported; `wall` is the wall-clock lookup rate of that same best run.
 *
 * Budget (from the brief): <= 100 B/entry and >= 5,000,000 lookups/s at 1,000,000 /128 entries.
 */
import { RadixTrie } from '../src/table/trie.js';
import { parseAddress } from '../src/addr/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('run with --expose-gc: node --expose-gc --import tsx bench/trie.bench.ts');
  process.exit(2);
}

/** xorshift32, seeded: the same keys every run. */
let seed = 0x2545f491;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

interface Dist {
  name: string;
  /** Fill 16 bytes at `off` with one key. */
  fill(buf: Uint8Array, off: number): void;
  /** Prefix length of the entries. */
  length(): number;
}

function randomTail(base: Uint8Array, fromBit: number): (buf: Uint8Array, off: number) => void {
  return (buf, off) => {
    for (let i = 0; i < 16; i += 4) {
      const r = rnd();
      buf[off + i] = r >>> 24;
      buf[off + i + 1] = r >>> 16;
      buf[off + i + 2] = r >>> 8;
      buf[off + i + 3] = r;
    }
    for (let bit = 0; bit < fromBit; bit++) {
      const m = 0x80 >> (bit & 7);
      const j = off + (bit >> 3);
      buf[j] = (buf[j]! & ~m) | (base[bit >> 3]! & m);
    }
  };
}

const dists: Dist[] = [
  { name: '/128 in one /64', fill: randomTail(parseAddress('2001:db8:0:1::'), 64), length: () => 128 },
  { name: '/128 in one /66', fill: randomTail(parseAddress('2003:ab11:0:0:8000::'), 66), length: () => 128 },
  { name: '/128 random', fill: randomTail(new Uint8Array(16), 0), length: () => 128 },
  { name: 'prefixes /48../127', fill: randomTail(parseAddress('2001:db8::'), 32), length: () => 48 + (rnd() % 80) },
];

const SHARED = { shared: true };
const QUERIES = 2_000_000;

function heap(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** CPU seconds (user + system) and wall seconds of `fn`. */
function timed(fn: () => void): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall };
}

function best(runs: number, fn: () => void): { cpu: number; wall: number } {
  let b = { cpu: Infinity, wall: Infinity };
  for (let i = 0; i < runs; i++) {
    const r = timed(fn);
    if (r.cpu < b.cpu) b = r;
  }
  return b;
}

function fmtRate(perSec: number): string {
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(2)} M/s` : `${(perSec / 1e3).toFixed(0)} k/s`;
}

interface Row {
  dist: string;
  n: number;
  bytes: number;
  insert: number;
  lookup: number;
  lookupWall: number;
  hitRate: number;
  del: number;
}

function run(dist: Dist, n: number): Row {
  const keys = new Uint8Array(n * 16);
  const lengths = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    dist.fill(keys, i * 16);
    lengths[i] = dist.length();
  }
  // Queries: even = an inserted key (a hit), odd = a fresh random address of the same shape.
  const queries = new Uint8Array(QUERIES * 16);
  for (let i = 0; i < QUERIES; i++) {
    if (rnd() & 1) {
      const k = (rnd() % n) * 16;
      queries.set(keys.subarray(k, k + 16), i * 16);
    } else {
      dist.fill(queries, i * 16);
    }
  }

  let trie: RadixTrie<object> | undefined;
  const before = heap();
  trie = new RadixTrie<object>();
  const tr = trie;
  const insertSec = timed(() => {
    for (let i = 0; i < n; i++) tr.insert(keys, i * 16, lengths[i]!, SHARED);
  }).cpu;
  const bytes = (heap() - before) / n;

  let hits = 0;
  const t = trie;
  const lookupTime = best(3, () => {
    hits = 0;
    for (let i = 0; i < QUERIES; i++) if (t.lookup(queries, i * 16) !== undefined) hits++;
  });

  const deleteSec = timed(() => {
    for (let i = 0; i < n; i++) t.delete(keys, i * 16, lengths[i]!);
  }).cpu;
  if (t.size !== 0) throw new Error(`size ${t.size} after deleting everything`);
  // eslint-disable-next-line no-useless-assignment -- drop the reference so a later GC can free the trie
  trie = undefined;

  return {
    dist: dist.name,
    n,
    bytes,
    insert: n / insertSec,
    lookup: QUERIES / lookupTime.cpu,
    lookupWall: QUERIES / lookupTime.wall,
    hitRate: hits / QUERIES,
    del: n / deleteSec,
  };
}

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const sizes = args.filter((a) => !a.startsWith('--')).map(Number);
const ns = sizes.length > 0 ? sizes : [1_000, 100_000, 1_000_000];
console.log(`node ${process.version}, ${QUERIES.toLocaleString('en')} lookups per run (best of 3), rates per CPU second`);
console.log('| entries | kind | B/entry | insert | lookup | (wall) | hits | delete |');
console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
for (const n of ns) {
  for (const d of dists) {
    if (only !== undefined && !d.name.includes(only)) continue;
    const r = run(d, n);
    console.log(
      `| ${r.n.toLocaleString('en')} | ${r.dist} | ${r.bytes.toFixed(1)} | ${fmtRate(r.insert)} | ${fmtRate(r.lookup)} | ${fmtRate(r.lookupWall)} | ${(r.hitRate * 100).toFixed(0)}% | ${fmtRate(r.del)} |`,
    );
  }
}
