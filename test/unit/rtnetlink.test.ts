import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { applyRouteMessage } from '../../src/service/routes.js';
import {
  NLM_F_DUMP,
  NLM_F_MULTI,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  parseNetlink,
  routeDumpRequest,
  type RouteMessage,
  RTA_DST,
  RTA_MULTIPATH,
  RTA_OIF,
  RTA_PRIORITY,
  RTM_DELROUTE,
  RTM_GETROUTE,
  RTM_NEWROUTE,
  RTN_BLACKHOLE,
  RTN_LOCAL,
  RTN_UNICAST,
} from '../../src/io/rtnetlink.js';
import { parseAddress as parseIPv6, formatAddress as formatIPv6 } from '../../src/addr/index.js';
import { formatRoute, RouteTable } from '../../src/table/route-table.js';
import { Prng } from '../support/prng.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Fixture {
  kernel: string;
  ifindex: Record<string, number>;
  routesAtEnd: string[];
  steps: { label: string; command: string; datagrams: string[] }[];
}
const fx = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'rtnetlink-routes.json'), 'utf8')) as Fixture;
const LE = true; // the fixture was captured on x86-64
const step = (label: string): Uint8Array[] => {
  const s = fx.steps.find((x) => x.label === label);
  if (s === undefined) throw new Error(`fixture has no step ${label}`);
  return s.datagrams.map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
};
const routesOf = (dgs: Uint8Array[]): RouteMessage[] =>
  dgs.flatMap((d) => parseNetlink(d, 0, d.length, LE).messages.filter((m): m is RouteMessage => m.kind === 'route'));
const show = (m: RouteMessage): string =>
  `${m.type === RTM_NEWROUTE ? 'new' : 'del'} t${m.routeType} ${formatIPv6(m.dst)}/${m.dstLen} table ${m.table} metric ${m.metric} ` +
  m.nexthops.map((n) => `${n.ifindex}${n.gateway ? '@' + formatIPv6(n.gateway) : ''}`).join(',');

const ETH0 = fx.ifindex['eth0']!;
const DOCKER0 = fx.ifindex['docker0']!;

t.test('every captured datagram parses with nothing malformed or ignored', async (t) => {
  let n = 0;
  for (const s of fx.steps) {
    for (const h of s.datagrams) {
      const d = Buffer.from(h, 'hex');
      const r = parseNetlink(d, 0, d.length, LE);
      t.equal(r.malformed, 0, `${s.label}: malformed`);
      t.equal(r.ignored, 0, `${s.label}: ignored`);
      t.ok(r.messages.length > 0, `${s.label}: messages`);
      n += r.messages.length;
    }
  }
  t.ok(n > 40, `${n} messages in the fixture`);
});

t.test('the initial dump', async (t) => {
  const dgs = step('dump-initial');
  const all = dgs.flatMap((d) => parseNetlink(d, 0, d.length, LE).messages);
  const last = all[all.length - 1]!;
  t.equal(last.kind, 'done', 'ends with NLMSG_DONE');
  t.equal(last.seq, 1, 'DONE carries the request seq');
  const routes = routesOf(dgs);
  for (const m of routes) {
    t.equal(m.type, RTM_NEWROUTE);
    t.equal(m.seq, 1);
    t.ok((m.flags & NLM_F_MULTI) !== 0, 'dump messages are NLM_F_MULTI');
    t.equal(m.pid, last.pid, 'addressed to our port');
  }
  const lines = routes.map(show);
  t.ok(lines.includes(`new t1 2001:db8:a:0:8000::/66 table 254 metric 1024 ${DOCKER0}`), 'the docker0-like route');
  t.ok(lines.includes(`new t1 2001:db8:a::/64 table 254 metric 256 ${ETH0}`), "the uplink's on-link prefix");
  t.ok(lines.includes(`new t1 ::/0 table 254 metric 1024 ${ETH0}@2001:db8:a::1`), 'the default route via a gateway');
  t.ok(lines.includes(`new t2 2001:db8:a::2/128 table 255 metric 0 ${ETH0}`), 'the local address in table local');
  t.equal(routes.filter((m) => m.routeType === RTN_LOCAL).length, 6, '::1, the global address and four link-local ones');
});

