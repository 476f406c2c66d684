import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IFA_F_PERMANENT,
  IFA_F_TENTATIVE,
  onLinkPrefixes,
  parseIfInet6,
  parseSysMac,
  parseSysNumber,
  pickLinkLocal,
  readInterfaceFacts,
  toSenderFacts,
} from '../../src/io/interface.js';
import { formatAddress, linkLocalFromMac } from '../../src/addr/index.js';

// Captured from a lab namespace (`cat /proc/net/if_inet6`), plus a tentative link-local on
// eth1, a DAD-failed one on eth2, a deprecated global, and two malformed lines.
const IF_INET6 = `fe80000000000000800bc2fffe3222fb 06 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
20010db8000000000000000000000001 06 40 00 80     eth0
2003ab11000000000000000000000005 06 40 00 a0     eth0
20010db8000000010000000000000009 06 80 00 80     eth0
fe800000000000000000000000000042 07 40 20 c0     eth1
fe800000000000000000000000000043 08 40 20 88     eth2
20010db800000002000000000000000a 06 30 00 80     eth0
this line is broken
20010db8zz0000000000000000000001 06 40 00 80     eth0
`;

t.test('parseIfInet6: columns, scopes, flags, interface filter', async (t) => {
  const all = parseIfInet6(IF_INET6);
  t.equal(all.length, 8, 'malformed lines skipped');
  const eth0 = parseIfInet6(IF_INET6, 'eth0');
  t.same(
    eth0.map((e) => [formatAddress(e.addr), e.prefixLength, e.scope, e.flags, e.ifindex]),
    [
      ['fe80::800b:c2ff:fe32:22fb', 64, 'link', 0x80, 6],
      ['2001:db8::1', 64, 'global', 0x80, 6],
      ['2003:ab11::5', 64, 'global', 0xa0, 6],
      ['2001:db8:0:1::9', 128, 'global', 0x80, 6],
      ['2001:db8:0:2::a', 48, 'global', 0x80, 6],
    ],
  );
  const lo = parseIfInet6(IF_INET6, 'lo');
  t.same(
    lo.map((e) => [formatAddress(e.addr), e.prefixLength, e.scope]),
    [['::1', 128, 'host']],
  );
  t.same(parseIfInet6(''), []);
  t.same(parseIfInet6(IF_INET6, 'nope'), []);
  t.same(parseIfInet6('20010db8000000000000000000000001 06 81 00 80 eth0'), [], 'prefix length > 128 rejected');
});

t.test('pickLinkLocal skips tentative and DAD-failed addresses', async (t) => {
  const e1 = parseIfInet6(IF_INET6, 'eth1');
  t.equal(e1[0]!.flags & IFA_F_TENTATIVE, IFA_F_TENTATIVE);
  t.equal(pickLinkLocal(e1), null, 'tentative: not usable yet');
  t.equal(pickLinkLocal(parseIfInet6(IF_INET6, 'eth2')), null, 'dadfailed');
  const ll = pickLinkLocal(parseIfInet6(IF_INET6, 'eth0'));
  t.equal(ll && formatAddress(ll), 'fe80::800b:c2ff:fe32:22fb');
  t.equal(pickLinkLocal(parseIfInet6(IF_INET6, 'lo')), null, '::1 is not link-local');
});

t.test('onLinkPrefixes: global, shorter than /128, masked, deduplicated', async (t) => {
  const addresses = parseIfInet6(IF_INET6 + '20010db8000000000000000000000099 06 40 00 80 eth0\n', 'eth0');
  t.same(
    onLinkPrefixes({ addresses }).map((p) => p.text),
    ['2001:db8::/64', '2003:ab11::/64', '2001:db8::/48'],
  );
  const odd = parseIfInet6('20010db8ffffffffffffffffffffffff 06 3d 00 80 eth0\n', 'eth0');
  const p = onLinkPrefixes({ addresses: odd })[0]!;
  t.equal(p.text, '2001:db8:ffff:fff8::/61', 'non-octet boundary masks the right bits');
  t.equal(p.prefixLength, 61);
  t.equal(formatAddress(p.addr), '2001:db8:ffff:fff8::');
});

