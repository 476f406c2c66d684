/**
 * The test side of support/afpacket-agent.ts's frames mode: the frames a back end received,
 * read from the agent's `{ev: 'batch', h, frames: [hex...]}` records.
 */
import type { JsonLinesProcess } from '../../../src/lab/json-lines.js';
import { waitFor } from '../../../src/lab/process.js';

/** All frames of back end `h` received so far, oldest first (removes their records). */
export function drainFrames(p: JsonLinesProcess, h = 'main'): Buffer[] {
  const out: Buffer[] = [];
  for (let i = p.records.length - 1; i >= 0; i--) {
    const r = p.records[i]!;
    if (r['ev'] === 'batch' && (r['h'] ?? 'main') === h) {
      out.unshift(...(r['frames'] as string[]).map((hex) => Buffer.from(hex, 'hex')));
      p.records.splice(i, 1);
    }
  }
  return out;
}

/** Wait until back end `h` has received a frame satisfying `pred`; returns every frame seen so far (appended to `seen`). */
export async function collectUntil(
  p: JsonLinesProcess,
  h: string,
  pred: (f: Buffer) => boolean,
  seen: Buffer[],
  timeoutMs = 5000,
): Promise<Buffer[]> {
  await waitFor(
    () => {
      seen.push(...drainFrames(p, h));
      return seen.some(pred);
    },
    { timeoutMs, what: `a matching frame on ${h}` },
  );
  return seen;
}