t.test('notifications of the captured changes', async (t) => {
  const one = (label: string): RouteMessage => {
    const r = routesOf(step(label));
    t.equal(r.length, 1, `${label}: one message`);
    return r[0]!;
  };
  const bh = one('add-blackhole');
  t.equal(bh.routeType, RTN_BLACKHOLE);
  t.equal(bh.flags & NLM_F_MULTI, 0, 'a notification is not part of a dump');
  t.equal(show(bh), 'new t6 2001:db8:b::/48 table 254 metric 1024 1');
  const mp = one('add-multipath');
  t.equal(
    show(mp),
    `new t1 2001:db8:f::/48 table 254 metric 1024 ${ETH0}@2001:db8:a::1,${DOCKER0}@fe80::1`,
    'RTA_MULTIPATH: both nexthops',
  );
  t.equal(one('add-table-100').table, 100, 'rtm_table');
  t.equal(one('add-table-1000').table, 1000, 'RTA_TABLE for ids above 255');
  t.equal(one('add-metric-2048').metric, 2048, 'RTA_PRIORITY');
  const rep = one('replace-to-uplink');
  t.ok((rep.flags & NLM_F_REPLACE) !== 0, 'replace carries NLM_F_REPLACE');
  const del = one('del-one-nexthop');
  t.equal(show(del), `del t1 2001:db8:f::/48 table 254 metric 1024 ${DOCKER0}@fe80::1`, 'deleting one nexthop names only it');
  t.equal(one('del-specific').type, RTM_DELROUTE);
});

t.test('replaying the captured changes on the first dump gives the final dump', async (t) => {
  const live = new RouteTable();
  for (const m of routesOf(step('dump-initial'))) applyRouteMessage(live, m, true);
  for (const s of fx.steps) {
    if (s.label.startsWith('dump-')) continue;
    for (const m of routesOf(step(s.label))) t.ok(applyRouteMessage(live, m, false), `${s.label} applies`);
  }
  const fresh = new RouteTable();
  for (const m of routesOf(step('dump-final'))) applyRouteMessage(fresh, m, true);
  const list = (tb: RouteTable): string[] => [...tb.routes()].map(formatRoute);
  t.same(list(live), list(fresh));
  t.equal(live.size, fx.routesAtEnd.length - 6, 'one route per `ip route` line, the fe80::/64 and ff00::/8 device routes merged');
  const at = (a: string): string => {
    const r = live.lookup(parseIPv6(a), 0);
    return r === undefined ? 'none' : formatRoute(r);
  };
  t.equal(at('2001:db8:a:0:8000::5'), `2001:db8:a:0:8000::/66 dev ${ETH0} table 254 metric 1024`, 'replaced to the uplink');
  t.equal(at('2001:db8:f::1'), `2001:db8:f::/48 via 2001:db8:a::1 dev ${ETH0} table 254 metric 1024`, 'one nexthop left');
  t.equal(at('2001:db8:b::1'), `::/0 via 2001:db8:a::1 dev ${ETH0} table 254 metric 1024`, 'blackhole gone: default route');
  t.equal(at('2001:db8:e::1'), `::/0 via 2001:db8:a::1 dev ${ETH0} table 254 metric 1024`, 'throw in local: on to main');
});

t.test('the dump request', async (t) => {
  const b = routeDumpRequest(0x01020304, true);
  t.equal(Buffer.from(b).toString('hex'), '1c000000' + '1a00' + '0103' + '04030201' + '00000000' + '0a' + '00'.repeat(11));
  t.equal(b.length, 28);
  const dv = new DataView(b.buffer);
  t.equal(dv.getUint16(4, true), RTM_GETROUTE);
  t.equal(dv.getUint16(6, true), NLM_F_REQUEST | NLM_F_DUMP);
});

// ---------------------------------------------------------------------------------------------
// Hand-made messages.

/** A netlink message: header + body, little-endian. */
function msg(type: number, flags: number, body: Uint8Array, lenOverride?: number): Uint8Array {
  const b = new Uint8Array(16 + body.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, lenOverride ?? b.length, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, 7, true);
  dv.setUint32(12, 0, true);
  b.set(body, 16);
  return b;
}
function rtmsg(dstLen: number, type = RTN_UNICAST, table = 254): Uint8Array {
  return Uint8Array.from([10, dstLen, 0, 0, table, 3, 0, type, 0, 0, 0, 0]);
}
function attr(type: number, payload: Uint8Array, lenOverride?: number): Uint8Array {
  const len = 4 + payload.length;
  const b = new Uint8Array((len + 3) & ~3);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, lenOverride ?? len, true);
  dv.setUint16(2, type, true);
  b.set(payload, 4);
  return b;
}
const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};
const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));
const DST = parseIPv6('2001:db8:1::');
const good = (): Uint8Array =>
  msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_DST, DST), attr(RTA_OIF, u32(4)), attr(RTA_PRIORITY, u32(1024))));

