/**
 * The decision engine: the one place policy lives.
 *
 * `decide` is a pure function of (frame, table, host facts, settings): it either writes one
 * Neighbor Advertisement into the caller's buffer or names the reason it won't. The live
 * loops and `replay` all call it; nothing else decides what to answer.
 *
 * Order of checks, cheapest and safest first:
 *   1. a frame from the host's own MAC is never answered (no loops, no self-talk), nor one sent
 *      to another host's unicast MAC (Linux drops those first: PACKET_OTHERHOST);
 *   2. the frame must be a valid NS (RFC 4861 section 7.1.1, see parseNS);
 *   2a. a tagged NS must be on a VLAN we serve (`--vlan`; untagged and VID 0 always are);
 *   3. the target must match an Answer rule by longest-prefix match (exclusions and the
 *      interface's own addresses win over shorter answer prefixes, see TargetTable);
 *   4. the NA is built from the NS: solicited answer, or DAD defence for a `::` source.
 */
import { AnswerKind, DropReason } from '../ndp/drop-reason.js';
import { equal6 } from '../ndp/address.js';
import { parseNS } from '../ndp/parse.js';
import { buildNA } from '../ndp/build.js';
import type { NsView } from '../ndp/ns-view.js';
import { Action, type Rule } from '../table/rule.js';
import type { AnswerSettings, HostFacts } from './types.js';
import { UNTAGGED_ONLY } from './vlans.js';

/** What the engine needs from the table: longest-prefix match on 16 bytes in place. */
export interface MatchTable {
  match(addr: Uint8Array, off: number): Rule | undefined;
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
  answer(kind: AnswerKind, rule: Rule, length: number): this {
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
  if (length >= 12 && start + 12 <= frame.length) {
    if (equal6(frame, start + 6, host.mac, 0)) return d.drop(DropReason.FromSelf);
    if ((frame[start]! & 1) === 0 && !equal6(frame, start, host.mac, 0)) return d.drop(DropReason.OtherHost);
  }
  const reason = parseNS(frame, start, length, view);
  if (reason !== DropReason.None) return d.drop(reason);
  if (view.vlanTci >= 0 && !(settings.vlans ?? UNTAGGED_ONLY).servesTci(view.vlanTci)) {
    return d.drop(DropReason.VlanNotServed);
  }

  const rule = table.match(frame, view.targetOff);
  if (rule === undefined) return d.drop(DropReason.NoRule);
  if (rule.action !== Action.Answer) {
    return d.drop(rule.source.kind === 'host' ? DropReason.OwnAddress : DropReason.Excluded, rule);
  }

  const n = buildNA(view, host, settings, out, outOff);
  if (n === 0) return d.drop(DropReason.NoBufferSpace, rule);
  return d.answer(view.unspecifiedSource ? AnswerKind.DadDefence : AnswerKind.Solicited, rule, n);
}
