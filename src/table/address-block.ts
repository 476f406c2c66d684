/**
 * AddressBlock: many exact /128 addresses with one action and one source (an `--address-file`
 * of a million lines), held compactly.
 *
 * - The addresses, deduplicated, back to back in one Uint8Array (16 bytes each).
 * - An open-addressing index over them: one Int32 per bucket (1 + the address's position,
 *   0 = empty), linear probing, at most half full. It finds an address in the block (a rule's
 *   identity check when a group is replaced) without a second copy of the keys.
 * - One small rule object per address ({@link AddressRule}: the block and a position, nothing
 *   else). The target table's winner store needs a value per address; everything else about the
 *   rule (action, source, text) is the block's or is computed when read.
 * - Which of its addresses are in the table group that holds the block (`alive`), so rules can
 *   leave one at a time (a reload that drops a few lines) without rebuilding the block.
 *
 * Building is one pass (insert into the index; an address already there is counted as a
 * duplicate and dropped). Memory: 16 (address) + 8 (index, at a load of 1/4..1/2) + 1 (alive)
 * bytes per address, plus the rule object and its pointer (about 48 bytes).
 *
 * The target table decides how a block is stored (whole, or rule by rule); see target-table.ts.
 */
import { formatAddress } from '../addr/index.js';
import { hash4 } from './host-store.js';
import { word } from './key-words.js';
import type { Action, Rule, RuleSource } from './rule.js';

/**
 * One /128 rule of an {@link AddressBlock}: the address is the block's, read in place. Each
 * block has its own subclass whose prototype knows the block, so a rule object holds only its
 * position (32 bytes a rule, not 40: 8 MB at a million).
 */
export abstract class AddressRule implements Rule {
  constructor(
    /** The address's position in the block (bytes 16 x pos ..). */
    readonly pos: number,
  ) {}
  /** The block holding the address. */
  abstract get block(): AddressBlock;
  get length(): number {
    return 128;
  }
  get action(): Action {
    return this.block.action;
  }
  get source(): RuleSource {
    return this.block.source;
  }
  /** A fresh view of the address (allocates: the table reads the block's bytes instead). */
  get prefix(): Uint8Array {
    return this.block.addrs.subarray(16 * this.pos, 16 * this.pos + 16);
  }
  /** Formatted at each read: only explain and logs read it. */
  get text(): string {
    return `${formatAddress(this.block.addrs, 16 * this.pos)}/128`;
  }
}

export class AddressBlock {
  /** The distinct addresses, 16 bytes each, in first-seen order. */
  readonly addrs: Uint8Array;
  /** Number of distinct addresses. */
  readonly count: number;
  /** Addresses given more than once (dropped). */
  readonly duplicates: number;
  /** Position in the block of the first address given more than once, or -1. */
  readonly firstDuplicate: number;
  readonly action: Action;
  readonly source: RuleSource;
  /** One rule per address, position for position. */
  readonly rules: AddressRule[];
  /** The table group holding the block whole, or undefined (target-table.ts sets it). */
  owner: string | undefined;
  /** Per address: 1 while its rule is in the owner group (target-table.ts keeps it). */
  readonly alive: Uint8Array;
  /** Number of 1s in `alive`. */
  live = 0;
  private readonly index: Int32Array;
  private readonly mask: number;

  /**
   * Build a block from `count` addresses stored back to back in `input` (16 bytes each). The
   * input is copied (deduplicated) and may be reused afterwards, unless `adopt` is true: then the
   * block deduplicates it in place and keeps it (no second copy of a million addresses), and
   * the caller must not touch it again. The caller has checked that
   * each address may be a rule (see ruleProblem); the action and source are checked by the
   * table when the block's rules are given to it.
   * @throws RangeError when `input` holds fewer than `count` addresses.
   */
  constructor(input: Uint8Array, count: number, action: Action, source: RuleSource, adopt = false) {
    if (!Number.isInteger(count) || count < 0 || input.length < count * 16) {
      throw new RangeError(`AddressBlock: ${count} addresses need ${count * 16} bytes, got ${input.length}`);
    }
    this.action = action;
    this.source = source;
    let buckets = 16;
    while (buckets < count * 2) buckets *= 2;
    const index = new Int32Array(buckets);
    const mask = buckets - 1;
    // In place: an address is written at position n <= i, after position i was read.
    const addrs = adopt ? input : new Uint8Array(count * 16);
    const inView = new DataView(input.buffer, input.byteOffset, input.byteLength);
    const view = new DataView(addrs.buffer);
    let n = 0;
    let dups = 0;
    let firstDup = -1;
    for (let i = 0; i < count; i++) {
      const o = 16 * i;
      const w0 = inView.getInt32(o);
      const w1 = inView.getInt32(o + 4);
      const w2 = inView.getInt32(o + 8);
      const w3 = inView.getInt32(o + 12);
      let b = hash4(w0, w1, w2, w3) & mask;
      let dup = -1;
      for (;;) {
        const e = index[b]!;
        if (e === 0) break;
        const p = 16 * (e - 1);
        if (view.getInt32(p) === w0 && view.getInt32(p + 4) === w1 && view.getInt32(p + 8) === w2 && view.getInt32(p + 12) === w3) {
          dup = e - 1;
          break;
        }
        b = (b + 1) & mask;
      }
      if (dup >= 0) {
        if (dups++ === 0) firstDup = dup;
        continue;
      }
      const d = 16 * n;
      view.setInt32(d, w0);
      view.setInt32(d + 4, w1);
      view.setInt32(d + 8, w2);
      view.setInt32(d + 12, w3);
      index[b] = ++n;
    }
    this.addrs = 16 * n === addrs.length ? addrs : addrs.slice(0, 16 * n);
    this.count = n;
    this.duplicates = dups;
    this.firstDuplicate = firstDup;
    this.index = index;
    this.mask = mask;
    this.alive = new Uint8Array(n);
    const BlockRule = ruleClassOf(this);
    const rules: AddressRule[] = new Array<AddressRule>(n);
    for (let i = 0; i < n; i++) rules[i] = new BlockRule(i);
    this.rules = rules;
  }

  /** Position of the 16 address bytes at `off` of `key` in the block, or -1. */
  find(key: Uint8Array, off: number): number {
    const w0 = word(key, off);
    const w1 = word(key, off + 4);
    const w2 = word(key, off + 8);
    const w3 = word(key, off + 12);
    const addrs = this.addrs;
    const index = this.index;
    const mask = this.mask;
    for (let b = hash4(w0, w1, w2, w3) & mask; ; b = (b + 1) & mask) {
      const e = index[b]!;
      if (e === 0) return -1;
      const p = 16 * (e - 1);
      if (word(addrs, p) === w0 && word(addrs, p + 4) === w1 && word(addrs, p + 8) === w2 && word(addrs, p + 12) === w3) return e - 1;
    }
  }
}

/** The rule class of one block: its prototype returns the block. */
function ruleClassOf(block: AddressBlock): new (pos: number) => AddressRule {
  return class extends AddressRule {
    override get block(): AddressBlock {
      return block;
    }
  };
}

/** The key bytes of a rule: a block rule's are in its block (no view allocated). */
export function keyBuf(r: Rule): Uint8Array {
  return r instanceof AddressRule ? r.block.addrs : r.prefix;
}

/** The offset of a rule's key bytes in {@link keyBuf}. */
export function keyOff(r: Rule): number {
  return r instanceof AddressRule ? 16 * r.pos : 0;
}
