/**
 * The hardened HTTP server on 127.0.0.1 (a real listening socket) with a scripted surface:
 * every route, HEAD, bad methods, bad targets and addresses, a surface that throws, hangs or
 * rejects, and the size limits. After each bad request the server must still answer.
 */
import { pino } from 'pino';
import t from 'tap';

import { HttpError, parseListen, startHttpServer, type HttpServerHandle, type HttpSurface } from '../../src/service/http-server.js';
import { httpRequest, rawExchange } from '../support/http.js';

const log = pino({ level: 'silent' });
const HOST = '127.0.0.1';

/** A surface whose behaviour each test flips. */
function scripted() {
  const state = {
    healthy: true as boolean,
    ready: { ready: true, reasons: [] as string[] },
    metricsText: '# HELP x_total X\n# TYPE x_total counter\nx_total 3\n',
    throwIn: '' as '' | 'metrics' | 'explain' | 'healthy' | 'ready' | 'reject' | 'hang',
    explained: [] as string[],
  };
  const surface: HttpSurface = {
    metrics: () => {
      if (state.throwIn === 'metrics') throw new Error('boom in metrics');
      if (state.throwIn === 'reject') return Promise.reject(new Error('async boom'));
      if (state.throwIn === 'hang') return new Promise<string>(() => {});
      return state.metricsText;
    },
    explain: (a) => {
      if (state.throwIn === 'explain') throw new TypeError('boom in explain');
      if (!/^[0-9a-f:]+$/i.test(a) || !a.includes(':')) throw new HttpError(400, `invalid IPv6 address '${a}'`);
      state.explained.push(a);
      return { address: a, answered: true };
    },
    healthy: () => {
      if (state.throwIn === 'healthy') throw new Error('boom in healthy');
      return state.healthy;
    },
    ready: () => {
      if (state.throwIn === 'ready') throw new Error('boom in ready');
      return state.ready;
    },
  };
  return { state, surface };
}

async function start(
  t: { teardown: (typeof import('tap'))['default']['teardown']; equal: (typeof import('tap'))['default']['equal'] },
  limits = {},
) {
  const s = scripted();
  const srv: HttpServerHandle = await startHttpServer({ host: HOST, port: 0 }, s.surface, log, { handlerTimeoutMs: 300, ...limits });
  t.teardown(() => srv.close());
  const port = srv.address().port;
  const get = (path: string, method = 'GET', opts = {}) => httpRequest(HOST, port, method, path, opts);
  const stillServes = async (what: string) => {
    const r = await get('/healthz');
    t.equal(r.status, 200, `still serving after ${what}`);
  };
  return { ...s, srv, port, get, stillServes };
}

t.test('parseListen (also from the old src/metrics.ts path)', async (t) => {
  t.same(parseListen('[::1]:9464'), { host: '::1', port: 9464 });
  t.same(parseListen('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
  t.same(parseListen(':9464'), { host: '::1', port: 9464 });
  t.same(parseListen('9464'), { host: '::1', port: 9464 });
  t.same(parseListen('localhost:1'), { host: 'localhost', port: 1 });
  for (const bad of ['', '::1:9464', '[::1]', '[::1]:0', '[::1]:65536', 'x:y', '[::1]:-1', 'a:1:2']) {
    t.throws(() => parseListen(bad), /is not HOST:PORT/, `'${bad}' refused`);
  }
});

t.test('routes', async (t) => {
  const h = await start(t);
  const m = await h.get('/metrics');
  t.equal(m.status, 200);
  t.equal(m.body, h.state.metricsText);
  t.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.equal(m.headers['content-length'], String(Buffer.byteLength(h.state.metricsText)));

  const e = await h.get('/explain?address=2001:db8::1');
  t.equal(e.status, 200);
  t.same(JSON.parse(e.body), { address: '2001:db8::1', answered: true });
  t.match(e.headers['content-type'], /^application\/json/);
  t.equal((await h.get('/explain?address=2001%3adb8%3a%3a2')).status, 200, 'percent-encoded address');
  t.same(h.state.explained, ['2001:db8::1', '2001:db8::2']);

  t.equal((await h.get('/healthz')).body, 'ok\n');
  h.state.healthy = false;
  t.equal((await h.get('/healthz')).status, 503, 'unhealthy: 503');
  h.state.healthy = true;

  t.equal((await h.get('/readyz')).status, 200);
  h.state.ready = { ready: false, reasons: ['packet socket on eth0 is not open', 'first Docker sync not done'] };
  const r = await h.get('/readyz');
  t.equal(r.status, 503);
  t.equal(r.body, 'not ready: packet socket on eth0 is not open; first Docker sync not done\n', 'reasons listed');

  const nf = await h.get('/nope');
  t.equal(nf.status, 404);
  t.equal((await h.get('/metrics/')).status, 404, 'exact paths only');
  t.equal((await h.get('/metrics?x=1')).status, 200, 'a query on /metrics is ignored');
  t.equal((await h.get('http://anything/metrics')).status, 200, 'absolute-form target');
});

t.test('HEAD: headers of the GET, no body', async (t) => {
  const h = await start(t);
  const r = await h.get('/metrics', 'HEAD');
  t.equal(r.status, 200);
  t.equal(r.body, '');
  t.equal(r.headers['content-length'], String(Buffer.byteLength(h.state.metricsText)));
  t.equal((await h.get('/explain?address=zz', 'HEAD')).status, 400);
  t.equal((await h.get('/healthz', 'HEAD')).status, 200);
});

t.test('methods other than GET and HEAD: 405 with Allow', async (t) => {
  const h = await start(t);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND']) {
    const r = method === 'CONNECT' ? await rawExchange(HOST, h.port, `CONNECT x:1 HTTP/1.1\r\nhost: x\r\n\r\n`) : undefined;
    if (r) {
      t.match(r.text, /^HTTP\/1\.1 405 /, 'CONNECT: 405');
      t.ok(r.closedByServer, 'and closed');
      continue;
    }
    const res = await h.get('/metrics', method, method === 'POST' ? { body: 'x=1' } : {});
    t.equal(res.status, 405, `${method}: 405`);
    t.equal(res.headers['allow'], 'GET, HEAD');
    t.equal(res.headers['connection'], 'close');
  }
  await h.stillServes('bad methods');
});

t.test('bad targets and addresses: 4xx, never a crash', async (t) => {
  const h = await start(t);
  const cases: [string, number][] = [
    ['/explain?address=zz', 400],
    ['/explain', 400],
    ['/explain?address=', 400],
    ['/explain?address=2001:db8::1&address=2001:db8::2', 400],
    ['/explain?address=%zz%', 400],
    ['/explain?address=%00', 400],
    ['/%', 404],
    ['/..%2f..%2fetc/passwd', 404],
  ];
  for (const [path, status] of cases) {
    const r = await h.get(path);
    t.equal(r.status, status, `${path}: ${status}`);
    if (status === 400) t.type(JSON.parse(r.body).error, 'string', 'JSON error');
  }
  // The two requests that ended the old daemon, byte for byte on the wire.
  for (const [target, status] of [
    ['//x:99999', 404],
    ['/explain?address=zz', 400],
    ['*', 400],
    ['x', 400],
    ['//', 404],
    ['http://[::1:99999/metrics', 400],
  ] as const) {
    const r = await rawExchange(HOST, h.port, `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`);
    t.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), `GET ${target}: ${status}`);
  }
  await h.stillServes('bad targets');
});

