/**
 * Frames we originate (unsolicited NAs, DAD probes, NS to the router), one per item, built into
 * one reused buffer and sent through the sink in batches of {@link SEND_BATCH}.
 */
import type { FrameSink } from '../io/backend.js';

/** Frames per send call, and so slots `buf` must hold. */
export const SEND_BATCH = 64;

/**
 * Build one frame per item with `build` (into `buf` at slot offsets `slot` bytes apart; 0 bytes
 * built skips the item) and send them, {@link SEND_BATCH} per call.
 * @returns frames built and frames the sink accepted.
 */
export function sendEach<T>(
  sink: FrameSink,
  buf: Uint8Array,
  slot: number,
  items: readonly T[],
  build: (item: T, out: Uint8Array, off: number) => number,
): { built: number; sent: number } {
  let built = 0;
  let sent = 0;
  const offsets = new Uint32Array(SEND_BATCH);
  const lengths = new Uint32Array(SEND_BATCH);
  for (let i = 0; i < items.length; i += SEND_BATCH) {
    let n = 0;
    for (let k = i; k < items.length && k < i + SEND_BATCH; k++) {
      const off = n * slot;
      const len = build(items[k]!, buf, off);
      if (len === 0) continue;
      offsets[n] = off;
      lengths[n] = len;
      n++;
    }
    built += n;
    if (n > 0) sent += sink.send(buf, offsets, lengths, n);
  }
  return { built, sent };
}
