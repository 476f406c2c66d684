/**
 * Seeded fuzz of the HTTP surface over raw TCP (test/support/http-fuzz.ts): thousands of
 * malformed, oversized, pipelined and hostile requests, then a few hundred connections held
 * half-open. The server runs the real metric catalogue and the real explain on a real table.
 * Afterwards it must still serve /metrics, and the process must be alive.
 *
 *   NDP_HTTP_FUZZ_ITERATIONS (default 2500) and NDP_HTTP_FUZZ_SEED pick the run.
 */
import { pino } from 'pino';
import t from 'tap';
import { explainAddress } from '../../src/service/explain.js';
import { DEFAULT_ANSWER_SETTINGS } from '../../src/engine/types.js';
import { parseMac } from '../../src/addr/index.js';
import { Counters } from '../../src/engine/counters.js';
import { HttpError, startHttpServer } from '../../src/service/http-server.js';
import { DaemonMetrics } from '../../src/service/metrics.js';
import { parseAddress } from '../../src/addr/index.js';
import { Action } from '../../src/table/rule.js';
import { TargetTable, makeRule } from '../../src/table/target-table.js';
import { holdHalfOpen, runHttpFuzz } from '../support/http-fuzz.js';
import { httpRequest } from '../support/http.js';

const SEED = Number(process.env.NDP_HTTP_FUZZ_SEED ?? 0x477f);
const ITERATIONS = Number(process.env.NDP_HTTP_FUZZ_ITERATIONS ?? 2500);
const HOST = '127.0.0.1';

t.test(`HTTP fuzz: ${ITERATIONS} requests and 300 half-open connections (seed ${SEED})`, async (t) => {
  t.comment(`seed ${SEED} (NDP_HTTP_FUZZ_SEED=${SEED} to repeat)`);
  const table = new TargetTable();
  table.replaceGroup('static', [makeRule('2003:ab11:0:0:8000::/66', Action.Answer, { kind: 'static', flag: '--prefix' })]);
  const counters = new Counters();
  const metrics = new DaemonMetrics({
    snapshot: () => ({ counters, tableRules: table.size, linkUp: true, backend: undefined, membership: undefined, docker: undefined }),
    docker: false,
  });
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(s) });
  const srv = await startHttpServer(
    { host: HOST, port: 0 },
    {
      metrics: () => metrics.metrics(),
      metricsContentType: metrics.contentType,
      explain: (a) => {
        try {
          parseAddress(a);
        } catch (e) {
          throw new HttpError(400, (e as Error).message);
        }
        return explainAddress(
          {
            table,
            host: { ifname: 'fuzz0', mac: parseMac('02:00:00:00:00:02'), linkLocal: parseAddress('fe80::2') },
            settings: DEFAULT_ANSWER_SETTINGS,
          },
          a,
        );
      },
      healthy: () => true,
      ready: () => ({ ready: true, reasons: [] }),
    },
    log,
    // Short timeouts so the held connections end within the test's time.
    { headersTimeoutMs: 1500, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 3000, maxConnections: 64 },
  );
  t.teardown(() => srv.close());
  const port = srv.address().port;

  const started = Date.now();
  const fuzz = await runHttpFuzz({ host: HOST, port, seed: SEED, count: ITERATIONS, concurrency: 16, timeoutMs: 5000 });
  t.comment(
    `fuzz: ${fuzz.requests} exchanges in ${Date.now() - started} ms; statuses ${JSON.stringify(fuzz.statuses)}; socket errors ${fuzz.socketErrors}`,
  );
  t.equal(fuzz.requests, ITERATIONS, 'every exchange ran');
  t.equal(fuzz.malformed, 0, 'every response starts with an HTTP/1.1 status line');
  t.equal(fuzz.clientTimeouts, 0, 'the server answered or closed every connection in time');
  t.notOk(fuzz.statuses['500'], 'no handler error (500) for any input');
  t.ok(
    (fuzz.statuses['200'] ?? 0) > 0 && (fuzz.statuses['400'] ?? 0) > 0 && (fuzz.statuses['405'] ?? 0) > 0,
    'the fuzz reached 200, 400 and 405',
  );
  t.ok((fuzz.statuses['431'] ?? 0) > 0 && (fuzz.statuses['414'] ?? 0) > 0, 'and the size limits (431, 414)');
  t.same(warnings, [], 'nothing logged at warn (no handler failures)');

  const held = await holdHalfOpen({ host: HOST, port, count: 300, waitMs: 8000, trickleMs: 100 });
  t.comment(`half-open: ${JSON.stringify(held)}; server dropped ${srv.stats().droppedConnections} at accept`);
  t.equal(held.stillOpen, 0, 'every held connection was closed by the server (timeout or connection cap)');
  t.ok(srv.stats().droppedConnections > 0, 'connections over the cap were refused at accept');

  const m = await httpRequest(HOST, port, 'GET', '/metrics');
  t.equal(m.status, 200, 'GET /metrics still 200 afterwards');
  t.match(m.body, /^ndp_frames_total 0$/m);
  t.equal(process.exitCode ?? 0, 0, 'the process is alive and well');
});
