/**
 * Multicast membership: keeps the interface's link-layer multicast filter and our MLD state in
 * line with the target table, so that Neighbor Solicitations for the addresses we answer reach
 * us at all.
 *
 * An NS for target T goes to T's solicited-node group ff02::1:ffXX:XXXX (low 24 bits of T,
 * RFC 4291 section 2.7.1), on the wire to MAC 33:33:ff:XX:XX:XX (RFC 2464 section 7). Two
 * things can drop it before we see it:
 *  - the NIC's multicast filter: for every distinct group of the winning /128 answer addresses
 *    we add its MAC with backend.addMulticast (many addresses share a group: counted per group).
 *    Answer prefixes cannot be enumerated, and a very large group set would overflow NIC filters,
 *    so with any answer prefix, or more than `maxGroups` groups, we switch the interface to
 *    all-multicast instead (and back, when neither holds any more; per-group MACs are dropped
 *    while above maxGroups).
 *  - MLD-snooping switches, which forward a group only to ports that reported it. We speak
 *    MLDv2 (RFC 3810) for the same groups: a join is a CHANGE_TO_EXCLUDE record with no sources,
 *    a leave a CHANGE_TO_INCLUDE record; changes within `coalesceMs` go out together, split into
 *    as many reports as the MTU needs, and are sent [Robustness Variable] times (default 2), the
 *    repeats at random intervals in (0, Unsolicited Report Interval] (default 1 s) (RFC 3810
 *    section 6.1). Queries are answered (section 6.2): a general query with MODE_IS_EXCLUDE
 *    records for all our groups after a random delay in [0, Maximum Response Delay]; a
 *    group-specific query for a group we hold with that group's record. Reports answering a
 *    query carry the query's VLAN tag; unsolicited ones use `vlanTci` (default untagged).
 *
 * Limit: targets under an answer prefix have unknowable groups, so we cannot report them;
 * all-multicast makes our own NIC accept their NS, but an MLD-snooping switch will not forward
 * those NS to us. Exact addresses (the Docker case) are reported and work behind snooping
 * switches. Also, the MLD state sent is only ever the groups of the table: reports for other
 * groups (the kernel's own) are the kernel's business.
 *
 * The table is re-read in full on every (coalesced) change rather than patched from the change
 * lists: which /128 answers win depends on exclusions, and the table knows that.
 */
import type { Logger } from 'pino';
import type { PacketBackend } from '../io/backend.js';
import {
  buildMldv2Report,
  MLD2_CHANGE_TO_EXCLUDE,
  MLD2_CHANGE_TO_INCLUDE,
  MLD2_MODE_IS_EXCLUDE,
  mldv2ReportLength,
  mldv2ReportMaxGroups,
  type MldQuery,
} from '../ndp/mld.js';
import type { Rule } from '../table/rule.js';
import type { HostFacts } from './types.js';

/** What the manager needs of the target table (TargetTable has it). */
export interface MembershipTable {
  /** The winning /128 answer rules. */
  exactAnswers(): Iterable<Rule>;
  /** How many answer rules are shorter than /128. */
  answerPrefixCount(): number;
  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(listener: (change: unknown) => void): () => void;
}

export type MembershipBackend = Pick<PacketBackend, 'send' | 'addMulticast' | 'removeMulticast' | 'setAllMulticast'>;

export interface MembershipOptions {
  backend: MembershipBackend;
  host: HostFacts;
  table: MembershipTable;
  /** Above this many groups, use all-multicast instead of per-group MACs. Default 4096. */
  maxGroups?: number | undefined;
  /** Speak MLD (send reports, answer queries). Default true. */
  mld?: boolean | undefined;
  logger?: Logger | undefined;
  /** Table changes within this many ms are applied (and reported) together. Default 10. */
  coalesceMs?: number | undefined;
  /** Transmissions of each state change report (RFC 3810 section 9.1 Robustness Variable). Default 2. */
  robustness?: number | undefined;
  /** RFC 3810 section 9.11 Unsolicited Report Interval, ms. Default 1000. */
  unsolicitedReportIntervalMs?: number | undefined;
  /** Link MTU for splitting reports. Default 1500. */
  mtu?: number | undefined;
  /** 802.1Q TCI for unsolicited reports, or -1 for untagged. Default -1. */
  vlanTci?: number | undefined;
  /** Random source in [0, 1) for report delays. Default Math.random. */
  random?: (() => number) | undefined;
}

