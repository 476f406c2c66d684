/**
 * The slow, obviously-correct model of RadixTrie for tests: a Map of (masked key, length) -> value,
 * and longest-prefix match by scanning every entry bit by bit.
 */

/** Zero the bits of a 16-byte copy beyond `length`. */
export function masked(key: Uint8Array, off: number, length: number): Uint8Array {
  const out = key.slice(off, off + 16);
  for (let i = 0; i < 128; i++) if (i >= length) out[i >> 3] = out[i >> 3]! & ~(0x80 >> (i & 7));
  return out;
}

/** True when the first `length` bits of `prefix` and of the address at `off` are equal. */
export function covers(prefix: Uint8Array, length: number, addr: Uint8Array, off: number): boolean {
  const full = length >> 3;
  for (let i = 0; i < full; i++) if (prefix[i] !== addr[off + i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (prefix[full]! & m) === (addr[off + full]! & m);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export interface RefEntry<V> {
  key: Uint8Array;
  length: number;
  value: V;
}

export class ReferenceTrie<V> {
  private readonly map = new Map<string, RefEntry<V>>();

  get size(): number {
    return this.map.size;
  }

  insert(key: Uint8Array, off: number, length: number, value: V): V | undefined {
    const k = masked(key, off, length);
    const id = `${hex(k)}/${length}`;
    const old = this.map.get(id);
    this.map.set(id, { key: k, length, value });
    return old?.value;
  }

  delete(key: Uint8Array, off: number, length: number): V | undefined {
    const id = `${hex(masked(key, off, length))}/${length}`;
    const old = this.map.get(id);
    this.map.delete(id);
    return old?.value;
  }

  get(key: Uint8Array, off: number, length: number): V | undefined {
    return this.map.get(`${hex(masked(key, off, length))}/${length}`)?.value;
  }

  /** Every entry covering the address, most specific first. */
  matchAll(addr: Uint8Array, off: number): RefEntry<V>[] {
    return [...this.map.values()].filter((e) => covers(e.key, e.length, addr, off)).sort((a, b) => b.length - a.length);
  }

  /** The most specific entry covering the address (one linear scan). */
  best(addr: Uint8Array, off: number): RefEntry<V> | undefined {
    let best: RefEntry<V> | undefined;
    for (const e of this.map.values()) {
      if ((best === undefined || e.length > best.length) && covers(e.key, e.length, addr, off)) best = e;
    }
    return best;
  }

  lookup(addr: Uint8Array, off: number): V | undefined {
    return this.best(addr, off)?.value;
  }

  lookupLength(addr: Uint8Array, off: number): number {
    return this.best(addr, off)?.length ?? -1;
  }

  /** Entries by key bytes, then shorter first. */
  entries(): RefEntry<V>[] {
    return [...this.map.values()].sort((a, b) => Buffer.compare(a.key, b.key) || a.length - b.length);
  }
}