t.test('sys file parsers', async (t) => {
  t.same([...parseSysMac('82:0b:c2:32:22:fb\n')], [0x82, 0x0b, 0xc2, 0x32, 0x22, 0xfb]);
  t.throws(() => parseSysMac('\n'), { code: 'EINVAL' });
  t.throws(() => parseSysMac('00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\n'), { code: 'EINVAL' });
  t.equal(parseSysNumber('1500\n', 'mtu'), 1500);
  t.equal(parseSysNumber('0x1003\n', 'flags'), 0x1003);
  t.throws(() => parseSysNumber('-1', 'mtu'), { code: 'EINVAL' });
  t.throws(() => parseSysNumber('', 'mtu'), { code: 'EINVAL' });
});

t.test('readInterfaceFacts on a fake /sys tree', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'iface-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const sys = join(root, 'class-net');
  const write = (ifname: string, files: Record<string, string>): void => {
    mkdirSync(join(sys, ifname), { recursive: true });
    for (const [k, v] of Object.entries(files)) writeFileSync(join(sys, ifname, k), v);
  };
  write('eth0', { ifindex: '6\n', address: '82:0b:c2:32:22:fb\n', mtu: '1500\n', flags: '0x1003\n', operstate: 'up\n' });
  write('eth1', { ifindex: '7\n', address: '02:00:00:00:00:07\n', mtu: '9000\n', flags: '0x1002\n', operstate: 'down\n' });
  write('tun0', { ifindex: '9\n', address: '\n', mtu: '1500\n', flags: '0x1091\n', operstate: 'unknown\n' });
  const inet6 = join(root, 'if_inet6');
  writeFileSync(inet6, IF_INET6);
  const paths = { sysClassNet: sys, procIfInet6: inet6 };

  const f = readInterfaceFacts('eth0', paths);
  t.equal(f.ifindex, 6);
  t.same([...f.mac], [0x82, 0x0b, 0xc2, 0x32, 0x22, 0xfb]);
  t.equal(f.mtu, 1500);
  t.equal(f.up, true);
  t.equal(f.addresses.length, 5);
  t.equal(f.linkLocal && formatAddress(f.linkLocal), 'fe80::800b:c2ff:fe32:22fb');
  t.equal(f.addresses.find((a) => a.scope === 'link')!.flags, IFA_F_PERMANENT);
  const h = toSenderFacts(f);
  t.equal(h.ifname, 'eth0');
  t.equal(h.linkLocal, f.linkLocal);

  const g = readInterfaceFacts('eth1', paths);
  t.equal(g.up, false, 'IFF_UP clear and operstate down');
  t.equal(g.linkLocal, null, 'only a tentative link-local');
  t.same([...toSenderFacts(g).linkLocal], [...linkLocalFromMac(g.mac)], 'the EUI-64 link-local stands in while DAD runs');

  t.throws(() => readInterfaceFacts('tun0', paths), { code: 'EINVAL', message: /not an Ethernet MAC/ });
  t.throws(() => readInterfaceFacts('eth9', paths), { code: 'ENODEV', message: /'eth9' does not exist/ });
  t.throws(() => readInterfaceFacts('../eth0', paths), { code: 'EINVAL' });
  t.throws(() => readInterfaceFacts('', paths), { code: 'EINVAL' });
  t.throws(() => readInterfaceFacts('a-very-long-interface-name', paths), { code: 'EINVAL' });

  // No IPv6 in the namespace: facts without addresses, not an error.
  const noV6 = readInterfaceFacts('eth0', { sysClassNet: sys, procIfInet6: join(root, 'absent') });
  t.same(noV6.addresses, []);
  t.equal(noV6.linkLocal, null);
});

t.test('readInterfaceFacts on the real lo of this namespace', async (t) => {
  const lo = readInterfaceFacts('lo');
  t.equal(lo.ifindex, 1);
  t.same([...lo.mac], [0, 0, 0, 0, 0, 0]);
  t.ok(lo.mtu > 0);
  t.throws(() => readInterfaceFacts('nonexistent0'), { code: 'ENODEV' });
});
