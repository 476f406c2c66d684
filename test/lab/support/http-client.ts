/**
 * HTTP client agent for lab tests, run inside a namespace (`Netns.spawnJsonLines`) so it reaches
 * a daemon listening on that namespace's [::1]. One JSON request per line on stdin:
 *
 *   { op: 'get', host, port, path }          -> { status, body }
 *   { op: 'raw', host, port, target }        -> { statusLine, closedByServer }  (GET TARGET HTTP/1.1)
 *   { op: 'fuzz', host, port, seed, count }  -> the fuzz summary (test/support/http-fuzz.ts)
 */
import { httpRequest, rawExchange } from '../../support/http.js';
import { runHttpFuzz } from '../../support/http-fuzz.js';
import { serveJsonLines } from '../../../src/lab/json-lines.js';

serveJsonLines(async (req) => {
  const host = String(req['host']);
  const port = Number(req['port']);
  switch (req['op']) {
    case 'get': {
      const r = await httpRequest(host, port, 'GET', String(req['path']));
      return { status: r.status, body: r.body };
    }
    case 'raw': {
      const r = await rawExchange(host, port, `GET ${String(req['target'])} HTTP/1.1\r\nHost: x\r\n\r\n`);
      return { statusLine: r.text.split('\r\n')[0] ?? '', closedByServer: r.closedByServer };
    }
    case 'fuzz':
      return {
        ...(await runHttpFuzz({ host, port, seed: Number(req['seed']), count: Number(req['count']), concurrency: 8, timeoutMs: 20_000 })),
      };
    default:
      throw new Error(`unknown op ${String(req['op'])}`);
  }
});
