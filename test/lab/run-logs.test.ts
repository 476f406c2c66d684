/**
 * `run`'s log as an operator sees it, on a real interface in a namespace: piped, JSON lines with
 * an `address file loaded` summary (count, time) and a `ready` line saying what is served; on a
 * terminal (a pty from script(1)), readable lines by default.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Lab } from '../../src/lab/netns.js';
import { stopProcess, waitForLine } from '../../src/lab/process.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const lab = await Lab.create(t, 'lg');
const a = await lab.netns('a');
const b = await lab.netns('b');
await lab.veth(a, 'eth0', b, 'eth0');
await a.addr('eth0', '2001:db8:a::2/64');
const dir = mkdtempSync(join(tmpdir(), 'ndp-logs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const N = 20_000;
const file = join(dir, 'addresses');
const lines = ['# container addresses', '2001:db8:b::/64'];
for (let i = 1; i <= N; i++) lines.push(`2001:db8:a:0:8000::${i.toString(16)}`);
writeFileSync(file, lines.join('\n') + '\n');

t.test('piped: JSON, the address file summary, the ready line with what is served', async (t) => {
  const child = a.spawn(process.execPath, [CLI, 'run', '--interface', 'eth0', '--address-file', file, '--no-route-check']);
  t.teardown(() => stopProcess(child));
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  await waitForLine(child, /"msg":"ready"/, 30_000);
  const entries = log.map((l) => JSON.parse(l) as Record<string, unknown>);
  const loaded = entries.find((e) => e['msg'] === 'address file loaded');
  t.match(loaded, { file, addresses: N, prefixes: 1 }, 'count of addresses and prefixes');
  t.type(loaded?.['ms'], 'number', `load time ${String(loaded?.['ms'])} ms`);
  const ready = entries.find((e) => e['msg'] === 'ready');
  t.equal(ready?.['serves'], `prefix 2001:db8:b::/64; ${N} addresses`);
  t.ok(entries.indexOf(loaded!) < entries.indexOf(ready!), 'the summary comes before ready');
});

t.test('on a terminal: readable lines by default', async (t) => {
  // script(1) gives the daemon a pty as stdout; its output comes back through script's stdout.
  const cmd = `${process.execPath} ${CLI} run --interface eth0 --address-file ${file} --no-route-check`;
  const child = a.spawn('script', ['-qfec', cmd, '/dev/null']);
  t.teardown(() => stopProcess(child));
  const line = await waitForLine(child, /INFO.*ready/, 30_000);
  t.notMatch(line, /^\s*\{/, 'not JSON');
  t.match(line, /\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]/, 'a readable timestamp');
});
