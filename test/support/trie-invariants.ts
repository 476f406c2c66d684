/**
 * Structural invariants of a RadixTrie, for tests: the layout of its two stores
 * (src/table/host-store.ts, src/table/prefix-trie.ts), checked field by field.
 */
import type { RadixTrie } from '../../src/table/trie.js';
import { BUCKET, OCC, hash4, type HostStore } from '../../src/table/host-store.js';
import { LEN, NODE, ROOT, SLOT, type PrefixTrie } from '../../src/table/prefix-trie.js';
import { bitOf } from '../../src/table/key-words.js';

/**
 * Check both stores of `trie`.
 * @throws Error describing the first violation.
 */
export function checkTrieInvariants<V>(trie: RadixTrie<V>): void {
  // The stores are private to RadixTrie; element access reaches them with their types intact.
  checkPrefixTrie(trie['prefixes']);
  checkHostStore(trie['hosts']);
}

/**
 * Links, lengths, keys as prefixes of their descendants, branch nodes with two children, counts,
 * free lists.
 */
export function checkPrefixTrie<V>(trie: PrefixTrie<V>): void {
  const nodes = trie.nodes;
  const keys = trie.keys;
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
  if (values !== trie.size) throw new Error(`prefix count ${trie.size}, found ${values}`);
  let free = 0;
  for (let n = trie.nodeFree; n >= 0; n = nodes[n * NODE]!) free++;
  if (reachable + free !== trie.nodeTop) throw new Error(`nodes leak: ${reachable} + ${free} free != ${trie.nodeTop}`);
  let freeSlots = 0;
  for (let sl = trie.slotFree; sl >= 0; sl = keys[sl * 4]!) freeSlots++;
  if (values + freeSlots !== trie.slotValues.length) throw new Error('value slots leak');
}

/** Control bytes, probe runs without holes, counts, value slot reference counts, free slots. */
export function checkHostStore<V>(store: HostStore<V>): void {
  const t = store.buckets;
  const mask = store.bucketMask;
  if (t.length !== (mask + 1) * BUCKET || store.ctrl.length !== mask + 1) throw new Error('bucket arrays and mask disagree');
  let occupied = 0;
  for (let i = 0; i <= mask; i++) {
    const p = i * BUCKET;
    const c = store.ctrl[i]!;
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
  if (occupied !== store.size) throw new Error(`exact count ${store.size}, found ${occupied}`);
  const refs = new Int32Array(store.slotValues.length);
  for (let p = 0; p < t.length; p += BUCKET) if (t[p + OCC] !== 0) refs[t[p + OCC]! - 1]!++;
  let live = 0;
  for (let sl = 0; sl < refs.length; sl++) {
    if (refs[sl] !== store.slotRefs[sl]) throw new Error(`value slot ${sl}: ${store.slotRefs[sl]} references counted, ${refs[sl]} found`);
    if (refs[sl]! > 0) live++;
  }
  if (live + store.slotFree.length !== store.slotValues.length) throw new Error('exact value slots leak');
  for (const sl of store.slotFree) if (store.slotRefs[sl] !== 0) throw new Error(`free value slot ${sl} in use`);
}

function firstSlotBelow(nodes: Int32Array, n: number): number {
  while (nodes[n * NODE + SLOT]! < 0) {
    const c0 = nodes[n * NODE]!;
    n = c0 >= 0 ? c0 : nodes[n * NODE + 1]!;
  }
  return nodes[n * NODE + SLOT]!;
}
