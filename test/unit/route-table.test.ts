import t from 'tap';

import { formatAddress as formatIPv6, parseAddress as parseIPv6 } from '../../src/addr/index.js';
import {
  formatRoute,
  type Route,
  type RoutePath,
  type RouteSpec,
  RouteTable,
  RouteType,
  routesAway,
  routeVerdict,
  TABLE_LOCAL,
  TABLE_MAIN,
} from '../../src/table/route-table.js';
import { Prng } from '../support/prng.js';

const A = (s: string): Uint8Array => parseIPv6(s);
function spec(cidr: string, o: Partial<Omit<RouteSpec, 'prefix' | 'length'>> & { dev?: number; via?: string } = {}): RouteSpec {
  const [addr, len] = cidr.split('/');
  const paths: RoutePath[] = o.paths
    ? [...o.paths]
    : o.dev !== undefined
      ? [{ ifindex: o.dev, gateway: o.via ? A(o.via) : undefined }]
      : [];
  return {
    table: o.table ?? TABLE_MAIN,
    prefix: A(addr!),
    length: Number(len ?? 128),
    metric: o.metric ?? 1024,
    type: o.type ?? RouteType.UNICAST,
    paths,
    nhid: o.nhid,
  };
}
const at = (tb: RouteTable, a: string): string => {
  const r = tb.lookup(A(a), 0);
  return r === undefined ? 'none' : formatRoute(r);
};
const UPLINK = 3;
const DOCKER = 5;

