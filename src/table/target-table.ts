/**
 * TargetTable: which NS targets we answer for, built from named groups of rules.
 *
 * Rules come in named groups ('static' from flags and config, 'host' for the interface's own
 * addresses, 'docker' from the watcher, ...). Each group is a set: two rules are the same rule
 * when prefix, length, action and source (field by field) are equal.
 *
 * Semantics:
 *  (a) Longest prefix match decides: the most specific rule covering a target wins, so an
 *      exclusion inside an answered prefix carves a hole in it, and an answered /128 inside an
 *      excluded prefix is answered.
 *  (b) Several rules with exactly the same prefix and length (from one group or several): a
 *      'host' rule beats everything (the host's own addresses are never answered: the kernel
 *      does), then Exclude beats Answer, otherwise the rule that came first wins. The losers are
 *      kept, so removing the winner restores the next one.
 *  (c) Readers never see a half-applied update. Every mutating method validates its whole input
 *      and works out which rules come and go before it touches any structure, then applies the
 *      whole change synchronously before returning. JavaScript runs one thing at a time, so a
 *      packet batch sees the table either before or after a call, never in between. Bad input
 *      throws and leaves the table as it was.
 *
 * Change reports: each mutating call returns a {@link TableChange} listing the /128 addresses
 * whose answered state changed (added: now answered, with the rule that answers; removed: no
 * longer answered, with the rule that used to answer). An address answered before and after the
 * call is not listed, even when the winning rule changed: that is what multicast membership and
 * unsolicited announcements care about. `prefixesChanged` says that the set of answered prefixes
 * shorter than /128 changed (those cannot be enumerated; see {@link TargetTable.answerPrefixCount}).
 * Listeners registered with `onChange` are called synchronously after each call that changed
 * something.
 *
 * Storage: one RadixTrie of winners (the hot-path `match` is one trie lookup), one trie of
 * candidate lists only for the prefixes that more than one rule claims, and per group a trie
 * indexing its rules by prefix plus the {@link AddressBlock}s it holds whole. Rules are stored as
 * given; nothing is allocated per rule beyond trie entries.
 *
 * Address blocks (an address file of a million lines): when `replaceGroup` is given every rule
 * of a block that no group holds yet, the group takes the block whole: the block's own index
 * stands in for the group trie (no second hash of a million keys), and only the winner trie gets
 * an entry per address. The block's rules are taken at the position of its first rule in the
 * given list (the parser gives them contiguously). A block left less than half alive by
 * duplicates is stored rule by rule instead. Blocks only change how a group is stored, never a
 * verdict: the same rules give the same winners, change reports and counts either way.
 */
import { AddressBlock, AddressRule, keyBuf, keyOff } from './address-block.js';
import { Action, type Rule, type RuleSource } from './rule.js';
import { RadixTrie } from './trie.js';
import { formatCidr, parseCidr } from '../addr/index.js';

/** What one mutating call changed, as far as answered /128 addresses are concerned. */
export interface TableChange {
  /** Winning /128 Answer rules whose address became answered by this call. */
  readonly added: Rule[];
  /** Winning /128 Answer rules whose address stopped being answered by this call. */
  readonly removed: Rule[];
  /**
   * True when the set of answered prefixes shorter than /128 changed (one appeared, or one
   * stopped being answered): prefixes cannot be listed in `added`/`removed`, and the membership
   * manager needs to hear about them too.
   */
  readonly prefixesChanged: boolean;
}

/** Result of {@link TargetTable.explain}. */
export interface Explanation {
  /** The winning rule (what `match` returns), or undefined when no rule covers the address. */
  readonly rule: Rule | undefined;
  /** Every other rule covering the address, from every group, most specific first. */
  readonly shadowed: Rule[];
  /** True when the winning rule answers. */
  readonly answered: boolean;
}

export type ChangeListener = (change: TableChange) => void;

/**
 * Build a rule from text (`ADDR` = /128 or `ADDR/LEN`; host bits are zeroed) with its canonical
 * text form (`ADDR/LEN`, RFC 5952).
 * @throws Error on bad text (see parseCidr), an unknown action, a malformed source, or a 'host'
 *   rule whose action is not Exclude.
 */
