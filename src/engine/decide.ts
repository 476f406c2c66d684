/**
 * The decision engine: the one place policy lives.
 *
 * `decide` is a pure function of (frame, table, host facts, settings): it either writes one
 * Neighbor Advertisement into the caller's buffer or names the reason it won't. The live
 * loops and `replay` all call it; nothing else decides what to answer.
 *
 * Order of checks, cheapest and safest first:
 *   1. a frame from the host's own MAC is never answered (no loops, no self-talk);
 *   2. the frame must be a valid NS (RFC 4861 section 7.1.1, see parseNS);
 *   3. the target must match an Answer rule by longest-prefix match (exclusions and the
 *      interface's own addresses win over shorter answer prefixes, see TargetTable);
 *   4. the table's `vet` has the last word (route check, conflict guard);
 *   5. the NA is built from the NS: solicited answer, or DAD defence for a `::` source, with
 *      the O flag of `overrideFor`.
 */
import { AnswerKind, DropReason, ruleVerdict } from './verdict.js';
import { equal6 } from '../addr/index.js';
import { parseNS } from '../ndp/parse.js';
import { buildNA } from '../ndp/build.js';
import type { NsView } from '../ndp/ns-view.js';
import type { Rule } from '../table/rule.js';
import type { AnswerSettings, HostFacts } from './types.js';

/**
 * What the engine needs from the table: longest-prefix match on 16 bytes in place, and
 * optionally the final say on a target a rule answers (service/scope.ts: the route check, the
 * conflict guard, addresses still on probation).
 */
export interface MatchTable {
  match(addr: Uint8Array, off: number): Rule | undefined;
  /** DropReason.None to answer the target `rule` answers, else why not. Allocation-free. */
  vet?(addr: Uint8Array, off: number, rule: Rule): DropReason;
  /** True while the address is on probation (a new address whose owner check is still running): answer with O=0. */
  tentative?(addr: Uint8Array, off: number): boolean;
  /**
   * Another node (Ethernet source at `macOff`) showed that it uses the address at `off`: the
   * source of its NS, the target of its DAD probe or NA, a router's source (conflict guard).
   */
  observe?(frame: Uint8Array, off: number, macBuf: Uint8Array, macOff: number, how: ObservedHow): unknown;
}

/** How another node's use of an address was seen. */
export type ObservedHow = 'ns-source' | 'dad-probe' | 'na-target' | 'ra-source' | 'router';

/**
 * The O flag of an answer (RFC 4861 section 7.2.8: a proxy's answers carry O=0, so that the real
 * owner's NA wins). `auto`: O=1 only for an exact address we know is ours (a /128 rule: a
 * container, an `--address`) that is not on probation; O=0 for an answer that comes only from a
 * prefix rule. `always` and `never` force it.
 */
export type OverrideMode = 'auto' | 'always' | 'never';

const WITH_O = new WeakMap<AnswerSettings, AnswerSettings>();
const WITHOUT_O = new WeakMap<AnswerSettings, AnswerSettings>();

/** `settings` with the O flag set as asked, one frozen copy per settings object (no allocation per frame). */
function withOverride(settings: AnswerSettings, o: boolean): AnswerSettings {
  if (settings.override === o) return settings;
  const cache = o ? WITH_O : WITHOUT_O;
  let s = cache.get(settings);
  if (s === undefined) {
    s = Object.freeze({ ...settings, override: o });
    cache.set(settings, s);
  }
  return s;
}

/** The O flag for an answer by `rule` (see {@link OverrideMode}). */
export function overrideFor(settings: AnswerSettings, table: MatchTable, addr: Uint8Array, off: number, rule: Rule): boolean {
  switch (settings.overrideMode) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'auto':
      return rule.length === 128 && !(table.tentative?.(addr, off) ?? false);
    default:
      return settings.override;
  }
}

/** The outcome of one frame. One instance is reused per loop: deciding allocates nothing. */
export class Decision {
  /** AnswerKind when answered, 0 when dropped. */
  kind: AnswerKind | 0 = 0;
  /** DropReason.None when answered. */
  reason: DropReason = DropReason.None;
  /** The rule that decided (answer, exclusion or host address), when the target got that far. */
  rule: Rule | undefined = undefined;
  /** Bytes of NA written into the output buffer (0 when dropped). */
  length = 0;

  get answered(): boolean {
    return this.kind !== 0;
  }

  private set(kind: AnswerKind | 0, reason: DropReason, rule: Rule | undefined, length: number): this {
    this.kind = kind;
    this.reason = reason;
    this.rule = rule;
    this.length = length;
    return this;
  }

  /** @internal */
  drop(reason: DropReason, rule?: Rule): this {
    return this.set(0, reason, rule, 0);
  }

  /** @internal */
  answer(kind: AnswerKind, rule: Rule | undefined, length: number): this {
    return this.set(kind, DropReason.None, rule, length);
  }
}

/**
 * Decide what to do with one received frame.
 *
 * @param frame   buffer holding the frame; the frame is `frame[start, start+length)`
 * @param view    reused parse target; after the call it describes the frame (when it parsed)
 * @param out     where the NA is written, at `outOff`; needs NA_FRAME_LEN_VLAN bytes of room
 * @param d       reused result; returned for convenience
 */
export function decide(
  frame: Uint8Array,
  start: number,
  length: number,
  table: MatchTable,
  host: HostFacts,
  settings: AnswerSettings,
  view: NsView,
  out: Uint8Array,
  outOff: number,
  d: Decision,
): Decision {
  if (length >= 12 && start + 12 <= frame.length && equal6(frame, start + 6, host.mac, 0)) {
    return d.drop(DropReason.FromSelf);
  }
  const reason = parseNS(frame, start, length, view);
  if (reason !== DropReason.None) return d.drop(reason);

  const off = view.targetOff;
  if (table.observe !== undefined) {
    if (view.unspecifiedSource) table.observe(frame, off, frame, start + 6, 'dad-probe');
    else table.observe(frame, view.srcOff, frame, start + 6, 'ns-source');
  }
  const rule = table.match(frame, off);
  let verdict = ruleVerdict(rule);
  if (verdict === DropReason.None && table.vet !== undefined) verdict = table.vet(frame, off, rule!);
  if (verdict !== DropReason.None) return d.drop(verdict, rule);

  const flags = withOverride(settings, overrideFor(settings, table, frame, off, rule!));
  const n = buildNA(view, host, flags, out, outOff);
  if (n === 0) return d.drop(DropReason.NoBufferSpace, rule);
  return d.answer(view.unspecifiedSource ? AnswerKind.DadDefence : AnswerKind.Solicited, rule, n);
}
