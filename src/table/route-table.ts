/**
 * The host's IPv6 routes in memory, and the question route awareness asks of them: where would
 * the host itself send a packet for this address? Pure: no I/O (src/service/routes.ts keeps a
 * table in step with the kernel over rtnetlink), no allocation on lookup.
 *
 * Model (what the kernel's fib6 does with its default policy rules, `ip -6 rule`:
 * `0: lookup local`, `32766: lookup main`):
 * - Routes live per table, keyed by (table, prefix, length, metric, type). Each carries its
 *   paths (output interface and gateway; several for a multipath route, or for several device
 *   routes that share a prefix and metric, which the kernel keeps side by side).
 * - `lookup` consults the tables in order (local 255, then main 254, by default). In each, the
 *   longest prefix covering the address decides; among the routes of that prefix the lowest
 *   metric wins. A `throw` route sends the lookup on to the next table, as a policy rule does;
 *   any other route (unicast, local, blackhole, unreachable, prohibit) ends it. No match in a
 *   table also goes on to the next one.
 * - Ties the kernel would break at run time (two route types at one prefix and metric, which
 *   only `ip route append` can make) resolve to the type least likely to be answered for
 *   (see TYPE_RANK): a wrong guess then costs an answer, never a false one.
 * - Not modelled: policy rules other than the default ones, nexthop liveness (dead or
 *   link-down paths), source-specific routes (`from`). A route that uses a nexthop object
 *   (`nhid`) has no interface list here, and {@link routeVerdict} says 'unknown' for it.
 */
import { formatAddress as formatIPv6 } from '../addr/index.js';
import { RadixTrie } from './trie.js';

/** Route types, with the kernel's numbers (rtm_type, RTN_*). */
export const RouteType = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
} as const;

/** The kernel's main and local table ids. */
export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;
/** The tables a lookup consults by default, in order. */
export const DEFAULT_TABLES: readonly number[] = [TABLE_LOCAL, TABLE_MAIN];

/** One path: output interface index and, for a route via a router, the gateway (16 bytes). */
export interface RoutePath {
  readonly ifindex: number;
  readonly gateway?: Uint8Array | undefined;
}

/** A route as given to {@link RouteTable.add} and {@link RouteTable.remove}. */
export interface RouteSpec {
  table: number;
  /** 16 bytes; host bits beyond `length` are ignored. */
  prefix: Uint8Array;
  length: number;
  metric: number;
  /** {@link RouteType} value. */
  type: number;
  paths: readonly RoutePath[];
  /** Nexthop object id, when the route uses one (its interfaces are then unknown). */
  nhid?: number | undefined;
}

/** A route in the table. Immutable: a change makes a new object. */
export interface Route {
  readonly table: number;
  /** 16 bytes, host bits zero. */
  readonly prefix: Uint8Array;
  readonly length: number;
  readonly metric: number;
  readonly type: number;
  readonly paths: readonly RoutePath[];
  /** Output interfaces of all paths, ascending, no duplicates (0 = none given). */
  readonly oifs: readonly number[];
  readonly nhid: number | undefined;
}

/**
 * What the host would do with a packet for an address, for deciding whether to answer for it:
 * - 'elsewhere': a unicast route whose output interfaces do not include the uplink (a docker0,
 *   a br-*, a veth): the host forwards it away from the uplink, so answering on the uplink
 *   brings the traffic where the host can route it. The only verdict that allows an answer.
 * - 'uplink': a unicast route with the uplink among its output interfaces (the uplink's own
 *   on-link prefix, a default route, one path of a multipath route): the host would send it
 *   back out where the question came from. Never answer.
 * - 'local': a `local` or `anycast` route (an address of this host): the kernel answers for it
 *   itself. Never answer.
 * - 'unreachable' / 'prohibit' / 'blackhole': the host refuses or drops such packets. Never answer.
 * - 'none': no route in the consulted tables (or only `throw` routes). Never answer.
 * - 'unknown': a route whose output interfaces this table does not know (a nexthop object, a
 *   unicast route without an interface) or of another type (multicast, broadcast, ...). Never answer.
 */
