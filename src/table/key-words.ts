/**
 * 128-bit keys as four big-endian int32 words: the form both stores of RadixTrie keep keys in
 * (host-store.ts, prefix-trie.ts), and the few helpers they share.
 */

/** Big-endian 32-bit word of 4 bytes at `o`, as a signed int32. */
export function word(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/** Bit `i` (0 = most significant) of the four words at `w[base..]`. */
export function bitOf(w: Int32Array, base: number, i: number): number {
  return (w[base + (i >>> 5)]! >>> (31 - (i & 31))) & 1;
}

/** Write the four words at `w[base..]` as 16 big-endian bytes into a fresh array. */
export function wordsToBytes(w: Int32Array, base: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const x = w[base + i]!;
    out[4 * i] = x >>> 24;
    out[4 * i + 1] = (x >>> 16) & 0xff;
    out[4 * i + 2] = (x >>> 8) & 0xff;
    out[4 * i + 3] = x & 0xff;
  }
  return out;
}

/** Compare two 16-byte keys as unsigned big-endian numbers: negative, 0 or positive. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** A copy of `a` at least `minLength` long (the length doubled as often as needed). */
export function growInt32(a: Int32Array, minLength: number): Int32Array<ArrayBuffer> {
  let n = a.length;
  while (n < minLength) n *= 2;
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