export function makeRule(text: string, action: Action, source: RuleSource): Rule {
  const { prefix, length } = parseCidr(text);
  const rule: Rule = { prefix, length, action, source, text: formatCidr(prefix, length) };
  checkRule(rule, 'makeRule');
  return rule;
}

/**
 * /128 rules for `count` addresses stored back to back (16 bytes each) in `addresses`, as one
 * {@link AddressBlock} (deduplicated: an address given twice yields one rule). The input is
 * copied.
 */
export function makeAddressRules(addresses: Uint8Array, count: number, action: Action, source: RuleSource): Rule[] {
  return new AddressBlock(addresses, count, action, source).rules;
}

/** Rank at one prefix: lower wins. */
function rank(r: Rule): number {
  return r.source.kind === 'host' ? 0 : r.action === Action.Exclude ? 1 : 2;
}

/** The winner among rules with the same prefix: best rank, then the earliest. */
function pick(list: readonly Rule[]): Rule {
  let best = list[0]!;
  let bestRank = rank(best);
  for (let i = 1; i < list.length && bestRank > 0; i++) {
    const r = list[i]!;
    const k = rank(r);
    if (k < bestRank) {
      best = r;
      bestRank = k;
    }
  }
  return best;
}

/** Field-by-field equality of two sources. */
export function sameSource(a: RuleSource, b: RuleSource): boolean {
  if (a === b) return true;
  switch (a.kind) {
    case 'static':
      return b.kind === 'static' && a.flag === b.flag;
    case 'docker':
      return b.kind === 'docker' && a.containerId === b.containerId && a.containerName === b.containerName && a.network === b.network;
    case 'host':
      return b.kind === 'host' && a.ifname === b.ifname;
  }
}

/** Same rule identity, for two rules known to have the same prefix and length. */
function sameAtPrefix(a: Rule, b: Rule): boolean {
  return a === b || (a.action === b.action && sameSource(a.source, b.source));
}

const SOURCE_KINDS = new Set(['static', 'docker', 'host']);

/** @throws Error describing what is wrong with `r`. */
function checkRule(r: Rule, where: string): void {
  if (typeof r !== 'object' || r === null) throw new Error(`${where}: a rule must be an object`);
  // Named only in an error: reading `text` would format the lazy text of every bulk rule.
  const what = (): string => (typeof r.text === 'string' ? `rule '${r.text}'` : 'rule');
  if (!(r.prefix instanceof Uint8Array) || r.prefix.length !== 16) {
    throw new Error(`${where}: ${what()}: prefix must be a 16-byte Uint8Array`);
  }
  if (!Number.isInteger(r.length) || r.length < 0 || r.length > 128) {
    throw new Error(`${where}: ${what()}: prefix length ${r.length} is out of range 0..128`);
  }
  for (let i = 0; i < 16; i++) {
    const bits = r.length - 8 * i;
    if (bits >= 8) continue;
    const hostMask = bits <= 0 ? 0xff : 0xff >> bits;
    if ((r.prefix[i]! & hostMask) !== 0) throw new Error(`${where}: ${what()}: bits set beyond /${r.length}`);
  }
  if (r.action !== Action.Answer && r.action !== Action.Exclude) {
    throw new Error(`${where}: ${what()}: unknown action ${String(r.action)}`);
  }
  if (typeof r.source !== 'object' || r.source === null || !SOURCE_KINDS.has(r.source.kind)) {
    throw new Error(`${where}: ${what()}: source must be { kind: 'static' | 'docker' | 'host', ... }`);
  }
  if (r.source.kind === 'host' && r.action !== Action.Exclude) {
    throw new Error(`${where}: ${what()}: a 'host' rule must be Action.Exclude (own addresses are never answered)`);
  }
  if (!(r instanceof AddressRule) && typeof r.text !== 'string') throw new Error(`${where}: rule: text must be a string`);
}

/** A group's rules at one prefix: one rule (the usual case) or several with different identities. */
type Cell = Rule | Rule[];

function cellHas(cell: Cell | undefined, r: Rule): Rule | undefined {
  if (cell === undefined) return undefined;
  if (!Array.isArray(cell)) return sameAtPrefix(cell, r) ? cell : undefined;
  for (const c of cell) if (sameAtPrefix(c, r)) return c;
  return undefined;
}

