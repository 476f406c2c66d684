/**
 * What both benchmarks share: where the repository, the C tools and the results are, building a
 * C tool (bench/NAME.c, with bench/ndp-frames.h) when its binary is stale, and reading a
 * process's memory from /proc.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the first ancestor of this file that holds bench/ns-blaster.c. */
function findRepo(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'bench', 'ns-blaster.c'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the repository root (bench/ns-blaster.c)');
}

export const REPO = findRepo();
export const BENCH = path.join(REPO, 'bench');
export const BUILD = path.join(BENCH, 'build');
export const RESULTS = path.join(BENCH, 'results');

/** Compile bench/NAME.c to bench/build/NAME unless the binary is newer than it and ndp-frames.h. Returns the binary. */
export function buildTool(name: string): string {
  fs.mkdirSync(BUILD, { recursive: true });
  const src = path.join(BENCH, `${name}.c`);
  const bin = path.join(BUILD, name);
  const hdr = path.join(BENCH, 'ndp-frames.h');
  const stale = !fs.existsSync(bin) || fs.statSync(bin).mtimeMs < Math.max(fs.statSync(src).mtimeMs, fs.statSync(hdr).mtimeMs);
  if (stale) {
    try {
      execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', bin, src], {
        timeout: 60_000,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`gcc ${name}.c: ${err.stderr?.trim() || err.message}`, { cause: e });
    }
  }
  return bin;
}

/** VmRSS and VmHWM of a process, in kB; undefined when it is gone. */
export function readStatus(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKb: get('VmRSS'), hwmKb: get('VmHWM') };
  } catch {
    return undefined;
  }
}