export type RouteVerdict = 'elsewhere' | 'uplink' | 'local' | 'unreachable' | 'prohibit' | 'blackhole' | 'none' | 'unknown';

/**
 * Tie order among route types at one prefix and metric: the lowest rank wins. Types that forbid
 * an answer first, unicast last.
 */
const TYPE_RANK: readonly number[] = (() => {
  const order = [
    RouteType.LOCAL,
    RouteType.ANYCAST,
    RouteType.BLACKHOLE,
    RouteType.UNREACHABLE,
    RouteType.PROHIBIT,
    RouteType.MULTICAST,
    RouteType.BROADCAST,
    RouteType.UNSPEC,
    RouteType.THROW,
  ];
  const rank = new Array<number>(256).fill(order.length); // unknown types: after the known non-unicast ones
  order.forEach((t, i) => (rank[t] = i));
  rank[RouteType.UNICAST] = order.length + 1;
  return rank;
})();

function rankOf(type: number): number {
  return TYPE_RANK[type & 0xff]!;
}

/** The routes of one prefix in one table, best first. */
interface Slot {
  routes: Route[];
}

function samePath(a: RoutePath, b: RoutePath): boolean {
  if (a.ifindex !== b.ifindex) return false;
  const ga = a.gateway;
  const gb = b.gateway;
  if (ga === undefined || gb === undefined) return ga === gb;
  for (let i = 0; i < 16; i++) if (ga[i] !== gb[i]) return false;
  return true;
}

function masked(prefix: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(16);
  const full = length >>> 3;
  out.set(prefix.subarray(0, full));
  if ((length & 7) !== 0) out[full] = prefix[full]! & (0xff << (8 - (length & 7)));
  return out;
}

function copyPath(p: RoutePath): RoutePath {
  return p.gateway === undefined ? { ifindex: p.ifindex } : { ifindex: p.ifindex, gateway: Uint8Array.from(p.gateway) };
}

function makeRoute(spec: RouteSpec, paths: RoutePath[], prefix?: Uint8Array): Route {
  const oifs = [...new Set(paths.map((p) => p.ifindex).filter((i) => i > 0))].sort((a, b) => a - b);
  return Object.freeze({
    table: spec.table,
    prefix: prefix ?? masked(spec.prefix, spec.length),
    length: spec.length,
    metric: spec.metric,
    type: spec.type,
    paths: Object.freeze(paths),
    oifs: Object.freeze(oifs),
    nhid: spec.nhid,
  });
}

function checkSpec(spec: RouteSpec): void {
  if (!(spec.prefix instanceof Uint8Array) || spec.prefix.length < 16) throw new TypeError('RouteTable: prefix must be 16 bytes');
  if (!Number.isInteger(spec.length) || spec.length < 0 || spec.length > 128) {
    throw new RangeError(`RouteTable: prefix length ${spec.length} is out of range 0..128`);
  }
  if (!Number.isInteger(spec.table) || spec.table < 0 || spec.table > 0xffffffff)
    throw new RangeError(`RouteTable: bad table ${spec.table}`);
  if (!Number.isInteger(spec.metric) || spec.metric < 0 || spec.metric > 0xffffffff)
    throw new RangeError(`RouteTable: bad metric ${spec.metric}`);
  if (!Number.isInteger(spec.type) || spec.type < 0 || spec.type > 255) throw new RangeError(`RouteTable: bad type ${spec.type}`);
}

/** Routes per table, with a kernel-like lookup. See the file header. */
export class RouteTable {
  private tables = new Map<number, RadixTrie<Slot>>();
  /** The tries `lookup` consults, in order (created up front so the array never changes). */
  private consulted: RadixTrie<Slot>[];
  private count = 0;