/** Add `r` to the group index, where `cell` is what the index holds at r's prefix now. */
function cellAdd(index: RadixTrie<Cell>, cell: Cell | undefined, r: Rule): void {
  if (cell === undefined) index.insert(keyBuf(r), keyOff(r), r.length, r);
  else if (Array.isArray(cell)) cell.push(r);
  else index.insert(keyBuf(r), keyOff(r), r.length, [cell, r]);
}

/** Add `r` to the group index (it must not be there yet). */
function indexAdd(index: RadixTrie<Cell>, r: Rule): void {
  cellAdd(index, index.get(keyBuf(r), keyOff(r), r.length), r);
}

interface Group {
  /** The group's rules by prefix, except those of `blocks`. */
  index: RadixTrie<Cell>;
  /** Blocks held whole: their live rules are the group's too. */
  blocks: AddressBlock[];
  size: number;
}

/** True when `r` is a live rule of a block `g` holds whole. */
function inHeldBlock(g: Group, r: Rule): r is AddressRule {
  return r instanceof AddressRule && r.block.alive[r.pos] === 1 && g.blocks.includes(r.block);
}

/** The rule of group `g` equal to `r` (same prefix, action and source), or undefined. */
function groupFind(g: Group, r: Rule, buf: Uint8Array, off: number): Rule | undefined {
  const k = g.index.size === 0 ? undefined : cellHas(g.index.get(buf, off, r.length), r);
  if (k !== undefined || r.length !== 128) return k;
  for (const b of g.blocks) {
    if (b.action !== r.action || !sameSource(b.source, r.source)) continue;
    const i = b.find(buf, off);
    if (i >= 0 && b.alive[i] === 1) return b.rules[i];
  }
  return undefined;
}

/** Remove the object `r` from group `g`. */
function groupRemove(g: Group, r: Rule): void {
  if (inHeldBlock(g, r)) {
    const b = r.block;
    b.alive[r.pos] = 0;
    if (--b.live === 0) {
      g.blocks.splice(g.blocks.indexOf(b), 1);
      b.owner = undefined;
    }
    return;
  }
  const index = g.index;
  const buf = keyBuf(r);
  const off = keyOff(r);
  const cell = index.get(buf, off, r.length);
  if (cell === r) {
    index.delete(buf, off, r.length);
  } else if (Array.isArray(cell)) {
    const i = cell.indexOf(r);
    if (i < 0) throw new Error('TargetTable: internal error (rule missing from its group)');
    cell.splice(i, 1);
    if (cell.length === 1) index.insert(buf, off, r.length, cell[0]!);
  } else {
    throw new Error('TargetTable: internal error (rule missing from its group)');
  }
}

/** Call `fn` with every rule of a group. */
function forEachRule(g: Group, fn: (r: Rule) => void): void {
  g.index.forEachValue((cell) => {
    if (Array.isArray(cell)) for (const r of cell) fn(r);
    else fn(cell);
  });
  for (const b of [...g.blocks]) {
    const { alive, rules } = b;
    for (let i = 0; i < b.count; i++) if (alive[i] === 1) fn(rules[i]!);
  }
}

/**
 * The blocks whose every rule is in `rules` exactly once and that no group holds: those a group
 * can take whole.
 */
function wholeBlocks(rules: readonly Rule[]): Set<AddressBlock> {
  const seen = new Map<AddressBlock, number>();
  // A block's rules usually come one after another: count runs, not rules.
  let run: AddressBlock | undefined;
  let len = 0;
  const flush = (): void => {
    if (run !== undefined) seen.set(run, (seen.get(run) ?? 0) + len);
  };
  for (const r of rules) {
    const b = r instanceof AddressRule && r.block.owner === undefined ? r.block : undefined;
    if (b === run) {
      len++;
      continue;
    }
    flush();
    run = b;
    len = 1;
  }
  flush();
  const out = new Set<AddressBlock>();
  for (const [b, n] of seen) {
    if (b === undefined || n !== b.count) continue;
    // As many rules as the block has: whole unless one came twice (and another not at all).
    const hit = new Uint8Array(b.count);
    let ok = true;
    for (const r of rules) {
      if (!(r instanceof AddressRule) || r.block !== b) continue;
      if (hit[r.pos] === 1) {
        ok = false;
        break;
      }
      hit[r.pos] = 1;
    }
    if (ok) out.add(b);
  }
  return out;
}

