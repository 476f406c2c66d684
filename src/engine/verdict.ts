/**
 * The one vocabulary of outcomes, shared by `decide` (per frame), `explain` (per address),
 * counters, metrics and logs: why a frame was dropped, what kind of answer was sent, and what a
 * matching rule says about a target.
 *
 * Drop reasons are the codec's (`NsError`, 0..63: the frame itself is not an NS we may answer)
 * plus the engine's own (64 and up: the frame is a valid NS, but the target is not ours to
 * answer, or the answer could not be built). Values index counter arrays; append new ones.
 */
import { NsError, NS_ERROR_NAMES } from '../ndp/ns-error.js';
import { Action, type Rule } from '../table/rule.js';

export const DropReason = Object.freeze({
  ...NsError,
  /** Frame was sent from the host's own MAC address. */
  FromSelf: 64,
  /** Target matches no rule. */
  NoRule: 65,
  /** Target matches an exclusion (the longest matching rule excludes it). */
  Excluded: 66,
  /** Target is one of the interface's own addresses: the kernel answers for it. */
  OwnAddress: 67,
  /** The engine could not write the answer (output buffer too small). */
  NoBufferSpace: 68,
  /** Another node on the link uses the target (seen as the source of an NS, the target of an NA, a router, a DAD probe). */
  InUseOnLink: 69,
  /** The host's own routing table sends the target back out the uplink: it is not behind us. */
  RoutedToUplink: 70,
  /** The host has no usable route for the target (none, unreachable, blackhole, prohibit). */
  NotRouted: 71,
} as const);
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** The first engine reason: below it the frame never got to a target lookup. */
export const FIRST_TARGET_REASON = DropReason.NoRule;

/** kebab-case names by reason, in code order; logs, metrics, `replay --explain`, `explain`. */
export const DROP_REASON_NAMES: ReadonlyMap<number, string> = new Map([
  ...NS_ERROR_NAMES,
  [DropReason.FromSelf, 'from-self'],
  [DropReason.NoRule, 'no-rule'],
  [DropReason.Excluded, 'excluded'],
  [DropReason.OwnAddress, 'own-address'],
  [DropReason.NoBufferSpace, 'no-buffer-space'],
  [DropReason.InUseOnLink, 'in-use-on-link'],
  [DropReason.RoutedToUplink, 'routed-to-uplink'],
  [DropReason.NotRouted, 'not-routed'],
]);

/** Size of a counter array indexed by DropReason. */
export const DROP_REASON_COUNT = Math.max(...DROP_REASON_NAMES.keys()) + 1;

/** The name of a reason (`drop-<n>` for an unknown code, which is a bug). */
export function dropReasonName(r: number): string {
  return DROP_REASON_NAMES.get(r) ?? `drop-${r}`;
}

/** What kind of answer was sent. */
export const AnswerKind = Object.freeze({
  /** Solicited NA to the NS's source (S=1). */
  Solicited: 1,
  /** DAD defence: NA to ff02::1 with S=0 (RFC 4861 7.2.4). */
  DadDefence: 2,
} as const);
export type AnswerKind = (typeof AnswerKind)[keyof typeof AnswerKind];

/** Index = AnswerKind. */
export const ANSWER_KIND_NAMES: readonly string[] = Object.freeze(['none', 'answer', 'dad-defence']);

/**
 * The verdict of the rule that won the longest-prefix match for a target: None when it answers,
 * else why not. `decide` and `explain` both ask this, so they cannot disagree.
 */
export function ruleVerdict(rule: Rule | undefined): DropReason {
  if (rule === undefined) return DropReason.NoRule;
  if (rule.action === Action.Answer) return DropReason.None;
  return rule.source.kind === 'host' ? DropReason.OwnAddress : DropReason.Excluded;
}
