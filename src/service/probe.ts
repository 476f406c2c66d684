/**
 * New container addresses are probed before they are announced, as RFC 4862 section 5.4 has a
 * node probe an address before it uses it, and answered meanwhile the way an optimistic node
 * does (RFC 4429 section 3.3: O=0, so an existing owner's neighbour entries are not overridden):
 *
 *  1. the address appears (a container started): it is on probation at once (answered, O=0)
 *     and one DAD probe (NS from ::, to its solicited-node group) goes out;
 *  2. if another node answers the probe (an NA for it), or probes for it itself, the conflict
 *     guard records it in use (scope.ts `observe`): it is not answered any more, and a warning
 *     names the container;
 *  3. after `probeMs` (RetransTimer, 1 s) with no owner: probation ends, answers carry O=1, and
 *     the unsolicited NAs go out (announcer.ts);
 *  4. at the same moment one NS from the address (SLLAO: the host's MAC) asks for the default
 *     router, so the router learns the address from the NS (RFC 4861 section 7.2.3) even when
 *     it ignores unsolicited NAs (section 7.2.6 leaves caching them to the receiver). The
 *     router's MAC is not known here: the NS goes to the router's solicited-node group.
 */
import type { Logger } from 'pino';
import { formatAddress } from '../addr/index.js';
import type { HostFacts } from '../engine/types.js';
import type { FrameSink } from '../io/backend.js';
import { buildNS, NS_FRAME_LEN_MAX } from '../ndp/build-ns.js';
import { SEND_BATCH, sendEach } from '../engine/send-each.js';
import type { Rule } from '../table/rule.js';
import type { Scope } from './scope.js';

/** RFC 4861 section 10 RetransTimer: how long a probe waits for an owner. */
export const PROBE_MS = 1000;

export interface ProberOptions {
  readonly sink: FrameSink;
  readonly scope: Scope;
  readonly host: () => HostFacts;
  /** Called with the addresses whose probe found no other owner (to announce them). */
  readonly confirmed: (rules: Rule[]) => void;
  readonly logger?: Logger | undefined;
  readonly probeMs?: number;
  /** The uplink's default router (gateway of ::/0), or undefined: no NS to a router then. */
  readonly router?: () => Uint8Array | undefined;
}

export class Prober {
  private readonly pending = new Map<string, Rule>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly buf = new Uint8Array(SEND_BATCH * NS_FRAME_LEN_MAX);
  private closed = false;
  /** Probes sent. */
  sent = 0;
  /** Addresses whose probe found another owner. */
  conflicts = 0;
  /** NS sent from confirmed addresses to the default router. */
  routerSolicits = 0;

  constructor(private readonly opts: ProberOptions) {}

  /** Addresses that just became ours: probation, one probe each, a verdict after probeMs. */
  added(rules: readonly Rule[]): void {
    if (this.closed) return;
    const batch: Rule[] = [];
    for (const r of rules) {
      if (r.length !== 128) continue;
      this.opts.scope.beginProbation(r.prefix);
      this.pending.set(r.text, r);
      batch.push(r);
    }
    if (batch.length === 0) return;
    this.probe(batch);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.settle(batch);
    }, this.opts.probeMs ?? PROBE_MS);
    this.timers.add(t);
  }

  /** Addresses that stopped being ours: no verdict, no announcement. */
  removed(rules: readonly Rule[]): void {
    for (const r of rules) {
      if (this.pending.delete(r.text)) this.opts.scope.endProbation(r.prefix);
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of this.pending.values()) this.opts.scope.endProbation(r.prefix);
    this.pending.clear();
  }

  private settle(batch: readonly Rule[]): void {
    const ok: Rule[] = [];
    for (const r of batch) {
      if (this.pending.get(r.text) !== r) continue;
      this.pending.delete(r.text);
      this.opts.scope.endProbation(r.prefix);
      const owner = this.opts.scope.inUseBy(r.prefix);
      if (owner === undefined) ok.push(r);
      else this.conflicts++;
    }
    if (ok.length > 0) {
      this.opts.confirmed(ok);
      this.solicitRouter(ok);
    }
  }

  /** One NS per confirmed address, from it, for the default router (see the file header). */
  private solicitRouter(rules: readonly Rule[]): void {
    const router = this.opts.router?.();
    if (router === undefined) return;
    const host = this.opts.host();
    this.routerSolicits += sendEach(this.opts.sink, this.buf, NS_FRAME_LEN_MAX, rules, (r, out, off) =>
      buildNS({ mac: host.mac, src: r.prefix, target: router, dst: null }, out, off),
    ).sent;
    this.opts.logger?.debug(
      { router: formatAddress(router), addresses: rules.map((r) => formatAddress(r.prefix)) },
      'asked the default router from new addresses',
    );
  }

  /** One DAD probe per address. */
  private probe(rules: readonly Rule[]): void {
    const host = this.opts.host();
    this.sent += sendEach(this.opts.sink, this.buf, NS_FRAME_LEN_MAX, rules, (r, out, off) =>
      buildNS({ mac: host.mac, src: null, target: r.prefix }, out, off),
    ).sent;
    this.opts.logger?.debug({ addresses: rules.map((r) => formatAddress(r.prefix)) }, 'probing new addresses');
  }
}