/** True when a block taken earlier in this call holds a new rule equal to `r`. */
function inTaken(taken: readonly AddressBlock[], r: Rule, buf: Uint8Array, off: number): boolean {
  if (r.length !== 128) return false;
  for (const b of taken) {
    if (b.action !== r.action || !sameSource(b.source, r.source)) continue;
    const i = b.find(buf, off);
    if (i >= 0 && b.alive[i] === 1) return true;
  }
  return false;
}

function countAlive(b: AddressBlock): number {
  let n = 0;
  const alive = b.alive;
  for (let i = 0; i < b.count; i++) n += alive[i]!;
  return n;
}

/** Bookkeeping of one commit: the state of each touched /128 before it was first touched. */
class ChangeLog {
  /**
   * Answering rule before the commit (null: not answered), per touched /128. Absent (null) for
   * a commit that only adds, to an empty table (the start-up load of a million addresses): then
   * nothing was answered before, and a /128 is first touched exactly when it first gets a winner.
   */
  readonly before: RadixTrie<Rule | null> | null;
  constructor(fromEmpty: boolean) {
    this.before = fromEmpty ? null : new RadixTrie<Rule | null>();
  }
  /** Touched /128 rules in first-touch order (for prefix and length). */
  readonly touched: Rule[] = [];
  prefixesChanged = false;
  /** An added rule met a prefix that already had a winner. */
  contested = false;
  /** An added rule is not a /128 Answer. */
  notExactAnswer = false;
}

/** The target table. See the file header for the semantics. */
export class TargetTable {
  /** Winner per prefix. */
  private readonly win = new RadixTrie<Rule>();
  /** All rules, in arrival order, for prefixes claimed by more than one rule. */
  private readonly contested = new RadixTrie<Rule[]>();
  private readonly groups = new Map<string, Group>();
  private total = 0;
  private answerPrefixes = 0;
  private exactAnswerTotal = 0;
  private listeners: ChangeListener[] = [];

  /** Number of rules over all groups. */
  get size(): number {
    return this.total;
  }

  /** Number of rules in `group` (0 for an unknown group). */
  groupSize(group: string): number {
    return this.groups.get(group)?.size ?? 0;
  }

  /** Names of the groups that hold rules. */
  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /** The rules of `group`, in no particular order. */
  groupRules(group: string): Rule[] {
    const out: Rule[] = [];
    const g = this.groups.get(group);
    if (g !== undefined) forEachRule(g, (r) => out.push(r));
    return out;
  }

  /**
   * The winning rule for the 16 address bytes at `off` (longest prefix match). Hot path: one
   * trie lookup, no allocation.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  match(addr: Uint8Array, off: number): Rule | undefined {
    return this.win.lookup(addr, off);
  }

  /**
   * Why an address is or is not answered: the winning rule and every other rule covering it
   * (all lengths, all groups), most specific first; at one prefix, the winner first and then the
   * others in arrival order.
   * @throws RangeError when fewer than 16 bytes are available at `off`.
   */
  explain(addr: Uint8Array, off = 0): Explanation {
    const matches = this.win.matchAll(addr, off);
    const rule = matches[0]?.value;
    const shadowed: Rule[] = [];
    for (const m of matches) {
      const w = m.value;
      if (w !== rule) shadowed.push(w);
      const list = this.contested.get(keyBuf(w), keyOff(w), w.length);
      if (list !== undefined) for (const r of list) if (r !== w) shadowed.push(r);
    }
    return { rule, shadowed, answered: rule !== undefined && rule.action === Action.Answer };
  }

  /**
   * The /128 Answer rules that win: the exact addresses we answer for, in no particular order.
   * A snapshot: changing the table while iterating is fine.
   */
  exactAnswers(): IterableIterator<Rule> {
    const out: Rule[] = [];
    this.win.forEachValue((r) => {
      if (r.length === 128 && r.action === Action.Answer) out.push(r);
    });
    return out.values();
  }

