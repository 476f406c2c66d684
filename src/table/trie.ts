/**
 * RadixTrie: longest-prefix match over 128-bit keys, in typed arrays.
 *
 * Two stores behind one API, because the two kinds of entries have very different shapes:
 *
 * - Exact /128 entries (container addresses: up to millions, the common case) live in an
 *   open-addressing hash table with linear probing and backward-shift deletion. A bucket is five
 *   int32 words in one Int32Array: the four key words, then 1 + the index of a value slot
 *   (0 = empty bucket), plus a control byte per bucket in a separate small array (empty, or a
 *   7-bit tag of the hash): probes scan control bytes and read a bucket only on a tag match.
 *   The table doubles when it would pass 3/4 full. Value slots are reference
 *   counted and shared by entries inserted with the same value (checked against the last few
 *   values used), so shared values cost no per-entry pointer and a hit touches one cache line.
 * - Prefixes /0../127 (configured prefixes and exclusions: usually few, but any number works)
 *   live in a path-compressed binary radix trie (PATRICIA). A node is four int32 words in one
 *   Int32Array: child 0, child 1, prefix length, value slot (-1 = no value). Only nodes with a
 *   value keep a key (four words in a slot pool beside the value); a node without a value always
 *   has two children (except the root, which is the /0 node and is always there), so any search
 *   ends on a node with a key.
 *
 * Longest-prefix match is then: an exact /128 hit wins outright; otherwise walk the trie by the
 * address bits without comparing keys, remembering the nodes with values on the way, compare the
 * address once with the key of the last one (all nodes on a path are prefixes of it), and take the
 * deepest remembered node whose length is within the common prefix. A lookup reads the address in
 * place and allocates nothing: a scan of a few control bytes, one bucket read on a hit and, when
 * prefixes exist, one walk of the small trie.
 *
 * Memory: a /128 costs 21 bytes per bucket at a load of 3/8..3/4 (28..56 bytes), plus 12 bytes
 * (a pointer and a count) when its value is not shared; a prefix costs two nodes (32 bytes), a
 * 16-byte key and a pointer.
 * Pools grow by doubling; freed nodes and slots go on free lists and are reused.
 *
 * Why not one PATRICIA for everything: with a million /128s a binary trie is ~20 levels deep, and
 * each level is a dependent memory access, so a lookup costs microseconds. The hash answers
 * /128s in one bucket read. A million *prefixes* is the slow case (the trie walk), which
 * configurations do not come near. Figures: bench/trie.bench.ts and docs/lab-notes.md.
 *
 * Host bits beyond an entry's length are ignored (masked) on insert, delete and get.
 * Not safe to modify while iterating: `entries()`, `values()` and `forEachValue()` throw if the
 * trie changes under them.
 */

/** One entry as `entries()` yields it. `key` is a fresh 16-byte copy with host bits zeroed. */
export interface TrieEntry<V> {
  key: Uint8Array;
  length: number;
  value: V;
}

/** A value-bearing prefix covering an address, as `matchAll()` returns it. */
export interface TrieMatch<V> {
  length: number;
  value: V;
}

// Trie node layout (Int32Array, NODE words per node).
const NODE = 4;
const LEN = 2;
const SLOT = 3;
const ROOT = 0;
// Hash bucket layout (Int32Array, BUCKET words per bucket): key words 0..3, word 4 = slot + 1.
const BUCKET = 5;
const OCC = 4;

const INITIAL_BUCKETS = 16;
const INITIAL_NODES = 16;
const INITIAL_SLOTS = 8;
/** How many recently used value slots an insert checks for the same value. */
const RECENT = 4;

/** Big-endian 32-bit word of 4 bytes at `o`, as a signed int32. */
function word(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/**
 * Hash of a key's four words. Each word is multiplied by its own odd constant (a bijection, so
 * keys differing in one word never collide before the finalizer), the products are combined and
 * the result goes through the `lowbias32` finalizer (C. Wellons) so every bit reaches the low bits
 * the table index uses. Short on purpose: fewer instructions per lookup leave the CPU room to
 * overlap the memory access of one lookup with the next (MurmurHash3 was slower: docs/lab-notes.md).
 */
function hash4(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca77) ^ Math.imul(w2, 0xc2b2ae3d) ^ Math.imul(w3, 0x27d4eb2f);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return h ^ (h >>> 16);
}

