/**
 * PrefixTrie: the prefixes /0../127 of a RadixTrie (configured prefixes and exclusions: usually
 * few, but any number works), in a path-compressed binary radix trie (PATRICIA) on typed arrays.
 *
 * A node is four int32 words in one Int32Array: child 0, child 1, prefix length, value slot
 * (-1 = no value). Only nodes with a value keep a key (four words in a slot pool beside the
 * value); a node without a value always has two children (except the root, which is the /0 node
 * and is always there), so any search ends on a node with a key.
 *
 * Longest-prefix match: walk the trie by the address bits without comparing keys, remembering the
 * nodes with values on the way, compare the address once with the key of the last one (all nodes
 * on a path are prefixes of it), and take the deepest remembered node whose length is within the
 * common prefix. Reads the address in place and allocates nothing.
 *
 * Memory: a prefix costs two nodes (32 bytes), a 16-byte key and a pointer. Pools grow by
 * doubling; freed nodes and slots go on free lists and are reused.
 *
 * Keys come in as four words (see key-words.ts) with host bits zeroed, checked by RadixTrie. The
 * layout fields are public so that the invariant checks of the tests
 * (test/support/trie-invariants.ts) can read them; only RadixTrie holds a trie, privately.
 */
import { bitOf, growInt32, word, wordsToBytes } from './key-words.js';
import type { TrieEntry, TrieMatch } from './trie.js';

/** Words per node: child 0, child 1, then LEN and SLOT. */
export const NODE = 4;
export const LEN = 2;
export const SLOT = 3;
/** The root: the /0 node, always present. */
export const ROOT = 0;

const INITIAL_NODES = 16;
const INITIAL_SLOTS = 8;

/** PATRICIA trie of prefixes shorter than /128. See the file header for the layout. */
export class PrefixTrie<V> {
  /** NODE words per node. */
  nodes = new Int32Array(INITIAL_NODES * NODE);
  /** Nodes ever allocated (node 0 is the root). */
  nodeTop = 1;
  /** Free list of nodes, chained through child 0 (-1 = empty). */
  nodeFree = -1;
  /** Four key words per value slot. */
  keys = new Int32Array(INITIAL_SLOTS * 4);
  slotValues: (V | undefined)[] = [];
  /** Free list of value slots, chained through key word 0 (-1 = empty). */
  slotFree = -1;
  private count = 0;
  /** Lookup scratch: value nodes on the search path. At most one per length 0..127. */
  private readonly path = new Int32Array(129);

  constructor() {
    this.initRoot();
  }

  /** Number of prefixes. */
  get size(): number {
    return this.count;
  }

  /** Remove every prefix and give the memory back. */
  clear(): void {
    this.nodes = new Int32Array(INITIAL_NODES * NODE);
    this.nodeTop = 1;
    this.nodeFree = -1;
    this.keys = new Int32Array(INITIAL_SLOTS * 4);
    this.slotValues = [];
    this.slotFree = -1;
    this.count = 0;
    this.initRoot();
  }

  /** The value stored at exactly `kw/length`, or undefined. */
  get(kw: Int32Array, length: number): V | undefined {
    const n = this.find(kw, length);
    return n < 0 ? undefined : this.slotValues[this.nodes[n * NODE + SLOT]!];
  }

  /** True when exactly `kw/length` is present. */
  has(kw: Int32Array, length: number): boolean {
    return this.find(kw, length) >= 0;
  }

  /**
   * Value of the longest prefix covering the 16 address bytes at `off` (the caller has checked
   * that they are there), or undefined.
   */
  lookup(addr: Uint8Array, off: number): V | undefined {
    const n = this.match(addr, off);
    return n < 0 ? undefined : this.slotValues[this.nodes[n * NODE + SLOT]!];
  }

  /** Length of the longest prefix covering the address at `off`, or -1. */
  lookupLength(addr: Uint8Array, off: number): number {
    const n = this.match(addr, off);
    return n < 0 ? -1 : this.nodes[n * NODE + LEN]!;
  }

  /** Append every prefix covering the address at `off` to `out`, most specific first. */
  matchAll(addr: Uint8Array, off: number, out: TrieMatch<V>[]): void {
    let sp = this.searchPath(addr, off);
    if (sp === 0) return;
    const nodes = this.nodes;
    const cpl = this.commonPrefix(addr, off, nodes[this.path[sp - 1]! * NODE + SLOT]!);
    while (sp > 0) {
      const n = this.path[--sp]!;
      const len = nodes[n * NODE + LEN]!;
      if (len <= cpl) out.push({ length: len, value: this.slotValues[nodes[n * NODE + SLOT]!] as V });
    }
  }