  /** Number of winning Answer rules shorter than /128 (their addresses cannot be enumerated). */
  answerPrefixCount(): number {
    return this.answerPrefixes;
  }

  /** Number of winning /128 Answer rules (what `exactAnswers` lists), kept as the table changes. */
  exactAnswerCount(): number {
    return this.exactAnswerTotal;
  }

  /**
   * Make the rules of `group` exactly `rules` (duplicates collapse). Rules equal to ones already
   * in the group stay as they are (same object, same arrival order); the others are added or
   * removed. Calling it twice with the same rules changes nothing the second time.
   * @throws Error on an invalid rule or group name; the table is then unchanged.
   */
  replaceGroup(group: string, rules: readonly Rule[]): TableChange {
    checkGroup(group);
    checkRules(rules, group);
    const old = this.groups.get(group);
    // Which of the current rules stay (by object), and which given rules are new (deduplicated).
    const kept = new Set<Rule>();
    const fresh = new RadixTrie<Cell>();
    const added: Rule[] = [];
    const whole = wholeBlocks(rules);
    /** Blocks taken whole by this call, in order; their `alive` marks say which rules are new. */
    const taken: AddressBlock[] = [];
    const started = new Set<AddressBlock>();
    for (const r of rules) {
      if (r instanceof AddressRule && whole.has(r.block)) {
        if (started.has(r.block)) continue; // taken at its first rule
        started.add(r.block);
        this.planBlock(r.block, old, fresh, taken, kept, added);
        taken.push(r.block);
        continue;
      }
      const buf = keyBuf(r);
      const off = keyOff(r);
      const k = old === undefined ? undefined : groupFind(old, r, buf, off);
      if (k !== undefined) {
        kept.add(k);
        continue;
      }
      const cell = fresh.get(buf, off, r.length);
      if (cellHas(cell, r) !== undefined || inTaken(taken, r, buf, off)) continue; // a duplicate of a new rule
      cellAdd(fresh, cell, r);
      added.push(r);
    }
    const removed: Rule[] = [];
    if (old !== undefined && kept.size < old.size) {
      forEachRule(old, (r) => {
        if (!kept.has(r)) removed.push(r);
      });
    }
    for (const b of taken) b.live = countAlive(b);
    if (removed.length === 0 && added.length === 0) return this.commit(removed, added);
    // Everything is known: apply. A block less than half alive is stored rule by rule.
    const g = old ?? { index: fresh, blocks: [], size: 0 };
    for (const r of removed) groupRemove(g, r);
    const held = new Set<AddressBlock>();
    for (const b of taken) {
      if (b.live === 0 || 2 * b.live < b.count) continue;
      held.add(b);
      b.owner = group;
      g.blocks.push(b);
    }
    for (const r of added) {
      // Other new rules are in `fresh` already, which is the index of a new group.
      const ofTaken = r instanceof AddressRule && started.has(r.block);
      if (ofTaken ? !held.has(r.block) : old !== undefined) indexAdd(g.index, r);
    }
    // A block stored rule by rule holds none of its rules as a block.
    for (const b of taken) {
      if (held.has(b)) continue;
      b.alive.fill(0);
      b.live = 0;
    }
    g.size += added.length - removed.length;
    if (g.size === 0) this.groups.delete(group);
    else this.groups.set(group, g);
    this.total += added.length - removed.length;
    return this.commit(removed, added);
  }

  /**
   * Work out which rules of block `b` (given whole) are new to the group: not equal to a rule the
   * group keeps (`kept`), nor to a new rule met before (`fresh`, `taken`). Sets `b.alive` to
   * exactly the new ones and appends their rules to `added`.
   */
  private planBlock(
    b: AddressBlock,
    old: Group | undefined,
    fresh: RadixTrie<Cell>,
    taken: readonly AddressBlock[],
    kept: Set<Rule>,
    added: Rule[],
  ): void {
    const { alive, rules, addrs } = b;
    alive.fill(1);
    const check = (old !== undefined && old.size > 0) || fresh.size > 0 || taken.length > 0;
    if (!check) {
      // Nothing to compare with (a load into an empty group): every rule is new. Sized once.
      const base = added.length;
      added.length = base + b.count;
      for (let i = 0; i < b.count; i++) added[base + i] = rules[i]!;
      return;
    }
    for (let i = 0; i < b.count; i++) {
      const r = rules[i]!;
      if (check) {
        const k = old === undefined ? undefined : groupFind(old, r, addrs, 16 * i);
        if (k !== undefined) kept.add(k);
        if (
          k !== undefined ||
          (fresh.size > 0 && cellHas(fresh.get(addrs, 16 * i, 128), r) !== undefined) ||
          inTaken(taken, r, addrs, 16 * i)
        ) {
          alive[i] = 0;
          continue;
        }
      }
      added.push(r);
    }
  }

