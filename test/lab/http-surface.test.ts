/**
 * The real daemon's HTTP surface under attack, in namespaces this test makes: `ndp-responder run
 * --metrics [::1]:9464` on host d (eth0, veth to peer p). The two requests that once ended the
 * daemon, then a seeded fuzz burst, all from inside d; afterwards the daemon must still run,
 * serve /metrics, /healthz, /readyz and /explain, and still answer an NS from p (ndisc6).
 * A second daemon with an unreachable Docker endpoint shows /readyz saying why it is not ready.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = `${ROOT}dist/src/cli.js`;
const CLIENT = `${ROOT}test/lab/support/http-client.ts`;
const PORT = 9464;
const SEED = Number(process.env.NDP_HTTP_FUZZ_SEED ?? 0x1ab);
const BURST = Number(process.env.NDP_HTTP_LAB_FUZZ ?? 400);
const D_MAC = '02:00:00:00:0d:01';

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

/** The HTTP client agent inside `ns` (one process for the whole test: tsx starts slowly). */
async function httpAgent(t: Tap, ns: Netns) {
  const agent = ns.spawnJsonLines(process.execPath, ['--import', 'tsx', CLIENT], { cwd: ROOT });
  t.teardown(() => void agent.end(2000));
  await agent.waitFor((r) => r['ev'] === 'ready', 20_000);
  return {
    get: (path: string) => agent.call({ op: 'get', host: '::1', port: PORT, path }),
    raw: (target: string) => agent.call({ op: 'raw', host: '::1', port: PORT, target }),
    fuzz: (seed: number, count: number) => agent.call({ op: 'fuzz', host: '::1', port: PORT, seed, count }, 60_000),
  };
}

/** ndisc6 from `ns`: the MAC it learned, or null when nobody answered. */
async function ndisc6(ns: Netns, addr: string): Promise<string | null> {
  const r = await ns.exec('ndisc6', ['-1', '-r', '2', '-w', '400', addr, 'eth0'], { timeoutMs: 10_000 });
  const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.stdout);
  return r.code === 0 && m ? m[1]!.toLowerCase() : null;
}

async function setup(t: Tap) {
  const lab = await Lab.create(t, 'nh');
  const d = await lab.netns('d');
  const p = await lab.netns('p');
  await lab.veth(d, 'eth0', p, 'eth0', { aMac: D_MAC });
  await d.addr('eth0', '2001:db8::1/64');
  await p.addr('eth0', '2001:db8::2/64');
  return { lab, d, p };
}

type Tap = { teardown(fn: () => void | Promise<void>): void };

/** Start the daemon in `ns`; resolves at its "ready" log line. */
async function startDaemon(t: Tap, ns: Netns, args: string[]) {
  const child = ns.spawn(process.execPath, [
    CLI,
    'run',
    '--interface',
    'eth0',
    '--no-route-check',
    '--metrics',
    `[::1]:${PORT}`,
    '--log-level',
    'info',
    ...args,
  ]);
  t.teardown(() => void child.kill('SIGKILL'));
  const out: string[] = [];
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => out.push(...s.split('\n').filter(Boolean)));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  await waitFor(() => exited !== null || out.some((l) => l.includes('"msg":"ready"')), { timeoutMs: 20_000, what: 'daemon ready' });
  if (exited !== null) throw new Error(`daemon exited ${exited}: ${stderr}`);
  return { child, out, alive: () => exited === null && child.exitCode === null && child.signalCode === null };
}