  /**
   * Set the value of `kw/length` (host bits of `kw` zero, length 0..127).
   * @returns the previous value, or undefined.
   */
  insert(kw: Int32Array, length: number, value: V): V | undefined {
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
      d = Math.min(this.commonPrefixKw(kw, refSlot), length, nodes[n * NODE + LEN]!);
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
        const slot = this.newSlot(kw, value);
        this.nodes[cur * NODE + SLOT] = slot;
        return undefined;
      }
      const dir = bitOf(kw, 0, d);
      if (nodes[cur * NODE + dir]! >= 0) throw new Error('PrefixTrie: internal error (occupied branch)');
      const leaf = this.newNode(length, this.newSlot(kw, value));
      this.nodes[cur * NODE + dir] = leaf;
      return undefined;
    }
    // curLen < d < length of next: put a node of length d between cur and next.
    if (next < 0) throw new Error('PrefixTrie: internal error (missing branch)');
    const nextDir = bitOf(this.keys, refSlot * 4, d);
    let mid: number;
    if (d === length) {
      mid = this.newNode(length, this.newSlot(kw, value));
    } else {
      if (bitOf(kw, 0, d) === nextDir) throw new Error('PrefixTrie: internal error (no divergence)');
      mid = this.newNode(d, -1);
      const leaf = this.newNode(length, this.newSlot(kw, value));
      this.nodes[mid * NODE + (nextDir ^ 1)] = leaf;
    }
    nodes = this.nodes;
    nodes[mid * NODE + nextDir] = next;
    this.relink(cur, next, mid);
    return undefined;
  }

  /**
   * Remove `kw/length`.
   * @returns the removed value, or undefined when that exact prefix was not present.
   */
  delete(kw: Int32Array, length: number): V | undefined {
    const nodes = this.nodes;
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
    if (s < 0 || this.commonPrefixKw(kw, s) < 128) return undefined;
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

  /**
   * Every prefix in address order: pre-order, child 0 before child 1, so a shorter prefix comes
   * before a longer one with the same key. Keys are fresh copies. The caller detects changes
   * during iteration.
   */
  *entries(): IterableIterator<TrieEntry<V>> {
    const stack: number[] = [ROOT];
    while (stack.length > 0) {
      const n = stack.pop()!;
      const nodes = this.nodes;
      const s = nodes[n * NODE + SLOT]!;
      const c0 = nodes[n * NODE]!;
      const c1 = nodes[n * NODE + 1]!;
      if (c1 >= 0) stack.push(c1);
      if (c0 >= 0) stack.push(c0);
      if (s >= 0) yield { key: wordsToBytes(this.keys, s * 4), length: nodes[n * NODE + LEN]!, value: this.slotValues[s] as V };
    }
  }

  /** Every value, in node order. The caller detects changes during iteration. */
  *values(): IterableIterator<V> {
    for (let n = 0; n < this.nodeTop; n++) {
      const s = this.nodes[n * NODE + SLOT]!;
      if (s >= 0) yield this.slotValues[s] as V;
    }
  }

  /** Call `fn` with every value, in node order. The caller detects changes made by `fn`. */
  forEachValue(fn: (value: V) => void): void {
    for (let n = 0; n < this.nodeTop; n++) {
      const s = this.nodes[n * NODE + SLOT]!;
      if (s >= 0) fn(this.slotValues[s] as V);
    }
  }

  private initRoot(): void {
    const nodes = this.nodes;
    nodes[0] = -1;
    nodes[1] = -1;
    nodes[LEN] = 0;
    nodes[SLOT] = -1;
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
  private commonPrefixKw(kw: Int32Array, slot: number): number {
    const keys = this.keys;
    const k = slot * 4;
    for (let i = 0; i < 4; i++) {
      const x = kw[i]! ^ keys[k + i]!;
      if (x !== 0) return i * 32 + Math.clz32(x);
    }
    return 128;
  }

  /**
   * Push the value nodes on the search path of the address onto `path`, shallowest first.
   * @returns how many were pushed.
   */
  private searchPath(addr: Uint8Array, off: number): number {
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
  private match(addr: Uint8Array, off: number): number {
    let sp = this.searchPath(addr, off);
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
  private find(kw: Int32Array, length: number): number {
    const nodes = this.nodes;
    let n = ROOT;
    for (;;) {
      const len = nodes[n * NODE + LEN]!;
      if (len >= length) break;
      n = nodes[n * NODE + bitOf(kw, 0, len)]!;
      if (n < 0) return -1;
    }
    if (nodes[n * NODE + LEN] !== length) return -1;
    const s = nodes[n * NODE + SLOT]!;
    if (s < 0 || this.commonPrefixKw(kw, s) < 128) return -1;
    return n;
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
  private newSlot(kw: Int32Array, value: V): number {
    let s = this.slotFree;
    if (s >= 0) {
      this.slotFree = this.keys[s * 4]!;
      this.slotValues[s] = value;
    } else {
      s = this.slotValues.length;
      this.slotValues.push(value);
      if (s * 4 >= this.keys.length) this.keys = growInt32(this.keys, (s + 1) * 4);
    }
    this.keys.set(kw, s * 4);
    this.count++;
    return s;
  }

  private freeSlot(s: number): void {
    this.slotValues[s] = undefined;
    this.keys[s * 4] = this.slotFree;
    this.slotFree = s;
    this.count--;
  }

  /** Point the child link of `parent` that leads to `from` at `to`. */
  private relink(parent: number, from: number, to: number): void {
    const p = parent * NODE;
    if (this.nodes[p] === from) this.nodes[p] = to;
    else this.nodes[p + 1] = to;
  }
}
