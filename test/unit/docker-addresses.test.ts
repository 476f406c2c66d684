import { readFileSync } from 'node:fs';
import t from 'tap';
import { Scope } from '../../src/service/scope.js';
import { makeRule } from '../../src/table/target-table.js';
import {
  addedRules,
  ENABLE_LABEL,
  fromInspect,
  fromListEntry,
  labelAllows,
  networkKey,
  networkSelected,
  ON_LINK_DRIVERS,
  removedRules,
  sameRules,
  selectRules,
  type ContainerInfo,
} from '../../src/docker/addresses.js';
import { parseCidr, parseAddress } from '../../src/addr/index.js';
import { Action } from '../../src/table/rule.js';

// Captured from dockerd 20.10.24 in the lab: see fixtures/docker/README.md.
const dir = new URL('../../fixtures/docker/', import.meta.url);
const load = (name: string): unknown => JSON.parse(readFileSync(new URL(name, dir), 'utf8'));
const list = load('containers-list.json') as unknown[];
const inspect = (name: string): unknown => load(`inspect-${name}.json`);

const byName = (infos: (ContainerInfo | undefined)[]): Map<string, ContainerInfo> =>
  new Map(infos.filter((c): c is ContainerInfo => c !== undefined).map((c) => [c.name, c]));

const inOnLink = (addr: Uint8Array): string | undefined => {
  const p = parseCidr('2003:ab11::/64');
  for (let i = 0; i < 8; i++) if (addr[i] !== p.prefix[i]) return 'out-of-scope';
  return undefined;
};

t.test('list entries: names, state, labels, every address of every network', async (t) => {
  const m = byName(list.map(fromListEntry));
  t.same([...m.keys()].sort(), ['created', 'exited', 'hostnet', 'multi', 'nonet', 'optin', 'optout', 'paused', 'v4', 'web1']);
  t.same(m.get('web1')?.addresses, [
    {
      network: 'bridge',
      networkId: 'e96afba144ca0a1c423f64cbd8a6e72b6af96083d5743fb30274a2dfc104254e',
      address: '2003:ab11::8000:242:ac11:2',
    },
  ]);
  t.same(
    m.get('multi')?.addresses.map((a) => `${a.network} ${a.address}`),
    ['bridge 2003:ab11::8000:242:ac11:5', 'v6net 2003:ab11::4000:0:0:10'],
    'two networks; the --ip6 address (also in IPAMConfig) appears once',
  );
  t.equal(m.get('web1')?.running, true);
  t.equal(m.get('paused')?.running, true, 'paused keeps its network: still answered');
  t.equal(m.get('created')?.running, false);
  t.equal(m.get('exited')?.running, false);
  t.same(m.get('created')?.addresses, [], 'not started: no address yet');
  t.same(m.get('v4')?.addresses, [], 'IPv4-only network');
  t.same(m.get('nonet')?.addresses, []);
  t.same(m.get('hostnet')?.addresses, []);
  t.equal(m.get('optout')?.labels[ENABLE_LABEL], 'false');
  t.equal(m.get('multi')?.labels['app'], 'multi');
  t.equal(fromListEntry({ Names: ['/x'] }), undefined, 'no Id');
  t.equal(fromListEntry(null), undefined);
  t.equal(fromListEntry([]), undefined);
});

t.test('inspect answers agree with the list', async (t) => {
  const fromList = byName(list.map(fromListEntry));
  for (const name of ['web1', 'multi', 'optout', 'optin', 'v4', 'nonet', 'hostnet', 'paused', 'created', 'exited']) {
    const i = fromInspect(inspect(name));
    const l = fromList.get(name);
    t.ok(i, `${name}: parsed`);
    t.equal(i?.id, l?.id, `${name}: id`);
    t.equal(i?.name, name, `${name}: name without '/'`);
    t.equal(i?.running, l?.running, `${name}: running`);
    t.same(i?.labels, l?.labels, `${name}: labels`);
    t.same(
      i?.addresses.map((a) => `${a.network} ${a.networkId} ${a.address}`),
      l?.addresses.map((a) => `${a.network} ${a.networkId} ${a.address}`),
      `${name}: addresses`,
    );
  }
});

t.test('inspect: legacy top-level and secondary addresses', async (t) => {
  const base = inspect('web1') as Record<string, Record<string, unknown>>;
  const ns = { ...base['NetworkSettings'], SecondaryIPv6Addresses: [{ Addr: '2003:ab11::8000:0:0:99', PrefixLen: 66 }, { Addr: '' }, 7] };
  const c = fromInspect({ ...base, NetworkSettings: ns });
  t.same(
    c?.addresses.map((a) => `${a.network} ${a.address}`),
    ['bridge 2003:ab11::8000:242:ac11:2', 'bridge 2003:ab11::8000:0:0:99'],
  );
  const restarting = fromInspect({ ...base, State: { ...base['State'], Restarting: true } });
  t.equal(restarting?.running, false, 'restarting: its network is being torn down');
  const noNetworks = fromInspect({
    ...base,
    NetworkSettings: { GlobalIPv6Address: '2003:ab11::8000:0:0:7', Networks: {} },
    HostConfig: { NetworkMode: 'default' },
  });
  t.same(noNetworks?.addresses, [{ network: 'bridge', networkId: '', address: '2003:ab11::8000:0:0:7' }], "'default' mode is the bridge");
  t.same(fromInspect({ Id: 'abc', NetworkSettings: 'garbage', Config: { Labels: null } })?.addresses, [], 'garbage shapes are tolerated');
});

