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
import { formatAddress, formatCidr, formatMac, isLinkLocalUnicast, isMulticast, parseAddress, prefixCovers } from '../addr/index.js';
import { DropReason } from '../engine/verdict.js';
import { RadixTrie } from '../table/trie.js';
import { routesAway, type RouteTable } from '../table/route-table.js';
import type { InterfaceAddress, OnLinkPrefix } from '../io/interface.js';
import { onLinkPrefixes } from '../io/interface.js';
import { AddressBlock, AddressRule } from '../table/address-block.js';
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

/**
 * The host's routing table as the route check reads it: in memory, kept in sync from rtnetlink
 * (routes.ts), no syscall per packet. `uplink` is the interface questions come in on.
 */
export interface RouteOracle {
  readonly table: RouteTable;
  uplink(): number;
}

/** A route check from a route table and the uplink's ifindex. */
export function routeOracle(table: RouteTable, uplink: () => number): RouteOracle {
  return { table, uplink };
}

/** How long an address seen in use by another node stays unclaimable after it was last seen. */
export const IN_USE_TTL_MS = 10 * 60_000;
/** At most this many addresses are remembered as in use (a flood of forged sources cannot grow it further). */
export const IN_USE_MAX = 65_536;

/** An address another node was seen using. */
export interface InUse {
  /** The other node's MAC, `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  /** What showed it: `ns-source`, `na-target`, `ra-source`, `dad-probe`, `router`. */
  readonly how: string;
  /** When it was last seen (ms since the epoch). */
  seen: number;
}

export class Scope {
  readonly table = new TargetTable();
  /** Addresses other nodes on the link use: never claimed (conflict guard). */
  private readonly inUse = new RadixTrie<InUse>();
  /** New addresses whose owner check (DAD probe) is still running: answered with O=0. */
  private readonly probation = new RadixTrie<true>();
  private routes: RouteOracle | undefined;
  /** Counts of addresses found in use, by how. */
  readonly conflicts = new Map<string, number>();
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

  /** Turn the route check on (with the host's routes) or off (undefined). */
  setRoutes(routes: RouteOracle | undefined): void {
    this.routes = routes;
  }

  /** True while the route check is on. */
  get routeCheck(): boolean {
    return this.routes !== undefined;
  }

  /**
   * The engine's last word on a target a rule answers (`MatchTable.vet`): never an address
   * another node uses; with the route check, only a target the host routes away from the uplink
   * (to docker0, a br-*, a veth), unless an exact `--address` rule names it.
   */
  vet(addr: Uint8Array, off: number, rule: Rule): DropReason {
    if (this.inUse.size > 0) {
      const u = this.inUse.get(addr, off, 128);
      if (u !== undefined) {
        if (Date.now() - u.seen < IN_USE_TTL_MS) return DropReason.InUseOnLink;
        this.inUse.delete(addr, off, 128);
      }
    }
    if (this.routes !== undefined && !isExactAddressRule(rule)) {
      const v = routesAway(this.routes.table, addr, off, this.routes.uplink());
      if (v === 'uplink') return DropReason.RoutedToUplink;
      // 'local': an address of this host on another interface (docker0's own); the uplink's
      // own addresses never get here (host rules). Everything else has no usable route.
      if (v !== 'elsewhere' && v !== 'local') return DropReason.NotRouted;
    }
    return DropReason.None;
  }

  /** `MatchTable.tentative`: the address is on probation (its owner check is running). */
  tentative(addr: Uint8Array, off: number): boolean {
    return this.probation.size > 0 && this.probation.get(addr, off, 128) !== undefined;
  }

  beginProbation(addr: Uint8Array): void {
    this.probation.insert(addr, 0, 128, true);
  }

  endProbation(addr: Uint8Array): void {
    this.probation.delete(addr, 0, 128);
  }

  /** Is the address known to be in use by another node right now? */
  inUseBy(addr: Uint8Array, off = 0): InUse | undefined {
    const u = this.inUse.get(addr, off, 128);
    return u !== undefined && Date.now() - u.seen < IN_USE_TTL_MS ? u : undefined;
  }

  /**
   * Another node (MAC at `macOff` of `macBuf`) showed it uses the address at `off` of `frame`.
   * Recorded only when we would otherwise claim the address (an answer rule covers it), so a
   * flood of unrelated sources costs one lookup each. A DAD probe for an exact address we hold
   * (a container, an `--address`) is not a conflict: we defend it, unless it is on probation.
   * @returns the rule whose claim is withdrawn when this is news, else undefined.
   */
  observe(frame: Uint8Array, off: number, macBuf: Uint8Array, macOff: number, how: string): Rule | undefined {
    const rule = this.table.match(frame, off);
    if (rule === undefined || rule.action !== Action.Answer) return undefined;
    if (how === 'dad-probe' && rule.length === 128 && !this.tentative(frame, off)) return undefined;
    const now = Date.now();
    const known = this.inUse.get(frame, off, 128);
    if (known !== undefined) {
      const fresh = now - known.seen >= IN_USE_TTL_MS;
      known.seen = now;
      return fresh ? rule : undefined;
    }
    if (this.inUse.size >= IN_USE_MAX) {
      this.expireInUse(now);
      if (this.inUse.size >= IN_USE_MAX) return undefined;
    }
    const mac = formatMac(macBuf, macOff);
    this.inUse.insert(frame, off, 128, { mac, how, seen: now });
    this.conflicts.set(how, (this.conflicts.get(how) ?? 0) + 1);
    const s = rule.source;
    this.log?.warn(
      {
        reason: 'in-use-on-link',
        address: formatAddress(frame, off),
        mac,
        how,
        rule: rule.text,
        ...(s.kind === 'docker' ? { container: s.containerName, network: s.network } : {}),
      },
      s.kind === 'docker'
        ? `container ${s.containerName}'s address is in use by another node on the link: not answered`
        : 'address in use by another node on the link: not answered',
    );
    return rule;
  }