/** Bit `i` (0 = most significant) of the four words in `w`. */
function bitOf(w: Int32Array, base: number, i: number): number {
  return (w[base + (i >>> 5)]! >>> (31 - (i & 31))) & 1;
}

/** Mask of the first `bits` bits of a word (bits <= 0: none; >= 32: all). */
function wordMask(bits: number): number {
  return bits >= 32 ? -1 : bits <= 0 ? 0 : ~(-1 >>> bits);
}

function checkKey(key: Uint8Array, keyOff: number, length: number): void {
  if (!(key instanceof Uint8Array)) throw new TypeError('RadixTrie: key must be a Uint8Array');
  if (!Number.isInteger(keyOff) || keyOff < 0 || keyOff + 16 > key.length) {
    throw new RangeError(`RadixTrie: need 16 key bytes at offset ${keyOff}, buffer has ${key.length}`);
  }
  if (!Number.isInteger(length) || length < 0 || length > 128) {
    throw new RangeError(`RadixTrie: prefix length ${length} is out of range 0..128`);
  }
}

function growInt32(a: Int32Array, minLength: number): Int32Array<ArrayBuffer> {
  let n = a.length;
  while (n < minLength) n *= 2;
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/** Longest-prefix-match table over 128-bit keys. See the file header for the layout. */
export class RadixTrie<V> {
  // Exact /128 hash table.
  private buckets = new Int32Array(INITIAL_BUCKETS * BUCKET);
  /**
   * One control byte per bucket: 0 = empty, else 0x80 | the top 7 bits of the key's hash. Probes
   * scan this small array (1 byte per bucket: it stays in cache when the buckets do not) and read
   * a bucket only when its tag matches, so a miss usually touches no bucket at all.
   */
  private ctrl = new Uint8Array(INITIAL_BUCKETS);
  private bucketMask = INITIAL_BUCKETS - 1;
  private exactCount = 0;
  /** Value slots of the /128 entries. A slot can be shared by many entries (see `valueSlot`). */
  private exactValues: (V | undefined)[] = [];
  /** Entries per value slot (0 = free). */
  private exactRefs = new Int32Array(INITIAL_SLOTS);
  private exactFree: number[] = [];
  /** Recently used value slots, tried first when a value is inserted again. */
  private readonly recent = new Int32Array(RECENT).fill(-1);
  private recentNext = 0;
  /** DataView over the last address buffer `lookup` saw: four word loads instead of 16 byte loads. */
  private view: DataView | undefined;
  private viewOf: Uint8Array | undefined;

  // Prefix trie (/0../127).
  private nodes = new Int32Array(INITIAL_NODES * NODE);
  private nodeTop = 1; // node 0 is the root
  private nodeFree = -1; // free list chained through child 0
  private keys = new Int32Array(INITIAL_SLOTS * 4);
  private slotValues: (V | undefined)[] = [];
  private slotFree = -1; // free list chained through key word 0
  private prefixCount = 0;

  private version = 0;
  /** Key words of the current operation (masked). */
  private readonly kw = new Int32Array(4);
  /** Lookup scratch: value nodes on the search path. At most one per length 0..127. */
  private readonly path = new Int32Array(129);

  constructor() {
    this.initRoot();
  }

  /** Number of entries (/128 entries and prefixes). */
  get size(): number {
    return this.exactCount + this.prefixCount;
  }

  /** Remove every entry and give the memory back. */
  clear(): void {
    this.buckets = new Int32Array(INITIAL_BUCKETS * BUCKET);
    this.ctrl = new Uint8Array(INITIAL_BUCKETS);
    this.bucketMask = INITIAL_BUCKETS - 1;
    this.exactCount = 0;
    this.exactValues = [];
    this.exactRefs = new Int32Array(INITIAL_SLOTS);
    this.exactFree = [];
    this.recent.fill(-1);
    this.view = undefined;
    this.viewOf = undefined;
    this.nodes = new Int32Array(INITIAL_NODES * NODE);
    this.nodeTop = 1;
    this.nodeFree = -1;
    this.keys = new Int32Array(INITIAL_SLOTS * 4);
    this.slotValues = [];
    this.slotFree = -1;
    this.prefixCount = 0;
    this.version++;
    this.initRoot();
  }

  /**
   * Set the value of the prefix `key[keyOff..keyOff+16)/length` (host bits ignored).
   * @returns the value previously stored at exactly that prefix, or undefined.
   * @throws RangeError/TypeError on a bad key, offset or length.
   */
  insert(key: Uint8Array, keyOff: number, length: number, value: V): V | undefined {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    this.version++;
    return length === 128 ? this.exactInsert(value) : this.prefixInsert(length, value);
  }

  /**
   * Remove the prefix `key/length` (host bits ignored).
   * @returns the removed value, or undefined when that exact prefix was not present.
   * @throws RangeError/TypeError on a bad key, offset or length.
   */
  delete(key: Uint8Array, keyOff: number, length: number): V | undefined {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    this.version++;
    return length === 128 ? this.exactDelete() : this.prefixDelete(length);
  }

  /**
   * The value stored at exactly the prefix `key/length` (host bits ignored); no prefix matching.
   * @throws RangeError/TypeError on a bad key, offset or length.
   */
  get(key: Uint8Array, keyOff: number, length: number): V | undefined {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    if (length === 128) {
      const b = this.exactFind();
      return b < 0 ? undefined : this.exactValues[this.buckets[b * BUCKET + OCC]! - 1];
    }
    const n = this.prefixFind(length);
    return n < 0 ? undefined : this.slotValues[this.nodes[n * NODE + SLOT]!];
  }

  /** True when exactly the prefix `key/length` is present. */
  has(key: Uint8Array, keyOff: number, length: number): boolean {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    return length === 128 ? this.exactFind() >= 0 : this.prefixFind(length) >= 0;
  }

  /**
   * Longest-prefix match of the 16 address bytes at `off`. The hot path: reads the bytes in
   * place, allocates nothing (except one DataView the first time it sees a buffer; the packet
   * loop passes the same buffer every time).
   * @returns the value of the most specific entry covering the address, or undefined.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  lookup(addr: Uint8Array, off: number): V | undefined {
    if (off >>> 0 !== off || off + 16 > addr.length) throw lookupRange(addr, off);
    if (this.exactCount !== 0) {
      const b = this.exactProbe(addr, off);
      if (b >= 0) return this.exactValues[b];
    }
    if (this.prefixCount === 0) return undefined;
    const n = this.prefixMatch(addr, off);
    return n < 0 ? undefined : this.slotValues[this.nodes[n * NODE + SLOT]!];
  }

  /**
   * The prefix length of the entry `lookup` would return, or -1 when nothing matches.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  lookupLength(addr: Uint8Array, off: number): number {
    if (off >>> 0 !== off || off + 16 > addr.length) throw lookupRange(addr, off);
    if (this.exactCount !== 0 && this.exactProbe(addr, off) >= 0) return 128;
    if (this.prefixCount === 0) return -1;
    const n = this.prefixMatch(addr, off);
    return n < 0 ? -1 : this.nodes[n * NODE + LEN]!;
  }

  /**
   * Every entry covering the address, most specific first (for `explain`; allocates).
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  matchAll(addr: Uint8Array, off: number): TrieMatch<V>[] {
    if (off >>> 0 !== off || off + 16 > addr.length) throw lookupRange(addr, off);
    const out: TrieMatch<V>[] = [];
    if (this.exactCount !== 0) {
      const b = this.exactProbe(addr, off);
      if (b >= 0) out.push({ length: 128, value: this.exactValues[b] as V });
    }
    if (this.prefixCount === 0) return out;
    let sp = this.prefixPath(addr, off);
    if (sp === 0) return out;
    const nodes = this.nodes;
    const cpl = this.commonPrefix(addr, off, nodes[this.path[sp - 1]! * NODE + SLOT]!);
    while (sp > 0) {
      const n = this.path[--sp]!;
      const len = nodes[n * NODE + LEN]!;
      if (len <= cpl) out.push({ length: len, value: this.slotValues[nodes[n * NODE + SLOT]!] as V });
    }
    return out;
  }

  /**
   * Every entry in address order: by key (host bits zero), a shorter prefix before a longer one
   * with the same key. Keys are fresh copies. Sorts the /128 entries, so this is O(n log n):
   * for listing and tests, not for the hot path.
   * @throws Error when the trie is modified during iteration.
   */
  *entries(): IterableIterator<TrieEntry<V>> {
    const v = this.version;
    const exact = this.sortedExactBuckets();
    const buckets = this.buckets;
    let ei = 0;
    const prefixes = this.prefixEntries();
    let p = prefixes.next();
    while (ei < exact.length || !p.done) {
      if (this.version !== v) throw new Error('RadixTrie modified during iteration');
      let takePrefix: boolean;
      if (p.done) takePrefix = false;
      else if (ei >= exact.length) takePrefix = true;
      else takePrefix = compareKey(p.value.key, buckets, exact[ei]! * BUCKET) <= 0;
      if (takePrefix) {
        yield (p as IteratorYieldResult<TrieEntry<V>>).value;
        p = prefixes.next();
      } else {
        const b = exact[ei++]! * BUCKET;
        const key = new Uint8Array(16);
        writeWords(key, buckets, b);
        yield { key, length: 128, value: this.exactValues[buckets[b + OCC]! - 1] as V };
      }
    }
  }

  /**
   * Every value, in no particular order (cheaper than `entries()`: no sort, no key copies).
   * @throws Error when the trie is modified during iteration.
   */
  *values(): IterableIterator<V> {
    const v = this.version;
    const buckets = this.buckets;
    for (let b = 0; b < buckets.length; b += BUCKET) {
      if (buckets[b + OCC] === 0) continue;
      if (this.version !== v) throw new Error('RadixTrie modified during iteration');
      yield this.exactValues[buckets[b + OCC]! - 1] as V;
    }
    for (let n = 0; n < this.nodeTop; n++) {
      const s = this.nodes[n * NODE + SLOT]!;
      if (s < 0) continue;
      if (this.version !== v) throw new Error('RadixTrie modified during iteration');
      yield this.slotValues[s] as V;
    }
  }

  /**
   * Call `fn` with every value, in no particular order: `values()` without a generator, for bulk
   * work over large tables.
   * @throws Error when `fn` modifies the trie (the iteration stops there).
   */
  forEachValue(fn: (value: V) => void): void {
    const v = this.version;
    const buckets = this.buckets;
    const values = this.exactValues;
    for (let b = 0; b < buckets.length; b += BUCKET) {
      const occ = buckets[b + OCC]!;
      if (occ === 0) continue;
      fn(values[occ - 1] as V);
      if (this.version !== v) throw new Error('RadixTrie modified during iteration');
    }
    for (let n = 0; n < this.nodeTop; n++) {
      const s = this.nodes[n * NODE + SLOT]!;
      if (s < 0) continue;
      fn(this.slotValues[s] as V);
      if (this.version !== v) throw new Error('RadixTrie modified during iteration');
    }
  }

  // ---------------------------------------------------------------- keys

  /** Load the 16 key bytes into `kw`, zeroing bits beyond `length`. */
  private loadKey(key: Uint8Array, off: number, length: number): void {
    const kw = this.kw;
    for (let i = 0; i < 4; i++) kw[i] = word(key, off + 4 * i) & wordMask(length - 32 * i);
  }

  /** Length of the common prefix of the address at `off` and the key in `slot` (0..128). */
  private commonPrefix(addr: Uint8Array, off: number, slot: number): number {
    const keys = this.keys;
    const k = slot * 4;
    for (let i = 0; i < 4; i++) {
      const x = word(addr, off + 4 * i) ^ keys[k + i]!;
      if (x !== 0) return i * 32 + Math.clz32(x);
    }
    return 128;
  }

  /** Length of the common prefix of `kw` and the key in `slot` (0..128). */
  private commonPrefixKw(slot: number): number {
    const keys = this.keys;
    const kw = this.kw;
    const k = slot * 4;
    for (let i = 0; i < 4; i++) {
      const x = kw[i]! ^ keys[k + i]!;
      if (x !== 0) return i * 32 + Math.clz32(x);
    }
    return 128;
  }

  // ---------------------------------------------------------------- exact /128 hash table

  /** Value slot of the /128 entry equal to the address at `off`, or -1. */
  private exactProbe(addr: Uint8Array, off: number): number {
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

  /** Bucket index holding `kw`, or -1. */
  private exactFind(): number {
    const kw = this.kw;
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

  private exactInsert(value: V): V | undefined {
    const found = this.exactFind();
    if (found >= 0) {
      const p = found * BUCKET + OCC;
      const s = this.buckets[p]! - 1;
      const old = this.exactValues[s];
      if (old !== value) {
        const ns = this.valueSlot(value);
        this.buckets[p] = ns + 1;
        this.releaseValueSlot(s);
      }
      return old;
    }
    if ((this.exactCount + 1) * 4 > (this.bucketMask + 1) * 3) this.rehash((this.bucketMask + 1) * 2);
    const s = this.valueSlot(value);
    const kw = this.kw;
    this.place(kw[0]!, kw[1]!, kw[2]!, kw[3]!, s + 1);
    this.exactCount++;
    return undefined;
  }

  /**
   * A value slot holding `value`, with one more reference. Entries inserted with the same value
   * share a slot when that value was used recently, so a table whose values are a few shared
   * objects keeps a handful of slots that stay in cache, and a lookup hit costs one memory access
   * (the bucket) instead of two.
   */
  private valueSlot(value: V): number {
    const recent = this.recent;
    const refs = this.exactRefs;
    for (let i = 0; i < RECENT; i++) {
      const s = recent[i]!;
      if (s >= 0 && refs[s]! > 0 && this.exactValues[s] === value) {
        refs[s]!++;
        return s;
      }
    }
    let s: number;
    if (this.exactFree.length > 0) {
      s = this.exactFree.pop()!;
      this.exactValues[s] = value;
    } else {
      s = this.exactValues.length;
      this.exactValues.push(value);
      if (s >= this.exactRefs.length) this.exactRefs = growInt32(this.exactRefs, s + 1);
    }
    this.exactRefs[s] = 1;
    recent[this.recentNext] = s;
    this.recentNext = (this.recentNext + 1) % RECENT;
    return s;
  }

  /** Drop one reference to a value slot; free it when none are left. */
  private releaseValueSlot(s: number): void {
    if (--this.exactRefs[s]! > 0) return;
    this.exactValues[s] = undefined;
    this.exactFree.push(s);
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

  private exactDelete(): V | undefined {
    let i = this.exactFind();
    if (i < 0) return undefined;
    const t = this.buckets;
    const ctrl = this.ctrl;
    const mask = this.bucketMask;
    const s = t[i * BUCKET + OCC]! - 1;
    const old = this.exactValues[s];
    this.releaseValueSlot(s);
    this.exactCount--;
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
    if (this.exactCount === 0 && this.exactFree.length > 0) {
      this.exactValues = [];
      this.exactRefs = new Int32Array(INITIAL_SLOTS);
      this.exactFree = [];
      this.recent.fill(-1);
    }
    return old;
  }

  /** Occupied bucket indexes sorted by key (unsigned, most significant word first). */
  private sortedExactBuckets(): Int32Array {
    const t = this.buckets;
    const out = new Int32Array(this.exactCount);
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

  // ---------------------------------------------------------------- prefix trie

  private initRoot(): void {
    const nodes = this.nodes;
    nodes[0] = -1;
    nodes[1] = -1;
    nodes[LEN] = 0;
    nodes[SLOT] = -1;
  }

  private newNode(length: number, slot: number): number {
    let n = this.nodeFree;
    if (n >= 0) {
      this.nodeFree = this.nodes[n * NODE]!;
    } else {
      n = this.nodeTop++;
      if (n * NODE >= this.nodes.length) this.nodes = growInt32(this.nodes, (n + 1) * NODE);
    }
    const nodes = this.nodes;
    const p = n * NODE;
    nodes[p] = -1;
    nodes[p + 1] = -1;
    nodes[p + LEN] = length;
    nodes[p + SLOT] = slot;
    return n;
  }

  private freeNode(n: number): void {
    const p = n * NODE;
    this.nodes[p] = this.nodeFree;
    this.nodes[p + 1] = -1;
    this.nodes[p + LEN] = 0;
    this.nodes[p + SLOT] = -1;
    this.nodeFree = n;
  }

  /** A value slot holding the key `kw` and `value`. */
  private newSlot(value: V): number {
    let s = this.slotFree;
    if (s >= 0) {
      this.slotFree = this.keys[s * 4]!;
      this.slotValues[s] = value;
    } else {
      s = this.slotValues.length;
      this.slotValues.push(value);
      if (s * 4 >= this.keys.length) this.keys = growInt32(this.keys, (s + 1) * 4);
    }
    this.keys.set(this.kw, s * 4);
    this.prefixCount++;
    return s;
  }

  private freeSlot(s: number): void {
    this.slotValues[s] = undefined;
    this.keys[s * 4] = this.slotFree;
    this.slotFree = s;
    this.prefixCount--;
  }

  /** Point the child link of `parent` that leads to `from` at `to`. */
  private relink(parent: number, from: number, to: number): void {
    const p = parent * NODE;
    if (this.nodes[p] === from) this.nodes[p] = to;
    else this.nodes[p + 1] = to;
  }

  /**
   * Push the value nodes on the search path of the address onto `path`, shallowest first.
   * @returns how many were pushed.
   */
  private prefixPath(addr: Uint8Array, off: number): number {
    const nodes = this.nodes;
    const path = this.path;
    let sp = 0;
    let p = ROOT;
    for (;;) {
      const len = nodes[p + LEN]!;
      if (nodes[p + SLOT]! >= 0) path[sp++] = p >> 2; // p / NODE
      const c = nodes[p + ((addr[off + (len >>> 3)]! >>> (7 - (len & 7))) & 1)]!;
      if (c < 0) return sp;
      p = c * NODE;
    }
  }

  /** The node of the longest prefix covering the address, or -1. */
  private prefixMatch(addr: Uint8Array, off: number): number {
    let sp = this.prefixPath(addr, off);
    if (sp === 0) return -1;
    const nodes = this.nodes;
    const path = this.path;
    // The last value node is the deepest node of the path (a node without a value always has
    // two children), and every node on the path is a prefix of its key.
    let n = path[--sp]!;
    const cpl = this.commonPrefix(addr, off, nodes[n * NODE + SLOT]!);
    for (;;) {
      if (nodes[n * NODE + LEN]! <= cpl) return n;
      if (sp === 0) return -1;
      n = path[--sp]!;
    }
  }

  /** The node holding exactly `kw/length` with a value, or -1. */
  private prefixFind(length: number): number {
    const nodes = this.nodes;
    const kw = this.kw;
    let n = ROOT;
    for (;;) {
      const len = nodes[n * NODE + LEN]!;
      if (len >= length) break;
      n = nodes[n * NODE + bitOf(kw, 0, len)]!;
      if (n < 0) return -1;
    }
    if (nodes[n * NODE + LEN] !== length) return -1;
    const s = nodes[n * NODE + SLOT]!;
    if (s < 0 || this.commonPrefixKw(s) < 128) return -1;
    return n;
  }

  private prefixInsert(length: number, value: V): V | undefined {
    const kw = this.kw;
    let nodes = this.nodes;
    // 1. Descend by the key's bits to the last node shorter than `length`.
    let n = ROOT;
    for (;;) {
      const len = nodes[n * NODE + LEN]!;
      if (len >= length) break;
      const c = nodes[n * NODE + bitOf(kw, 0, len)]!;
      if (c < 0) break;
      n = c;
    }
    // 2. Any key below n: the nodes on the path are prefixes of it.
    let r = n;
    while (r >= 0 && nodes[r * NODE + SLOT]! < 0) {
      const c0 = nodes[r * NODE]!;
      r = c0 >= 0 ? c0 : nodes[r * NODE + 1]!;
    }
    let refSlot = -1;
    let d = 0;
    if (r >= 0) {
      refSlot = nodes[r * NODE + SLOT]!;
      d = Math.min(this.commonPrefixKw(refSlot), length, nodes[n * NODE + LEN]!);
    }
    // 3. Walk again to the deepest node of length <= d: the new key branches off there.
    let cur = ROOT;
    let next = -1;
    for (;;) {
      const len = nodes[cur * NODE + LEN]!;
      if (len >= d) break;
      next = nodes[cur * NODE + bitOf(kw, 0, len)]!;
      if (next < 0 || nodes[next * NODE + LEN]! > d) break;
      cur = next;
    }
    const curLen = nodes[cur * NODE + LEN]!;
    if (curLen === d) {
      if (d === length) {
        const s = nodes[cur * NODE + SLOT]!;
        if (s >= 0) {
          const old = this.slotValues[s];
          this.slotValues[s] = value;
          return old;
        }
        const slot = this.newSlot(value);
        this.nodes[cur * NODE + SLOT] = slot;
        return undefined;
      }
      const dir = bitOf(kw, 0, d);
      if (nodes[cur * NODE + dir]! >= 0) throw new Error('RadixTrie: internal error (occupied branch)');
      const leaf = this.newNode(length, this.newSlot(value));
      this.nodes[cur * NODE + dir] = leaf;
      return undefined;
    }
    // curLen < d < length of next: put a node of length d between cur and next.
    if (next < 0) throw new Error('RadixTrie: internal error (missing branch)');
    const nextDir = bitOf(this.keys, refSlot * 4, d);
    let mid: number;
    if (d === length) {
      mid = this.newNode(length, this.newSlot(value));
    } else {
      if (bitOf(kw, 0, d) === nextDir) throw new Error('RadixTrie: internal error (no divergence)');
      mid = this.newNode(d, -1);
      const leaf = this.newNode(length, this.newSlot(value));
      this.nodes[mid * NODE + (nextDir ^ 1)] = leaf;
    }
    nodes = this.nodes;
    nodes[mid * NODE + nextDir] = next;
    this.relink(cur, next, mid);
    return undefined;
  }

  private prefixDelete(length: number): V | undefined {
    const nodes = this.nodes;
    const kw = this.kw;
    let grand = -1;
    let parent = -1;
    let n = ROOT;
    for (;;) {
      const len = nodes[n * NODE + LEN]!;
      if (len >= length) break;
      const c = nodes[n * NODE + bitOf(kw, 0, len)]!;
      if (c < 0) return undefined;
      grand = parent;
      parent = n;
      n = c;
    }
    if (nodes[n * NODE + LEN] !== length) return undefined;
    const s = nodes[n * NODE + SLOT]!;
    if (s < 0 || this.commonPrefixKw(s) < 128) return undefined;
    const old = this.slotValues[s];
    this.freeSlot(s);
    nodes[n * NODE + SLOT] = -1;
    if (n === ROOT) return old;
    const c0 = nodes[n * NODE]!;
    const c1 = nodes[n * NODE + 1]!;
    if (c0 >= 0 && c1 >= 0) return old; // stays as a branch node
    const only = c0 >= 0 ? c0 : c1;
    this.relink(parent, n, only);
    this.freeNode(n);
    if (only < 0 && parent !== ROOT && nodes[parent * NODE + SLOT]! < 0) {
      // The parent was a branch node and has one child left: splice it out too.
      const p0 = nodes[parent * NODE]!;
      this.relink(grand, parent, p0 >= 0 ? p0 : nodes[parent * NODE + 1]!);
      this.freeNode(parent);
    }
    return old;
  }

  /** Prefix entries in pre-order (child 0 before child 1): address order. */
  private *prefixEntries(): IterableIterator<TrieEntry<V>> {
    const stack: number[] = [ROOT];
    while (stack.length > 0) {
      const n = stack.pop()!;
      const nodes = this.nodes;
      const s = nodes[n * NODE + SLOT]!;
      const c0 = nodes[n * NODE]!;
      const c1 = nodes[n * NODE + 1]!;
      if (c1 >= 0) stack.push(c1);
      if (c0 >= 0) stack.push(c0);
      if (s >= 0) {
        const key = new Uint8Array(16);
        writeWords(key, this.keys, s * 4);
        yield { key, length: nodes[n * NODE + LEN]!, value: this.slotValues[s] as V };
      }
    }
  }

  /**
   * Check the structural invariants (for tests): links, lengths, keys as prefixes of their
   * descendants, branch nodes with two children, counts, hash probe chains.
   * @throws Error describing the first violation.
   */
  checkInvariants(): void {
    const nodes = this.nodes;
    const keys = this.keys;
    let values = 0;
    let reachable = 0;
    // Each node's representative key R (its own, or the first below it). For every link
    // parent -> child in direction dir: R(child) agrees with R(parent) on the parent's bits and
    // has bit `dir` at the parent's length. By induction every key below a node then starts with
    // that node's prefix, which is what lookups rely on.
    const walk = (n: number, parentLen: number): void => {
      reachable++;
      const len = nodes[n * NODE + LEN]!;
      const s = nodes[n * NODE + SLOT]!;
      const c0 = nodes[n * NODE]!;
      const c1 = nodes[n * NODE + 1]!;
      if (n !== ROOT && len <= parentLen) throw new Error(`node ${n}: length ${len} <= parent's ${parentLen}`);
      if (len > 127) throw new Error(`node ${n}: length ${len} in the prefix trie`);
      if (s >= 0) {
        values++;
        for (let i = len; i < 128; i++) if (bitOf(keys, s * 4, i) !== 0) throw new Error(`node ${n}: host bits set`);
      } else if (n !== ROOT && (c0 < 0 || c1 < 0)) {
        throw new Error(`node ${n}: branch node without two children`);
      }
      if (c0 < 0 && c1 < 0) return;
      const rep = firstSlotBelow(nodes, n) * 4;
      for (const [dir, c] of [
        [0, c0],
        [1, c1],
      ] as const) {
        if (c < 0) continue;
        const cr = firstSlotBelow(nodes, c) * 4;
        for (let i = 0; i < len; i++) {
          if (bitOf(keys, cr, i) !== bitOf(keys, rep, i)) throw new Error(`node ${n}: child ${dir} leaves the prefix`);
        }
        if (bitOf(keys, cr, len) !== dir) throw new Error(`node ${n}: child ${dir} has the wrong bit`);
        walk(c, len);
      }
    };
    walk(ROOT, -1);
    if (values !== this.prefixCount) throw new Error(`prefix count ${this.prefixCount}, found ${values}`);
    let free = 0;
    for (let n = this.nodeFree; n >= 0; n = nodes[n * NODE]!) free++;
    if (reachable + free !== this.nodeTop) throw new Error(`nodes leak: ${reachable} + ${free} free != ${this.nodeTop}`);
    let freeSlots = 0;
    for (let sl = this.slotFree; sl >= 0; sl = keys[sl * 4]!) freeSlots++;
    if (values + freeSlots !== this.slotValues.length) throw new Error('value slots leak');
    const t = this.buckets;
    const mask = this.bucketMask;
    let occupied = 0;
    for (let i = 0; i <= mask; i++) {
      const p = i * BUCKET;
      const c = this.ctrl[i]!;
      if (t[p + OCC] === 0) {
        if (c !== 0) throw new Error(`bucket ${i}: empty with control byte ${c}`);
        continue;
      }
      occupied++;
      const h = hash4(t[p]!, t[p + 1]!, t[p + 2]!, t[p + 3]!);
      if (c !== (0x80 | (h >>> 25))) throw new Error(`bucket ${i}: control byte ${c} does not match its key`);
      for (let j = h & mask; j !== i; j = (j + 1) & mask) {
        if (t[j * BUCKET + OCC] === 0) throw new Error(`bucket ${i}: hole in its probe run`);
      }
    }
    if (occupied !== this.exactCount) throw new Error(`exact count ${this.exactCount}, found ${occupied}`);
    const refs = new Int32Array(this.exactValues.length);
    for (let p = 0; p < t.length; p += BUCKET) if (t[p + OCC] !== 0) refs[t[p + OCC]! - 1]!++;
    let live = 0;
    for (let sl = 0; sl < refs.length; sl++) {
      if (refs[sl] !== this.exactRefs[sl]) throw new Error(`value slot ${sl}: ${this.exactRefs[sl]} references counted, ${refs[sl]} found`);
      if (refs[sl]! > 0) live++;
    }
    if (live + this.exactFree.length !== this.exactValues.length) throw new Error('exact value slots leak');
    for (const sl of this.exactFree) if (this.exactRefs[sl] !== 0) throw new Error(`free value slot ${sl} in use`);
  }
}

function firstSlotBelow(nodes: Int32Array, n: number): number {
  while (nodes[n * NODE + SLOT]! < 0) {
    const c0 = nodes[n * NODE]!;
    n = c0 >= 0 ? c0 : nodes[n * NODE + 1]!;
  }
  return nodes[n * NODE + SLOT]!;
}

function lookupRange(addr: Uint8Array, off: number): RangeError {
  return new RangeError(`RadixTrie.lookup: need 16 address bytes at offset ${off}, buffer has ${addr.length}`);
}

/** Write the four words at `w[base..]` as 16 big-endian bytes. */
function writeWords(out: Uint8Array, w: Int32Array, base: number): void {
  for (let i = 0; i < 4; i++) {
    const x = w[base + i]!;
    out[4 * i] = x >>> 24;
    out[4 * i + 1] = (x >>> 16) & 0xff;
    out[4 * i + 2] = (x >>> 8) & 0xff;
    out[4 * i + 3] = x & 0xff;
  }
}

/** Compare 16 key bytes with the four words at `w[base..]`, as unsigned big-endian numbers. */
function compareKey(key: Uint8Array, w: Int32Array, base: number): number {
  for (let i = 0; i < 4; i++) {
    const x = word(key, 4 * i) >>> 0;
    const y = w[base + i]! >>> 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
