/**
 * HostStore: the exact /128 entries of a RadixTrie (container addresses: up to millions, the
 * common case), in an open-addressing hash table with linear probing and backward-shift deletion.
 *
 * A bucket is five int32 words in one Int32Array: the four key words, then 1 + the index of a
 * value slot (0 = empty bucket), plus a control byte per bucket in a separate small array (empty,
 * or a 7-bit tag of the hash): probes scan control bytes and read a bucket only on a tag match.
 * The table doubles when it would pass 3/4 full. Value slots are reference counted and shared by
 * entries inserted with the same value (checked against the last few values used), so shared
 * values cost no per-entry pointer and a hit touches one cache line.
 *
 * Memory: 21 bytes per bucket at a load of 3/8..3/4 (28..56 bytes per entry), plus 12 bytes
 * (a pointer and a count) when an entry's value is not shared.
 *
 * Keys come in as four words (see key-words.ts) that RadixTrie has checked; lookups read the
 * address bytes in place. The layout fields are public so that the invariant checks of the tests
 * (test/support/trie-invariants.ts) can read them; only RadixTrie holds a store, privately.
 */
import { growInt32, wordsToBytes } from './key-words.js';
import type { TrieEntry } from './trie.js';

/** Words per bucket: key words 0..3, then word OCC = value slot + 1 (0 = empty). */
export const BUCKET = 5;
export const OCC = 4;

const INITIAL_BUCKETS = 16;
const INITIAL_SLOTS = 8;
/** How many recently used value slots an insert checks for the same value. */
const RECENT = 4;

/**
 * Hash of a key's four words. Each word is multiplied by its own odd constant (a bijection, so
 * keys differing in one word never collide before the finalizer), the products are combined and
 * the result goes through the `lowbias32` finalizer (C. Wellons) so every bit reaches the low bits
 * the table index uses. Short on purpose: fewer instructions per lookup leave the CPU room to
 * overlap the memory access of one lookup with the next (MurmurHash3 was slower: docs/lab-notes.md).
 */
export function hash4(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca77) ^ Math.imul(w2, 0xc2b2ae3d) ^ Math.imul(w3, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return h ^ (h >>> 16);
}

/** Hash table of /128 keys. See the file header for the layout. */
export class HostStore<V> {
  /** BUCKET words per bucket. */
  buckets = new Int32Array(INITIAL_BUCKETS * BUCKET);
  /**
   * One control byte per bucket: 0 = empty, else 0x80 | the top 7 bits of the key's hash. Probes
   * scan this small array (1 byte per bucket: it stays in cache when the buckets do not) and read
   * a bucket only when its tag matches, so a miss usually touches no bucket at all.
   */
  ctrl = new Uint8Array(INITIAL_BUCKETS);
  /** Number of buckets - 1 (a power of two minus one). */
  bucketMask = INITIAL_BUCKETS - 1;
  /** Value slots. A slot can be shared by many entries (see `valueSlot`). */
  slotValues: (V | undefined)[] = [];
  /** Entries per value slot (0 = free). */
  slotRefs = new Int32Array(INITIAL_SLOTS);
  slotFree: number[] = [];
  private count = 0;
  /** Recently used value slots, tried first when a value is inserted again. */
  private readonly recent = new Int32Array(RECENT).fill(-1);
  private recentNext = 0;
  /** DataView over the last address buffer `probe` saw: four word loads instead of 16 byte loads. */
  private view: DataView | undefined;
  private viewOf: Uint8Array | undefined;

  /** Number of entries. */
  get size(): number {
    return this.count;
  }

  /** Remove every entry and give the memory back. */
  clear(): void {
    this.buckets = new Int32Array(INITIAL_BUCKETS * BUCKET);
    this.ctrl = new Uint8Array(INITIAL_BUCKETS);
    this.bucketMask = INITIAL_BUCKETS - 1;
    this.count = 0;
    this.slotValues = [];
    this.slotRefs = new Int32Array(INITIAL_SLOTS);
    this.slotFree = [];
    this.recent.fill(-1);
    this.view = undefined;
    this.viewOf = undefined;
  }