  /** @param lookupTables the tables `lookup` consults, in order. Default local (255), main (254). */
  constructor(readonly lookupTables: readonly number[] = DEFAULT_TABLES) {
    this.consulted = lookupTables.map((t) => this.trie(t));
  }

  /** Number of routes (all tables). */
  get size(): number {
    return this.count;
  }

  private trie(table: number): RadixTrie<Slot> {
    let t = this.tables.get(table);
    if (t === undefined) {
      t = new RadixTrie<Slot>();
      this.tables.set(table, t);
    }
    return t;
  }

  /**
   * Add a route. `replace`: it takes the place of every route with the same table, prefix and
   * metric (any type), as RTM_NEWROUTE with NLM_F_REPLACE does. Otherwise it is merged: a route
   * with the same key and type gains the paths it did not have yet (a multipath sibling, a
   * second device route), else it is added beside the others.
   * @returns the route now in the table for that key and type.
   * @throws RangeError/TypeError on a malformed spec.
   */
  add(spec: RouteSpec, replace = false): Route {
    checkSpec(spec);
    const trie = this.trie(spec.table);
    let slot = trie.get(spec.prefix, 0, spec.length);
    if (slot === undefined) {
      slot = { routes: [] };
      trie.insert(spec.prefix, 0, spec.length, slot);
    }
    const routes = slot.routes;
    if (replace) {
      for (let i = routes.length - 1; i >= 0; i--) {
        if (routes[i]!.metric === spec.metric) {
          routes.splice(i, 1);
          this.count--;
        }
      }
    }
    const i = routes.findIndex((r) => r.metric === spec.metric && r.type === spec.type);
    let route: Route;
    if (i >= 0) {
      const old = routes[i]!;
      const paths = [...old.paths];
      for (const p of spec.paths) if (!paths.some((q) => samePath(p, q))) paths.push(copyPath(p));
      route = makeRoute({ ...spec, nhid: spec.nhid ?? old.nhid }, paths, old.prefix);
      routes[i] = route;
    } else {
      const paths: RoutePath[] = [];
      for (const p of spec.paths) if (!paths.some((q) => samePath(p, q))) paths.push(copyPath(p));
      route = makeRoute(spec, paths);
      routes.push(route);
      this.count++;
    }
    routes.sort((a, b) => a.metric - b.metric || rankOf(a.type) - rankOf(b.type));
    return route;
  }

  /**
   * Remove a route, or some of its paths. With `paths` empty the route with that key and type
   * goes; otherwise those paths go, and the route with them when none is left (as the kernel
   * does when one nexthop of a multipath route is deleted).
   * @returns false when no such route (or none of those paths) was in the table.
   * @throws RangeError/TypeError on a malformed spec.
   */
  remove(spec: RouteSpec): boolean {
    checkSpec(spec);
    const trie = this.tables.get(spec.table);
    const slot = trie?.get(spec.prefix, 0, spec.length);
    if (trie === undefined || slot === undefined) return false;
    const routes = slot.routes;
    const i = routes.findIndex((r) => r.metric === spec.metric && r.type === spec.type);
    if (i < 0) return false;
    const old = routes[i]!;
    let keep: RoutePath[] = [];
    if (spec.paths.length > 0) {
      keep = old.paths.filter((p) => !spec.paths.some((q) => samePath(p, q)));
      if (keep.length === old.paths.length) return false;
    }
    if (keep.length > 0) {
      routes[i] = makeRoute({ ...spec, nhid: old.nhid }, keep, old.prefix);
    } else {
      routes.splice(i, 1);
      this.count--;
      if (routes.length === 0) trie.delete(spec.prefix, 0, spec.length);
    }
    return true;
  }

