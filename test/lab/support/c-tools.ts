/**
 * C traffic tools for lab tests, compiled on the fly with gcc (Debian's g++ package, in
 * scripts/setup.sh): the NS flood (test/lab/support/ns-flood.c) and the bench's latency probe
 * (bench/latency-probe.c). Binaries go to a per-process temporary directory, so parallel runs
 * and the benchmarks never share a half-written binary.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const SOURCES: Record<string, string> = {
  'ns-flood': path.join(ROOT, 'test', 'lab', 'support', 'ns-flood.c'),
  'latency-probe': path.join(ROOT, 'bench', 'latency-probe.c'),
};

let dir: string | undefined;

/**
 * Compile a tool (once per process) and return the binary's path.
 * @throws Error with gcc's message when it does not compile.
 */
export function cTool(name: keyof typeof SOURCES & string): string {
  const src = SOURCES[name];
  if (src === undefined) throw new Error(`unknown C tool ${name}`);
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'ndp-ctools-'));
  const bin = path.join(dir, name);
  if (!fs.existsSync(bin)) {
    try {
      execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', bin, src], {
        timeout: 120_000,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`gcc ${path.basename(src)}: ${err.stderr?.trim() || err.message}`, { cause: e });
    }
  }
  return bin;
}

/** Remove the compiled tools (call from a teardown). */
export function removeCTools(): void {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/** VmRSS of a process in kB, or undefined when it is gone. */
export function rssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** What bench/latency-probe.c prints. */
export interface ProbeResult {
  samples: number;
  requested: number;
  answered: number;
  lost: number;
  /** NS the saturated link refused for 20 ms (not samples: each was replaced by another try). */
  unsent: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
}

/** What ns-flood.c prints. */
export interface FloodResult {
  sent: number;
  errors: number;
  elapsed_s: number;
  rate: number;
  na: number;
  sources: number;
}

/** Parse the last JSON line of a tool's stdout. @throws Error naming the tool when there is none. */
export function lastJson<T>(what: string, stdout: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what} printed no JSON: ${stdout.slice(-300)}`);
  }
}