t.test('a hand-made good message parses', async (t) => {
  const r = parseNetlink(good(), 0, undefined, LE);
  t.equal(r.malformed, 0);
  t.equal(show(r.messages[0] as RouteMessage), 'new t1 2001:db8:1::/48 table 254 metric 1024 4');
  const errAck = msg(NLMSG_ERROR, 0, cat(u32(-16 >>> 0), new Uint8Array(16)));
  const done = msg(NLMSG_DONE, NLM_F_MULTI, u32(0));
  const r2 = parseNetlink(cat(errAck, done, good()), 0, undefined, LE);
  t.same(
    r2.messages.map((m) => m.kind),
    ['error', 'done', 'route'],
  );
  t.equal((r2.messages[0] as { errno: number }).errno, 16, 'EBUSY as a positive errno');
});

t.test('malformed messages are skipped and counted, never thrown', async (t) => {
  const cases: [string, Uint8Array, number][] = [
    ['nlmsg_len below the header', msg(RTM_NEWROUTE, 0, rtmsg(0), 8), 0],
    ['nlmsg_len past the datagram', msg(RTM_NEWROUTE, 0, rtmsg(0), 400), 0],
    ['body shorter than rtmsg', msg(RTM_NEWROUTE, 0, new Uint8Array(8)), 0],
    ['attribute length 0', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_DST, DST, 0))), 0],
    ['attribute length 3', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_OIF, u32(4), 3))), 0],
    ['attribute past the message', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_OIF, u32(4), 40))), 0],
    ['RTA_DST of 4 bytes', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_DST, u32(1)))), 0],
    ['RTA_OIF of 2 bytes', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_OIF, new Uint8Array(2)))), 0],
    ['dst_len 129', msg(RTM_NEWROUTE, 0, cat(rtmsg(129), attr(RTA_DST, DST))), 0],
    ['rtnh_len 4', msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_MULTIPATH, Uint8Array.from([4, 0, 0, 0, 1, 0, 0, 0])))), 0],
    [
      'rtnh_len past RTA_MULTIPATH',
      msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_MULTIPATH, Uint8Array.from([16, 0, 0, 0, 1, 0, 0, 0])))),
      0,
    ],
    ['error message without its errno', msg(NLMSG_ERROR, 0, new Uint8Array(2)), 0],
    ['trailing bytes after a good message', cat(good(), new Uint8Array(8)), 1],
  ];
  for (const [name, bytes, goodOnes] of cases) {
    let r: ReturnType<typeof parseNetlink> | undefined;
    t.doesNotThrow(() => (r = parseNetlink(bytes, 0, undefined, LE)), name);
    t.equal(r!.malformed, 1, `${name}: counted`);
    t.equal(r!.messages.length, goodOnes, `${name}: nothing wrong returned`);
  }
  // A bad message between good ones: the good ones survive when the lengths still chain.
  const bad = msg(RTM_NEWROUTE, 0, cat(rtmsg(48), attr(RTA_DST, u32(1))));
  const r = parseNetlink(cat(good(), bad, good()), 0, undefined, LE);
  t.equal(r.messages.length, 2);
  t.equal(r.malformed, 1);
  // Out-of-range offsets and lengths are clamped.
  t.same(parseNetlink(good(), 1000, 50, LE).messages, []);
  t.same(parseNetlink(good(), -5, -1, LE).messages, []);
});

t.test('every truncation and random corruption of the captured datagrams: no throw, bounded output', async (t) => {
  const prng = new Prng(0x5eed);
  let truncations = 0;
  let flagged = 0;
  for (const s of fx.steps) {
    for (const h of s.datagrams) {
      const d = Uint8Array.from(Buffer.from(h, 'hex'));
      const whole = parseNetlink(d, 0, d.length, LE).messages.length;
      for (let len = 0; len < d.length; len++) {
        const r = parseNetlink(d, 0, len, LE);
        truncations++;
        if (r.messages.length > whole) t.fail(`${s.label}: ${len} bytes gave more messages than the whole`);
        // A cut inside a message must be noticed (a cut on a message boundary is a shorter datagram).
        if (r.malformed > 0) flagged++;
      }
      for (let i = 0; i < 200; i++) {
        const m = Uint8Array.from(d);
        const flips = 1 + prng.int(4);
        for (let k = 0; k < flips; k++) m[prng.int(m.length)] = prng.byte();
        try {
          parseNetlink(m, 0, m.length, LE);
        } catch (e) {
          t.fail(`${s.label}: corrupted datagram threw ${(e as Error).message}`);
        }
      }
    }
  }
  t.ok(truncations > 5000, `${truncations} truncations`);
  t.ok(flagged > truncations * 0.9, `${flagged} of ${truncations} truncations flagged as malformed`);
});
