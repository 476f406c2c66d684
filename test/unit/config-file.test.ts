/** The config file, the environment and their precedence (src/cli/config-file.ts, run-plan.ts). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { envValues, parseConfigText } from '../../src/cli/config-file.js';
import { buildPlan, type PlanInputs } from '../../src/cli/run-plan.js';
import { UsageError } from '../../src/cli/flags.js';

const EXAMPLE = `uplinks:
  - interface: eth0
    prefix: [2001:db8:a:0:8000::/66]
  - interface: eth1
    prefix: [2001:db8:b:0:8000::/66]
    address: [2001:db8:b::99]
`;

const dir = mkdtempSync(join(tmpdir(), 'ndp-config-unit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}

function inputs(flags: Record<string, unknown>, env: Record<string, string> = {}, dflt = 'eth9'): PlanInputs {
  return {
    flags: flags as PlanInputs['flags'],
    env: envValues(env),
    dockerSocket: () => ({ present: false, where: '/nonexistent/docker.sock' }),
    defaultUplink: () => ({ ifname: dflt, reason: `no --interface given: ${dflt} carries the default IPv6 route` }),
  };
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return e.message;
  }
  return '(no error)';
}

t.test('the example of the issue, as written', async (t) => {
  const c = parseConfigText(EXAMPLE, 'ndp.yaml');
  t.same(
    c.uplinks?.map((u) => [u.line, u.values]),
    [
      [2, { interface: 'eth0', prefix: ['2001:db8:a:0:8000::/66'] }],
      [4, { interface: 'eth1', prefix: ['2001:db8:b:0:8000::/66'], address: ['2001:db8:b::99'] }],
    ],
  );
  const plan = buildPlan(inputs({ config: file(EXAMPLE) }));
  t.same(
    plan.uplinks.map((u) => [u.ifname, u.rules.map((r) => r.text)]),
    [
      ['eth0', ['2001:db8:a:0:8000::/66']],
      ['eth1', ['2001:db8:b:0:8000::/66', '2001:db8:b::99/128']],
    ],
  );
  t.equal(plan.docker, undefined, 'rules given, no docker: Docker stays off');
  t.equal(plan.control, '/run/ndp-responder/control.sock', 'default control socket');
});

t.test('a good file: defaults, per-uplink overrides, process-wide keys; JSON is YAML', async (t) => {
  const text = `# comment
log-level: debug
source-policy: link-local
max-groups: 100
metrics: "[::1]:9464"
docker: true
docker-network: [web]
uplinks:
  - interface: eth0
    address: 2001:db8::1
  - interface: eth1
    source-policy: target
    no-mld: true
    exclude: [2001:db8:1::/64]
    prefix: [2001:db8:1::/48]
`;
  const p = buildPlan(inputs({ config: file(text) }));
  t.equal(p.logLevel, 'debug');
  t.equal(p.metrics, '[::1]:9464');
  t.same(p.docker, { url: undefined, networks: ['web'], labelOptIn: false });
  t.same(
    p.uplinks.map((u) => [u.ifname, u.settings.sourcePolicy, u.maxGroups, u.mld]),
    [
      ['eth0', 'link-local', 100, true],
      ['eth1', 'target', 100, false],
    ],
  );
  const json = buildPlan(inputs({ config: file(JSON.stringify({ uplinks: [{ interface: 'eth3', prefix: ['2001:db8:3::/64'] }] })) }));
  t.same(
    json.uplinks.map((u) => u.ifname),
    ['eth3'],
  );
  const flat = buildPlan(inputs({ config: file('interface: eth4\naddress: [2001:db8::4]\n') }));
  t.same(
    flat.uplinks.map((u) => [u.ifname, u.rules.length]),
    [['eth4', 1]],
    'a flat file with interface: is one uplink',
  );
});

t.test('errors name file, line and key', async (t) => {
  const cases: [string, RegExp][] = [
    ['uplinks:\n  - interface: eth0\n    prefx: [2001:db8::/64]\n', /^F:3: prefx: unknown key \(did you mean 'prefix'\?\)/],
    ['uplinks:\n  - interface: eth0\n    prefix: [2001:db8::1/64]\n', /^F:3: prefix: '2001:db8::1\/64' has host bits set/],
    ['uplinks:\n  - interface: eth0\n    prefix:\n      - 2001:db8::/64\n      - fe80::/64\n', /^F:5: prefix: 'fe80::\/64'.*link-local/],
    ['uplinks:\n  - interface: eth0\n    address: [2001:db8::/64]\n', /^F:3: address: .*is a prefix/],
    ['uplinks:\n  - interface: eth0\n    docker: true\n', /^F:3: docker: is process-wide/],
    ['uplinks:\n  - prefix: [2001:db8::/64]\n', /^F:2: uplinks: this uplink has no "interface:"/],
    ['uplinks:\n  - interface: eth0\n  - interface: eth0\n', /^F:3: interface: 'eth0' is already listed at line 2/],
    ['uplinks: eth0\n', /^F:1: uplinks: must be a list/],
    ['uplinks: []\n', /^F:1: uplinks: is empty/],
    ['prefix: [2001:db8::/64]\nuplinks:\n  - interface: eth0\n', /^F:1: prefix: belongs in an uplink block/],
    ['backend: raw\n', /^F:1: backend: 'raw' is not one of afpacket, pcap/],
    ['router: yes please\n', /^F:1: router: expected true or false/],
    ['max-groups: -3\n', /^F:1: max-groups: /],
    ['log-level: loud\n', /^F:1: log-level: 'loud' is not one of/],
    ['a: [1\nb: 2\n', /^F:1: not valid YAML/],
    ['- 1\n- 2\n', /^F:1: the file must be a mapping/],
    ['metrics: nowhere\n', /^F:1: metrics: /],
    ['source-policy: x\nsource-policy: y\n', /^F:\d: not valid YAML: Map keys must be unique/],
  ];
  for (const [text, re] of cases)
    t.match(
      errorOf(() => parseConfigText(text, 'F')),
      re,
      JSON.stringify(text),
    );
  t.match(
    errorOf(() => buildPlan(inputs({ config: join(dir, 'missing.yaml') }))),
    /--config .*missing\.yaml: ENOENT/,
  );
});

t.test('environment variables and precedence: flags > environment > file', async (t) => {
  const cfg = file(
    'source-policy: link-local\nmax-groups: 10\nuplinks:\n  - interface: eth0\n    prefix: [2001:db8:a::/64]\n  - interface: eth1\n    address: [2001:db8:b::1]\n',
  );
  const p1 = buildPlan(inputs({ config: cfg }, { NDP_RESPONDER_MAX_GROUPS: '20' }));
  t.same(
    p1.uplinks.map((u) => u.maxGroups),
    [20, 20],
    'the environment beats the file',
  );
  t.same(
    p1.uplinks.map((u) => u.settings.sourcePolicy),
    ['link-local', 'link-local'],
    'the file where nothing else says',
  );
  const p2 = buildPlan(inputs({ config: cfg, 'max-groups': '30' }, { NDP_RESPONDER_MAX_GROUPS: '20' }));
  t.same(
    p2.uplinks.map((u) => u.maxGroups),
    [30, 30],
    'a flag beats the environment',
  );
  const p3 = buildPlan(inputs({}, { NDP_RESPONDER_CONFIG: cfg, NDP_RESPONDER_SOURCE_POLICY: 'target' }));
  t.same(
    p3.uplinks.map((u) => u.settings.sourcePolicy),
    ['target', 'target'],
    'NDP_RESPONDER_CONFIG names the file',
  );
  const p4 = buildPlan(inputs({ config: cfg, interface: 'eth7', prefix: ['2001:db8:7::/64'] }));
  t.same(
    p4.uplinks.map((u) => [u.ifname, u.rules.map((r) => r.text)]),
    [['eth7', ['2001:db8:7::/64']]],
    '--interface names the one uplink',
  );
  const p5 = buildPlan(
    inputs({}, { NDP_RESPONDER_INTERFACE: 'eth8', NDP_RESPONDER_PREFIX: '2001:db8:8::/64, 2001:db8:9::/64', NDP_RESPONDER_ROUTER: 'true' }),
  );
  t.same(
    p5.uplinks.map((u) => [u.ifname, u.rules.length, u.settings.router]),
    [['eth8', 2, true]],
    'the container case: environment only',
  );
  t.match(
    errorOf(() => buildPlan(inputs({ config: cfg, prefix: ['2001:db8:7::/64'] }))),
    /--prefix: the config file lists uplinks/,
  );
  t.match(
    errorOf(() => envValues({ NDP_RESPONDER_PREFX: 'x' })),
    /NDP_RESPONDER_PREFX: not a setting/,
  );
  t.match(
    errorOf(() => envValues({ NDP_RESPONDER_ROUTER: 'maybe' })),
    /NDP_RESPONDER_ROUTER: 'maybe' is not one of/,
  );
  t.match(
    errorOf(() => envValues({ NDP_RESPONDER_PREFIX: '2001:db8::1/64' })),
    /NDP_RESPONDER_PREFIX: .*host bits/,
  );
  t.same(
    envValues({ NDP_RESPONDER_DOCKER: '1', NDP_RESPONDER_NO_MLD: 'off', HOME: '/x' }),
    { docker: '' },
    'docker=1 is the default URL; a false boolean is left out',
  );
});

t.test('zero configuration', async (t) => {
  const p = buildPlan({ ...inputs({}), dockerSocket: () => ({ present: true, where: '/var/run/docker.sock' }) });
  t.same(
    p.uplinks.map((u) => u.ifname),
    ['eth9'],
    'the default route interface',
  );
  t.ok(p.docker !== undefined, 'Docker on: its socket exists');
  t.match(p.why.uplinks!, /default IPv6 route/);
  t.match(p.why.docker!, /docker\.sock exists/);
  t.match(
    errorOf(() => buildPlan(inputs({}))),
    /nothing to answer on eth9/,
    'no rules and no Docker: refused',
  );
  t.match(
    errorOf(() => buildPlan({ ...inputs({}), defaultUplink: () => ({ reason: 'there is no default IPv6 route' }) })),
    /^run: no --interface given and there is no default IPv6 route; name the uplink with --interface IF$/,
  );
  const off = buildPlan(inputs({ 'no-control': true, address: ['2001:db8::5'] }));
  t.equal(off.control, undefined, '--no-control');
});