t.test('the killer requests and a fuzz burst do not stop the daemon; it keeps serving and answering', async (t) => {
  const { d, p } = await setup(t);
  const [daemon, http] = await Promise.all([startDaemon(t, d, ['--prefix', '2001:db8:0:0:8000::/66']), httpAgent(t, d)]);

  t.equal(await ndisc6(p, '2001:db8::8000:0:0:5'), D_MAC, 'before: ndisc6 gets our answer');
  const ready = await http.get('/readyz');
  t.match(ready, { status: 200, body: 'ready\n' }, '/readyz: ready (socket open, no Docker)');

  for (const target of ['/explain?address=zz', '//x:99999']) {
    const r = await http.raw(target);
    t.match(r.statusLine, /^HTTP\/1\.1 4\d\d /, `GET ${target}: ${r.statusLine}`);
    t.ok(daemon.alive(), `daemon alive after GET ${target}`);
  }

  const fuzz = await http.fuzz(SEED, BURST);
  t.comment(`fuzz burst (seed ${SEED}): ${JSON.stringify(fuzz)}`);
  t.equal(fuzz.requests, BURST, 'the whole burst ran');
  t.equal(fuzz.malformed, 0, 'every response an HTTP/1.1 status line');
  t.notOk((fuzz.statuses as Record<string, number>)['500'], 'no 500');
  t.ok(daemon.alive(), 'daemon alive after the burst');

  const metrics = await http.get('/metrics');
  t.equal(metrics.status, 200, '/metrics 200');
  t.match(metrics.body, /^ndp_link_up 1$/m, 'link up');
  t.match(metrics.body, /^# TYPE ndp_frames_total counter$/m, 'counters are counters');
  t.match(metrics.body, /^ndp_build_info\{version="[^"]+",node="v\d+/m, 'build info');
  t.match(metrics.body, /^process_resident_memory_bytes \d+/m, 'process metrics');
  t.match(metrics.body, /^ndp_answers_total\{kind="answer"\} [1-9]/m, 'the ndisc6 answer counted');
  t.match(await http.get('/healthz'), { status: 200, body: 'ok\n' }, '/healthz 200');
  const ex = await http.get('/explain?address=2001:db8::8000:0:0:5');
  t.equal(ex.status, 200);
  t.match(
    JSON.parse(String(ex.body)),
    { answered: true, verdict: 'answer', rule: { rule: '2001:db8:0:0:8000::/66' } },
    '/explain still right',
  );
  const bad = await http.get('/explain?address=zz');
  t.equal(bad.status, 400, '/explain?address=zz: 400');

  t.equal(await ndisc6(p, '2001:db8::8000:0:0:6'), D_MAC, 'after: ndisc6 still gets our answer');
  t.equal(await ndisc6(p, '2001:db8::4000:0:0:6'), null, 'and still nothing outside the rules');
  t.notOk(
    daemon.out.some((l) => /"level":(50|60)/.test(l)),
    'no error or fatal log line',
  );

  const exited = new Promise<number | null>((r) => daemon.child.once('exit', (c) => r(c)));
  daemon.child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: clean exit 0 (open HTTP connections do not hold it up)');
});

t.test('/readyz says why: Docker unreachable means the first sync is not done', async (t) => {
  const { d } = await setup(t);
  const [, http] = await Promise.all([
    startDaemon(t, d, ['--prefix', '2001:db8:0:0:8000::/66', '--docker', 'unix:///nonexistent/ndp-test-docker.sock']),
    httpAgent(t, d),
  ]);
  const r = await http.get('/readyz');
  t.equal(r.status, 503, '/readyz 503');
  t.match(r.body, /first Docker sync not done/);
  t.match(await http.get('/healthz'), { status: 200, body: 'ok\n' }, 'but alive: /healthz 200');
  const m = await http.get('/metrics');
  t.match(m.body, /^ndp_docker_synced 0$/m);
  t.match(m.body, /^ndp_docker_connected 0$/m);
});

t.test('link gone and back: /readyz follows it, every series stays and counters never go backwards', async (t) => {
  const { lab, d, p } = await setup(t);
  const [, http] = await Promise.all([startDaemon(t, d, ['--prefix', '2001:db8:0:0:8000::/66']), httpAgent(t, d)]);
  const sample = (body: unknown, name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(String(body));
    if (!m) throw new Error(`${name} missing from /metrics`);
    return Number(m[1]);
  };
  t.equal(await ndisc6(p, '2001:db8::8000:0:0:7'), D_MAC, 'answered');
  const before = (await http.get('/metrics')).body;
  const received = sample(before, 'ndp_backend_received_total');
  const answers = sample(before, 'ndp_answers_total\\{kind="answer"\\}');
  t.ok(received >= 1 && answers >= 1, `counted: received ${received}, answers ${answers}`);

  await d.ip(['link', 'del', 'eth0']);
  await waitFor(async () => (await http.get('/readyz')).status === 503, { timeoutMs: 5000, what: '/readyz 503 once the link is gone' });
  const r = await http.get('/readyz');
  t.match(r.body, /packet socket on eth0 is not open/, `/readyz says why: ${String(r.body).trim()}`);
  const down = (await http.get('/metrics')).body;
  t.equal(sample(down, 'ndp_link_up'), 0, 'ndp_link_up 0');
  t.equal(sample(down, 'ndp_backend_received_total'), received, 'back-end counter kept while the link is down');
  t.equal(sample(down, 'ndp_answers_total\\{kind="answer"\\}'), answers, 'answers kept');
  t.ok(sample(down, 'ndp_mld_reports_total') >= 0 && /^ndp_multicast_groups \d+$/m.test(String(down)), 'membership series present');
  t.equal((await http.get('/healthz')).status, 200, 'still alive (/healthz 200)');

  await lab.veth(d, 'eth0', p, 'eth0', { aMac: D_MAC });
  await d.addr('eth0', '2001:db8::1/64');
  await p.addr('eth0', '2001:db8::2/64');
  await waitFor(async () => (await http.get('/readyz')).status === 200, { timeoutMs: 8000, what: '/readyz 200 once the link is back' });
  t.equal(await ndisc6(p, '2001:db8::8000:0:0:8'), D_MAC, 'answered again on the new link');
  const after = (await http.get('/metrics')).body;
  t.equal(sample(after, 'ndp_link_up'), 1, 'ndp_link_up 1');
  t.ok(
    sample(after, 'ndp_backend_received_total') > received,
    `received continues from ${received} (now ${sample(after, 'ndp_backend_received_total')})`,
  );
  t.ok(sample(after, 'ndp_answers_total\\{kind="answer"\\}') > answers, 'answers continue');
});
