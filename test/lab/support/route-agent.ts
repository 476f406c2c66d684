/**
 * A small process that runs RouteMonitor instances inside a network namespace for the lab tests:
 * `ip netns exec NS node --import tsx test/lab/support/route-agent.ts --agent`. Speaks JSON
 * lines (see serveJsonLines in netns.ts). h names a monitor (default 'main').
 *
 * Requests:
 *   open {rcvbuf?}                 -> {readyMs, routes}
 *   lookup {addr, uplink}          -> {route: string|null, verdict}
 *   list                           -> {routes: string[]} (one key per route, interfaces by name)
 *   kernel                         -> {routes: string[]} (`ip -j -6 route show table all`, same keys)
 *   change {args, addr, uplink, want, timeoutMs?}: run `ip ARGS` and wait (bounded) until the
 *     lookup of `addr` gives verdict `want` (or, with `wantRoute`, that route line; with
 *     `wantListed`, until the formatRoute line of some route contains that text)
 *                                  -> {ipMs, changeAfterIpMs, changeAfterStartMs}
 *   batch {lines, blocking}        ip -6 -batch with these lines; `blocking`: with the event loop
 *                                  held (execFileSync), so notifications pile up unread
 *   resync                         -> {dumpMs, routes} after the re-dump is in the table
 *   waitSettled {timeoutMs?}       -> {} once no dump is running
 *   stats                          -> {stats}
 *   crossCheck {uplink, count}     -> {disagree, verdicts}: monitor vs routeTableFromIpJson(ip -j)
 *   bench {count, seconds}         -> {lookups, perSecond, hits}
 *   resyncOnChange                 the monitor starts a re-dump at the next table change
 *   closeOnChange                  the monitor closes itself from its callback at the next change
 *   closedInCallback               -> {handles} monitors closed that way so far
 *   exitNow                        process.exit(0) with the monitors still open
 *   close                          -> {}
 * Without `--agent` (when tap runs every file under test/) it exits at once.
 */
import { execFile, execFileSync } from 'node:child_process';

import { RouteMonitor } from '../../../src/service/routes.js';
import { formatAddress as formatIPv6, parseAddress as parseIPv6 } from '../../../src/addr/index.js';
import { routeTableFromIpJson } from '../../../src/table/ip-routes.js';
import { formatRoute, type Route, routeVerdict } from '../../../src/table/route-table.js';
import { serveJsonLines } from '../../../src/lab/json-lines.js';

if (process.argv[2] !== '--agent') process.exit(0);

interface Entry {
  m: RouteMonitor;
  /** Called on every table change (for `change`). */
  listeners: Set<() => void>;
}
const monitors = new Map<string, Entry>();
const closedInCallback: string[] = [];

function get(h: unknown): Entry {
  const e = monitors.get(typeof h === 'string' ? h : 'main');
  if (!e) throw new Error(`no monitor ${String(h)}`);
  return e;
}

function ifnames(): Map<number, string> {
  const j = JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()) as { ifname: string; ifindex: number }[];
  return new Map(j.map((l) => [l.ifindex, l.ifname]));
}

const TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw'];

/** The comparison key of a route: table, type, prefix, metric, output interfaces by name. */
function key(table: number, type: string, prefix: string, metric: number, devs: Iterable<string>): string {
  return `table ${table} ${type} ${prefix} metric ${metric} dev ${[...new Set(devs)].sort().join(',')}`;
}

function listMonitor(m: RouteMonitor): string[] {
  const names = ifnames();
  return [...m.table.routes()]
    .map((r) =>
      key(
        r.table,
        TYPES[r.type] ?? String(r.type),
        `${formatIPv6(r.prefix)}/${r.length}`,
        r.metric,
        r.oifs.map((i) => names.get(i) ?? String(i)),
      ),
    )
    .sort();
}

interface IpRoute {
  type?: string;
  dst: string;
  dev?: string;
  table?: string;
  metric?: number;
  nexthops?: { dev: string }[];
}

