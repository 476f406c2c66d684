/**
 * Which addresses are ours: the one scope builder. `run`, `explain` (offline and in the daemon)
 * and `replay` all build their target table here, with the same code, so they cannot disagree.
 *
 * Inputs, each replaced whole when it changes:
 *  - static rules (`--prefix`, `--address`, `--address-file`, `--exclude`, the config file);
 *  - the uplink's own addresses: never answered (the kernel does), and their on-link prefixes,
 *    which bound where containers may live when no answer rule is given;
 *  - container records from Docker, admitted by {@link Scope.dockerVerdict}.
 *
 * Output: one {@link TargetTable} with the groups `static`, `host` and `docker`. The engine reads
 * it through `match`; the announcer and the membership manager follow its change reports.
 */
import type { Logger } from 'pino';
import { formatCidr, isLinkLocalUnicast, isMulticast, parseAddress, prefixCovers } from '../addr/index.js';
import type { InterfaceAddress, OnLinkPrefix } from '../io/interface.js';
import { onLinkPrefixes } from '../io/interface.js';
import { Action, type Rule } from '../table/rule.js';
import { makeRule, TargetTable, type TableChange } from '../table/target-table.js';

/** Table group names. */
export const GROUP = Object.freeze({ static: 'static', host: 'host', docker: 'docker' } as const);

/** Why a container address is not admitted (undefined: admitted). */
export type DockerScopeVerdict = 'not-unicast' | 'excluded' | 'own-address' | 'outside-rules' | 'outside-on-link' | undefined;

/** What the scope needs of the uplink. */
export interface UplinkAddresses {
  readonly ifname: string;
  readonly addresses: readonly InterfaceAddress[];
}

export class Scope {
  readonly table = new TargetTable();
  private staticRules: readonly Rule[] = [];
  private answerRules = 0;
  private onLink: OnLinkPrefix[] = [];
  private hostKey = '';
  private readonly rescopeListeners: (() => void)[] = [];

  constructor(private readonly log?: Logger) {}

  /** Longest-prefix match on the live table (the engine's `MatchTable`). */
  match(addr: Uint8Array, off: number): Rule | undefined {
    return this.table.match(addr, off);
  }

  /** The on-link prefixes of the uplink, as last set. */
  onLinkPrefixes(): readonly OnLinkPrefix[] {
    return this.onLink;
  }

  /** The static rules, as last set. */
  staticRuleSet(): readonly Rule[] {
    return this.staticRules;
  }

  /**
   * Replace the static rules (start, reload). Docker addresses are re-admitted against them.
   * @throws Error from the table when a rule is malformed; the table is unchanged then.
   */
  setStatic(rules: readonly Rule[]): TableChange {
    const change = this.table.replaceGroup(GROUP.static, rules);
    this.staticRules = rules;
    let n = 0;
    for (const r of rules) if (r.action === Action.Answer) n++;
    this.answerRules = n;
    this.rescoped();
    return change;
  }

  /**
   * The uplink's addresses: each is a `host` rule (never answered), and the global ones' prefixes
   * bound the Docker scope. A call with the same addresses changes nothing.
   */
  setUplink(uplink: UplinkAddresses): TableChange | undefined {
    const key = uplink.addresses.map((a) => formatCidr(a.addr, a.prefixLength)).join(' ');
    if (key === this.hostKey) return undefined;
    this.hostKey = key;
    const host = uplink.addresses.map((a) => makeRule(formatCidr(a.addr, 128), Action.Exclude, { kind: 'host', ifname: uplink.ifname }));
    const change = this.table.replaceGroup(GROUP.host, host);
    this.onLink = onLinkPrefixes(uplink);
    this.rescoped();
    return change;
  }

  /** Called when the static rules or the uplink changed: the Docker set must be re-admitted. */
  onRescope(listener: () => void): void {
    this.rescopeListeners.push(listener);
  }