t.test('limits: long URL 414, huge headers 431, a body on GET 413, a missing Host 400', async (t) => {
  const h = await start(t, { maxUrlLength: 512 });
  t.equal((await h.get('/explain?address=' + 'a'.repeat(600))).status, 414);
  const big = await rawExchange(HOST, h.port, `GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(10_000)}\r\n\r\n`);
  t.match(big.text, /^HTTP\/1\.1 431 /, 'headers over 8 KiB: 431');
  t.ok(big.closedByServer, 'and the connection is closed');
  t.equal((await h.get('/metrics', 'GET', { body: 'hello', headers: { 'content-length': '5' } })).status, 413);
  const noHost = await rawExchange(HOST, h.port, 'GET /metrics HTTP/1.1\r\n\r\n');
  t.match(noHost.text, /^HTTP\/1\.1 400 /, 'HTTP/1.1 without Host: 400');
  const junk = await rawExchange(HOST, h.port, '\x00\x01\x02 garbage\r\n\r\n');
  t.match(junk.text, /^HTTP\/1\.1 400 /, 'binary garbage: 400');
  t.ok(h.srv.stats().clientErrors >= 2, 'parser errors counted');
  await h.stillServes('limits');
});

t.test('a surface that throws, rejects or hangs: one 500/503, the server lives', async (t) => {
  const h = await start(t);
  for (const [where, path, status] of [
    ['metrics', '/metrics', 500],
    ['reject', '/metrics', 500],
    ['hang', '/metrics', 503],
    ['explain', '/explain?address=2001:db8::1', 500],
    ['healthy', '/healthz', 500],
    ['ready', '/readyz', 500],
  ] as const) {
    h.state.throwIn = where;
    const r = await h.get(path);
    t.equal(r.status, status, `${where}: ${status}`);
    t.same(JSON.parse(r.body), { error: status === 500 ? 'internal error' : 'handler timed out' }, 'no internals leaked');
    h.state.throwIn = '';
    t.equal((await h.get(path)).status, 200, `${path} fine again`);
  }
  t.equal(h.srv.stats().responses[500], 5, 'five 500s counted');
});

t.test('keep-alive: several requests on one socket, pipelined', async (t) => {
  const h = await start(t);
  const one = 'GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n';
  const r = await rawExchange(HOST, h.port, one + one + 'GET /explain?address=zz HTTP/1.1\r\nHost: a\r\n\r\n' + one, 2000);
  const statuses = [...r.text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  t.same(statuses, [200, 200, 400], 'two answers, then the 400 closes the connection');
});

t.test('listen errors reject; close is idempotent', async (t) => {
  const h = await start(t);
  await t.rejects(startHttpServer({ host: HOST, port: h.port }, h.surface, log), { code: 'EADDRINUSE' });
  await t.rejects(startHttpServer('nonsense', h.surface, log), /is not HOST:PORT/);
  await h.srv.close();
  await h.srv.close();
  await t.rejects(h.get('/healthz', 'GET', { timeoutMs: 1000 }), 'closed server refuses');
});