  /**
   * Add rules to `group`; rules equal to ones already there are ignored.
   * @throws Error on an invalid rule or group name; the table is then unchanged.
   */
  addRules(group: string, rules: readonly Rule[]): TableChange {
    checkGroup(group);
    checkRules(rules, group);
    const g = this.groups.get(group);
    const fresh = new RadixTrie<Cell>();
    const added: Rule[] = [];
    for (const r of rules) {
      const buf = keyBuf(r);
      const off = keyOff(r);
      if (g !== undefined && groupFind(g, r, buf, off) !== undefined) continue;
      const cell = fresh.get(buf, off, r.length);
      if (cellHas(cell, r) !== undefined) continue;
      cellAdd(fresh, cell, r);
      added.push(r);
    }
    if (added.length > 0) {
      const target = g ?? { index: new RadixTrie<Cell>(), blocks: [], size: 0 };
      for (const r of added) indexAdd(target.index, r);
      target.size += added.length;
      this.groups.set(group, target);
      this.total += added.length;
    }
    return this.commit([], added);
  }

  /**
   * Remove the rules of `group` for which `predicate` returns true.
   * @throws whatever `predicate` throws; the table is then unchanged.
   */
  removeRules(group: string, predicate: (r: Rule) => boolean): TableChange {
    const g = this.groups.get(group);
    const removed: Rule[] = [];
    if (g !== undefined) {
      forEachRule(g, (r) => {
        if (predicate(r)) removed.push(r);
      });
    }
    if (g !== undefined && removed.length > 0) {
      for (const r of removed) groupRemove(g, r);
      g.size -= removed.length;
      this.total -= removed.length;
      if (g.size === 0) this.groups.delete(group);
    }
    return this.commit(removed, []);
  }

  /**
   * Call `listener` synchronously after every mutating call that changed answered addresses or
   * prefixes. A listener that throws does not stop the others; the first error is rethrown to the
   * caller of the mutating method after all listeners ran (the table change itself stands).
   * @returns a function that unsubscribes.
   */
  onChange(listener: ChangeListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  // ---------------------------------------------------------------- applying

  /** Take `removed` out of and put `added` into the winner structures, then report and notify. */
  private commit(removed: readonly Rule[], added: readonly Rule[]): TableChange {
    if (removed.length === 0 && added.length === 0) return { added: [], removed: [], prefixesChanged: false };
    const log = new ChangeLog(removed.length === 0 && this.win.size === 0);
    let exact = 0;
    for (const r of added) if (r.length === 128) exact++;
    this.win.reserve(exact); // one resize for a bulk load instead of twenty
    for (const r of removed) this.detach(r, log);
    for (const r of added) this.attach(r, log);
    const change: TableChange = { added: [], removed: [], prefixesChanged: log.prefixesChanged };
    if (log.before === null) {
      // Into an empty table: a /128 Answer rule is new exactly when it is its prefix's winner
      // (always, when no prefix was claimed twice). No per-address log: at a million addresses
      // it would be one more array as long as `added`.
      const all = !log.contested && !log.notExactAnswer;
      if (all) (change as { added: Rule[] }).added = added as Rule[];
      else
        for (const r of added) {
          if (r.length === 128 && r.action === Action.Answer && (!log.contested || this.win.get(keyBuf(r), keyOff(r), 128) === r)) {
            change.added.push(r);
          }
        }
    }
    for (const k of log.touched) {
      const p = keyBuf(k);
      const o = keyOff(k);
      const was = log.before === null ? null : log.before.get(p, o, 128)!;
      const now = this.win.get(p, o, 128);
      const answers = now !== undefined && now.action === Action.Answer;
      if (was === null && answers) change.added.push(now);
      else if (was !== null && !answers) change.removed.push(was);
    }
    if (change.added.length > 0 || change.removed.length > 0 || change.prefixesChanged) this.emit(change);
    return change;
  }

  private emit(change: TableChange): void {
    let error: unknown;
    let failed = false;
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (e) {
        if (!failed) error = e;
        failed = true;
      }
    }
    if (failed) throw error;
  }