t.test('labels: opt-out by default, opt-in on request', async (t) => {
  t.equal(labelAllows({}, false), true);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'false' }, false), false);
  t.equal(labelAllows({ [ENABLE_LABEL]: ' FALSE ' }, false), false);
  t.equal(labelAllows({ [ENABLE_LABEL]: '0' }, false), false);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'true' }, false), true);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'bogus' }, false), true, 'only a clear no opts out');
  t.equal(labelAllows({}, true), false);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'true' }, true), true);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'yes' }, true), true);
  t.equal(labelAllows({ [ENABLE_LABEL]: 'bogus' }, true), false, 'only a clear yes opts in');
});

t.test('network filter: names, full and short IDs', async (t) => {
  const id = 'e9a7a62139b90c28dfa5b3ba90956ed8fabbdd1cdf03c7da297af26676b0a1f1';
  t.equal(networkSelected(undefined, 'v6net', id), true);
  t.equal(networkSelected([], 'v6net', id), true);
  t.equal(networkSelected(['v6net'], 'v6net', id), true);
  t.equal(networkSelected(['bridge'], 'v6net', id), false);
  t.equal(networkSelected([id], 'v6net', id), true);
  t.equal(networkSelected([id.slice(0, 12)], 'v6net', id), true);
  t.equal(networkSelected([id.slice(0, 4)], 'v6net', id), false, 'too short to be an ID');
  t.equal(networkSelected([id.slice(0, 12)], 'v6net', ''), false);
});

t.test('selectRules on the captured list', async (t) => {
  const infos = list.map(fromListEntry).filter((c): c is ContainerInfo => c !== undefined);
  const sel = selectRules(infos, { scope: inOnLink });
  t.same(
    sel.rules.map((r) => [r.text, r.source.kind === 'docker' ? `${r.source.containerName}/${r.source.network}` : '']),
    [
      ['2003:ab11::4000:0:0:2/128', 'optin/v6net'],
      ['2003:ab11::4000:0:0:10/128', 'multi/v6net'],
      ['2003:ab11::8000:242:ac11:2/128', 'web1/bridge'],
      ['2003:ab11::8000:242:ac11:4/128', 'paused/bridge'],
      ['2003:ab11::8000:242:ac11:5/128', 'multi/bridge'],
    ],
    'sorted by address; optout, stopped and IPv4-only containers absent',
  );
  t.equal(sel.containers, 4);
  for (const r of sel.rules) {
    t.equal(r.length, 128);
    t.equal(r.action, Action.Answer);
    t.equal(r.prefix.length, 16);
    t.same(r.prefix, parseAddress(r.text.replace('/128', '')));
  }
  const multi = sel.rules.find((r) => r.text === '2003:ab11::4000:0:0:10/128');
  t.same(multi?.source, {
    kind: 'docker',
    containerId: '06faa5b18bec21e276a96477611a55bb66d482073d93ad7c4b2509d2d4184807',
    containerName: 'multi',
    network: 'v6net',
  });
  const reasons = new Map(sel.skipped.map((s) => [s.containerName, s.reason]));
  t.equal(reasons.get('optout'), 'label');
  t.equal(reasons.get('created'), 'not-running');
  t.equal(reasons.get('exited'), 'not-running');

  const optIn = selectRules(infos, { scope: inOnLink, labelOptIn: true });
  t.same(
    optIn.rules.map((r) => r.text),
    ['2003:ab11::4000:0:0:2/128'],
    'opt-in: only the container labelled true',
  );

  const onlyBridge = selectRules(infos, { networks: ['bridge'] });
  t.same(
    onlyBridge.rules.map((r) => r.text),
    ['2003:ab11::8000:242:ac11:2/128', '2003:ab11::8000:242:ac11:4/128', '2003:ab11::8000:242:ac11:5/128'],
  );
  t.ok(onlyBridge.skipped.some((s) => s.containerName === 'multi' && s.network === 'v6net' && s.reason === 'network-filter'));

  const narrow = selectRules(infos, { scope: (a) => (a[8] === 0x80 ? undefined : 'out-of-scope') });
  t.same(
    narrow.rules.map((r) => r.text),
    ['2003:ab11::8000:242:ac11:2/128', '2003:ab11::8000:242:ac11:4/128', '2003:ab11::8000:242:ac11:5/128'],
  );
  t.equal(narrow.skipped.filter((s) => s.reason === 'out-of-scope').length, 2);
});

