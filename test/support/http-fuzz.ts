/**
 * A seeded HTTP fuzzer over raw TCP, shared by the unit fuzz of the server and the lab test of
 * the real daemon: malformed request lines and headers, the requests that once ended the daemon,
 * `%` garbage, NUL bytes, huge headers, random methods, bodies, pipelining, split writes; and
 * connections held half-open (silent, partial headers, a trickle of header bytes).
 */
import { connect, type Socket } from 'node:net';
import { Prng } from './prng.js';

const PATHS = [
  '/metrics',
  '/explain',
  '/healthz',
  '/readyz',
  '/',
  '/metrics/',
  '/METRICS',
  '/explain/',
  '/favicon.ico',
  '/%2e%2e/%2e%2e/etc/passwd',
];
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'CONNECT',
  'PRI',
  'get',
  'GeT',
  'G\0T',
  'GET GET',
  'BREW',
  'M-SEARCH',
  'X'.repeat(300),
  '',
];
const VERSIONS = [
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/0.9',
  'HTTP/2.0',
  'HTTP/1.1 ',
  'HTTP/1.x',
  'HTTP/11',
  'http/1.1',
  '',
];
/** Requests that must never stop a server: the first two ended the daemon once. */
export const KILLER_TARGETS = [
  '//x:99999',
  '/explain?address=zz',
  '//[::1',
  'http://x:99999/metrics',
  '/explain?address=%',
  '/explain?address=%zz',
  '/explain?address=::ffff:1.2.3.4%eth0',
];
const ADDRESSES = [
  '2001:db8::1',
  '2003:ab11:0:0:8000::10',
  '::',
  '::1',
  'fe80::1%eth0',
  'ff02::1',
  '1.2.3.4',
  'zz',
  '',
  '::ffff:1.2.3.4',
  '2001:db8::/64',
  '2001:db8:::1',
  '%',
  '%00',
  '%ff%fe',
  '1:2:3:4:5:6:7:8:9',
  'a'.repeat(100),
];

function pctGarbage(rng: Prng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = rng.int(6);
    if (k === 0) s += '%';
    else if (k === 1) s += '%' + rng.byte().toString(16).padStart(2, '0');
    else if (k === 2) s += '%' + String.fromCharCode(0x67 + rng.int(20));
    else if (k === 3) s += String.fromCharCode(rng.byte());
    else s += String.fromCharCode(0x21 + rng.int(94));
  }
  return s;
}

function target(rng: Prng): string {
  switch (rng.int(10)) {
    case 0:
      return rng.pick(KILLER_TARGETS);
    case 1:
      return '/explain?address=' + encodeURIComponent(rng.pick(ADDRESSES));
    case 2:
      return '/explain?address=' + rng.pick(ADDRESSES);
    case 3:
      return rng.pick(PATHS) + '?' + pctGarbage(rng, 1 + rng.int(40));
    case 4:
      return '/' + pctGarbage(rng, rng.int(60));
    case 5:
      return rng.pick(PATHS) + '?address=' + 'a'.repeat(rng.pick([100, 2047, 2100, 9000]));
    case 6:
      return rng.pick([
        '*',
        '',
        ' ',
        '//',
        '///metrics',
        'metrics',
        'http://h/metrics',
        'https://[::1]/healthz',
        'http://[zz]/',
        '\0/metrics',
      ]);
    case 7:
      return '/explain?address=2001:db8::1&address=2001:db8::2';
    default:
      return rng.pick(PATHS);
  }
}

function headers(rng: Prng): string {
  const h: string[] = [];
  if (!rng.chance(0.1)) h.push(`Host: ${rng.pick(['a', '[::1]:9464', '', 'x'.repeat(300), 'a\0b'])}`);
  const n = rng.int(5);
  for (let i = 0; i < n; i++) {
    switch (rng.int(10)) {
      case 0:
        h.push(`X-Big: ${'b'.repeat(rng.pick([4000, 9000, 20_000]))}`);
        break;
      case 1:
        h.push(`Content-Length: ${rng.pick(['0', '5', '-1', '99999999999999999999', 'abc', '5, 6'])}`);
        break;
      case 2:
        h.push(`Transfer-Encoding: ${rng.pick(['chunked', 'gzip, chunked', 'identity', 'chunked\0'])}`);
        break;
      case 3:
        h.push(`Connection: ${rng.pick(['close', 'keep-alive', 'upgrade', ''])}`);
        break;
      case 4:
        h.push(`Upgrade: ${rng.pick(['websocket', 'h2c', 'x'])}`);
        break;
      case 5:
        h.push(`${pctGarbage(rng, 1 + rng.int(10))}: ${pctGarbage(rng, rng.int(20))}`);
        break;
      case 6:
        h.push(`X-Nul: a\0b\rc`);
        break;
      case 7:
        h.push(' folded: continuation');
        break;
      case 8:
        h.push('NoColonHere');
        break;
      default:
        h.push(`Accept: ${rng.pick(['*/*', 'text/plain', 'application/openmetrics-text; version=1.0.0'])}`);
    }
  }
  return h.join(rng.chance(0.05) ? '\n' : '\r\n');
}

