/**
 * The daemon's HTTP surface, hardened: no request, however malformed, may stop the process.
 *
 *   GET /metrics              Prometheus text exposition
 *   GET /explain?address=A    why A is or isn't answered (JSON); 400 for a bad address
 *   GET /healthz              200 while the process is alive and serving
 *   GET /readyz               200 when ready (socket open, first Docker sync done), else 503
 *
 * Every handler error becomes exactly one 4xx/5xx response (or a destroyed socket when a
 * response was already under way). Only GET and HEAD are served. Headers, whole requests, idle
 * keep-alive sockets and slow handlers are timed out; header size, URL length, requests per
 * socket and open connections are capped. Parse errors from Node's HTTP parser (`clientError`)
 * get one raw 4xx and the socket is closed. See docs/http.md.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** An error a surface callback throws to choose the response status (e.g. 400 for a bad address). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the daemon offers over HTTP. Every callback may throw; a non-{@link HttpError} throw is a 500. */
export interface HttpSurface {
  /** The Prometheus exposition document. */
  metrics(): Promise<string> | string;
  /** Content-Type of {@link metrics}; default the Prometheus text format 0.0.4. */
  readonly metricsContentType?: string;
  /** A JSON-serialisable explanation. @throws HttpError(400) for an address that is not one. */
  explain(address: string): unknown;
  /** True while the process can serve (liveness). */
  healthy(): boolean;
  /** Readiness, with the reasons it is not ready (empty when ready). */
  ready(): { ready: boolean; reasons: string[] };
}

/** The server's limits. The defaults suit a scrape endpoint on a loopback or admin address. */
export interface HttpLimits {
  /** Largest request line plus headers, bytes (Node's `maxHeaderSize`): more is a 431. */
  maxHeaderBytes: number;
  /** Longest request target (path plus query), characters: more is a 414. */
  maxUrlLength: number;
  /** Time to receive the complete headers, ms (`headersTimeout`): then 408 and close. */
  headersTimeoutMs: number;
  /** Time to receive the complete request, ms (`requestTimeout`). */
  requestTimeoutMs: number;
  /** An idle keep-alive socket is closed after this, ms. */
  keepAliveTimeoutMs: number;
  /** Any socket with no traffic in either direction for this long is destroyed, ms. */
  idleTimeoutMs: number;
  /** A handler (metrics, explain ...) that takes longer than this gets a 503, ms. */
  handlerTimeoutMs: number;
  /** Requests served on one keep-alive socket before it is closed. */
  maxRequestsPerSocket: number;
  /** Open connections; further ones are closed as they are accepted. */
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  maxHeaderBytes: 8 * 1024,
  maxUrlLength: 2048,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 20_000,
  handlerTimeoutMs: 10_000,
  maxRequestsPerSocket: 100,
  maxConnections: 128,
});

/** What the server counts about itself (for logs and tests). */
export interface HttpServerStats {
  /** Responses sent, by status code. */
  responses: Record<number, number>;
  /** Requests Node's parser refused (malformed, too large, timed out) and their sockets closed. */
  clientErrors: number;
  /** Connections closed at accept because {@link HttpLimits.maxConnections} were open. */
  droppedConnections: number;
}

/** A running server. */
export interface HttpServerHandle {
  readonly server: Server;
  /** The bound address (the real port when 0 was asked for). */
  address(): { host: string; port: number };
  stats(): HttpServerStats;
  /** Stop accepting, close every open connection, resolve when closed. Safe to call twice. */
  close(): Promise<void>;
}

/** Parse `HOST:PORT`, `[V6]:PORT` or `PORT` (host then `::1`). @throws Error on bad input. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new Error(`'${text}' is not HOST:PORT (e.g. [::1]:9464)`);
  return { host: m[1] || m[2] || '::1', port };
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
};

/** The raw response for a request Node's parser refused, by its error code. */
function clientErrorStatus(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 408;
    default:
      return 400;
  }
}