t.test('selectRules: bad, non-unicast and duplicate addresses', async (t) => {
  const c = (name: string, addresses: string[], running = true): ContainerInfo => ({
    id: `${name}-id`,
    name,
    labels: {},
    running,
    addresses: addresses.map((address) => ({ network: 'n', networkId: '', address })),
  });
  // The scope builder's verdict, as the daemon and explain use it.
  const scope = new Scope();
  scope.setStatic([makeRule('2001:db8::/32', Action.Answer, { kind: 'static', flag: '--prefix' })]);
  const sel = selectRules(
    [
      c('b', ['2001:db8::1', 'fe80::1', 'ff02::1', '::', '::1', 'not-an-address', '192.0.2.1', '2001:db8::2%eth0']),
      c('a', ['2001:db8::1']),
    ],
    { scope: (a) => scope.dockerVerdict(a) },
  );
  t.same(
    sel.rules.map((r) => [r.text, r.source.kind === 'docker' ? r.source.containerName : '']),
    [['2001:db8::1/128', 'a']],
    'first by name wins a duplicate',
  );
  t.same(
    sel.skipped.map((s) => `${s.address} ${s.reason}`),
    [
      '2001:db8::1 duplicate',
      'fe80::1 not-unicast',
      'ff02::1 not-unicast',
      ':: not-unicast',
      '::1 not-unicast',
      'not-an-address invalid-address',
      '192.0.2.1 invalid-address',
      '2001:db8::2%eth0 invalid-address',
    ],
  );
  t.same(selectRules([]).rules, []);
});

t.test('selectRules: networks whose driver puts containers on the link are skipped', async (t) => {
  t.same([...ON_LINK_DRIVERS].sort(), ['ipvlan', 'macvlan']);
  const c: ContainerInfo = {
    id: 'c-id',
    name: 'c',
    labels: {},
    running: true,
    addresses: [
      { network: 'br', networkId: 'id-br', address: '2001:db8::1' },
      { network: 'mv', networkId: 'id-mv', address: '2001:db8::2' },
      { network: 'iv', networkId: '', address: '2001:db8::3' },
      { network: 'new', networkId: 'id-new', address: '2001:db8::4' },
      { network: 'gone', networkId: 'id-gone', address: '2001:db8::5' },
    ],
  };
  t.equal(networkKey(c.addresses[0]!), 'id-br', 'by ID');
  t.equal(networkKey(c.addresses[2]!), 'name:iv', 'by name when the API gave no ID');
  const drivers = new Map<string, string | null>([
    ['id-gone', null],
    ['id-br', 'bridge'],
    ['id-mv', 'macvlan'],
    ['name:iv', 'ipvlan'],
  ]);
  const sel = selectRules([c], { networkDriver: (a) => drivers.get(networkKey(a)) });
  t.same(
    sel.rules.map((r) => r.text),
    ['2001:db8::1/128', '2001:db8::4/128'],
    'bridge and unknown drivers answered',
  );
  t.same(
    sel.skipped.map((s) => `${s.network} ${s.address} ${s.reason}`),
    ['mv 2001:db8::2 on-link-driver', 'iv 2001:db8::3 on-link-driver', 'gone 2001:db8::5 network-gone'],
  );
  t.equal(sel.containers, 1);
  const filtered = selectRules([c], { networkDriver: (a) => drivers.get(networkKey(a)), networks: ['mv'] });
  t.same(filtered.rules, [], 'a selected macvlan network is still skipped');
  t.equal(filtered.containers, 0);
  t.same(selectRules([c]).rules.length, 5, 'without driver knowledge nothing is skipped for it');
});

t.test('sameRules, addedRules, removedRules', async (t) => {
  const c = (name: string, addresses: string[], network = 'n'): ContainerInfo => ({
    id: `${name}-id`,
    name,
    labels: {},
    running: true,
    addresses: addresses.map((address) => ({ network, networkId: '', address })),
  });
  const a = selectRules([c('x', ['2001:db8::1', '2001:db8::2'])]).rules;
  const b = selectRules([c('x', ['2001:db8::1', '2001:db8::2'])]).rules;
  const renamed = selectRules([{ ...c('x', ['2001:db8::1', '2001:db8::2']), name: 'y' }]).rules;
  const otherNet = selectRules([c('x', ['2001:db8::1', '2001:db8::2'], 'm')]).rules;
  const more = selectRules([c('x', ['2001:db8::1', '2001:db8::3'])]).rules;
  t.equal(sameRules(a, b), true);
  t.equal(sameRules(a, renamed), false, 'a rename is a change (explain shows the name)');
  t.equal(sameRules(a, otherNet), false);
  t.equal(sameRules(a, more), false);
  t.equal(sameRules(a, []), false);
  t.same(
    addedRules(a, more).map((r) => r.text),
    ['2001:db8::3/128'],
  );
  t.same(
    removedRules(a, more).map((r) => r.text),
    ['2001:db8::2/128'],
  );
  t.same(addedRules(a, b), []);
});