  private attach(r: Rule, log: ChangeLog): void {
    const p = keyBuf(r);
    const o = keyOff(r);
    if (r.length !== 128 || r.action !== Action.Answer) log.notExactAnswer = true;
    const w = this.win.insertIfAbsent(p, o, r.length, r);
    if (w === undefined) {
      this.account(r, undefined, r, log); // inserted: only the bookkeeping is left
      return;
    }
    log.contested = true;
    let list = this.contested.get(p, o, r.length);
    if (list === undefined) {
      list = [w];
      this.contested.insert(p, o, r.length, list);
    }
    list.push(r);
    const nw = pick(list);
    if (nw !== w) this.setWinner(r, w, nw, log);
  }

  private detach(r: Rule, log: ChangeLog): void {
    const p = keyBuf(r);
    const o = keyOff(r);
    const w = this.win.get(p, o, r.length);
    const list = this.contested.get(p, o, r.length);
    if (list === undefined) {
      if (w !== r) throw new Error('TargetTable: internal error (removed rule is not in the table)');
      this.setWinner(r, w, undefined, log);
      return;
    }
    const i = list.indexOf(r);
    if (i < 0) throw new Error('TargetTable: internal error (removed rule is not in the table)');
    list.splice(i, 1);
    if (list.length === 1) this.contested.delete(p, o, r.length);
    const nw = pick(list);
    if (nw !== w) this.setWinner(r, w, nw, log);
  }

  /** Change the winner at `key`'s prefix from `was` to `now`, recording what the change log needs. */
  private setWinner(key: Rule, was: Rule | undefined, now: Rule | undefined, log: ChangeLog): void {
    this.account(key, was, now, log);
    const p = keyBuf(key);
    const o = keyOff(key);
    if (now === undefined) this.win.delete(p, o, key.length);
    else this.win.insert(p, o, key.length, now);
  }

  /** The counts and the change log for a winner change at `key`'s prefix from `was` to `now`. */
  private account(key: Rule, was: Rule | undefined, now: Rule | undefined, log: ChangeLog): void {
    const wasAnswer = was !== undefined && was.action === Action.Answer;
    const nowAnswer = now !== undefined && now.action === Action.Answer;
    const p = keyBuf(key);
    const o = keyOff(key);
    if (key.length === 128) {
      if (wasAnswer !== nowAnswer) this.exactAnswerTotal += nowAnswer ? 1 : -1;
      if (log.before === null) {
        // Nothing to log (see commit).
      } else if (!log.before.has(p, o, 128)) {
        log.before.insert(p, o, 128, wasAnswer ? was : null);
        log.touched.push(key);
      }
    } else if (wasAnswer !== nowAnswer) {
      this.answerPrefixes += nowAnswer ? 1 : -1;
      log.prefixesChanged = true;
    }
  }
}

function checkGroup(group: string): void {
  if (typeof group !== 'string' || group === '') throw new Error('TargetTable: group name must be a non-empty string');
}

function checkRules(rules: readonly Rule[], group: string): void {
  if (!Array.isArray(rules)) throw new Error(`TargetTable: rules for group '${group}' must be an array`);
  // A block's rules share their action and source, and its addresses are /128s: one check each.
  let block: AddressBlock | undefined;
  let checked: Set<AddressBlock> | undefined;
  for (const r of rules) {
    if (r instanceof AddressRule) {
      if (r.block === block) continue;
      block = r.block;
      if (checked?.has(block)) continue;
      (checked ??= new Set()).add(block);
    }
    checkRule(r, `TargetTable group '${group}'`);
  }
}
