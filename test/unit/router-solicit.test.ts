/**
 * When a new container address is confirmed (its probe found no other owner), the prober sends
 * one NS from that address to the default router's solicited-node group, besides the DAD probe;
 * and the default router is read from the route table (the gateway of ::/0 on the uplink).
 */
import t from 'tap';
import { Prober } from '../../src/service/probe.js';
import { Scope } from '../../src/service/scope.js';
import { makeRule } from '../../src/table/target-table.js';
import { Action } from '../../src/table/rule.js';
import { RouteTable, RouteType, TABLE_MAIN } from '../../src/table/route-table.js';
import { defaultRouter } from '../../src/table/default-router.js';
import { formatAddress, formatMac } from '../../src/addr/index.js';
import type { FrameSink } from '../../src/io/backend.js';
import { ip6, mac } from '../support/frames.js';
import { referenceDecodeNS } from '../support/reference-ns.js';

const HOST_MAC = mac('02:00:00:00:00:0a');
const ROUTER = ip6('fe80::1');

function recordingSink(): FrameSink & { frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  return {
    frames,
    send(buf, offsets, lengths, count) {
      for (let i = 0; i < count; i++) frames.push(buf.slice(offsets[i]!, offsets[i]! + lengths[i]!));
      return count;
    },
  } as FrameSink & { frames: Uint8Array[] };
}

const dockerRule = (text: string) =>
  makeRule(text, Action.Answer, { kind: 'docker', containerId: 'c1', containerName: 'web', network: 'bridge' });

/** Polls `done` every 5 ms until it holds or `ms` pass (timers run late on a loaded machine). */
async function until(done: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !done() && Date.now() < end;) await new Promise((r) => setTimeout(r, 5));
}

function srcOf(f: Uint8Array): string {
  return formatAddress(f.subarray(14 + 8, 14 + 24));
}
function dstOf(f: Uint8Array): string {
  return formatAddress(f.subarray(14 + 24, 14 + 40));
}

t.test('a confirmed address sends one NS to the router, from itself, with the host MAC as SLLAO', async (t) => {
  const sink = recordingSink();
  const confirmed: string[] = [];
  const p = new Prober({
    sink,
    scope: new Scope(),
    host: () => ({ ifname: 'u0', mac: HOST_MAC, linkLocal: ip6('fe80::a') }),
    confirmed: (rs) => confirmed.push(...rs.map((r) => r.text)),
    probeMs: 20,
    router: () => ROUTER,
  });
  t.teardown(() => p.close());
  p.added([dockerRule('2001:db8:0:0:8000::2'), dockerRule('2001:db8:0:0:8000::3')]);
  t.equal(sink.frames.length, 2, 'two DAD probes at once');
  for (const f of sink.frames) t.equal(srcOf(f), '::', 'probe from ::');
  await until(() => confirmed.length >= 2 && sink.frames.length >= 4, 5000);
  t.same(confirmed.sort(), ['2001:db8::8000:0:0:2/128', '2001:db8::8000:0:0:3/128']);
  const toRouter = sink.frames.slice(2);
  t.equal(toRouter.length, 2, 'one NS to the router per confirmed address');
  t.equal(p.routerSolicits, 2);
  t.same(toRouter.map(srcOf).sort(), ['2001:db8::8000:0:0:2', '2001:db8::8000:0:0:3']);
  for (const f of toRouter) {
    const ns = referenceDecodeNS(f);
    t.equal(ns.problem, null, 'a valid NS by the reference decoder');
    t.equal(formatAddress(f.subarray(ns.targetOffset, ns.targetOffset + 16)), 'fe80::1', 'target: the router');
    t.equal(dstOf(f), 'ff02::1:ff00:1', "to the router's solicited-node group");
    t.equal(formatMac(f.subarray(0, 6)), '33:33:ff:00:00:01');
    t.equal(formatMac(f.subarray(6, 12)), '02:00:00:00:00:0a');
    t.ok(ns.sllaoMacOffset > 0, 'has an SLLAO');
    t.equal(formatMac(f.subarray(ns.sllaoMacOffset, ns.sllaoMacOffset + 6)), '02:00:00:00:00:0a', 'SLLAO: the host MAC');
  }
});

t.test('no router known: no NS to a router', async (t) => {
  const sink = recordingSink();
  const scope = new Scope();
  const p = new Prober({
    sink,
    scope,
    host: () => ({ ifname: 'u0', mac: HOST_MAC, linkLocal: ip6('fe80::a') }),
    confirmed: () => {},
    probeMs: 20,
    router: () => undefined,
  });
  t.teardown(() => p.close());
  p.added([dockerRule('2001:db8:0:0:8000::2')]);
  await new Promise((r) => setTimeout(r, 80));
  t.equal(sink.frames.length, 1, 'only the DAD probe');
  t.equal(p.routerSolicits, 0);
});

t.test('defaultRouter: the lowest-metric ::/0 gateway through the uplink', async (t) => {
  const table = new RouteTable();
  const zero = new Uint8Array(16);
  t.equal(defaultRouter(table, 2), undefined, 'empty table');
  table.add({ table: TABLE_MAIN, prefix: ip6('2001:db8::'), length: 64, metric: 256, type: RouteType.UNICAST, paths: [{ ifindex: 2 }] });
  t.equal(defaultRouter(table, 2), undefined, 'no default route');
  table.add({
    table: TABLE_MAIN,
    prefix: zero,
    length: 0,
    metric: 1024,
    type: RouteType.UNICAST,
    paths: [{ ifindex: 3, gateway: ip6('fe80::3') }],
  });
  t.equal(defaultRouter(table, 2), undefined, 'default route through another interface');
  table.add({
    table: TABLE_MAIN,
    prefix: zero,
    length: 0,
    metric: 1024,
    type: RouteType.UNICAST,
    paths: [{ ifindex: 2, gateway: ip6('fe80::1') }],
  });
  t.equal(formatAddress(defaultRouter(table, 2)!), 'fe80::1');
  table.add({
    table: TABLE_MAIN,
    prefix: zero,
    length: 0,
    metric: 100,
    type: RouteType.UNICAST,
    paths: [{ ifindex: 2, gateway: ip6('2001:db8::fe') }],
  });
  t.equal(formatAddress(defaultRouter(table, 2)!), '2001:db8::fe', 'lower metric wins');
  table.add({ table: 100, prefix: zero, length: 0, metric: 1, type: RouteType.UNICAST, paths: [{ ifindex: 2, gateway: ip6('fe80::99') }] });
  t.equal(formatAddress(defaultRouter(table, 2)!), '2001:db8::fe', 'other tables are ignored');
});
