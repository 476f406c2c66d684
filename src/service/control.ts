/**
 * The control socket: a unix stream socket (default /run/ndp-responder/control.sock, mode 0600)
 * speaking newline-delimited JSON. One request per line, one response line per request:
 *
 *   {"cmd":"status"}                      -> {"ok":true,"result":{...}}
 *   {"cmd":"explain","address":"2001:db8::1"}
 *   {"cmd":"reload"}
 *   anything else                         -> {"ok":false,"error":"..."}
 *
 * No request, however malformed, may stop the daemon: every handler error is one error line.
 * Lines are capped (64 KiB), connections too (16), and idle connections are closed (10 s).
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/** What the daemon answers over the control socket. */
export interface ControlHandlers {
  status(): unknown;
  explain(address: string): unknown;
  reload(): Promise<unknown>;
}

export const MAX_LINE = 64 * 1024;
const MAX_CONNECTIONS = 16;
const IDLE_MS = 10_000;

/** One request line to one response object. Never throws. */
export async function handleControlLine(line: string, h: ControlHandlers): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return { ok: false, error: 'not JSON: send one JSON object per line, e.g. {"cmd":"status"}' };
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) return { ok: false, error: 'a request is a JSON object with "cmd"' };
  const cmd = (req as { cmd?: unknown }).cmd;
  try {
    switch (cmd) {
      case 'status':
        return { ok: true, result: h.status() };
      case 'explain': {
        const a = (req as { address?: unknown }).address;
        if (typeof a !== 'string' || a.length > 100) return { ok: false, error: 'explain needs "address": an IPv6 address' };
        return { ok: true, result: h.explain(a) };
      }
      case 'reload':
        return { ok: true, result: await h.reload() };
      default:
        return { ok: false, error: `unknown cmd ${JSON.stringify(cmd)?.slice(0, 40) ?? 'undefined'}: one of status, explain, reload` };
    }
  } catch (e) {
    return { ok: false, error: (e as Error)?.message ?? String(e) };
  }
}

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listen on `path` (its directory is created 0755; a stale socket left by a dead process is
 * replaced; the socket is made 0600).
 * @throws Error when the path cannot be used (another daemon listens there, not a socket ...).
 */
export async function startControlServer(path: string, h: ControlHandlers, log: Logger): Promise<ControlServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
    if (await answers(path)) throw new Error(`another daemon listens on ${path} (give each its own --control PATH)`);
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    if (sockets.size >= MAX_CONNECTIONS) {
      sock.end(JSON.stringify({ ok: false, error: 'too many connections' }) + '\n');
      return;
    }
    sockets.add(sock);
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    let refused = false;
    let chain = Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      if (refused) return;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        chain = chain.then(async () => {
          const res = await handleControlLine(line, h);
          if (!sock.destroyed) sock.write(safeStringify(res) + '\n');
        });
      }
      if (buf.length > MAX_LINE) {
        // Refuse the rest of this connection: one error line, then close.
        refused = true;
        buf = '';
        sock.end(JSON.stringify({ ok: false, error: `request line longer than ${MAX_LINE} bytes` }) + '\n', () => sock.destroy());
        setTimeout(() => sock.destroy(), 1000).unref();
      }
    });
  });
  server.on('error', (e) => log.warn({ err: e.message }, 'control socket error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  log.info({ path }, 'control socket listening');
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return JSON.stringify({ ok: false, error: `cannot encode the answer: ${(e as Error).message}` });
  }
}

/** Is a live server behind this socket? */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Send one request, wait for its response line.
 * @throws Error (with `code` ENOENT/ECONNREFUSED when no daemon listens) or on a timeout.
 */
export function controlRequest(path: string, req: object, timeoutMs = 5000): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const c = createConnection(path);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.once('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string });
      } catch (e) {
        reject(new Error(`bad answer on ${path}: ${(e as Error).message}`));
      }
    });
    c.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
