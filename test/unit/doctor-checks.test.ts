/** doctor's findings from facts: levels and the exact fix text (the lab test covers a real host). */
import t from 'tap';
import { parseCidr } from '../../src/addr/index.js';
import {
  dockerFindings,
  dockerRanges,
  forwardPolicyFinding,
  formatFinding,
  proxyFinding,
  routeFinding,
  type DockerNetworkInfo,
} from '../../src/cli/doctor-checks.js';

const range = (text: string, device?: string) => ({ ...parseCidr(text), origin: 'test', device });

t.test('Docker without IPv6: the daemon.json keys to set, with a suggested range', async (t) => {
  const nets: DockerNetworkInfo[] = [
    {
      Name: 'bridge',
      Id: 'a'.repeat(64),
      Driver: 'bridge',
      EnableIPv6: false,
      IPAM: { Config: [{ Subnet: '172.17.0.0/16' }] },
      Options: { 'com.docker.network.bridge.name': 'docker0' },
    },
    { Name: 'host', Driver: 'host' },
  ];
  const f = dockerFindings(nets, '2001:db8:a:0:8000::/65', undefined, 'ACCEPT');
  t.equal(f.length, 1);
  t.equal(f[0]!.level, 'warn');
  t.equal(f[0]!.fix, '/etc/docker/daemon.json: { "ipv6": true, "fixed-cidr-v6": "2001:db8:a:0:8000::/65" }, then systemctl restart docker');
  t.same(dockerRanges(nets, parseCidr), [], 'no IPv6 range');
});

t.test('Docker with IPv6 but not managing ip6tables, FORWARD dropping: the ip6tables key', async (t) => {
  const nets: DockerNetworkInfo[] = [
    {
      Name: 'bridge',
      Id: 'a'.repeat(64),
      Driver: 'bridge',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '172.17.0.0/16' }, { Subnet: '2001:db8:a:0:8000::/66' }] },
      Options: { 'com.docker.network.bridge.name': 'docker0' },
    },
    {
      Name: 'web',
      Id: 'b1234567890cdef',
      Driver: 'bridge',
      EnableIPv6: true,
      IPAM: { Config: [{ Subnet: '2001:db8:a:0:c000::/66' }] },
      Options: {},
    },
    { Name: 'mv', Driver: 'macvlan', EnableIPv6: true, IPAM: { Config: [{ Subnet: '2001:db8:b::/64' }] } },
  ];
  const f = dockerFindings(nets, undefined, false, 'DROP');
  t.same(
    f.map((x) => [x.check, x.level]),
    [
      ['docker ipv6', 'ok'],
      ['docker ip6tables', 'warn'],
    ],
  );
  t.match(f[1]!.fix, /"ip6tables": true \(Docker before 27 also needs "experimental": true\)/);
  t.equal(dockerFindings(nets, undefined, false, 'ACCEPT')[1]!.level, 'info', 'policy ACCEPT: only a note');
  t.equal(dockerFindings(nets, undefined, true, 'DROP')[1]!.level, 'ok');
  const ranges = dockerRanges(nets, parseCidr);
  t.same(
    ranges.map((r) => [r.origin, r.device, r.length]),
    [
      ['docker network bridge', 'docker0', 66],
      ['docker network web', 'br-b1234567890c', 66],
    ],
    'bridge networks only, with their bridge',
  );
});

t.test('FORWARD policy: ACCEPT ok; DROP needs rules both ways per range', async (t) => {
  const r = [range('2001:db8:a:0:8000::/66', 'docker0')];
  t.equal(forwardPolicyFinding('-P FORWARD ACCEPT\n', r, parseCidr).level, 'ok');
  const none = forwardPolicyFinding('-P FORWARD DROP\n', r, parseCidr);
  t.equal(none.level, 'warn');
  t.equal(none.fix, 'ip6tables -I FORWARD -d 2001:db8:a:0:8000::/66 -j ACCEPT && ip6tables -I FORWARD -s 2001:db8:a:0:8000::/66 -j ACCEPT');
  const half = forwardPolicyFinding('-P FORWARD DROP\n-A FORWARD -d 2001:db8:a::/64 -j ACCEPT\n', r, parseCidr);
  t.equal(half.fix, 'ip6tables -I FORWARD -s 2001:db8:a:0:8000::/66 -j ACCEPT', 'a covering -d rule counts; only -s is missing');
  const docker = forwardPolicyFinding(
    '-P FORWARD DROP\n-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n',
    r,
    parseCidr,
  );
  t.equal(docker.level, 'ok', "Docker's rules on its bridge count");
  t.equal(forwardPolicyFinding('garbage', r, parseCidr).level, 'info');
});

t.test('kernel proxy entries: the delete commands, the sysctl; inactive entries are a note', async (t) => {
  const on = proxyFinding('eth0', '0', '1', ['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4']);
  t.equal(on.level, 'warn');
  t.equal(
    on.fix,
    'ip -6 neigh del proxy 2001:db8::1 dev eth0 && ip -6 neigh del proxy 2001:db8::2 dev eth0 && ip -6 neigh del proxy 2001:db8::3 dev eth0 (and the same for the other 1: ip -6 neigh show proxy dev eth0) && sysctl -w net.ipv6.conf.all.proxy_ndp=0',
  );
  t.equal(proxyFinding('eth0', '0', '0', ['2001:db8::1']).level, 'info');
  t.equal(proxyFinding('eth0', '1', '0', []).level, 'ok');
});

t.test('routes: elsewhere ok, uplink or none fail with the route to add, on-link-wide prefixes a note', async (t) => {
  const onLink = [{ addr: parseCidr('2001:db8:a::/64').prefix, prefixLength: 64 }];
  const r = range('2001:db8:a:0:8000::/66', 'docker0');
  t.equal(routeFinding(r, 'elsewhere', 'docker0', 'eth0', onLink).level, 'ok');
  const up = routeFinding(r, 'uplink', 'eth0', 'eth0', onLink);
  t.equal(up.level, 'fail');
  t.equal(up.fix, 'ip -6 route add 2001:db8:a:0:8000::/66 dev docker0');
  t.equal(routeFinding(r, 'none', undefined, 'eth0', onLink).level, 'fail');
  t.equal(routeFinding(range('2001:db8:a::/64'), 'uplink', 'eth0', 'eth0', onLink).level, 'info');
  t.equal(routeFinding(range('2001:db8::/32'), 'uplink', 'eth0', 'eth0', onLink).level, 'info', 'wider than the on-link prefix');
  t.equal(formatFinding(up), `FAIL route to 2001:db8:a:0:8000::/66: ${up.detail}; fix: ${up.fix}`);
});