/** One request (or a burst of pipelined ones, or raw garbage) as bytes. */
export function fuzzRequest(rng: Prng): Buffer {
  const kind = rng.int(20);
  if (kind === 0) return Buffer.from(rng.bytes(1 + rng.int(200)));
  if (kind === 1) return Buffer.from('\0'.repeat(1 + rng.int(50)) + 'GET /metrics HTTP/1.1\r\n\r\n', 'latin1');
  const parts: string[] = [];
  const pipelined = kind === 2 ? 2 + rng.int(5) : 1;
  for (let i = 0; i < pipelined; i++) {
    if (rng.chance(0.4)) {
      // Well-formed around a fuzzed target: these reach the handlers (explain, metrics ...).
      parts.push(`${rng.pick(['GET', 'GET', 'HEAD'])} ${target(rng)} HTTP/1.1\r\nHost: a\r\n\r\n`);
      continue;
    }
    const method = rng.chance(0.7) ? 'GET' : rng.pick(METHODS);
    const line = `${method}${rng.chance(0.05) ? '  ' : ' '}${target(rng)}${rng.chance(0.05) ? '' : ' '}${rng.pick(VERSIONS)}`;
    const hs = headers(rng);
    let body = '';
    if (/Content-Length: 5\b/.test(hs)) body = 'hello';
    else if (/chunked/.test(hs)) body = rng.pick(['5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', 'ffffffffffffffff\r\nx', '0\r\n\r\n']);
    const end = rng.chance(0.05) ? '\r\n' : '\r\n\r\n';
    parts.push(`${line}\r\n${hs}${end}${body}`);
  }
  return Buffer.from(parts.join(''), 'latin1');
}

export interface FuzzSummary {
  requests: number;
  /** Status lines seen in responses, by code. */
  statuses: Record<string, number>;
  /** Connections that errored (reset by the server ...): not a failure in itself. */
  socketErrors: number;
  /** Exchanges the client gave up on (the server neither answered fully nor closed in time). */
  clientTimeouts: number;
  /** Responses that did not start with an HTTP/1.1 status line. */
  malformed: number;
}

/** Send `data` (in 1-3 writes), half-close, read until the server closes or `timeoutMs`. */
function exchange(
  host: string,
  port: number,
  data: Buffer,
  rng: Prng,
  timeoutMs: number,
): Promise<{ text: string; error: boolean; timedOut: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error = false;
    let timedOut = false;
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, timeoutMs);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => (error = true));
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), error, timedOut });
    });
    s.on('connect', () => {
      const cuts = [0, ...Array.from({ length: rng.int(3) }, () => rng.int(data.length)).sort((a, b) => a - b), data.length];
      for (let i = 0; i + 1 < cuts.length; i++) if (cuts[i]! < cuts[i + 1]!) s.write(data.subarray(cuts[i], cuts[i + 1]));
      s.end();
    });
  });
}

/** Run `count` fuzz exchanges, `concurrency` at a time; bounded by count and per-exchange time. */
export async function runHttpFuzz(opts: {
  host: string;
  port: number;
  seed: number;
  count: number;
  concurrency?: number;
  timeoutMs?: number;
}): Promise<FuzzSummary> {
  const rng = new Prng(opts.seed);
  const sum: FuzzSummary = { requests: 0, statuses: {}, socketErrors: 0, clientTimeouts: 0, malformed: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      next++;
      const data = fuzzRequest(rng);
      const r = await exchange(opts.host, opts.port, data, rng, opts.timeoutMs ?? 5000);
      sum.requests++;
      if (r.error) sum.socketErrors++;
      if (r.timedOut) sum.clientTimeouts++;
      if (r.text.length > 0 && !r.text.startsWith('HTTP/1.1 ')) sum.malformed++;
      for (const m of r.text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)) sum.statuses[m[1]!] = (sum.statuses[m[1]!] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
  return sum;
}

export interface HalfOpenSummary {
  opened: number;
  /** Connections the server closed (or refused) within the wait. */
  closedByServer: number;
  /** Still open when the wait ended (the client then closed them). */
  stillOpen: number;
  /** ms from the start until the last one was closed by the server. */
  lastClosedMs: number;
}

/**
 * Open `count` connections that never complete a request (silent, partial headers, or a byte of
 * header every `trickleMs`), keep them open, and wait up to `waitMs` for the server to close them.
 */
export async function holdHalfOpen(opts: {
  host: string;
  port: number;
  count: number;
  waitMs: number;
  trickleMs?: number;
}): Promise<HalfOpenSummary> {
  const started = Date.now();
  const sockets: Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let closed = 0;
  let lastClosedMs = 0;
  let clientClosing = false;
  const all = await Promise.all(
    Array.from(
      { length: opts.count },
      (_, i) =>
        new Promise<void>((resolveConnected) => {
          const s = connect({ host: opts.host, port: opts.port });
          sockets.push(s);
          s.resume(); // read (and drop) whatever the server says, so its close is seen
          s.on('error', () => {});
          s.on('close', () => {
            if (!clientClosing) {
              closed++;
              lastClosedMs = Date.now() - started;
            }
            resolveConnected();
          });
          s.on('connect', () => {
            resolveConnected();
            const mode = i % 3;
            if (mode === 1) s.write('GET /metrics HTTP/1.1\r\nHost: a\r\nX-Partial: ');
            if (mode === 2) {
              const line = 'GET /metrics HTTP/1.1\r\nHost: a\r\n' + 'X-Slow: ' + 'z'.repeat(100_000);
              let k = 0;
              const tick = setInterval(() => {
                if (s.destroyed || k >= line.length) return clearInterval(tick);
                s.write(line[k++]!);
              }, opts.trickleMs ?? 200);
              timers.push(tick);
            }
          });
        }),
    ),
  );
  void all;
  const deadline = started + opts.waitMs;
  while (closed < opts.count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const stillOpen = opts.count - closed;
  clientClosing = true;
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.destroy();
  return { opened: opts.count, closedByServer: closed, stillOpen, lastClosedMs };
}
