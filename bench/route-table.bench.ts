/**
 * RouteTable lookup speed: longest-prefix match over the local and main tables, as route
 * awareness asks it once per target, at 100 / 10,000 / 100,000 routes.
 *
 * Run: node --import tsx bench/route-table.bench.ts [sizes...]
 *
 * Routes: prefixes /48../128 under 2001:db8::/32 in main (plus a default route and one local
 * /128 per 1,000 routes in table local, as a host has), half to an "uplink" interface and half
 * to others, metrics 256/1024. Queries: an address inside a random route (a hit on a long
 * prefix) or a random address under 2001:db8::/32 (usually the default route), half each,
 * pre-generated in one buffer and read in place. Rates are per CPU second (process.cpuUsage),
 * best of three runs; `wall` is the wall-clock rate of that run.
 */
import { RouteTable, RouteType, routesAway } from '../src/table/route-table.js';

let seed = 0x2545f491;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

function randomUnderDocPrefix(out: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++) out[off + i] = rnd() & 0xff;
  out[off] = 0x20;
  out[off + 1] = 0x01;
  out[off + 2] = 0x0d;
  out[off + 3] = 0xb8;
}

function build(n: number): { table: RouteTable; prefixes: Uint8Array } {
  const table = new RouteTable();
  const prefixes = new Uint8Array(n * 16);
  const def = new Uint8Array(16);
  table.add({ table: 254, prefix: def, length: 0, metric: 1024, type: RouteType.UNICAST, paths: [{ ifindex: 3 }] });
  for (let i = 0; i < n; i++) {
    randomUnderDocPrefix(prefixes, i * 16);
    const local = i % 1000 === 0;
    table.add({
      table: local ? 255 : 254,
      prefix: prefixes.subarray(i * 16, i * 16 + 16),
      length: local ? 128 : 48 + (rnd() % 81),
      metric: local ? 0 : rnd() & 1 ? 256 : 1024,
      type: local ? RouteType.LOCAL : RouteType.UNICAST,
      paths: [{ ifindex: rnd() & 1 ? 3 : 4 + (rnd() % 8) }],
    });
  }
  return { table, prefixes };
}

function timed(fn: () => void): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1e6, wall };
}

const QUERIES = 1 << 21;
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
for (const n of sizes.length ? sizes : [100, 10_000, 100_000]) {
  const t0 = process.hrtime.bigint();
  const { table, prefixes } = build(n);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const qs = new Uint8Array(QUERIES * 16);
  for (let i = 0; i < QUERIES; i++) {
    if (i & 1) randomUnderDocPrefix(qs, i * 16);
    else {
      const r = rnd() % n;
      qs.set(prefixes.subarray(r * 16, r * 16 + 8), i * 16);
      for (let b = 8; b < 16; b++) qs[i * 16 + b] = rnd() & 0xff;
    }
  }
  let elsewhere = 0;
  let best = { cpu: Infinity, wall: Infinity };
  for (let run = 0; run < 3; run++) {
    elsewhere = 0;
    const r = timed(() => {
      for (let i = 0; i < QUERIES; i++) if (routesAway(table, qs, i * 16, 3) === 'elsewhere') elsewhere++;
    });
    if (r.cpu < best.cpu) best = r;
  }
  console.log(
    `${n.toLocaleString('en').padStart(8)} routes (${table.size} in the table, built in ${buildMs.toFixed(0)} ms): ` +
      `${Math.round(QUERIES / best.cpu).toLocaleString('en')} lookups/CPU-s, ${Math.round(QUERIES / best.wall).toLocaleString('en')}/s wall ` +
      `(${((elsewhere / QUERIES) * 100).toFixed(0)}% 'elsewhere')`,
  );
}
