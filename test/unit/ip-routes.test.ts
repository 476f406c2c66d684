import t from 'tap';

import { parseAddress as parseIPv6 } from '../../src/addr/index.js';
import { routesFromIpJson, routeTableFromIpJson } from '../../src/table/ip-routes.js';
import { formatRoute, routesAway } from '../../src/table/route-table.js';

/** `ip -j -6 route show table all` of a small lab host (iproute2 6.1). */
const SAMPLE = JSON.stringify([
  { dst: '2001:db8:c::/48', dev: 'eth0', table: '100', metric: 1024, flags: [], pref: 'medium' },
  { dst: '2001:db8:a::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: '2001:db8:a:0:8000::/66', dev: 'docker0', metric: 1024, flags: [], pref: 'medium' },
  { type: 'blackhole', dst: '2001:db8:b::/48', dev: 'lo', metric: 1024, flags: [], pref: 'medium' },
  {
    dst: '2001:db8:f::/48',
    metric: 1024,
    flags: [],
    pref: 'medium',
    nexthops: [
      { gateway: '2001:db8:a::1', dev: 'eth0', weight: 1, flags: [] },
      { gateway: 'fe80::1', dev: 'docker0', weight: 1, flags: [] },
    ],
  },
  { dst: 'fe80::/64', dev: 'docker0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'default', gateway: '2001:db8:a::1', dev: 'eth0', metric: 1024, flags: [], pref: 'medium' },
  { type: 'local', dst: '::1', dev: 'lo', table: 'local', protocol: 'kernel', metric: 0, flags: [], pref: 'medium' },
  { type: 'local', dst: '2001:db8:a::2', dev: 'eth0', table: 'local', protocol: 'kernel', metric: 0, flags: [], pref: 'medium' },
  { type: 'multicast', dst: 'ff00::/8', dev: 'eth0', table: 'local', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
]);

t.test('ip -j output becomes a table', async (t) => {
  const { table, ifindex } = routeTableFromIpJson(SAMPLE);
  t.same([...ifindex.keys()], ['eth0', 'docker0', 'lo'], 'interfaces numbered in order of appearance');
  t.equal(table.size, 10, 'the two fe80::/64 device routes merge');
  const up = ifindex.get('eth0')!;
  const v = (a: string): string => routesAway(table, parseIPv6(a), 0, up);
  t.equal(v('2001:db8:a:0:8000::5'), 'elsewhere');
  t.equal(v('2001:db8:a::5'), 'uplink');
  t.equal(v('2001:db8:a::2'), 'local');
  t.equal(v('2001:db8:b::1'), 'blackhole');
  t.equal(v('2001:db8:f::1'), 'uplink', 'multipath with one path via the uplink');
  t.equal(v('2001:db8:c::1'), 'uplink', 'table 100 not consulted: the default route');
  t.equal(v('::1'), 'local');
  t.equal(formatRoute(table.lookup(parseIPv6('2001:db8:99::1'), 0)!), '::/0 via 2001:db8:a::1 dev 1 table 254 metric 1024');
  const given = new Map([['eth0', 7]]);
  const r = routesFromIpJson(SAMPLE, given);
  t.equal(r.ifindex.get('eth0'), 7, 'a given map is used');
  t.equal(r.ifindex.get('docker0'), 8, 'and extended');
});

t.test('bad input: clear errors', async (t) => {
  const cases: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['{}', /JSON array/],
    ['[1]', /route 1 is not an object/],
    ['[{"dev":"eth0"}]', /no 'dst'/],
    ['[{"dst":"10.0.0.0/8","dev":"eth0"}]', /not an IPv6 destination/],
    ['[{"dst":"2001:db8::/129","dev":"eth0"}]', /bad prefix length/],
    ['[{"dst":"2001:db8::/64","type":"nat","dev":"eth0"}]', /unknown route type 'nat'/],
    ['[{"dst":"2001:db8::/64","table":"docker","dev":"eth0"}]', /table 'docker'/],
    ['[{"dst":"2001:db8::/64","metric":-1,"dev":"eth0"}]', /bad metric/],
    ['[{"dst":"2001:db8::/64","dev":5}]', /interface name/],
    ['[{"dst":"2001:db8::/64","dev":"eth0","gateway":"x"}]', /bad gateway/],
  ];
  for (const [text, re] of cases) t.throws(() => routesFromIpJson(text), re, text);
});
