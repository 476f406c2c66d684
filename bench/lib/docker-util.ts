/**
 * Helpers of the Docker benchmark: monotonic time, summary statistics, children it starts (killed
 * before the lab goes down; the lab sweep kills them on a signal), reading a child's output line
 * by line, the Docker Engine API over its socket, and timing a command.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

import { pollUntil } from '../../src/lab/process.js';
import { trackChild } from '../../src/lab/sweep.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';

/** A container command that exits at once on TERM. */
export const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
/** Where the responder under test serves /metrics (inside d1). */
export const METRICS = '[::1]:9464';

export const monoNs = (): bigint => process.hrtime.bigint();
export const loadavg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
export const canon = (a: string): string => formatAddress(parseAddress(a.split('/')[0]!));

function pct(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

export interface Stats {
  n: number;
  min: number | null;
  median: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export function stats(values: readonly (number | null)[]): Stats {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  const r = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    n: v.length,
    min: r(v[0] ?? null),
    median: r(v.length === 0 ? null : v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2),
    p90: r(pct(v, 0.9)),
    p99: r(pct(v, 0.99)),
    max: r(v[v.length - 1] ?? null),
    mean: r(v.length ? v.reduce((s, x) => s + x, 0) / v.length : null),
  };
}

export function fmtStats(s: Stats, unit = 'ms'): string {
  const f = (x: number | null): string => (x === null ? '-' : x.toFixed(2));
  return `n=${s.n} median ${f(s.median)} p90 ${f(s.p90)} p99 ${f(s.p99)} min ${f(s.min)} max ${f(s.max)} ${unit}`;
}

/** Everything started here; {@link killAll} ends it before the lab is torn down. */
const children = new Set<ChildProcess>();
export function track(c: ChildProcess): ChildProcess {
  children.add(trackChild(c));
  c.once('exit', () => children.delete(c));
  return c;
}
export function killAll(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Reads `child`'s stdout line by line into `onLine`, with the monotonic time of arrival. */
export function lines(child: ChildProcess, onLine: (line: string, atNs: bigint) => void, logFile?: string): void {
  const log = logFile ? fs.createWriteStream(logFile) : undefined;
  const rl = readline.createInterface({ input: child.stdout! });
  rl.on('line', (l) => {
    const at = monoNs();
    log?.write(l + '\n');
    onLine(l, at);
  });
  child.stderr?.on('data', (d: Buffer) => log?.write('[stderr] ' + d.toString()));
  child.once('close', () => log?.end());
}

/** Poll `fn` every `stepMs` until it returns a value; undefined after `timeoutMs`. */
export async function waitUntil<T>(fn: () => T | undefined | null | false, timeoutMs: number, stepMs = 2): Promise<T | undefined> {
  return (await pollUntil(fn, timeoutMs, stepMs)) || undefined;
}

/** Docker Engine API over the unix socket (the 28.x CLI cannot set a MAC against API 1.41). */
export function dockerApi(
  sock: string,
  method: string,
  p: string,
  body?: unknown,
  timeoutMs = 60_000,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath: sock,
        method,
        path: p,
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`docker API ${method} ${p} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Resolves with the monotonic time at which `file args` exited, and its exit code. */
export function timedRun(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ startNs: bigint; exitNs: bigint; code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const startNs = monoNs();
    const c = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('exit', (code) => {
      const exitNs = monoNs();
      clearTimeout(t);
      resolve({ startNs, exitNs, code, out });
    });
  });
}
