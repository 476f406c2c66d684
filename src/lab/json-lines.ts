/**
 * JSON-lines agents: a child process (often inside a namespace) that reads one JSON request per
 * stdin line and writes one JSON object per stdout line. {@link JsonLinesProcess} is the side
 * that drives it, {@link serveJsonLines} the agent's side.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A JSON object read from a {@link JsonLinesProcess}. */
export type JsonRecord = Record<string, unknown>;

/**
 * A child process that reads one JSON object per line on stdin and writes one per line on
 * stdout. `request` sends `{id, ...}` and waits for the line with the same `id`; every other
 * line is queued for `next`/`waitFor`. Lines that are not JSON are kept in `noise`.
 */
export class JsonLinesProcess {
  readonly records: JsonRecord[] = [];
  readonly noise: string[] = [];
  stderr = '';
  exitCode: number | null = null;
  #nextId = 1;
  #pending = new Map<number, (r: JsonRecord) => void>();
  #waiters = new Set<() => void>();
  #exited: Promise<number>;

  constructor(readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      let rec: JsonRecord;
      try {
        rec = JSON.parse(line) as JsonRecord;
      } catch {
        this.noise.push(line);
        return;
      }
      const id = rec['id'];
      if (typeof id === 'number' && this.#pending.has(id)) {
        const done = this.#pending.get(id)!;
        this.#pending.delete(id);
        done(rec);
      } else {
        this.records.push(rec);
        for (const w of this.#waiters) w();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    child.stdin!.on('error', () => {});
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.exitCode = code ?? -1;
        for (const w of this.#waiters) w();
        for (const done of this.#pending.values()) done({ error: { message: `process exited (${code}): ${this.stderr.trim()}` } });
        this.#pending.clear();
        resolve(this.exitCode);
      });
    });
  }

  /** Send one request and wait (bounded) for the reply carrying its id. */
  request(msg: JsonRecord, timeoutMs = 10_000): Promise<JsonRecord> {
    if (this.exitCode !== null) return Promise.reject(new Error(`process already exited (${this.exitCode}): ${this.stderr.trim()}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${JSON.stringify(msg)} within ${timeoutMs} ms; stderr: ${this.stderr.trim()}`));
      }, timeoutMs);
      this.#pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.stdin!.write(JSON.stringify({ ...msg, id }) + '\n');
    });
  }

  /** Like {@link request}, but throw when the reply has an `error` field. */
  async call(msg: JsonRecord, timeoutMs?: number): Promise<JsonRecord> {
    const r = await this.request(msg, timeoutMs);
    if (r['error'] !== undefined) {
      const e = r['error'] as { message?: string };
      throw Object.assign(new Error(`${String(msg['op'] ?? 'request')}: ${e.message ?? JSON.stringify(e)}`), r['error'] as object);
    }
    return r;
  }

  /** Wait (bounded) until some unsolicited record satisfies `pred`; it is removed from `records`. */
  waitFor(pred: (r: JsonRecord) => boolean, timeoutMs = 5000): Promise<JsonRecord> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const i = this.records.findIndex(pred);
        if (i >= 0) {
          const [r] = this.records.splice(i, 1);
          finish();
          resolve(r!);
          return true;
        }
        if (this.exitCode !== null) {
          finish();
          reject(new Error(`process exited (${this.exitCode}) before the record came; stderr: ${this.stderr.trim()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching record within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (!check()) this.#waiters.add(waiter);
    });
  }

  /** Close stdin and wait (bounded) for exit; SIGKILL after `timeoutMs`. */
  async end(timeoutMs = 5000): Promise<number> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }
}

/** Write one JSON line on stdout (the agent side of {@link JsonLinesProcess}). */
export function emitJsonLine(rec: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(rec) + '\n');
}

/**
 * The agent side of {@link JsonLinesProcess}: read one JSON request per stdin line, answer each
 * with `{ id, ...result }` or `{ id, error: { message, code } }`, then announce `{ ev: 'ready' }`.
 * Lines that are not JSON are ignored.
 */
export function serveJsonLines(handle: (req: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let req: Record<string, unknown>;
    try {
      req = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    Promise.resolve()
      .then(() => handle(req))
      .then(
        (r) => emitJsonLine({ id: req['id'], ...r }),
        (err: { message?: string; code?: unknown }) =>
          emitJsonLine({ id: req['id'], error: { message: err?.message ?? String(err), code: err?.code } }),
      );
  });
  emitJsonLine({ ev: 'ready' });
}
