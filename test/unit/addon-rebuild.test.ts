/**
 * Rebuilding the addon never writes into the file a running daemon has mapped: a process with
 * build/Release/ndp_native.node loaded keeps calling into it across `node scripts/build-addon.mjs`
 * (which renames a new file into place). The control shows the harness sees in-place damage: after
 * the mapped file is truncated where it is, the next call into the addon dies with SIGBUS.
 * Everything happens in a temporary copy of the package (binding.gyp, native/, the script).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const root = new URL('../..', import.meta.url).pathname;
const BUILT = join(root, 'build', 'Release', 'ndp_native.node');
if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run 'npm run build'`);

const pkg = mkdtempSync(join(tmpdir(), 'ndp-addon-'));
t.teardown(() => rmSync(pkg, { recursive: true, force: true }));
for (const f of ['package.json', 'binding.gyp', 'native', 'scripts/build-addon.mjs'])
  cpSync(join(root, f), join(pkg, f), { recursive: true });
symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
const ADDON = join(pkg, 'build', 'Release', 'ndp_native.node');

/** Copy the checkout's built addon into the temp package (a fresh inode). */
function install(): void {
  mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
  rmSync(ADDON, { force: true });
  cpSync(BUILT, ADDON);
}

/** A process that loads the addon and calls ifNameToIndex('lo') for every line on stdin. */
function holder(): { child: ChildProcess; call: () => Promise<string> } {
  const code = `const m = require(${JSON.stringify(ADDON)});
    process.stdout.write('loaded\\n');
    require('readline').createInterface({ input: process.stdin }).on('line', () => process.stdout.write('lo=' + m.ifNameToIndex('lo') + '\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const waiters: ((s: string) => void)[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  const next = (): Promise<string> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), 10_000);
      waiters.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        resolve(`exit ${code ?? sig}`);
      });
    });
  const loaded = next();
  return {
    child,
    call: async () => {
      await loaded;
      const r = next();
      child.stdin!.write('x\n');
      return r;
    },
  };
}

t.test('control: truncating the mapped file in place kills the process with SIGBUS', async (t) => {
  install();
  const h = holder();
  t.teardown(() => void h.child.kill('SIGKILL'));
  t.match(await h.call(), /^lo=\d+$/, 'the addon answers');
  truncateSync(ADDON, 0);
  t.equal(await h.call(), 'exit SIGBUS', 'the next call into the addon dies with SIGBUS');
});

t.test('build-addon.mjs replaces the file by rename: the running process keeps working', async (t) => {
  install();
  const before = statSync(ADDON).ino;
  const h = holder();
  t.teardown(() => void h.child.kill('SIGKILL'));
  t.match(await h.call(), /^lo=\d+$/, 'the addon answers before the rebuild');
  const env = { ...process.env };
  if (!env['npm_config_nodedir'] && existsSync('/usr/include/node/node.h')) env['npm_config_nodedir'] = '/usr';
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'build-addon.mjs'), '--silent'], { env, encoding: 'utf8', timeout: 300_000 });
  t.comment(`build-addon.mjs: ${Math.round(performance.now() - t0)} ms`);
  t.equal(r.status, 0, `build-addon.mjs exits 0 ${r.stderr}`);
  t.not(statSync(ADDON).ino, before, 'a new file (inode) at build/Release/ndp_native.node');
  t.match(await h.call(), /^lo=\d+$/, 'the running process still calls into its (old) addon');
  t.same(
    spawnSync('ls', ['-a', pkg], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((f) => f.startsWith('.addon-build-')),
    [],
    'no staging folder left behind',
  );
  const fresh = spawnSync(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(ADDON)}).ifNameToIndex('lo')))`], {
    encoding: 'utf8',
  });
  t.match(fresh.stdout, /^\d+$/, 'the new addon loads and works');
});