export interface MembershipStats {
  /** Distinct solicited-node groups of the winning /128 answers. */
  groups: number;
  /** Winning /128 answer addresses behind those groups. */
  addresses: number;
  /** Answer prefixes (their groups cannot be enumerated). */
  prefixes: number;
  /** Per-group MACs currently added on the back end. */
  macs: number;
  /** All-multicast turned on by us. */
  allmulti: boolean;
  /** MLD report frames the back end accepted. */
  reportsSent: number;
  queriesReceived: number;
  /** Queries answered with at least one report. */
  queriesAnswered: number;
  /** Back-end calls that failed (logged). */
  errors: number;
}

const SOLICITED_NODE_PREFIX = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/** The solicited-node group of a 24-bit key. */
function groupOf(key: number): Uint8Array {
  const g = new Uint8Array(16);
  g.set(SOLICITED_NODE_PREFIX);
  g[13] = (key >>> 16) & 0xff;
  g[14] = (key >>> 8) & 0xff;
  g[15] = key & 0xff;
  return g;
}

function macOf(key: number): Uint8Array {
  return Uint8Array.of(0x33, 0x33, 0xff, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff);
}

/** The 24-bit key of a solicited-node group, or -1 when `g` is not one. */
function keyOfGroup(g: Uint8Array): number {
  if (g.length !== 16) return -1;
  for (let i = 0; i < 13; i++) if (g[i] !== SOLICITED_NODE_PREFIX[i]) return -1;
  return (g[13]! << 16) | (g[14]! << 8) | g[15]!;
}

