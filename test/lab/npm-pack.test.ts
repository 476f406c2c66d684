/**
 * The npm package as a user gets it: `npm pack`, then `npm install ./ndp-responder-*.tgz` in an
 * empty project. Without the optional dependencies (no libpcap needed): --help, and the default
 * AF_PACKET back end from the shipped prebuilt addon, answering-ready on a veth pair in a network
 * namespace of its own (`unshare -n`); `--backend pcap` and `replay` say in one line what is
 * missing. With them (install scripts approved): a replay of a fixture, byte for byte as the
 * checkout's own build replays it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { run, runOk, stopProcess, waitForLine } from '../../src/lab/process.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ndp-pack-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const proj = join(dir, 'proj');
const BIN = join(proj, 'node_modules', '.bin', 'ndp-responder');
const NPM = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
// Native builds use the machine's Node headers (node-gyp would otherwise download them).
const NODEDIR = !process.env['npm_config_nodedir'] && existsSync('/usr/include/node/node.h') ? ['npm_config_nodedir=/usr'] : [];

interface PackResult {
  filename: string;
  files: { path: string }[];
}

let tarball = '';

t.test('npm pack: the tarball holds the program, not the tests', async (t) => {
  const t0 = performance.now();
  // --ignore-scripts: `prepare` would rebuild; the checkout is built already (scripts/test.sh).
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  const [res] = JSON.parse(out) as PackResult[];
  t.ok(res, 'npm pack reports one tarball');
  tarball = join(dir, res!.filename);
  const paths = res!.files.map((f) => f.path);
  t.comment(`${paths.length} files, packed in ${Math.round(performance.now() - t0)} ms`);
  for (const f of [
    'package.json',
    'LICENSE',
    'README.md',
    'dist/src/cli.js',
    'build/Release/ndp_native.node',
    'binding.gyp',
    'native/addon.cc',
    'scripts/build-addon.mjs',
    'deploy/ndp-responder.service',
  ]) {
    t.ok(paths.includes(f), `has ${f}`);
  }
  const stray = paths.filter(
    (p) => /^(test|fixtures|bench|src|dist\/(test|bench|scripts))\//.test(p) || /\.(map|ts)$/.test(p) || p.includes('obj.target'),
  );
  t.same(stray, [], 'no tests, fixtures, bench, TypeScript sources, source maps or build intermediates');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  t.equal(pkg['main'], undefined, 'no main pointing at a missing file');
  t.same(pkg['os'], ['linux']);
  t.same(Object.keys((pkg['optionalDependencies'] ?? {}) as object).sort(), ['pcap', 'raw-socket']);
  t.equal(pkg['gypfile'], false, 'no implicit node-gyp install step (the addon is prebuilt)');
});

t.test('installed without the optional dependencies', async (t) => {
  mkdirSync(proj);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'pack-check', version: '0.0.0', private: true }));
  const t0 = performance.now();
  await runOk('npm', ['--prefix', proj, 'install', ...NPM, '--omit=optional', tarball], { timeoutMs: 240_000 });
  t.comment(`npm install --omit=optional: ${Math.round(performance.now() - t0)} ms`);

  const help = await run(BIN, ['--help']);
  t.equal(help.code, 0, 'ndp-responder --help exits 0');
  t.match(help.stdout, /Usage: ndp-responder <command>/);

  // The default back end: a veth pair in a namespace of its own, nothing else on it.
  const script = `ip link add name pk0 type veth peer name pk1 && ip link set pk0 up && ip link set pk1 up && exec "$0" run --interface pk0 --prefix 2001:db8:0:1::/64`;
  const child = spawn('unshare', ['-n', 'sh', '-c', script, BIN], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => stopProcess(child));
  await waitForLine(child, /"msg":"ready".*"backend":"afpacket"|"backend":"afpacket".*"msg":"ready"/, 20_000);
  t.pass('run: ready on the AF_PACKET back end with the shipped addon');
  await stopProcess(child);
  t.equal(child.exitCode, 0, 'exits 0 on SIGTERM');

  const pcap = await run('unshare', ['-n', BIN, 'run', '--interface', 'lo', '--backend', 'pcap', '--prefix', '2001:db8:0:1::/64']);
  t.equal(pcap.code, 1, '--backend pcap without pcap: exit 1');
  t.match(pcap.stderr, /^ndp-responder: .*optional npm package 'pcap'.*\n$/, `one line naming what is missing: ${pcap.stderr.trim()}`);

  const replay = await run(BIN, [
    'replay',
    join(ROOT, 'fixtures/kernel-ns.pcap'),
    '-o',
    join(dir, 'x.pcap'),
    '--mac',
    '02:00:00:bb:00:02',
    '--prefix',
    '2003:ab11:0:0:8000::/66',
  ]);
  t.not(replay.code, 0, 'replay without pcap fails');
  t.match(replay.stderr, /^ndp-responder: .*optional npm package 'pcap'.*\n$/, `one line: ${replay.stderr.trim()}`);
});

t.test('with the optional dependencies: a replay of a fixture, byte for byte as the checkout', async (t) => {
  // npm 11 runs dependencies' install scripts only when the project approves them.
  writeFileSync(
    join(proj, 'package.json'),
    JSON.stringify({ name: 'pack-check', version: '0.0.0', private: true, allowScripts: { pcap: true, 'raw-socket': true } }),
  );
  const t0 = performance.now();
  await runOk('env', [...NODEDIR, 'npm', '--prefix', proj, 'install', ...NPM, tarball], { timeoutMs: 240_000 });
  t.comment(`npm install with pcap and raw-socket: ${Math.round(performance.now() - t0)} ms`);
  // The installed package and this checkout's build replay the same capture to the same bytes
  // (whether those bytes are right is test/unit/golden.test.ts's job).
  const args = (out: string): string[] => [
    'replay',
    join(ROOT, 'fixtures/kernel-ns.pcap'),
    '-o',
    out,
    '--mac',
    '02:00:00:bb:00:02',
    '--prefix',
    '2003:ab11:0:0:8000::/66',
  ];
  const installed = join(dir, 'installed.pcap');
  const r = await run(BIN, args(installed));
  t.equal(r.code, 0, `replay from the installed package exits 0 ${r.stderr.trim()}`);
  t.match(r.stdout, /answered: 1\b/, 'one answer');
  const checkout = join(dir, 'checkout.pcap');
  await runOk(process.execPath, [join(ROOT, 'dist/src/cli.js'), ...args(checkout)]);
  const bytes = readFileSync(installed);
  t.ok(bytes.length > 24, `a pcap with a frame (${bytes.length} bytes)`);
  t.same(bytes, readFileSync(checkout), "byte for byte what the checkout's own build writes");
});