/** Split an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target. @throws HttpError(400). */
function splitTarget(raw: string): { path: string; query: string } {
  let target = raw;
  if (/^https?:\/\//i.test(target)) {
    let u: URL;
    try {
      u = new URL(target);
    } catch {
      throw new HttpError(400, 'malformed request target');
    }
    target = u.pathname + u.search;
  }
  if (!target.startsWith('/')) throw new HttpError(400, 'request target must start with /');
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** Run `fn`; reject with a 503 when it takes longer than `ms`. */
async function withDeadline<T>(ms: number, fn: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(fn),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HttpError(503, 'handler timed out')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Start the server; resolves once listening.
 * @param listen `HOST:PORT` text (see {@link parseListen}) or a parsed address (port 0: any free port).
 * @throws the parse error, or the listen error (EADDRINUSE, EADDRNOTAVAIL ...).
 */
export async function startHttpServer(
  listen: string | { host: string; port: number },
  surface: HttpSurface,
  logger: Logger,
  limits: Partial<HttpLimits> = {},
): Promise<HttpServerHandle> {
  const lim: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...limits };
  const where = typeof listen === 'string' ? parseListen(listen) : listen;
  const stats: HttpServerStats = { responses: {}, clientErrors: 0, droppedConnections: 0 };
  /** Sockets whose current response has started: a late parser error there can only destroy. */
  const responding = new WeakSet<Socket>();

  /** Send one complete response; if one already started, cut the connection instead. */
  const reply = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    extra: Record<string, string> = {},
  ): void => {
    if (res.headersSent || res.writableEnded || res.destroyed) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    const buf = Buffer.from(body, 'utf8');
    const headers: Record<string, string | number> = {
      'content-type': type,
      'content-length': buf.length,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...extra,
    };
    // After an error the connection is not reused: an unread body or a confused client cannot
    // carry over into the next request.
    if (status >= 400) headers['connection'] = 'close';
    stats.responses[status] = (stats.responses[status] ?? 0) + 1;
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : buf);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? '';
    if (method !== 'GET' && method !== 'HEAD') {
      reply(req, res, 405, JSON_TYPE, JSON.stringify({ error: 'only GET and HEAD are served' }) + '\n', { allow: 'GET, HEAD' });
      return;
    }
    const raw = req.url ?? '';
    if (raw.length > lim.maxUrlLength) throw new HttpError(414, `request target longer than ${lim.maxUrlLength} characters`);
    const { path, query } = splitTarget(raw);
    const hasBody =
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
      req.headers['transfer-encoding'] !== undefined;
    if (hasBody) throw new HttpError(413, 'GET and HEAD take no body');
    switch (path) {
      case '/metrics': {
        const text = await withDeadline(lim.handlerTimeoutMs, () => surface.metrics());
        if (typeof text !== 'string') throw new Error('metrics() returned no text');
        reply(req, res, 200, surface.metricsContentType ?? PROMETHEUS_TEXT, text);
        return;
      }
      case '/explain': {
        const params = new URLSearchParams(query);
        const all = params.getAll('address');
        if (all.length !== 1) throw new HttpError(400, all.length === 0 ? 'address= is required' : 'give address= once');
        const result = await withDeadline(lim.handlerTimeoutMs, () => surface.explain(all[0]!));
        reply(req, res, 200, JSON_TYPE, JSON.stringify(result) + '\n');
        return;
      }
      case '/healthz': {
        const ok = surface.healthy() === true;
        reply(req, res, ok ? 200 : 503, TEXT_TYPE, ok ? 'ok\n' : 'unhealthy\n');
        return;
      }
      case '/readyz': {
        const r = surface.ready();
        const ok = r.ready === true;
        const body = ok ? 'ready\n' : `not ready: ${r.reasons.join('; ') || 'unknown'}\n`;
        reply(req, res, ok ? 200 : 503, TEXT_TYPE, body);
        return;
      }
      default:
        reply(req, res, 404, JSON_TYPE, JSON.stringify({ error: 'not found; try /metrics, /explain?address=A, /healthz, /readyz' }) + '\n');
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    responding.add(req.socket);
    res.on('error', () => {}); // a peer that went away: nothing to tell it
    res.once('close', () => responding.delete(req.socket));
    route(req, res).catch((e: unknown) => {
      try {
        if (e instanceof HttpError) {
          reply(req, res, e.status, JSON_TYPE, JSON.stringify({ error: e.message }) + '\n');
        } else {
          logger.warn({ err: e instanceof Error ? e.message : String(e), url: String(req.url).slice(0, 200) }, 'http handler failed');
          reply(req, res, 500, JSON_TYPE, JSON.stringify({ error: 'internal error' }) + '\n');
        }
      } catch {
        res.destroy();
      }
    });
  };

  const server = createServer(
    {
      maxHeaderSize: lim.maxHeaderBytes,
      headersTimeout: lim.headersTimeoutMs,
      requestTimeout: lim.requestTimeoutMs,
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      // How often Node checks the two timeouts above; at most a quarter of the shorter one.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs) / 4))),
      insecureHTTPParser: false,
    },
    onRequest,
  );
  server.maxConnections = lim.maxConnections;
  server.maxRequestsPerSocket = lim.maxRequestsPerSocket;
  server.setTimeout(lim.idleTimeoutMs, (socket: Socket) => socket.destroy());
  server.on('drop', () => stats.droppedConnections++);
  // CONNECT (a proxy tunnel) gets its own event; without a listener Node would just drop it.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    stats.responses[405] = (stats.responses[405] ?? 0) + 1;
    socket.on('error', () => {});
    socket.setTimeout(1000, () => socket.destroy());
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\nconnection: close\r\ncontent-length: 0\r\n\r\n', () =>
      socket.destroy(),
    );
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    stats.clientErrors++;
    if (err.code === 'ECONNRESET' || !socket.writable || responding.has(socket)) {
      socket.destroy();
      return;
    }
    const status = clientErrorStatus(err.code);
    stats.responses[status] = (stats.responses[status] ?? 0) + 1;
    // The peer may never read or close: destroy once written, or after a second at most.
    socket.setTimeout(1000, () => socket.destroy());
    socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`, () =>
      socket.destroy(),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Errors after listening (EMFILE on accept ...) are logged, never thrown at the process.
  server.on('error', (e: NodeJS.ErrnoException) => logger.warn({ err: e.message, code: e.code }, 'http server error'));

  let closing: Promise<void> | undefined;
  return {
    server,
    address: () => {
      const a = server.address();
      if (a === null || typeof a === 'string') return { host: where.host, port: where.port };
      return { host: a.address, port: a.port };
    },
    stats: () => ({ ...stats, responses: { ...stats.responses } }),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
