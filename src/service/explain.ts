/**
 * Why an address is or isn't answered: shared by `explain` (offline) and the daemon's /explain.
 *
 * The verdict is not derived a second time: a well-formed NS for the address, from a neighbour
 * on the link, goes through the very `decide()` the packet loop runs, against the same table and
 * settings. So `explain` and the engine cannot disagree about any target (a multicast target,
 * an excluded one, one of the host's own addresses ...).
 */
import { formatAddress, formatMac, parseAddress, solicitedNodeAddress, solicitedNodeMac } from '../addr/index.js';
import { Decision, decide, type MatchTable } from '../engine/decide.js';
import type { AnswerSettings, HostFacts } from '../engine/types.js';
import { ANSWER_KIND_NAMES, dropReasonName } from '../engine/verdict.js';
import { syntheticNS } from '../engine/warm-up.js';
import { NA_FRAME_LEN_VLAN } from '../ndp/constants.js';
import { NsView } from '../ndp/ns-view.js';
import { HttpError } from './http-server.js';
import { Action, type Rule, type RuleSource } from '../table/rule.js';
import type { TargetTable } from '../table/target-table.js';

export interface RuleView {
  rule: string;
  action: 'answer' | 'exclude';
  source: RuleSource;
  from: string;
}

export interface Explanation {
  address: string;
  answered: boolean;
  /** `answer`, or the drop reason the engine gives an NS for this target (`no-rule`, `excluded` ...). */
  verdict: string;
  rule: RuleView | null;
  alsoCovering: RuleView[];
  solicitedNodeGroup: string;
  solicitedNodeMac: string;
  /** The other node seen using the address, when that is why it is not answered. */
  inUse?: { mac: string; how: string };
  /** Whether the host's routes were consulted (the route check is on). */
  routeCheck?: boolean;
}

/** An address that is not IPv6 text: the caller's mistake (HTTP 400, exit 2). */
export class BadAddressError extends Error {
  override readonly name = 'BadAddressError';
}

/** An explain handler for the HTTP surface: a bad address is the client's mistake (400). */
export function httpExplain(explain: (address: string) => unknown): (address: string) => unknown {
  return (address) => {
    try {
      return explain(address);
    } catch (e) {
      if (e instanceof BadAddressError) throw new HttpError(400, e.message);
      throw e;
    }
  };
}

/** A short human description of where a rule came from. */
export function describeSource(s: RuleSource): string {
  switch (s.kind) {
    case 'static':
      return s.flag;
    case 'host':
      return `an address of interface ${s.ifname}`;
    case 'docker':
      return `container ${s.containerName} (${s.containerId.slice(0, 12)}) on network ${s.network}`;
  }
}

function view(r: Rule): RuleView {
  return {
    rule: r.text,
    action: r.action === Action.Answer ? 'answer' : 'exclude',
    source: r.source,
    from: describeSource(r.source),
  };
}

/** What the explanation needs: the table the engine matches on and how it answers. */
export interface ExplainContext {
  readonly table: MatchTable & Pick<TargetTable, 'explain'>;
  /** The scope, when there is one: who uses an address, whether routes are checked. */
  readonly scope?: { inUseBy(addr: Uint8Array): { mac: string; how: string } | undefined; readonly routeCheck: boolean };
  readonly host: HostFacts;
  readonly settings: AnswerSettings;
}

/** @throws BadAddressError when `text` is not an IPv6 address. */
export function explainAddress(ctx: ExplainContext, text: string): Explanation {
  let addr: Uint8Array;
  try {
    addr = parseAddress(text);
  } catch (e) {
    throw new BadAddressError((e as Error).message);
  }
  // From a neighbour, never from the host's own MAC (that frame would be dropped as from-self).
  const peer = Uint8Array.from(ctx.host.mac);
  peer[5] = peer[5]! ^ 0x01;
  peer[0] = (peer[0]! & 0xfe) | 0x02;
  const frame = syntheticNS(addr, peer);
  // The same checks as the packet loop, but nothing is learnt from this made-up frame.
  const t = ctx.table;
  const table: MatchTable = { match: (a, o) => t.match(a, o), vet: t.vet?.bind(t), tentative: t.tentative?.bind(t) };
  const d = decide(
    frame,
    0,
    frame.length,
    table,
    ctx.host,
    ctx.settings,
    new NsView(),
    new Uint8Array(NA_FRAME_LEN_VLAN),
    0,
    new Decision(),
  );
  const e = ctx.table.explain(addr, 0);
  const winner = d.rule ?? e.rule;
  const inUse = ctx.scope?.inUseBy(addr);
  const group = new Uint8Array(16);
  solicitedNodeAddress(addr, 0, group, 0);
  const mac = new Uint8Array(6);
  solicitedNodeMac(addr, 0, mac, 0);
  return {
    address: formatAddress(addr, 0),
    answered: d.kind !== 0,
    verdict: d.kind !== 0 ? ANSWER_KIND_NAMES[d.kind]! : dropReasonName(d.reason),
    rule: winner === undefined ? null : view(winner),
    alsoCovering: e.shadowed.filter((r) => r !== winner).map(view),
    solicitedNodeGroup: formatAddress(group, 0),
    solicitedNodeMac: formatMac(mac, 0),
    ...(inUse !== undefined ? { inUse: { mac: inUse.mac, how: inUse.how } } : {}),
    ...(ctx.scope !== undefined ? { routeCheck: ctx.scope.routeCheck } : {}),
  };
}

/** One paragraph per address, for people. */
export function formatExplanation(x: Explanation): string {
  const lines: string[] = [];
  const r = x.rule;
  let why: string;
  if (x.answered) why = `ANSWERED by ${r!.rule} (${r!.from})`;
  else if (x.verdict === 'no-rule') why = 'NOT answered: no rule covers it';
  else if (x.verdict === 'own-address' && r) why = `NOT answered: it is ${r.from}; the kernel answers for it`;
  else if (x.verdict === 'excluded' && r) why = `NOT answered: excluded by ${r.rule} (${r.from})`;
  else if (x.verdict === 'target-multicast') why = 'NOT answered: a multicast address is never an NS target';
  else if (x.verdict === 'in-use-on-link')
    why = `NOT answered: another node on the link uses it${x.inUse ? ` (MAC ${x.inUse.mac}, seen as ${x.inUse.how})` : ''}`;
  else if (x.verdict === 'routed-to-uplink')
    why = "NOT answered: the host's routes send it back out the uplink, so it is not behind this host";
  else if (x.verdict === 'not-routed') why = 'NOT answered: the host has no usable route for it';
  else why = `NOT answered: ${x.verdict}${r ? ` (rule ${r.rule}, ${r.from})` : ''}`;
  lines.push(`${x.address}: ${why}`);
  for (const c of x.alsoCovering) lines.push(`  also covered by ${c.action} ${c.rule} (${c.from}), less specific or outranked`);
  lines.push(`  solicited-node group ${x.solicitedNodeGroup}, MAC ${x.solicitedNodeMac}`);
  return lines.join('\n');
}
