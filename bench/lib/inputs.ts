/** The C tools bench/run.ts drives, and the per-size input files (address lists, configs). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { BUILD, buildTool } from './common.js';

export const TOOLS = ['ns-blaster', 'latency-probe', 'na-counter', 'gen-addrs'] as const;

export function buildTools(): void {
  for (const t of TOOLS) buildTool(t);
}

export const tool = (t: (typeof TOOLS)[number]): string => path.join(BUILD, t);

export interface SizeFiles {
  n: number;
  addrs: string;
  last: string;
}

export function writeLines(file: string, n: number, line: (i: number) => string, head = '', tail = ''): void {
  if (fs.existsSync(file)) return;
  const tmp = `${file}.tmp${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    if (head) fs.writeSync(fd, head);
    const chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      chunk.push(line(i));
      if (chunk.length === 10000) {
        fs.writeSync(fd, chunk.join(''));
        chunk.length = 0;
      }
    }
    fs.writeSync(fd, chunk.join('') + tail);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

const sizeCache = new Map<number, { files: SizeFiles; list: string[] }>();

export function sizeFiles(n: number, layout: string): { files: SizeFiles; list: string[] } {
  const hit = sizeCache.get(n);
  if (hit) return hit;
  const addrs = path.join(BUILD, `addrs-${layout}-${n}.txt`);
  if (!fs.existsSync(addrs)) {
    const out = execFileSync(tool('gen-addrs'), ['--count', String(n), '--layout', layout], {
      maxBuffer: 1 << 30,
      encoding: 'utf8',
    });
    fs.writeFileSync(addrs, out);
  }
  const list = fs
    .readFileSync(addrs, 'utf8')
    .split('\n')
    .filter((x) => x.length > 0);
  const last = list[list.length - 1];
  if (list.length !== n || last === undefined) throw new Error(`${addrs}: expected ${n} addresses`);
  const r = { files: { n, addrs, last }, list };
  sizeCache.clear(); // keep at most one big list in memory
  sizeCache.set(n, r);
  return r;
}