  /**
   * Value slot of the entry equal to the 16 address bytes at `off` (the caller has checked that
   * they are there), or -1. The hot path: allocates nothing except one DataView the first time it
   * sees a buffer (the packet loop passes the same buffer every time).
   */
  probe(addr: Uint8Array, off: number): number {
    let view = this.view;
    if (this.viewOf !== addr) {
      view = this.view = new DataView(addr.buffer, addr.byteOffset, addr.byteLength);
      this.viewOf = addr;
    }
    const w0 = view!.getInt32(off);
    const w1 = view!.getInt32(off + 4);
    const w2 = view!.getInt32(off + 8);
    const w3 = view!.getInt32(off + 12);
    const h = hash4(w0, w1, w2, w3);
    const tag = 0x80 | (h >>> 25);
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const c = ctrl[i]!;
      if (c === 0) return -1;
      if (c === tag) {
        const t = this.buckets;
        const p = i * BUCKET;
        if (t[p] === w0 && t[p + 1] === w1 && t[p + 2] === w2 && t[p + 3] === w3) return t[p + OCC]! - 1;
      }
    }
  }

  /** Grow once, now, to hold `extra` more entries without passing 3/4 full. */
  reserve(extra: number): void {
    let n = this.bucketMask + 1;
    while ((this.count + extra) * 4 > n * 3) n *= 2;
    if (n !== this.bucketMask + 1) this.rehash(n);
  }

  /** The value of the entry with key `kw`, or undefined. */
  get(kw: Int32Array): V | undefined {
    const b = this.find(kw);
    return b < 0 ? undefined : this.slotValues[this.buckets[b * BUCKET + OCC]! - 1];
  }

  /** True when the key `kw` is present. */
  has(kw: Int32Array): boolean {
    return this.find(kw) >= 0;
  }

  /**
   * Set the value of the key `kw`.
   * @returns the previous value, or undefined.
   */
  insert(kw: Int32Array, value: V): V | undefined {
    const found = this.find(kw);
    if (found >= 0) {
      const p = found * BUCKET + OCC;
      const s = this.buckets[p]! - 1;
      const old = this.slotValues[s];
      if (old !== value) {
        const ns = this.valueSlot(value);
        this.buckets[p] = ns + 1;
        this.releaseValueSlot(s);
      }
      return old;
    }
    if ((this.count + 1) * 4 > (this.bucketMask + 1) * 3) this.rehash((this.bucketMask + 1) * 2);
    const s = this.valueSlot(value);
    this.place(kw[0]!, kw[1]!, kw[2]!, kw[3]!, s + 1);
    this.count++;
    return undefined;
  }

  /**
   * Insert the key `kw` with `value` unless it is present (undefined values are not stored by
   * the table, so undefined means "inserted").
   * @returns the present value, or undefined when `value` was inserted.
   */
  insertIfAbsent(kw: Int32Array, value: V): V | undefined {
    if ((this.count + 1) * 4 > (this.bucketMask + 1) * 3) this.rehash((this.bucketMask + 1) * 2);
    const w0 = kw[0]!;
    const w1 = kw[1]!;
    const w2 = kw[2]!;
    const w3 = kw[3]!;
    const h = hash4(w0, w1, w2, w3);
    const tag = 0x80 | (h >>> 25);
    const t = this.buckets;
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const c = ctrl[i]!;
      if (c === 0) break;
      const p = i * BUCKET;
      if (c === tag && t[p] === w0 && t[p + 1] === w1 && t[p + 2] === w2 && t[p + 3] === w3) return this.slotValues[t[p + OCC]! - 1];
    }
    // i is the first empty bucket of the probe sequence: where place() would put the key.
    const s = this.valueSlot(value);
    ctrl[i] = tag;
    const p = i * BUCKET;
    t[p] = w0;
    t[p + 1] = w1;
    t[p + 2] = w2;
    t[p + 3] = w3;
    t[p + OCC] = s + 1;
    this.count++;
    return undefined;
  }

  /**
   * Remove the key `kw`.
   * @returns the removed value, or undefined when the key was not present.
   */
  delete(kw: Int32Array): V | undefined {
    let i = this.find(kw);
    if (i < 0) return undefined;
    const t = this.buckets;
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    const s = t[i * BUCKET + OCC]! - 1;
    const old = this.slotValues[s];
    this.releaseValueSlot(s);
    this.count--;
    // Backward-shift deletion: pull later entries of the run into the hole when their home
    // bucket does not lie cyclically in (hole, position].
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (ctrl[j] === 0) break;
      const q = j * BUCKET;
      const home = hash4(t[q]!, t[q + 1]!, t[q + 2]!, t[q + 3]!) & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        t.copyWithin(i * BUCKET, q, q + BUCKET);
        ctrl[i] = ctrl[j]!;
        i = j;
      }
    }
    t.fill(0, i * BUCKET, i * BUCKET + BUCKET);
    ctrl[i] = 0;
    if (this.count === 0 && this.slotFree.length > 0) {
      this.slotValues = [];
      this.slotRefs = new Int32Array(INITIAL_SLOTS);
      this.slotFree = [];
      this.recent.fill(-1);
    }
    return old;
  }

  /**
   * Every entry in key order (unsigned, most significant byte first), keys as fresh copies.
   * Sorts, so O(n log n). The caller detects changes during iteration.
   */
  *entries(): IterableIterator<TrieEntry<V>> {
    const order = this.sortedBuckets();
    const t = this.buckets;
    for (let i = 0; i < order.length; i++) {
      const b = order[i]! * BUCKET;
      yield { key: wordsToBytes(t, b), length: 128, value: this.slotValues[t[b + OCC]! - 1] as V };
    }
  }

  /** Every value, in bucket order. The caller detects changes during iteration. */
  *values(): IterableIterator<V> {
    const t = this.buckets;
    for (let b = 0; b < t.length; b += BUCKET) {
      if (t[b + OCC] === 0) continue;
      yield this.slotValues[t[b + OCC]! - 1] as V;
    }
  }

  /** Call `fn` with every value, in bucket order. The caller detects changes made by `fn`. */
  forEachValue(fn: (value: V) => void): void {
    const t = this.buckets;
    const values = this.slotValues;
    for (let b = 0; b < t.length; b += BUCKET) {
      const occ = t[b + OCC]!;
      if (occ !== 0) fn(values[occ - 1] as V);
    }
  }

  /** Bucket index holding `kw`, or -1. */
  private find(kw: Int32Array): number {
    const w0 = kw[0]!;
    const w1 = kw[1]!;
    const w2 = kw[2]!;
    const w3 = kw[3]!;
    const h = hash4(w0, w1, w2, w3);
    const tag = 0x80 | (h >>> 25);
    const t = this.buckets;
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const c = ctrl[i]!;
      if (c === 0) return -1;
      const p = i * BUCKET;
      if (c === tag && t[p] === w0 && t[p + 1] === w1 && t[p + 2] === w2 && t[p + 3] === w3) return i;
    }
  }

  /**
   * A value slot holding `value`, with one more reference. Entries inserted with the same value
   * share a slot when that value was used recently, so a table whose values are a few shared
   * objects keeps a handful of slots that stay in cache, and a lookup hit costs one memory access
   * (the bucket) instead of two.
   */
  private valueSlot(value: V): number {
    const recent = this.recent;
    const refs = this.slotRefs;
    for (let i = 0; i < RECENT; i++) {
      const s = recent[i]!;
      if (s >= 0 && refs[s]! > 0 && this.slotValues[s] === value) {
        refs[s]!++;
        return s;
      }
    }
    let s: number;
    if (this.slotFree.length > 0) {
      s = this.slotFree.pop()!;
      this.slotValues[s] = value;
    } else {
      s = this.slotValues.length;
      this.slotValues.push(value);
      if (s >= this.slotRefs.length) this.slotRefs = growInt32(this.slotRefs, s + 1);
    }
    this.slotRefs[s] = 1;
    recent[this.recentNext] = s;
    this.recentNext = (this.recentNext + 1) % RECENT;
    return s;
  }

  /** Drop one reference to a value slot; free it when none are left. */
  private releaseValueSlot(s: number): void {
    if (--this.slotRefs[s]! > 0) return;
    this.slotValues[s] = undefined;
    this.slotFree.push(s);
  }

  /** Put a key known to be absent into the first free bucket of its probe sequence. */
  private place(w0: number, w1: number, w2: number, w3: number, occ: number): void {
    const t = this.buckets;
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    const h = hash4(w0, w1, w2, w3);
    let i = h & mask;
    while (ctrl[i] !== 0) i = (i + 1) & mask;
    ctrl[i] = 0x80 | (h >>> 25);
    const p = i * BUCKET;
    t[p] = w0;
    t[p + 1] = w1;
    t[p + 2] = w2;
    t[p + 3] = w3;
    t[p + OCC] = occ;
  }

  private rehash(nBuckets: number): void {
    const old = this.buckets;
    this.buckets = new Int32Array(nBuckets * BUCKET);
    this.ctrl = new Uint8Array(nBuckets);
    this.bucketMask = nBuckets - 1;
    for (let p = 0; p < old.length; p += BUCKET) {
      const occ = old[p + OCC]!;
      if (occ !== 0) this.place(old[p]!, old[p + 1]!, old[p + 2]!, old[p + 3]!, occ);
    }
  }

  /** Occupied bucket indexes sorted by key (unsigned, most significant word first). */
  private sortedBuckets(): Int32Array {
    const t = this.buckets;
    const out = new Int32Array(this.count);
    let n = 0;
    for (let i = 0; i <= this.bucketMask; i++) if (t[i * BUCKET + OCC] !== 0) out[n++] = i;
    return out.sort((a, b) => {
      const pa = a * BUCKET;
      const pb = b * BUCKET;
      for (let k = 0; k < 4; k++) {
        const x = t[pa + k]! >>> 0;
        const y = t[pb + k]! >>> 0;
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    });
  }
}