t.test('longest prefix, then lowest metric; local table first', async (t) => {
  const tb = new RouteTable();
  tb.add(spec('::/0', { dev: UPLINK, via: '2001:db8:a::1' }));
  tb.add(spec('2001:db8:a::/64', { dev: UPLINK, metric: 256 }));
  tb.add(spec('2001:db8:a:0:8000::/66', { dev: DOCKER }));
  tb.add(spec('2001:db8:a:0:8000::/66', { dev: UPLINK, metric: 2048 }));
  tb.add(spec('2001:db8:a::2/128', { dev: UPLINK, type: RouteType.LOCAL, table: TABLE_LOCAL, metric: 0 }));
  t.equal(tb.size, 5);
  t.equal(at(tb, '2001:db8:a:0:8000::5'), '2001:db8:a:0:8000::/66 dev 5 table 254 metric 1024');
  t.equal(routesAway(tb, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'elsewhere');
  t.equal(routesAway(tb, A('2001:db8:a::5'), 0, UPLINK), 'uplink', 'on-link prefix of the uplink');
  t.equal(routesAway(tb, A('2001:db8:99::5'), 0, UPLINK), 'uplink', 'default route');
  t.equal(routesAway(tb, A('2001:db8:a::2'), 0, UPLINK), 'local', 'own address (table local)');
  // Without the lower metric, the metric-2048 route to the uplink decides.
  t.ok(tb.remove(spec('2001:db8:a:0:8000::/66', { dev: DOCKER })));
  t.equal(routesAway(tb, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'uplink');
  t.notOk(tb.remove(spec('2001:db8:a:0:8000::/66', { dev: DOCKER })), 'already gone');
  // A route in table local beats a more specific one in main.
  tb.add(spec('2001:db8:a:0:8000::/66', { dev: DOCKER }));
  tb.add(spec('2001:db8::/32', { table: TABLE_LOCAL, type: RouteType.BLACKHOLE, dev: 1 }));
  t.equal(routesAway(tb, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'blackhole');
  // Other tables are kept but not consulted.
  const other = new RouteTable();
  other.add(spec('2001:db8:a:0:8000::/80', { dev: UPLINK, table: 100 }));
  t.equal(other.size, 1);
  t.equal(routesAway(other, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'none');
  const t100 = new RouteTable([100]);
  t100.add(spec('2001:db8:a:0:8000::/80', { dev: UPLINK, table: 100 }));
  t.equal(routesAway(t100, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'uplink', 'consulted when asked');
});

t.test('throw goes on to the next table; the other types stop there', async (t) => {
  const tb = new RouteTable();
  tb.add(spec('2001:db8:a:0:8000::/66', { dev: DOCKER }));
  tb.add(spec('2001:db8:a:0:8000::/68', { table: TABLE_LOCAL, type: RouteType.THROW, dev: 1 }));
  t.equal(routesAway(tb, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'elsewhere', 'throw in local: main decides');
  tb.add(spec('2001:db8:a:0:8000::/70', { type: RouteType.THROW, dev: 1 }));
  t.equal(routesAway(tb, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'none', 'throw in main: no table left');
  for (const [type, verdict] of [
    [RouteType.UNREACHABLE, 'unreachable'],
    [RouteType.PROHIBIT, 'prohibit'],
    [RouteType.BLACKHOLE, 'blackhole'],
    [RouteType.ANYCAST, 'local'],
    [RouteType.MULTICAST, 'unknown'],
  ] as const) {
    const x = new RouteTable();
    x.add(spec('2001:db8:a:0:8000::/66', { dev: DOCKER }));
    x.add(spec('2001:db8:a:0:8000::/72', { type, dev: 1 }));
    t.equal(routesAway(x, A('2001:db8:a:0:8000::5'), 0, UPLINK), verdict, `type ${type}`);
  }
});

t.test('paths: multipath, merge, replace, partial delete', async (t) => {
  const tb = new RouteTable();
  const p = '2001:db8:f::/48';
  tb.add(
    spec(p, {
      paths: [
        { ifindex: DOCKER, gateway: A('fe80::1') },
        { ifindex: 6, gateway: A('fe80::2') },
      ],
    }),
  );
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'elsewhere', 'both paths away from the uplink');
  tb.add(spec(p, { dev: UPLINK, via: '2001:db8:a::1' }), false);
  t.equal(tb.size, 1, 'merged into the same route');
  t.same(tb.lookup(A('2001:db8:f::1'), 0)!.oifs, [UPLINK, DOCKER, 6]);
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'uplink', 'one path to the uplink is enough to refuse');
  t.ok(tb.remove(spec(p, { dev: UPLINK, via: '2001:db8:a::1' })), 'one nexthop deleted');
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'elsewhere');
  t.notOk(tb.remove(spec(p, { dev: 9 })), 'a path it does not have');
  tb.add(spec(p, { dev: DOCKER, via: 'fe80::1' }));
  t.equal(tb.lookup(A('2001:db8:f::1'), 0)!.paths.length, 2, 'a path it has is not added twice');
  tb.add(spec(p, { dev: UPLINK }), true);
  t.equal(at(tb, '2001:db8:f::1'), '2001:db8:f::/48 dev 3 table 254 metric 1024', 'replace drops every path');
  tb.add(spec(p, { type: RouteType.BLACKHOLE, dev: 1 }), true);
  t.equal(tb.size, 1, 'replace across types');
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'blackhole');
  t.ok(tb.remove(spec(p, { type: RouteType.BLACKHOLE })), 'no paths named: the whole route');
  t.equal(tb.size, 0);
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'none');
  // A unicast route through a nexthop object: interfaces unknown.
  tb.add(spec(p, { nhid: 7 }));
  t.equal(routesAway(tb, A('2001:db8:f::1'), 0, UPLINK), 'unknown');
  // Two types at one prefix and metric: the one that forbids an answer wins the tie.
  tb.add(spec('2001:db8:9::/48', { dev: DOCKER }));
  tb.add(spec('2001:db8:9::/48', { type: RouteType.UNREACHABLE, dev: 1 }));
  t.equal(routesAway(tb, A('2001:db8:9::1'), 0, UPLINK), 'unreachable');
});

t.test('host bits, offsets, bad input', async (t) => {
  const tb = new RouteTable();
  const r = tb.add(spec('2001:db8:a:0:8123::/66', { dev: DOCKER }));
  t.equal(formatIPv6(r.prefix), '2001:db8:a:0:8000::', 'host bits cleared');
  const buf = new Uint8Array(40);
  buf.set(A('2001:db8:a:0:8000::9'), 20);
  t.equal(tb.lookup(buf, 20), r, 'address read in place at an offset');
  t.throws(() => tb.lookup(buf, 30), RangeError);
  t.throws(() => tb.add(spec('::/0', { dev: 1, metric: -1 })), RangeError);
  t.throws(() => tb.add({ ...spec('::/0'), length: 129 }), RangeError);
  t.equal(routeVerdict(undefined, UPLINK), 'none');
});

t.test('takeFrom swaps in one step and keeps the object', async (t) => {
  const live = new RouteTable();
  live.add(spec('2001:db8:a:0:8000::/66', { dev: DOCKER }));
  const next = new RouteTable();
  next.add(spec('2001:db8:a:0:8000::/66', { dev: UPLINK }));
  next.add(spec('::/0', { dev: UPLINK }));
  live.takeFrom(next);
  t.equal(live.size, 2);
  t.equal(next.size, 0);
  t.equal(routesAway(live, A('2001:db8:a:0:8000::5'), 0, UPLINK), 'uplink');
  t.equal(next.lookup(A('2001:db8:a:0:8000::5'), 0), undefined);
  next.add(spec('::/0', { dev: DOCKER }));
  t.equal(routesAway(live, A('2001:db8:99::5'), 0, UPLINK), 'uplink', 'the emptied table is independent');
});

// ---------------------------------------------------------------------------------------------
// Against a linear reference.

interface RefRoute {
  table: number;
  prefix: Uint8Array;
  length: number;
  metric: number;
  type: number;
  paths: RoutePath[];
}
const RANK = [
  RouteType.LOCAL,
  RouteType.ANYCAST,
  RouteType.BLACKHOLE,
  RouteType.UNREACHABLE,
  RouteType.PROHIBIT,
  RouteType.MULTICAST,
  RouteType.BROADCAST,
  RouteType.UNSPEC,
  RouteType.THROW,
  99,
  RouteType.UNICAST,
];
const rank = (type: number): number => {
  const i = RANK.indexOf(type as (typeof RANK)[number]);
  return i < 0 ? 9 : i;
};
function maskedCopy(p: Uint8Array, len: number): Uint8Array {
  const o = new Uint8Array(16);
  for (let i = 0; i < 128; i++) if (i < len && (p[i >> 3]! >> (7 - (i & 7))) & 1) o[i >> 3]! |= 1 << (7 - (i & 7));
  return o;
}
function covers(r: RefRoute, a: Uint8Array): boolean {
  for (let i = 0; i < r.length; i++) if (((r.prefix[i >> 3]! ^ a[i >> 3]!) >> (7 - (i & 7))) & 1) return false;
  return true;
}
const sameKey = (r: RefRoute, s: RouteSpec, withType: boolean): boolean =>
  r.table === s.table &&
  r.length === s.length &&
  r.metric === s.metric &&
  (!withType || r.type === s.type) &&
  Buffer.compare(r.prefix, maskedCopy(s.prefix, s.length)) === 0;
const samePath = (a: RoutePath, b: RoutePath): boolean =>
  a.ifindex === b.ifindex &&
  (a.gateway === undefined ? b.gateway === undefined : b.gateway !== undefined && Buffer.compare(a.gateway, b.gateway) === 0);

class Reference {
  routes: RefRoute[] = [];
  add(s: RouteSpec, replace: boolean): void {
    if (replace) this.routes = this.routes.filter((r) => !sameKey(r, s, false));
    const r = this.routes.find((x) => sameKey(x, s, true));
    const target = r ?? {
      table: s.table,
      prefix: maskedCopy(s.prefix, s.length),
      length: s.length,
      metric: s.metric,
      type: s.type,
      paths: [],
    };
    for (const p of s.paths) if (!target.paths.some((q) => samePath(p, q))) target.paths.push(p);
    if (!r) this.routes.push(target);
  }
  remove(s: RouteSpec): boolean {
    const r = this.routes.find((x) => sameKey(x, s, true));
    if (!r) return false;
    if (s.paths.length > 0) {
      const keep = r.paths.filter((p) => !s.paths.some((q) => samePath(p, q)));
      if (keep.length === r.paths.length) return false;
      r.paths = keep;
      if (keep.length > 0) return true;
    }
    this.routes.splice(this.routes.indexOf(r), 1);
    return true;
  }
  lookup(a: Uint8Array): RefRoute | undefined {
    for (const table of [TABLE_LOCAL, TABLE_MAIN]) {
      const c = this.routes.filter((r) => r.table === table && covers(r, a));
      if (c.length === 0) continue;
      const max = Math.max(...c.map((r) => r.length));
      const best = c.filter((r) => r.length === max).sort((x, y) => x.metric - y.metric || rank(x.type) - rank(y.type))[0]!;
      if (best.type === RouteType.THROW) continue;
      return best;
    }
    return undefined;
  }
}
const refLine = (r: RefRoute | undefined): string => (r === undefined ? 'none' : formatRoute({ ...r, oifs: [], nhid: undefined } as Route));

t.test('random operations agree with a linear reference', async (t) => {
  const prng = new Prng(0x7ab1e);
  const bases = ['2001:db8::', '2001:db8:a::', '2001:db8:a:0:8000::', 'fe80::', '::'].map(A);
  const types = [
    RouteType.UNICAST,
    RouteType.UNICAST,
    RouteType.UNICAST,
    RouteType.UNICAST,
    RouteType.LOCAL,
    RouteType.BLACKHOLE,
    RouteType.UNREACHABLE,
    RouteType.PROHIBIT,
    RouteType.THROW,
  ];
  const randomAddr = (): Uint8Array => {
    const a = Uint8Array.from(prng.pick(bases));
    // Random bits after a random point, so addresses land inside and beside the prefixes.
    const from = prng.int(129);
    for (let i = from; i < 128; i++) if (prng.chance(0.5)) a[i >> 3]! ^= 1 << (7 - (i & 7));
    return a;
  };
  const randomSpec = (): RouteSpec => {
    const n = prng.int(3);
    const paths: RoutePath[] = [];
    for (let i = 0; i < n; i++)
      paths.push({ ifindex: 1 + prng.int(5), gateway: prng.chance(0.3) ? A(`fe80::${1 + prng.int(3)}`) : undefined });
    return {
      table: prng.pick([TABLE_MAIN, TABLE_MAIN, TABLE_LOCAL, 100]),
      prefix: randomAddr(),
      length: prng.pick([0, 8, 32, 48, 64, 65, 66, 67, 80, 112, 127, 128]),
      metric: prng.pick([0, 256, 1024, 2048]),
      type: prng.pick(types),
      paths,
    };
  };
  const tb = new RouteTable();
  const ref = new Reference();
  let checks = 0;
  let mismatches = 0;
  const verdicts = new Map<string, number>();
  for (let round = 0; round < 3000; round++) {
    const op = prng.int(10);
    if (op < 6) {
      const s = randomSpec();
      const replace = prng.chance(0.2);
      tb.add(s, replace);
      ref.add(s, replace);
    } else if (op < 9 && ref.routes.length > 0) {
      // Remove an existing route (all of it or some paths), or sometimes a random one.
      const r = prng.pick(ref.routes);
      const s: RouteSpec = prng.chance(0.8) ? { ...r, paths: prng.chance(0.5) ? [] : r.paths.slice(0, 1) } : randomSpec();
      t.equal(tb.remove(s), ref.remove(s), `round ${round}: remove result`) || mismatches++;
    } else {
      const s = randomSpec();
      t.equal(tb.remove(s), ref.remove(s), `round ${round}: remove of a random route`) || mismatches++;
    }
    t.equal(tb.size, ref.routes.length, `round ${round}: size`) || mismatches++;
    for (let q = 0; q < 8; q++) {
      const a = randomAddr();
      const got = tb.lookup(a, 0);
      const want = ref.lookup(a);
      checks++;
      if ((got === undefined ? 'none' : formatRoute(got)) !== refLine(want)) {
        mismatches++;
        t.fail(`round ${round}: lookup ${formatIPv6(a)}: got ${got ? formatRoute(got) : 'none'}, want ${refLine(want)}`);
      }
      const v = routesAway(tb, a, 0, UPLINK);
      verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
    }
    if (mismatches > 5) break;
  }
  t.equal(mismatches, 0, `${checks} lookups compared`);
  t.ok(ref.routes.length > 50, `${ref.routes.length} routes at the end`);
  for (const v of ['elsewhere', 'uplink', 'local', 'blackhole', 'unreachable', 'prohibit', 'none']) {
    t.ok((verdicts.get(v) ?? 0) > 0, `verdict ${v} seen (${verdicts.get(v) ?? 0})`);
  }
  t.same([...tb.routes()].length, tb.size, 'routes() lists every route');
});
