/**
 * Routes to assume when there is no host to ask (`replay`, offline `explain`): the JSON that
 * `ip -j -6 route show table all` prints on the host in question, read into a {@link RouteTable}.
 *
 * Interfaces are named there, not numbered: each name gets an index of its own (1, 2, ... in
 * order of first appearance, unless the caller passes a map), and the caller looks the uplink's
 * name up in the same map to ask {@link routesAway}. Pure: text in, table out.
 */
import { parseAddress as parseIPv6 } from '../addr/index.js';
import { type RoutePath, type RouteSpec, RouteTable, RouteType, TABLE_LOCAL, TABLE_MAIN } from './route-table.js';

const TYPES: Record<string, number> = {
  unicast: RouteType.UNICAST,
  local: RouteType.LOCAL,
  broadcast: RouteType.BROADCAST,
  anycast: RouteType.ANYCAST,
  multicast: RouteType.MULTICAST,
  blackhole: RouteType.BLACKHOLE,
  unreachable: RouteType.UNREACHABLE,
  prohibit: RouteType.PROHIBIT,
  throw: RouteType.THROW,
};

const TABLES: Record<string, number> = { main: TABLE_MAIN, local: TABLE_LOCAL, default: 253 };

/** What {@link routesFromIpJson} read. */
export interface IpRoutes {
  routes: RouteSpec[];
  /** Interface name to the index used in `routes`. */
  ifindex: Map<string, number>;
}

/**
 * Read the output of `ip -j -6 route show table all`.
 * @param ifindex names to indexes; names not in it are added (max + 1). Default: a new map.
 * @throws Error naming the entry (by position) when the text is not that JSON: not an array,
 *   a route without `dst`, a bad address or prefix, an unknown type, a table given by a name
 *   other than main/local/default (print numbers: `ip -N -j -6 route show table all`).
 */
export function routesFromIpJson(text: string, ifindex: Map<string, number> = new Map()): IpRoutes {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`routes: not JSON (expected the output of 'ip -j -6 route show table all'): ${(e as Error).message}`, { cause: e });
  }
  if (!Array.isArray(doc)) throw new Error("routes: expected a JSON array (the output of 'ip -j -6 route show table all')");
  const indexOf = (name: unknown, where: string): number => {
    if (typeof name !== 'string' || name === '') throw new Error(`routes: ${where}: 'dev' must be an interface name`);
    let i = ifindex.get(name);
    if (i === undefined) {
      i = Math.max(0, ...ifindex.values()) + 1;
      ifindex.set(name, i);
    }
    return i;
  };
  const routes: RouteSpec[] = [];
  doc.forEach((r: unknown, n: number) => {
    const where = `route ${n + 1}`;
    if (typeof r !== 'object' || r === null) throw new Error(`routes: ${where} is not an object`);
    const o = r as Record<string, unknown>;
    const dst = o['dst'];
    if (typeof dst !== 'string') throw new Error(`routes: ${where} has no 'dst'`);
    let prefix: Uint8Array;
    let length = 128;
    const text = dst === 'default' ? '::/0' : dst;
    const slash = text.indexOf('/');
    try {
      prefix = parseIPv6(slash < 0 ? text : text.slice(0, slash));
    } catch {
      throw new Error(`routes: ${where}: '${dst}' is not an IPv6 destination`);
    }
    if (slash >= 0) {
      length = Number(text.slice(slash + 1));
      if (!/^\d{1,3}$/.test(text.slice(slash + 1)) || length > 128) throw new Error(`routes: ${where}: bad prefix length in '${dst}'`);
    }
    const typeName = o['type'] === undefined ? 'unicast' : o['type'];
    const type = typeof typeName === 'string' ? TYPES[typeName] : undefined;
    if (type === undefined) throw new Error(`routes: ${where}: unknown route type '${String(typeName)}'`);
    let table = TABLE_MAIN;
    const t = o['table'];
    if (t !== undefined) {
      const named = typeof t === 'string' ? TABLES[t] : undefined;
      const num = typeof t === 'number' ? t : typeof t === 'string' && /^\d+$/.test(t) ? Number(t) : undefined;
      const id = named ?? num;
      if (id === undefined || id > 0xffffffff) {
        throw new Error(
          `routes: ${where}: table '${String(t)}' is a name this reader does not know (write numbers: ip -N -j -6 route show table all)`,
        );
      }
      table = id;
    }
    const metric = o['metric'] === undefined ? 0 : o['metric'];
    if (typeof metric !== 'number' || !Number.isInteger(metric) || metric < 0) throw new Error(`routes: ${where}: bad metric`);
    const paths: RoutePath[] = [];
    const gw = (g: unknown): Uint8Array | undefined => {
      if (g === undefined) return undefined;
      try {
        return parseIPv6(String(g));
      } catch {
        throw new Error(`routes: ${where}: bad gateway '${String(g)}'`);
      }
    };
    if (Array.isArray(o['nexthops'])) {
      for (const h of o['nexthops'] as Record<string, unknown>[])
        paths.push({ ifindex: indexOf(h?.['dev'], where), gateway: gw(h?.['gateway']) });
    } else if (o['dev'] !== undefined) {
      paths.push({ ifindex: indexOf(o['dev'], where), gateway: gw(o['gateway']) });
    }
    const nhid = typeof o['nhid'] === 'number' ? o['nhid'] : undefined;
    routes.push({ table, prefix, length, metric, type, paths, nhid });
  });
  return { routes, ifindex };
}

/**
 * A {@link RouteTable} holding the routes of `ip -j -6 route show table all` output (routes with
 * the same table, prefix, metric and type merge, as they do in the monitor).
 * @throws Error as {@link routesFromIpJson}.
 */
export function routeTableFromIpJson(text: string, ifindex?: Map<string, number>): { table: RouteTable; ifindex: Map<string, number> } {
  const r = routesFromIpJson(text, ifindex);
  const table = new RouteTable();
  for (const s of r.routes) table.add(s);
  return { table, ifindex: r.ifindex };
}