/** The same keys from iproute2's own dump (an independent reader of the same kernel). */
function listKernel(): string[] {
  const j = JSON.parse(execFileSync('ip', ['-j', '-6', 'route', 'show', 'table', 'all']).toString()) as IpRoute[];
  const byKey = new Map<string, { table: number; type: string; prefix: string; metric: number; devs: Set<string> }>();
  for (const r of j) {
    const table = r.table === undefined || r.table === 'main' ? 254 : r.table === 'local' ? 255 : Number(r.table);
    const dst = r.dst === 'default' ? '::/0' : r.dst.includes('/') ? r.dst : `${r.dst}/128`;
    const [a, l] = dst.split('/');
    const prefix = `${formatIPv6(parseIPv6(a!))}/${l}`;
    const type = r.type ?? 'unicast';
    const metric = r.metric ?? 0;
    const k = `${table}|${type}|${prefix}|${metric}`;
    let e = byKey.get(k);
    if (!e) byKey.set(k, (e = { table, type, prefix, metric, devs: new Set() }));
    if (r.dev) e.devs.add(r.dev);
    for (const n of r.nexthops ?? []) e.devs.add(n.dev);
  }
  return [...byKey.values()].map((e) => key(e.table, e.type, e.prefix, e.metric, e.devs)).sort();
}

function routeLine(r: Route | undefined): string | null {
  return r === undefined ? null : formatRoute(r);
}

