/** Small HTTP clients for tests: one request through node:http, or raw bytes over TCP. */
import { request } from 'node:http';
import { connect } from 'node:net';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request (no keep-alive); rejects on a socket error or after `timeoutMs`. */
export function httpRequest(
  host: string,
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path, headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 5000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Write `data` on a fresh TCP connection and collect what comes back until the server closes
 * (or `timeoutMs`, then the socket is destroyed). Never rejects: errors end the collection.
 */
export function rawExchange(
  host: string,
  port: number,
  data: Uint8Array | string,
  timeoutMs = 3000,
): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const s = connect({ host, port });
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      closedByServer = true;
      s.end();
    });
    s.on('error', () => {
      closedByServer = true;
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closedByServer });
    });
    s.write(data);
  });
}
