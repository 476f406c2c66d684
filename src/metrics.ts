/**
 * Prometheus text exposition (version 0.0.4) and the daemon's small HTTP surface:
 *   GET /metrics              counters and gauges
 *   GET /explain?address=A    why A is or isn't answered (JSON)
 *   GET /healthz              200 when the packet loop is up
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';

export interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** One sample without labels, or several with labels. */
  samples: { labels?: Record<string, string>; value: number }[];
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Render metrics in the Prometheus text format. */
export function renderMetrics(metrics: readonly Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = s.labels
        ? '{' + Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',') + '}'
        : '';
      lines.push(`${m.name}${labels} ${Number.isFinite(s.value) ? s.value : 0}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Parse `HOST:PORT`, `[V6]:PORT` or `PORT`. @throws Error on bad input. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new Error(`'${text}' is not HOST:PORT (e.g. [::1]:9464)`);
  return { host: m[1] || m[2] || '::1', port };
}

export interface HttpSurface {
  metrics(): Metric[];
  explain(address: string): unknown;
  healthy(): boolean;
}

/** Start the HTTP server; resolves once listening. @throws the listen error (EADDRINUSE ...). */
export function serveMetrics(listen: string, surface: HttpSurface, logger: Logger): Promise<Server> {
  const { host, port } = parseListen(listen);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(renderMetrics(surface.metrics()));
      } else if (url.pathname === '/explain') {
        const a = url.searchParams.get('address');
        if (a === null) {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"address= is required"}\n');
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(surface.explain(a)) + '\n');
        }
      } else if (url.pathname === '/healthz') {
        const ok = surface.healthy();
        res.writeHead(ok ? 200 : 503).end(ok ? 'ok\n' : 'down\n');
      } else {
        res.writeHead(404).end();
      }
    } catch (e) {
      logger.warn({ err: e }, 'http handler failed');
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (e as Error).message }) + '\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
