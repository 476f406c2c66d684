/**
 * Running commands for the lab: bounded runs (every command has a timeout), bounded waits, and
 * stopping long-running children. Every child started here is tracked by the sweep (sweep.ts),
 * so a signal or a crash never leaves one behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';

import { trackChild } from './sweep.js';

/** What {@link run} returns: the exit code (-1 when killed by a signal) and the output. */
export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run in ms. */
  ms: number;
  /** The command was SIGKILLed at `timeoutMs`. */
  timedOut: boolean;
}

export interface RunOptions {
  /** SIGKILL the command after this many ms. Default 20 000. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * When the command cannot be started at all (ENOENT, EACCES), resolve with code 1 and the
   * error in `stderr` instead of rejecting: for callers that only look at `code`.
   */
  spawnErrorAsResult?: boolean;
}

/** Run a command to completion. Never rejects for a non-zero exit; see {@link runOk}. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = trackChild(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd }));
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let done = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (opts.spawnErrorAsResult) resolve({ code: 1, signal: null, stdout, stderr: stderr + err.message, ms: Date.now() - t0, timedOut });
      else reject(err);
    });
    child.on('close', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
    child.stdin.on('error', () => {}); // the command may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Run a command; resolve with stdout.
 * @throws Error (with the command line, exit code and stderr) when it exits non-zero.
 */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const why = r.stderr.trim() || r.stdout.trim();
    throw new Error(
      `'${[cmd, ...args].join(' ')}' exited ${r.code}${r.signal ? ` (${r.signal}${r.timedOut ? ', timed out' : ''})` : ''}: ${why}`,
    );
  }
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Block the thread for `ms` (for the synchronous cleanup paths only). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Poll `check` every `intervalMs` until it returns a truthy value (resolved with it) or
 * `timeoutMs` passes (resolved with undefined).
 */
export async function pollUntil<T>(check: () => T | Promise<T>, timeoutMs: number, intervalMs = 50): Promise<NonNullable<T> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}

/**
 * Poll `check` until it returns a truthy value.
 * @throws Error after `timeoutMs` (naming `what`).
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 50, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const v = await pollUntil(check, timeoutMs, intervalMs);
  if (!v) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  return v;
}

/** Wait for a line matching `re` on a child's stdout (e.g. the responder's "ready"). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; stdout: ${buf.slice(-500)} stderr: ${err.slice(-500)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (re.test(line)) {
          cleanup();
          resolve(line);
          return;
        }
      }
    };
    const onErr = (d: Buffer) => {
      err += d.toString();
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`exited with ${code} before ${re}; stdout: ${buf.slice(-500)} stderr: ${err.slice(-500)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
