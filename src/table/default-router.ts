/** The default router of an interface, from the route table. */
import { RouteType, TABLE_MAIN, type RouteTable } from './route-table.js';

/**
 * The gateway of the main table's default route (::/0) through `ifindex`: the lowest-metric
 * such route's first gateway on that interface. Undefined when there is none (no default route,
 * one without a gateway, or one through another interface).
 */
export function defaultRouter(table: RouteTable, ifindex: number): Uint8Array | undefined {
  let best: { metric: number; gateway: Uint8Array } | undefined;
  for (const r of table.routes()) {
    if (r.table !== TABLE_MAIN || r.length !== 0 || r.type !== RouteType.UNICAST) continue;
    if (best !== undefined && best.metric <= r.metric) continue;
    const p = r.paths.find((q) => q.ifindex === ifindex && q.gateway !== undefined);
    if (p !== undefined) best = { metric: r.metric, gateway: p.gateway! };
  }
  return best?.gateway;
}
