/**
 * Unsolicited Neighbor Advertisements (RFC 4861 section 7.2.6) for addresses that just became
 * ours: MAX_NEIGHBOR_ADVERTISEMENT (3) NAs to ff02::1, a second apart, S=0, O=1, so neighbours
 * and routers that cached a stale or failed entry update at once. Stops announcing an address
 * the moment it stops being ours.
 */
import type { Logger } from 'pino';
import type { FrameSink } from '../io/backend.js';
import { SEND_BATCH, sendEach } from './send-each.js';
import { buildUnsolicitedNA } from '../ndp/build.js';
import { NA_FRAME_LEN_VLAN } from '../ndp/constants.js';
import type { Rule } from '../table/rule.js';
import type { Counters } from './counters.js';
import type { AnswerSettings, HostFacts } from './types.js';

/** RFC 4861 section 10: MAX_NEIGHBOR_ADVERTISEMENT. */
export const ANNOUNCE_COUNT = 3;
export const ANNOUNCE_INTERVAL_MS = 1000;

interface Pending {
  rule: Rule;
  left: number;
}

export interface AnnouncerOptions {
  sink: FrameSink;
  host: () => HostFacts;
  settings: AnswerSettings;
  counters: Counters;
  logger?: Logger | undefined;
  count?: number;
  intervalMs?: number;
}

export class Announcer {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private buf = new Uint8Array(SEND_BATCH * NA_FRAME_LEN_VLAN);
  private closed = false;
  private readonly count: number;
  private readonly intervalMs: number;

  constructor(private readonly opts: AnnouncerOptions) {
    this.count = opts.count ?? ANNOUNCE_COUNT;
    this.intervalMs = opts.intervalMs ?? ANNOUNCE_INTERVAL_MS;
  }

  /** Addresses that became answered: announce now, then twice more a second apart. */
  added(rules: readonly Rule[]): void {
    if (this.closed) return;
    const fresh: Rule[] = [];
    for (const r of rules) {
      if (r.length !== 128) continue;
      const p = { rule: r, left: this.count };
      this.pending.set(r.text, p);
      fresh.push(r);
    }
    if (fresh.length === 0) return;
    this.sendFor(fresh);
    this.schedule();
  }

  /** Addresses that stopped being ours: no further announcements for them. */
  removed(rules: readonly Rule[]): void {
    for (const r of rules) this.pending.delete(r.text);
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.pending.size === 0 || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const due: Rule[] = [];
      for (const p of this.pending.values()) due.push(p.rule);
      this.sendFor(due);
      this.schedule();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Send one NA for each rule, in batches, and count down its remaining announcements. */
  private sendFor(rules: readonly Rule[]): void {
    const host = this.opts.host();
    const { built, sent } = sendEach(this.opts.sink, this.buf, NA_FRAME_LEN_VLAN, rules, (r, out, off) => {
      const len = buildUnsolicitedNA(r.prefix, 0, host, this.opts.settings, -1, out, off);
      if (len === 0) return 0;
      const p = this.pending.get(r.text);
      if (p !== undefined && --p.left <= 0) this.pending.delete(r.text);
      return len;
    });
    this.opts.counters.announced += sent;
    this.opts.counters.sendFailed += built - sent;
    if (rules.length > 0) this.opts.logger?.debug({ addresses: rules.length }, 'unsolicited NA sent');
  }
}