  /** How many addresses are remembered as in use (expired ones included until they are next looked at). */
  inUseCount(): number {
    return this.inUse.size;
  }

  /** Every address seen in use, for status and explain. */
  inUseList(): { address: string; mac: string; how: string; ageMs: number }[] {
    const now = Date.now();
    const out: { address: string; mac: string; how: string; ageMs: number }[] = [];
    for (const { key, value: u } of this.inUse.entries()) {
      if (now - u.seen < IN_USE_TTL_MS) out.push({ address: formatAddress(key, 0), mac: u.mac, how: u.how, ageMs: now - u.seen });
    }
    return out;
  }

  private expireInUse(now: number): void {
    const old: Uint8Array[] = [];
    for (const { key, value: u } of this.inUse.entries()) if (now - u.seen >= IN_USE_TTL_MS) old.push(Uint8Array.from(key));
    for (const k of old) this.inUse.delete(k, 0, 128);
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

  /** Every rule covering an address, the winner first (`TargetTable.explain`). */
  explain(addr: Uint8Array, off = 0): ReturnType<TargetTable['explain']> {
    return this.table.explain(addr, off);
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
  // Actions seen per prefix, as bits (1 << action): no per-rule strings for a million rules.
  // Address blocks (address files) found their own duplicates when built; their addresses are
  // checked against the other rules and earlier blocks below, without a second index.
  const seen = new RadixTrie<number>();
  const blocks: AddressBlock[] = [];
  let outside = 0;
  let example: Rule | undefined;
  const isOutside = (buf: Uint8Array, off: number, length: number): boolean =>
    !onLink.some((p) => p.prefixLength <= length && prefixCovers(p.addr, p.prefixLength, buf, off));
  for (const r of rules) {
    if (r instanceof AddressRule) {
      if (!blocks.includes(r.block)) blocks.push(r.block);
      continue;
    }
    const prefix = r.prefix;
    const bits = seen.get(prefix, 0, r.length) ?? 0;
    const bit = 1 << r.action;
    if ((bits & bit) !== 0) out.push(`duplicate rule ${r.action === Action.Answer ? 'answer' : 'exclude'} ${r.text}`);
    else seen.insert(prefix, 0, r.length, bits | bit);
    if (r.action !== Action.Answer || onLink.length === 0) continue;
    if (isOutside(prefix, 0, r.length)) {
      outside++;
      example ??= r;
    }
  }
  for (let k = 0; k < blocks.length; k++) {
    const b = blocks[k]!;
    const verb = b.action === Action.Answer ? 'answer' : 'exclude';
    let dups = b.duplicates;
    let first = b.firstDuplicate;
    const bit = 1 << b.action;
    for (let i = 0; i < b.count; i++) {
      const off = 16 * i;
      let dup = seen.size > 0 && ((seen.get(b.addrs, off, 128) ?? 0) & bit) !== 0;
      for (let m = 0; m < k && !dup; m++) dup = blocks[m]!.action === b.action && blocks[m]!.find(b.addrs, off) >= 0;
      if (dup) {
        if (dups++ === 0) first = i;
      }
      if (b.action === Action.Answer && onLink.length > 0 && isOutside(b.addrs, off, 128)) {
        outside++;
        example ??= b.rules[i];
      }
    }
    if (dups > 0) {
      const more = dups > 1 ? ` (and ${dups - 1} more duplicate ${verb} addresses)` : '';
      out.push(`duplicate rule ${verb} ${b.rules[first]!.text}${more}`);
    }
  }
  if (outside > 0) {
    out.push(
      `${outside} answer rule(s) lie outside every on-link prefix of the uplink (${onLink.map((p) => p.text).join(', ')}), e.g. ${example?.text ?? ''}: NS for them never come from this link`,
    );
  }
  return out;
}

/** An exact address the operator named (`--address`, an address file): the route check does not apply. */
function isExactAddressRule(rule: Rule): boolean {
  return rule.length === 128 && rule.source.kind === 'static' && rule.source.flag === '--address';
}

function isUnspecifiedOrLoopback(a: Uint8Array): boolean {
  for (let i = 0; i < 15; i++) if (a[i] !== 0) return false;
  return a[15]! <= 1;
}