  private rescoped(): void {
    for (const l of this.rescopeListeners) {
      try {
        l();
      } catch (err) {
        this.log?.error({ err: (err as Error).message }, 'rescope listener failed');
      }
    }
  }

  /**
   * Is a container's address ours to answer? Only a global unicast address; inside an answer
   * rule when there are any (else inside one of the uplink's on-link prefixes); never under an
   * exclusion or one of the uplink's own addresses. The most specific static or host rule
   * covering the address decides, as it does for every other target.
   */
  dockerVerdict(addr: Uint8Array): DockerScopeVerdict {
    if (isMulticast(addr, 0) || isLinkLocalUnicast(addr, 0) || isUnspecifiedOrLoopback(addr)) return 'not-unicast';
    const e = this.table.explain(addr, 0);
    const covering = e.rule === undefined ? e.shadowed : [e.rule, ...e.shadowed];
    for (const r of covering) {
      if (r.source.kind === 'docker') continue;
      if (r.action === Action.Answer) return undefined;
      return r.source.kind === 'host' ? 'own-address' : 'excluded';
    }
    if (this.answerRules > 0) return 'outside-rules';
    for (const p of this.onLink) if (prefixCovers(p.addr, p.prefixLength, addr, 0)) return undefined;
    return 'outside-on-link';
  }

  /** Replace the Docker group (the watcher's sink). */
  replaceGroup(group: string, rules: readonly Rule[]): TableChange {
    return this.table.replaceGroup(group, rules);
  }
}

/** Address ranges no rule may touch: they are never the target of an NS we could answer. */
const NEVER: readonly { prefix: Uint8Array; length: number; what: string }[] = [
  { prefix: parseAddress('ff00::'), length: 8, what: 'multicast (ff00::/8)' },
  { prefix: parseAddress('fe80::'), length: 10, what: 'link-local (fe80::/10)' },
  { prefix: parseAddress('::1'), length: 128, what: 'the loopback address (::1)' },
  { prefix: parseAddress('::'), length: 128, what: 'the unspecified address (::)' },
];

/**
 * What is wrong with a configured rule, or undefined: a rule that cannot be meant is refused
 * rather than served (`::/0`, or one that covers or lies in multicast, link-local, loopback or
 * the unspecified address). Host bits beyond the length are checked where the text is parsed.
 */
export function ruleProblem(prefix: Uint8Array, length: number): string | undefined {
  if (length === 0) return '::/0 would answer for every address on the link';
  for (const n of NEVER) {
    const overlap = length <= n.length ? prefixCovers(prefix, length, n.prefix, 0) : prefixCovers(n.prefix, n.length, prefix, 0);
    if (overlap) return `${length === 128 ? 'it is' : 'it covers'} ${n.what}, never an address we may answer for`;
  }
  return undefined;
}

/**
 * Warnings about a valid rule set (logged at start and on reload, not refused): duplicate rules,
 * and answer rules outside every on-link prefix of the uplink (nobody on the link asks for them).
 */
export function ruleWarnings(rules: readonly Rule[], onLink: readonly OnLinkPrefix[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let outside = 0;
  let example = '';
  for (const r of rules) {
    const key = `${r.action}:${r.text}`;
    if (seen.has(key)) out.push(`duplicate rule ${r.action === Action.Answer ? 'answer' : 'exclude'} ${r.text}`);
    seen.add(key);
    if (r.action !== Action.Answer || onLink.length === 0) continue;
    if (!onLink.some((p) => p.prefixLength <= r.length && prefixCovers(p.addr, p.prefixLength, r.prefix, 0))) {
      outside++;
      example ||= r.text;
    }
  }
  if (outside > 0) {
    out.push(`${outside} answer rule(s) lie outside every on-link prefix of the uplink (${onLink.map((p) => p.text).join(', ')}), e.g. ${example}: NS for them never come from this link`);
  }
  return out;
}

function isUnspecifiedOrLoopback(a: Uint8Array): boolean {
  for (let i = 0; i < 15; i++) if (a[i] !== 0) return false;
  return a[15]! <= 1;
}
