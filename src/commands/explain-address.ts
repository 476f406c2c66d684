/** Why an address is or isn't answered: shared by `explain` and the daemon's /explain. */
import { solicitedNodeAddress, solicitedNodeMac, formatMac } from '../ndp/address.js';
import { formatAddress, parseAddress } from '../table/cidr.js';
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
  verdict: 'answer' | 'excluded' | 'own-address' | 'no-rule';
  rule: RuleView | null;
  alsoCovering: RuleView[];
  solicitedNodeGroup: string;
  solicitedNodeMac: string;
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

/** @throws Error when `text` is not an IPv6 address. */
export function explainAddress(table: TargetTable, text: string): Explanation {
  const addr = parseAddress(text);
  const e = table.explain(addr, 0);
  const rule = e.rule;
  const verdict: Explanation['verdict'] =
    rule === undefined ? 'no-rule' : rule.action === Action.Answer ? 'answer' : rule.source.kind === 'host' ? 'own-address' : 'excluded';
  const group = new Uint8Array(16);
  solicitedNodeAddress(addr, 0, group, 0);
  const mac = new Uint8Array(6);
  solicitedNodeMac(addr, 0, mac, 0);
  return {
    address: formatAddress(addr, 0),
    answered: verdict === 'answer',
    verdict,
    rule: rule === undefined ? null : view(rule),
    alsoCovering: e.shadowed.map(view),
    solicitedNodeGroup: formatAddress(group, 0),
    solicitedNodeMac: formatMac(mac, 0),
  };
}

/** One paragraph per address, for people. */
export function formatExplanation(x: Explanation): string {
  const lines: string[] = [];
  const why =
    x.verdict === 'answer'
      ? `ANSWERED by ${x.rule!.rule} (${x.rule!.from})`
      : x.verdict === 'no-rule'
        ? 'NOT answered: no rule covers it'
        : x.verdict === 'own-address'
          ? `NOT answered: it is ${x.rule!.from}; the kernel answers for it`
          : `NOT answered: excluded by ${x.rule!.rule} (${x.rule!.from})`;
  lines.push(`${x.address}: ${why}`);
  for (const r of x.alsoCovering) lines.push(`  also covered by ${r.action} ${r.rule} (${r.from}), less specific or outranked`);
  lines.push(`  solicited-node group ${x.solicitedNodeGroup}, MAC ${x.solicitedNodeMac}`);
  return lines.join('\n');
}