function runIp(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (err, _o, stderr) =>
      err ? reject(new Error(`ip ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
    );
  });
}

serveJsonLines(async (req) => {
  const op = req['op'];
  const h = typeof req['h'] === 'string' ? req['h'] : 'main';
  switch (op) {
    case 'open': {
      const t0 = performance.now();
      const listeners = new Set<() => void>();
      const m = RouteMonitor.open({
        rcvbuf: typeof req['rcvbuf'] === 'number' ? req['rcvbuf'] : undefined,
        onChange: () => {
          for (const l of listeners) l();
        },
      });
      monitors.set(h, { m, listeners });
      await m.ready;
      return { readyMs: performance.now() - t0, routes: m.table.size };
    }
    case 'lookup': {
      const { m } = get(h);
      const r = m.lookup(parseIPv6(String(req['addr'])), 0);
      return { route: routeLine(r), verdict: routeVerdict(r, Number(req['uplink'])) };
    }
    case 'list':
      return { routes: listMonitor(get(h).m) };
    case 'kernel':
      return { routes: listKernel() };
    case 'change': {
      const e = get(h);
      const addr = parseIPv6(String(req['addr']));
      const uplink = Number(req['uplink']);
      const want = req['want'];
      const wantRoute = req['wantRoute'];
      const wantListed = req['wantListed'];
      const timeoutMs = typeof req['timeoutMs'] === 'number' ? req['timeoutMs'] : 2000;
      const holds = (): boolean => {
        if (typeof wantListed === 'string') return [...e.m.table.routes()].some((r) => formatRoute(r).includes(wantListed));
        const r = e.m.lookup(addr, 0);
        if (typeof wantRoute === 'string') return routeLine(r) === wantRoute;
        return routeVerdict(r, uplink) === want;
      };
      if (holds()) throw new Error(`the condition already holds before ip ${(req['args'] as string[]).join(' ')}`);
      const t0 = performance.now();
      let tChange = -1;
      let tIp: number;
      const listener = (): void => {
        if (tChange < 0 && holds()) tChange = performance.now();
      };
      e.listeners.add(listener);
      try {
        await runIp(req['args'] as string[]);
        tIp = performance.now();
        const deadline = tIp + timeoutMs;
        while (tChange < 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        if (tChange < 0) {
          const r = e.m.lookup(addr, 0);
          throw new Error(`no change within ${timeoutMs} ms after ip returned; lookup: ${routeLine(r)} (${routeVerdict(r, uplink)})`);
        }
      } finally {
        e.listeners.delete(listener);
      }
      return { ipMs: tIp - t0, changeAfterIpMs: tChange - tIp, changeAfterStartMs: tChange - t0 };
    }
    case 'batch': {
      const input = (req['lines'] as string[]).join('\n') + '\n';
      const t0 = performance.now();
      if (req['blocking'] === true) {
        execFileSync('ip', ['-6', '-batch', '-'], { input, timeout: 60_000 });
      } else {
        await new Promise<void>((resolve, reject) => {
          const c = execFile('ip', ['-6', '-batch', '-'], { timeout: 60_000 }, (err, _o, stderr) =>
            err ? reject(new Error(stderr || err.message)) : resolve(),
          );
          c.stdin!.end(input);
        });
      }
      return { ms: performance.now() - t0 };
    }
    case 'resync': {
      const { m } = get(h);
      const done = (): number => m.stats().dumps + m.stats().discardedDumps;
      const before = done();
      m.resync();
      const t0 = Date.now();
      while ((done() === before || m.dumping) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 2));
      if (done() === before || m.dumping) throw new Error('re-dump did not finish within 10 s');
      return { dumpMs: m.stats().lastDumpMs, routes: m.table.size };
    }
    case 'waitSettled': {
      const { m } = get(h);
      const t0 = Date.now();
      const limit = typeof req['timeoutMs'] === 'number' ? req['timeoutMs'] : 10_000;
      // Settled: no dump running and nothing left unread on the socket for a moment.
      let quiet = 0;
      let last = -1;
      while (Date.now() - t0 < limit) {
        const s = m.stats();
        const seen = (s.socket?.received ?? 0) + s.dumps + s.discardedDumps;
        if (!m.dumping && seen === last) {
          if (++quiet >= 10) return {};
        } else {
          quiet = 0;
        }
        last = seen;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`monitor ${h} still busy after ${limit} ms`);
    }
    case 'stats':
      return { stats: get(h).m.stats(), stale: get(h).m.stale };
    case 'bench': {
      const { m } = get(h);
      // Queries: addresses inside the listed routes (hits on long prefixes) and random ones.
      const count = Number(req['count'] ?? 4096);
      const routes = [...m.table.routes()];
      const qs = new Uint8Array(count * 16);
      let seed = 0x9e3779b9;
      const rnd = (): number => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return seed >>> 0;
      };
      for (let i = 0; i < count; i++) {
        const r = routes[rnd() % routes.length]!;
        qs.set(r.prefix, i * 16);
        for (let b = 8; b < 16; b++) qs[i * 16 + b] = rnd() & 0xff;
        if (i % 2 === 1) for (let b = 0; b < 16; b++) qs[i * 16 + b] = rnd() & 0xff;
      }
      const seconds = Number(req['seconds'] ?? 1);
      let n = 0;
      let hits = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        for (let i = 0; i < count; i++) if (m.lookup(qs, i * 16) !== undefined) hits++;
        n += count;
      }
      const cpu = process.cpuUsage(c0);
      const cpuS = (cpu.user + cpu.system) / 1e6;
      return { lookups: n, perSecond: n / cpuS, wallPerSecond: n / ((performance.now() - t0) / 1000), hits, routes: m.table.size };
    }
    case 'crossCheck': {
      // The same kernel read two ways: the monitor, and routeTableFromIpJson on iproute2's JSON
      // (what replay would be given). Their verdicts must agree for every query.
      const { m } = get(h);
      const names = ifnames();
      const uplinkName = names.get(Number(req['uplink']))!;
      const { table, ifindex } = routeTableFromIpJson(
        execFileSync('ip', ['-j', '-6', 'route', 'show', 'table', 'all'], { maxBuffer: 64 << 20 }).toString(),
      );
      const offUplink = ifindex.get(uplinkName) ?? -1;
      const routes = [...m.table.routes()];
      const q = new Uint8Array(16);
      let disagree = 0;
      const verdicts: Record<string, number> = {};
      const count = Number(req['count'] ?? 4096);
      for (let i = 0; i < count; i++) {
        const r = routes[(i * 7919) % routes.length]!;
        q.set(r.prefix);
        for (let b = Math.ceil(r.length / 8); b < 16; b++) q[b] = (i * 31 + b * 17) & 0xff;
        const live = routeVerdict(m.lookup(q, 0), Number(req['uplink']));
        const off = routeVerdict(table.lookup(q, 0), offUplink);
        verdicts[live] = (verdicts[live] ?? 0) + 1;
        if (live !== off) disagree++;
      }
      return { disagree, verdicts, count };
    }
    case 'resyncOnChange': {
      // Start a re-dump from inside the callback of the next table change.
      const e = get(h);
      const listener = (): void => {
        e.listeners.delete(listener);
        e.m.resync();
      };
      e.listeners.add(listener);
      return {};
    }
    case 'closeOnChange': {
      // Close the monitor from inside its own socket callback at the next table change.
      const e = get(h);
      const listener = (): void => {
        e.listeners.delete(listener);
        e.m.close();
        closedInCallback.push(h);
      };
      e.listeners.add(listener);
      return {};
    }
    case 'closedInCallback':
      return { handles: closedInCallback };
    case 'exitNow':
      // Exit with every monitor open: the addon's env cleanup hook closes the sockets.
      setImmediate(() => process.exit(0));
      return {};
    case 'close': {
      const e = monitors.get(h);
      e?.m.close();
      monitors.delete(h);
      return {};
    }
    default:
      throw new Error(`unknown op ${String(op)}`);
  }
});
