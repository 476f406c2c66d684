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
 * candidate lists only for the prefixes that more than one rule claims, and one trie per group
 * indexing its rules by prefix. Rules are stored as given; nothing is allocated per rule beyond
 * trie entries.
 */
import { Action, type Rule, type RuleSource } from './rule.js';
import { RadixTrie } from './trie.js';
import { formatAddress, formatCidr, parseCidr } from '../addr/index.js';

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
 * A /128 rule for bulk sources (a million-line `--address-file`): its address stays in one shared
 * buffer (`prefix` is a fresh view of it at each read, so a rule holds no typed array of its
 * own), and its text is only formatted when something reads it (explain, logs). This keeps
 * loading fast and small. Nothing on the packet path reads `prefix` (the table keeps its own
 * copy of every key).
 */
class AddressRule implements Rule {
  #text: string | undefined;
  constructor(
    private readonly buf: Uint8Array,
    private readonly off: number,
    readonly action: Action,
    readonly source: RuleSource,
  ) {}
  get length(): number {
    return 128;
  }
  get prefix(): Uint8Array {
    return this.buf.subarray(this.off, this.off + 16);
  }
  get text(): string {
    return (this.#text ??= `${formatAddress(this.buf, this.off)}/128`);
  }
}

/**
 * /128 rules for `count` addresses stored back to back (16 bytes each) in `addresses`; the rules
 * read their addresses from it, so it must not change afterwards.
 */
export function makeAddressRules(addresses: Uint8Array, count: number, action: Action, source: RuleSource): Rule[] {
  if (addresses.length < count * 16) throw new RangeError(`makeAddressRules: ${count} addresses need ${count * 16} bytes`);
  const rules: Rule[] = new Array(count);
  for (let i = 0; i < count; i++) rules[i] = new AddressRule(addresses, i * 16, action, source);
  return rules;
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
  if (cell === undefined) index.insert(r.prefix, 0, r.length, r);
  else if (Array.isArray(cell)) cell.push(r);
  else index.insert(r.prefix, 0, r.length, [cell, r]);
}

/** Add `r` to the group index (it must not be there yet). */
function indexAdd(index: RadixTrie<Cell>, r: Rule): void {
  cellAdd(index, index.get(r.prefix, 0, r.length), r);
}

/** Remove the object `r` from the group index. */
function indexRemove(index: RadixTrie<Cell>, r: Rule): void {
  const cell = index.get(r.prefix, 0, r.length);
  if (cell === r) {
    index.delete(r.prefix, 0, r.length);
  } else if (Array.isArray(cell)) {
    const i = cell.indexOf(r);
    if (i < 0) throw new Error('TargetTable: internal error (rule missing from its group)');
    cell.splice(i, 1);
    if (cell.length === 1) index.insert(r.prefix, 0, r.length, cell[0]!);
  } else {
    throw new Error('TargetTable: internal error (rule missing from its group)');
  }
}

/** Call `fn` with every rule of a group index. */
function forEachRule(index: RadixTrie<Cell>, fn: (r: Rule) => void): void {
  index.forEachValue((cell) => {
    if (Array.isArray(cell)) for (const r of cell) fn(r);
    else fn(cell);
  });
}

interface Group {
  index: RadixTrie<Cell>;
  size: number;
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
    if (g !== undefined) forEachRule(g.index, (r) => out.push(r));
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
      const list = this.contested.get(w.prefix, 0, w.length);
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
    for (const r of rules) {
      const p = r.prefix;
      const k = old === undefined ? undefined : cellHas(old.index.get(p, 0, r.length), r);
      if (k !== undefined) {
        kept.add(k);
        continue;
      }
      const cell = fresh.get(p, 0, r.length);
      if (cellHas(cell, r) !== undefined) continue; // a duplicate of a new rule
      if (cell === undefined) fresh.insert(p, 0, r.length, r);
      else cellAdd(fresh, cell, r);
      added.push(r);
    }
    const removed: Rule[] = [];
    if (old !== undefined && kept.size < old.size) {
      forEachRule(old.index, (r) => {
        if (!kept.has(r)) removed.push(r);
      });
    }
    if (removed.length === 0 && added.length === 0) return this.commit(removed, added);
    // Everything is known: apply.
    if (old === undefined) {
      this.groups.set(group, { index: fresh, size: added.length });
    } else {
      for (const r of removed) indexRemove(old.index, r);
      for (const r of added) indexAdd(old.index, r);
      old.size += added.length - removed.length;
      if (old.size === 0) this.groups.delete(group);
    }
    this.total += added.length - removed.length;
    return this.commit(removed, added);
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
      if (g !== undefined && cellHas(g.index.get(r.prefix, 0, r.length), r) !== undefined) continue;
      const cell = fresh.get(r.prefix, 0, r.length);
      if (cellHas(cell, r) !== undefined) continue;
      cellAdd(fresh, cell, r);
      added.push(r);
    }
    if (added.length > 0) {
      const target = g ?? { index: new RadixTrie<Cell>(), size: 0 };
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
      forEachRule(g.index, (r) => {
        if (predicate(r)) removed.push(r);
      });
    }
    if (g !== undefined && removed.length > 0) {
      for (const r of removed) indexRemove(g.index, r);
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
    for (const r of removed) this.detach(r, log);
    for (const r of added) this.attach(r, log);
    const change: TableChange = { added: [], removed: [], prefixesChanged: log.prefixesChanged };
    for (const k of log.touched) {
      const p = k.prefix;
      const was = log.before === null ? null : log.before.get(p, 0, 128)!;
      const now = this.win.get(p, 0, 128);
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
    const w = this.win.get(r.prefix, 0, r.length);
    if (w === undefined) {
      this.setWinner(r, undefined, r, log);
      return;
    }
    let list = this.contested.get(r.prefix, 0, r.length);
    if (list === undefined) {
      list = [w];
      this.contested.insert(r.prefix, 0, r.length, list);
    }
    list.push(r);
    const nw = pick(list);
    if (nw !== w) this.setWinner(r, w, nw, log);
  }

  private detach(r: Rule, log: ChangeLog): void {
    const w = this.win.get(r.prefix, 0, r.length);
    const list = this.contested.get(r.prefix, 0, r.length);
    if (list === undefined) {
      if (w !== r) throw new Error('TargetTable: internal error (removed rule is not in the table)');
      this.setWinner(r, w, undefined, log);
      return;
    }
    const i = list.indexOf(r);
    if (i < 0) throw new Error('TargetTable: internal error (removed rule is not in the table)');
    list.splice(i, 1);
    if (list.length === 1) this.contested.delete(r.prefix, 0, r.length);
    const nw = pick(list);
    if (nw !== w) this.setWinner(r, w, nw, log);
  }

  /** Change the winner at `key`'s prefix from `was` to `now`, recording what the change log needs. */
  private setWinner(key: Rule, was: Rule | undefined, now: Rule | undefined, log: ChangeLog): void {
    const wasAnswer = was !== undefined && was.action === Action.Answer;
    const nowAnswer = now !== undefined && now.action === Action.Answer;
    const p = key.prefix; // read once: a bulk rule makes a view at each read
    if (key.length === 128) {
      if (log.before === null) {
        if (was === undefined) log.touched.push(key);
      } else if (!log.before.has(p, 0, 128)) {
        log.before.insert(p, 0, 128, wasAnswer ? was : null);
        log.touched.push(key);
      }
    } else if (wasAnswer !== nowAnswer) {
      this.answerPrefixes += nowAnswer ? 1 : -1;
      log.prefixesChanged = true;
    }
    if (now === undefined) this.win.delete(p, 0, key.length);
    else this.win.insert(p, 0, key.length, now);
  }
}

function checkGroup(group: string): void {
  if (typeof group !== 'string' || group === '') throw new Error('TargetTable: group name must be a non-empty string');
}

function checkRules(rules: readonly Rule[], group: string): void {
  if (!Array.isArray(rules)) throw new Error(`TargetTable: rules for group '${group}' must be an array`);
  for (const r of rules) checkRule(r, `TargetTable group '${group}'`);
}
