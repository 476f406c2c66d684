/** The control socket's protocol (src/service/control.ts): a real unix socket, no daemon behind it. */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { controlRequest, handleControlLine, startControlServer, type ControlHandlers } from '../../src/service/control.js';

const log = pino({ level: 'silent' });

const handlers = (calls: string[]): ControlHandlers => ({
  status: () => ({ uplinks: [{ interface: 'eth0' }] }),
  explain: (a) => {
    calls.push(a);
    if (a === 'boom') throw new Error('not an IPv6 address: boom');
    return { address: a, answered: true };
  },
  reload: async () => {
    calls.push('reload');
    return { added: [] };
  },
});

t.test('requests and answers', async (t) => {
  const calls: string[] = [];
  const h = handlers(calls);
  t.same(await handleControlLine('{"cmd":"status"}', h), { ok: true, result: { uplinks: [{ interface: 'eth0' }] } });
  t.same(await handleControlLine('{"cmd":"explain","address":"2001:db8::1"}', h), {
    ok: true,
    result: { address: '2001:db8::1', answered: true },
  });
  t.same(await handleControlLine('{"cmd":"explain","address":"boom"}', h), { ok: false, error: 'not an IPv6 address: boom' });
  t.same(await handleControlLine('{"cmd":"reload"}', h), { ok: true, result: { added: [] } });
  t.match(await handleControlLine('nonsense', h), { ok: false, error: /not JSON/ });
  t.match(await handleControlLine('[1]', h), { ok: false, error: /JSON object/ });
  t.match(await handleControlLine('{"cmd":"rm -rf"}', h), { ok: false, error: /unknown cmd/ });
  t.match(await handleControlLine('{"cmd":"explain","address":7}', h), { ok: false, error: /needs "address"/ });
});

t.test('a live socket: mode 0600, answers, survives garbage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ndp-control-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'control.sock');
  const calls: string[] = [];
  const server = await startControlServer(path, handlers(calls), log);
  t.teardown(() => server.close());
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket mode 0600');
  t.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o755, 'directory created 0755');
  t.same(await controlRequest(path, { cmd: 'status' }), { ok: true, result: { uplinks: [{ interface: 'eth0' }] } });

  // A few hundred garbage lines (deterministic pseudo-random bytes and JSON-ish shapes).
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const shapes = ['{', '}', '"cmd"', ':', '"explain"', '"address"', 'null', '[', ']', ',', '\\u0000', '1e999', '"status"', ' '];
  const garbage: string[] = [];
  for (let i = 0; i < 300; i++) {
    let s = '';
    const len = Math.floor(rnd() * 40);
    for (let j = 0; j < len; j++)
      s += rnd() < 0.5 ? shapes[Math.floor(rnd() * shapes.length)] : String.fromCharCode(Math.floor(rnd() * 256));
    garbage.push(s.replace(/\n/g, ' '));
  }
  const answers = await new Promise<string[]>((resolve, reject) => {
    const c = createConnection(path);
    let buf = '';
    const want = garbage.filter((g) => g.trim() !== '').length + 1;
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n').filter(Boolean);
      if (lines.length >= want) {
        c.end();
        resolve(lines);
      }
    });
    c.on('error', reject);
    c.write(garbage.join('\n') + '\n{"cmd":"status"}\n');
  });
  for (const a of answers) JSON.parse(a);
  t.ok(answers.length > 250, `one JSON answer per garbage line (${answers.length})`);
  t.same(
    JSON.parse(answers[answers.length - 1]!),
    { ok: true, result: { uplinks: [{ interface: 'eth0' }] } },
    'after the garbage, a good request is answered on the same connection',
  );

  // An over-long line closes that connection, not the server.
  await new Promise<void>((resolve) => {
    const c = createConnection(path);
    c.resume(); // read the error line, so the server's end arrives
    c.on('close', () => resolve());
    c.on('error', () => resolve());
    c.write('x'.repeat(100_000));
  });
  t.same(
    (await controlRequest(path, { cmd: 'explain', address: '2001:db8::9' })).result,
    { address: '2001:db8::9', answered: true },
    'still serving after an over-long line',
  );

  // A second server on the same path refuses (one daemon per socket).
  await t.rejects(startControlServer(path, handlers([]), log), /another daemon listens/);
  t.same(calls.includes('2001:db8::9'), true);
});

t.test('a stale socket file is replaced; no daemon: ENOENT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ndp-control-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'c.sock');
  await t.rejects(controlRequest(path, { cmd: 'status' }), { code: 'ENOENT' });
  const s1 = await startControlServer(path, handlers([]), log);
  await s1.close();
  const s2 = await startControlServer(path, handlers([]), log);
  t.same((await controlRequest(path, { cmd: 'status' })).ok, true, 'a new server after the old one stopped');
  await s2.close();
});
