/**
 * RadixTrie: longest-prefix match over 128-bit keys, in typed arrays.
 *
 * Two stores behind one API, because the two kinds of entries have very different shapes:
 *
 * - Exact /128 entries (container addresses: up to millions, the common case) live in a hash
 *   table (host-store.ts): a lookup hit is one bucket read.
 * - Prefixes /0../127 (configured prefixes and exclusions: usually few, but any number works)
 *   live in a path-compressed binary radix trie (prefix-trie.ts).
 *
 * Longest-prefix match is then: an exact /128 hit wins outright; otherwise the longest prefix in
 * the trie. A lookup reads the address in place and allocates nothing: a scan of a few control
 * bytes, one bucket read on a hit and, when prefixes exist, one walk of the small trie.
 *
 * Memory: a /128 costs 28..56 bytes, plus 12 when its value is not shared with other entries; a
 * prefix costs about 60 bytes (details in the two store files).
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
import { HostStore } from './host-store.js';
import { compareKeys, word } from './key-words.js';
import { PrefixTrie } from './prefix-trie.js';

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

function lookupRange(addr: Uint8Array, off: number): RangeError {
  return new RangeError(`RadixTrie.lookup: need 16 address bytes at offset ${off}, buffer has ${addr.length}`);
}

function modified(): Error {
  return new Error('RadixTrie modified during iteration');
}

/** Longest-prefix-match table over 128-bit keys. See the file header. */
export class RadixTrie<V> {
  private readonly hosts = new HostStore<V>();
  private readonly prefixes = new PrefixTrie<V>();
  /** Bumped by every change, so iterations can tell that the trie changed under them. */
  private version = 0;
  /** Key words of the current operation (masked). */
  private readonly kw = new Int32Array(4);

  /** Number of entries (/128 entries and prefixes). */
  get size(): number {
    return this.hosts.size + this.prefixes.size;
  }

  /** Remove every entry and give the memory back. */
  clear(): void {
    this.hosts.clear();
    this.prefixes.clear();
    this.version++;
  }

  /** Make room for `extra` more /128 entries at once (a bulk load), so they go in without resizing. */
  reserve(extra: number): void {
    this.hosts.reserve(extra);
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
    return length === 128 ? this.hosts.insert(this.kw, value) : this.prefixes.insert(this.kw, length, value);
  }

  /**
   * Set the value of the prefix `key/length` only when it has none: one probe where `get` then
   * `insert` would take two (a bulk load of a million addresses).
   * @returns the value already there (nothing changed), or undefined (`value` was inserted).
   * @throws RangeError/TypeError on a bad key, offset or length.
   */
  insertIfAbsent(key: Uint8Array, keyOff: number, length: number, value: V): V | undefined {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    if (length === 128) {
      const old = this.hosts.insertIfAbsent(this.kw, value);
      if (old === undefined) this.version++;
      return old;
    }
    const old = this.prefixes.get(this.kw, length);
    if (old !== undefined) return old;
    this.version++;
    this.prefixes.insert(this.kw, length, value);
    return undefined;
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
    return length === 128 ? this.hosts.delete(this.kw) : this.prefixes.delete(this.kw, length);
  }

  /**
   * The value stored at exactly the prefix `key/length` (host bits ignored); no prefix matching.
   * @throws RangeError/TypeError on a bad key, offset or length.
   */
  get(key: Uint8Array, keyOff: number, length: number): V | undefined {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    return length === 128 ? this.hosts.get(this.kw) : this.prefixes.get(this.kw, length);
  }

  /** True when exactly the prefix `key/length` is present. */
  has(key: Uint8Array, keyOff: number, length: number): boolean {
    checkKey(key, keyOff, length);
    this.loadKey(key, keyOff, length);
    return length === 128 ? this.hosts.has(this.kw) : this.prefixes.has(this.kw, length);
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
    const hosts = this.hosts;
    if (hosts.size !== 0) {
      const s = hosts.probe(addr, off);
      if (s >= 0) return hosts.slotValues[s];
    }
    const prefixes = this.prefixes;
    return prefixes.size === 0 ? undefined : prefixes.lookup(addr, off);
  }

  /**
   * The prefix length of the entry `lookup` would return, or -1 when nothing matches.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  lookupLength(addr: Uint8Array, off: number): number {
    if (off >>> 0 !== off || off + 16 > addr.length) throw lookupRange(addr, off);
    if (this.hosts.size !== 0 && this.hosts.probe(addr, off) >= 0) return 128;
    return this.prefixes.size === 0 ? -1 : this.prefixes.lookupLength(addr, off);
  }

  /**
   * Every entry covering the address, most specific first (for `explain`; allocates).
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  matchAll(addr: Uint8Array, off: number): TrieMatch<V>[] {
    if (off >>> 0 !== off || off + 16 > addr.length) throw lookupRange(addr, off);
    const out: TrieMatch<V>[] = [];
    if (this.hosts.size !== 0) {
      const s = this.hosts.probe(addr, off);
      if (s >= 0) out.push({ length: 128, value: this.hosts.slotValues[s] as V });
    }
    if (this.prefixes.size !== 0) this.prefixes.matchAll(addr, off, out);
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
    const hosts = this.hosts.entries();
    const prefixes = this.prefixes.entries();
    let h = hosts.next();
    let p = prefixes.next();
    while (!h.done || !p.done) {
      if (this.version !== v) throw modified();
      // A prefix (length < 128) goes before a /128 with the same key.
      if (!p.done && (h.done || compareKeys(p.value.key, h.value.key) <= 0)) {
        yield p.value;
        p = prefixes.next();
      } else if (!h.done) {
        yield h.value;
        h = hosts.next();
      }
    }
  }

  /**
   * Every value, in no particular order (cheaper than `entries()`: no sort, no key copies).
   * @throws Error when the trie is modified during iteration.
   */
  *values(): IterableIterator<V> {
    const v = this.version;
    for (const value of this.hosts.values()) {
      if (this.version !== v) throw modified();
      yield value;
    }
    for (const value of this.prefixes.values()) {
      if (this.version !== v) throw modified();
      yield value;
    }
  }

  /**
   * Call `fn` with every value, in no particular order: `values()` without a generator, for bulk
   * work over large tables.
   * @throws Error when `fn` modifies the trie (the iteration stops there).
   */
  forEachValue(fn: (value: V) => void): void {
    const v = this.version;
    const each = (value: V): void => {
      fn(value);
      if (this.version !== v) throw modified();
    };
    this.hosts.forEachValue(each);
    this.prefixes.forEachValue(each);
  }

  /** Load the 16 key bytes into `kw`, zeroing bits beyond `length`. */
  private loadKey(key: Uint8Array, off: number, length: number): void {
    const kw = this.kw;
    for (let i = 0; i < 4; i++) kw[i] = word(key, off + 4 * i) & wordMask(length - 32 * i);
  }
}