  /**
   * The route the kernel would use for the 16 address bytes at `addr[off]` (see the file
   * header), or undefined when the consulted tables have none. Allocation-free.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  lookup(addr: Uint8Array, off: number): Route | undefined {
    const tries = this.consulted;
    for (let i = 0; i < tries.length; i++) {
      const slot = tries[i]!.lookup(addr, off);
      if (slot === undefined) continue;
      const best = slot.routes[0]!;
      if (best.type === RouteType.THROW) continue;
      return best;
    }
    return undefined;
  }

  /** Every route of every table (tables ascending, then address order, then metric). Allocates. */
  *routes(): IterableIterator<Route> {
    for (const id of [...this.tables.keys()].sort((a, b) => a - b)) {
      for (const e of this.tables.get(id)!.entries()) yield* e.value.routes;
    }
  }

  /** Remove every route. */
  clear(): void {
    for (const t of this.tables.values()) t.clear();
    this.count = 0;
  }

  /**
   * Take every route of `other` in place of this table's own, leaving `other` empty. Holders of
   * this table see the new routes at once (one step, no moment without routes).
   */
  takeFrom(other: RouteTable): void {
    if (other === this) return;
    const mine = this.tables;
    this.tables = other.tables;
    this.count = other.count;
    other.tables = mine;
    other.clear();
    this.consulted = this.lookupTables.map((t) => this.trie(t));
    other.consulted = other.lookupTables.map((t) => other.trie(t));
  }
}

/**
 * The verdict of route awareness for a route `lookup` returned (see {@link RouteVerdict}).
 * Allocation-free.
 * @param uplinkIfindex the interface the question came in on (where answers go out).
 */
export function routeVerdict(route: Route | undefined, uplinkIfindex: number): RouteVerdict {
  if (route === undefined) return 'none';
  switch (route.type) {
    case RouteType.UNICAST: {
      const oifs = route.oifs;
      if (oifs.length === 0) return 'unknown';
      for (let i = 0; i < oifs.length; i++) if (oifs[i] === uplinkIfindex) return 'uplink';
      return 'elsewhere';
    }
    case RouteType.LOCAL:
    case RouteType.ANYCAST:
      return 'local';
    case RouteType.BLACKHOLE:
      return 'blackhole';
    case RouteType.UNREACHABLE:
      return 'unreachable';
    case RouteType.PROHIBIT:
      return 'prohibit';
    case RouteType.THROW:
      return 'none';
    default:
      return 'unknown';
  }
}

/**
 * Route awareness for one target: where the host's own routes send `addr[off..off+16)`,
 * seen from the uplink `uplinkIfindex`. Only 'elsewhere' allows an answer. Allocation-free.
 * @throws RangeError when fewer than 16 bytes are available at `off`.
 */
export function routesAway(table: RouteTable, addr: Uint8Array, off: number, uplinkIfindex: number): RouteVerdict {
  return routeVerdict(table.lookup(addr, off), uplinkIfindex);
}

const TYPE_NAMES: readonly string[] = [
  'unspec',
  'unicast',
  'local',
  'broadcast',
  'anycast',
  'multicast',
  'blackhole',
  'unreachable',
  'prohibit',
  'throw',
];

/**
 * One line for a route, close to `ip -6 route show table all`: `[type ]prefix/len[ via GW] dev
 * IFINDEX... table T metric M` (interfaces by index). For explain, logs and tests.
 */
export function formatRoute(r: Route): string {
  const type = r.type === RouteType.UNICAST ? '' : `${TYPE_NAMES[r.type] ?? `type-${r.type}`} `;
  const paths = r.paths.map((p) => `${p.gateway !== undefined ? `via ${formatIPv6(p.gateway)} ` : ''}dev ${p.ifindex}`).join(' nexthop ');
  const nh = r.nhid !== undefined ? ` nhid ${r.nhid}` : '';
  return `${type}${formatIPv6(r.prefix)}/${r.length}${paths ? ' ' + paths : ''}${nh} table ${r.table} metric ${r.metric}`;
}