function positiveInt(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) {
    throw Object.assign(new RangeError(`membership: ${name} must be an integer >= ${min}, got ${v}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  return v;
}

/** Frames handed to one backend.send call. */
const FRAMES_PER_SEND = 32;

export class MembershipManager {
  readonly maxGroups: number;
  readonly mld: boolean;

  readonly #backend: MembershipBackend;
  readonly #table: MembershipTable;
  readonly #logger: Logger | undefined;
  readonly #coalesceMs: number;
  readonly #robustness: number;
  readonly #uriMs: number;
  readonly #vlanTci: number;
  readonly #random: () => number;
  readonly #perReport: number;
  #host: HostFacts;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  /** Group key -> number of winning /128 answers in it. */
  #groups = new Map<number, number>();
  #addresses = 0;
  #prefixes = 0;
  /** Keys whose MAC the back end holds for us. */
  readonly #macs = new Set<number>();
  #allMulti = false;

  /** Pending state-change retransmissions: key -> record type and transmissions left. */
  readonly #pending = new Map<number, { type: number; left: number }>();
  #syncTimer: NodeJS.Timeout | undefined;
  #retransmitTimer: NodeJS.Timeout | undefined;
  #generalTimer: NodeJS.Timeout | undefined;
  #generalDue = 0;
  #generalVlan = -1;
  #groupTimer: NodeJS.Timeout | undefined;
  #groupTimerDue = 0;
  readonly #groupDue = new Map<number, { due: number; vlan: number }>();

  // Report frames are built here and sent FRAMES_PER_SEND at a time.
  readonly #out: Uint8Array;
  readonly #offsets = new Uint32Array(FRAMES_PER_SEND);
  readonly #lengths = new Uint32Array(FRAMES_PER_SEND);

  #reportsSent = 0;
  #queriesReceived = 0;
  #queriesAnswered = 0;
  #errors = 0;

  /**
   * Subscribes to the table and applies its current state at once (MACs added, join reports
   * sent). Call close() to undo.
   * @throws RangeError ERR_OUT_OF_RANGE for bad numeric options.
   */
  constructor(opts: MembershipOptions) {
    this.maxGroups = positiveInt('maxGroups', opts.maxGroups, 4096, 0);
    this.mld = opts.mld ?? true;
    this.#backend = opts.backend;
    this.#table = opts.table;
    this.#host = opts.host;
    this.#logger = opts.logger;
    this.#coalesceMs = positiveInt('coalesceMs', opts.coalesceMs, 10, 0);
    this.#robustness = positiveInt('robustness', opts.robustness, 2, 1);
    this.#uriMs = positiveInt('unsolicitedReportIntervalMs', opts.unsolicitedReportIntervalMs, 1000, 1);
    const mtu = positiveInt('mtu', opts.mtu, 1500, 1280);
    this.#perReport = mldv2ReportMaxGroups(mtu);
    this.#vlanTci = opts.vlanTci ?? -1;
    this.#random = opts.random ?? Math.random;
    this.#out = new Uint8Array(FRAMES_PER_SEND * mldv2ReportLength(this.#perReport, true));
    this.#unsubscribe = this.#table.onChange(() => this.#scheduleSync());
    this.sync();
  }

  /** Replace the host facts (MAC or link-local changed): later reports use them. */
  setHost(host: HostFacts): void {
    this.#host = host;
  }

  #scheduleSync(): void {
    if (this.#closed || this.#syncTimer !== undefined) return;
    this.#syncTimer = setTimeout(() => {
      this.#syncTimer = undefined;
      this.sync();
    }, this.#coalesceMs);
    this.#syncTimer.unref();
  }

  /** Apply the table's current state now (normally done `coalesceMs` after a change). */
  sync(): void {
    if (this.#closed) return;
    if (this.#syncTimer !== undefined) {
      clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
    }
    const next = new Map<number, number>();
    let addresses = 0;
    for (const r of this.#table.exactAnswers()) {
      if (r.length !== 128) continue;
      const p = r.prefix;
      const key = (p[13]! << 16) | (p[14]! << 8) | p[15]!;
      next.set(key, (next.get(key) ?? 0) + 1);
      addresses++;
    }
    const prev = this.#groups;
    const joined: number[] = [];
    const left: number[] = [];
    for (const k of next.keys()) if (!prev.has(k)) joined.push(k);
    for (const k of prev.keys()) if (!next.has(k)) left.push(k);
    this.#groups = next;
    this.#addresses = addresses;
    this.#prefixes = this.#table.answerPrefixCount();

    // Link layer. All-multicast goes on before MACs leave and off after MACs are back, so no
    // NS is missed in between.
    const wantAll = this.#prefixes > 0 || next.size > this.maxGroups;
    const wantMacs = next.size <= this.maxGroups;
    if (wantAll && !this.#allMulti) this.#setAllMulticast(true);
    if (wantMacs) {
      for (const k of [...this.#macs]) if (!next.has(k)) this.#removeMac(k);
      for (const k of next.keys()) if (!this.#macs.has(k)) this.#addMac(k);
    } else {
      for (const k of [...this.#macs]) this.#removeMac(k);
    }
    if (!wantAll && this.#allMulti) this.#setAllMulticast(false);

    if (joined.length > 0 || left.length > 0) {
      this.#logger?.debug(
        { joined: joined.length, left: left.length, groups: next.size, prefixes: this.#prefixes, allmulti: this.#allMulti },
        'multicast groups changed',
      );
    }
    if (!this.mld || (joined.length === 0 && left.length === 0)) return;
    // State change records (RFC 3810 section 6.1), merged with any not yet fully retransmitted.
    for (const k of joined) this.#pending.set(k, { type: MLD2_CHANGE_TO_EXCLUDE, left: this.#robustness });
    for (const k of left) {
      this.#pending.set(k, { type: MLD2_CHANGE_TO_INCLUDE, left: this.#robustness });
      this.#groupDue.delete(k);
    }
    this.#transmitPending(new Set([...joined, ...left]));
  }

  /** Send the pending records (only `only`, when given), count a transmission, schedule the rest. */
  #transmitPending(only?: Set<number>): void {
    const toEx: number[] = [];
    const toIn: number[] = [];
    for (const [k, p] of this.#pending) {
      if (only !== undefined && !only.has(k)) continue;
      (p.type === MLD2_CHANGE_TO_EXCLUDE ? toEx : toIn).push(k);
      if (--p.left <= 0) this.#pending.delete(k);
    }
    this.#sendRecords(toEx, MLD2_CHANGE_TO_EXCLUDE, this.#vlanTci);
    this.#sendRecords(toIn, MLD2_CHANGE_TO_INCLUDE, this.#vlanTci);
    if (this.#pending.size > 0 && this.#retransmitTimer === undefined) {
      const delay = 1 + Math.floor(this.#random() * this.#uriMs); // (0, URI]
      this.#retransmitTimer = setTimeout(() => {
        this.#retransmitTimer = undefined;
        if (!this.#closed) this.#transmitPending();
      }, Math.min(delay, this.#uriMs));
      this.#retransmitTimer.unref();
    }
  }

  /**
   * Answer a Multicast Listener Query (RFC 3810 section 6.2) after a random delay in
   * [0, maxResponseDelayMs]. Queries for groups we do not hold are ignored.
   */
  handleMldQuery(q: MldQuery): void {
    if (this.#closed || !this.mld) return;
    this.#queriesReceived++;
    const maxDelay = Number.isFinite(q.maxResponseDelayMs) && q.maxResponseDelayMs > 0 ? q.maxResponseDelayMs : 0;
    const delay = Math.floor(this.#random() * maxDelay);
    const due = Date.now() + delay;
    if (q.group === null) {
      // A pending general response that is due sooner stands (RFC 3810 section 6.2, rule 1).
      if (this.#generalTimer !== undefined && this.#generalDue <= due) return;
      if (this.#generalTimer !== undefined) clearTimeout(this.#generalTimer);
      this.#generalDue = due;
      this.#generalVlan = q.vlanTci;
      this.#generalTimer = setTimeout(() => {
        this.#generalTimer = undefined;
        if (this.#closed) return;
        const sent = this.#sendRecords([...this.#groups.keys()], MLD2_MODE_IS_EXCLUDE, this.#generalVlan);
        if (sent > 0) this.#queriesAnswered++;
      }, delay);
      this.#generalTimer.unref();
      return;
    }
    const key = keyOfGroup(q.group);
    if (key < 0 || !this.#groups.has(key)) return;
    if (this.#generalTimer !== undefined && this.#generalDue <= due) return;
    const cur = this.#groupDue.get(key);
    if (cur !== undefined && cur.due <= due) return;
    this.#groupDue.set(key, { due, vlan: q.vlanTci });
    this.#armGroupTimer();
  }

  #armGroupTimer(): void {
    let first = Infinity;
    for (const v of this.#groupDue.values()) if (v.due < first) first = v.due;
    if (first === Infinity) return;
    if (this.#groupTimer !== undefined) {
      if (this.#groupTimerDue <= first) return;
      clearTimeout(this.#groupTimer);
    }
    this.#groupTimerDue = first;
    this.#groupTimer = setTimeout(() => {
      this.#groupTimer = undefined;
      if (this.#closed) return;
      const now = Date.now();
      const byVlan = new Map<number, number[]>();
      for (const [k, v] of this.#groupDue) {
        if (v.due > now) continue;
        this.#groupDue.delete(k);
        if (!this.#groups.has(k)) continue;
        const list = byVlan.get(v.vlan) ?? [];
        list.push(k);
        byVlan.set(v.vlan, list);
      }
      for (const [vlan, keys] of byVlan) {
        // One query answered per group reported.
        if (this.#sendRecords(keys, MLD2_MODE_IS_EXCLUDE, vlan) > 0) this.#queriesAnswered += keys.length;
      }
      this.#armGroupTimer();
    }, Math.max(0, first - Date.now()));
    this.#groupTimer.unref();
  }

  /** Build and send MLDv2 reports with one `recordType` record per key. Returns frames accepted. */
  #sendRecords(keys: readonly number[], recordType: number, vlanTci: number): number {
    if (keys.length === 0) return 0;
    const host = this.#host;
    let accepted = 0;
    let n = 0;
    let off = 0;
    const flush = (): void => {
      if (n === 0) return;
      try {
        accepted += this.#backend.send(this.#out, this.#offsets, this.#lengths, n);
      } catch (err) {
        this.#error('send MLD report', err);
      }
      n = 0;
      off = 0;
    };
    for (let i = 0; i < keys.length; i += this.#perReport) {
      const groups = keys.slice(i, i + this.#perReport).map(groupOf);
      let len: number;
      try {
        len = buildMldv2Report(this.#out, off, host.mac, host.linkLocal, groups, recordType, vlanTci);
      } catch (err) {
        this.#error('build MLD report', err);
        return accepted;
      }
      if (len === 0) {
        this.#error('build MLD report', new Error('report buffer too small'));
        return accepted;
      }
      this.#offsets[n] = off;
      this.#lengths[n] = len;
      n++;
      off += len;
      if (n === FRAMES_PER_SEND) flush();
    }
    flush();
    this.#reportsSent += accepted;
    return accepted;
  }

  #addMac(key: number): void {
    try {
      this.#backend.addMulticast(macOf(key));
      this.#macs.add(key);
    } catch (err) {
      this.#error('add multicast MAC', err);
    }
  }

  #removeMac(key: number): void {
    this.#macs.delete(key);
    try {
      this.#backend.removeMulticast(macOf(key));
    } catch (err) {
      this.#error('remove multicast MAC', err);
    }
  }

  #setAllMulticast(on: boolean): void {
    try {
      this.#backend.setAllMulticast(on);
      this.#allMulti = on;
      this.#logger?.info({ allmulti: on, groups: this.#groups.size, prefixes: this.#prefixes }, 'all-multicast changed');
    } catch (err) {
      this.#error(`set all-multicast ${on ? 'on' : 'off'}`, err);
    }
  }

  #error(what: string, err: unknown): void {
    this.#errors++;
    if (this.#errors <= 20 || this.#errors % 1000 === 0) {
      const e = err as { message?: string; code?: unknown };
      this.#logger?.warn({ err: e.message ?? String(err), code: e.code, errors: this.#errors }, `membership: ${what} failed`);
    }
  }

  stats(): MembershipStats {
    return {
      groups: this.#groups.size,
      addresses: this.#addresses,
      prefixes: this.#prefixes,
      macs: this.#macs.size,
      allmulti: this.#allMulti,
      reportsSent: this.#reportsSent,
      queriesReceived: this.#queriesReceived,
      queriesAnswered: this.#queriesAnswered,
      errors: this.#errors,
    };
  }

  /**
   * Leave: one CHANGE_TO_INCLUDE report round for every group (no retransmissions: we are
   * going), remove our MACs, turn all-multicast off, stop every timer. Never throws; safe twice.
   * Call it before closing the back end.
   */
  close(): void {
    if (this.#closed) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const t of [this.#syncTimer, this.#retransmitTimer, this.#generalTimer, this.#groupTimer]) {
      if (t !== undefined) clearTimeout(t);
    }
    this.#syncTimer = this.#retransmitTimer = this.#generalTimer = this.#groupTimer = undefined;
    this.#pending.clear();
    this.#groupDue.clear();
    if (this.mld && this.#groups.size > 0) {
      this.#sendRecords([...this.#groups.keys()], MLD2_CHANGE_TO_INCLUDE, this.#vlanTci);
    }
    for (const k of [...this.#macs]) this.#removeMac(k);
    if (this.#allMulti) this.#setAllMulticast(false);
    this.#closed = true;
    this.#groups = new Map();
    this.#addresses = 0;
  }
}
