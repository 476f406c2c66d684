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
 *    records for all our groups (the full state) after a random delay in [0, Maximum Response
 *    Delay]; a group-specific query for a group we hold with that group's record. Reports
 *    answering a query carry the query's VLAN tag; unsolicited ones go untagged (`vlanTci`) and
 *    on every served VLAN.
 *
 * Queries (see handleMldQuery for the exact rules):
 *  - accepted only when valid (RFC 3810 section 5: hop limit 1, link-local source, Router Alert;
 *    the codec checks), on a VLAN we serve (untagged or priority-tagged always; a tag only when
 *    its VID is in `servedVlans`), and addressed to ff02::1, to a group we report, or to one of
 *    our own addresses (RFC 3810 section 5.1.15): a query for someone else's unicast address that
 *    reaches us through our MAC draws nothing. Every ignored query is counted by reason.
 *  - rate-limited: per VLAN at most one full-state response per `minFullReportIntervalMs`
 *    (default 1 s) whatever the query rate, and per group and VLAN at most one group-specific
 *    answer per that interval (absorbed queries are counted).
 *  - MLDv1 compatibility (RFC 3810 section 8.2): an MLDv1 query switches us to MLDv1 for the
 *    Older Version Querier Present Timeout (section 9.12: Robustness Variable x Query Interval
 *    + Query Response Interval, from the last MLDv2 query heard or the defaults 2, 125 s, 10 s;
 *    the Query Response Interval of an MLDv1 querier is its query's Maximum Response Delay):
 *    one MLDv1 report (type 131) per group to the group, MLDv1 done (type 132) to ff02::2 on
 *    leave; back to MLDv2 when the timer runs out.
 *
 * Limit: targets under an answer prefix have unknowable groups, so we cannot report them;
 * all-multicast makes our own NIC accept their NS, but an MLD-snooping switch will not forward
 * those NS to us. Exact addresses (the Docker case) are reported and work behind snooping
 * switches. Also, the MLD state sent is only ever the groups of the table: reports for other
 * groups (the kernel's own) are the kernel's business.
 *
 * The table is read in full once, at start; after that only its change reports are applied (the
 * /128 answers that came and went: the table has already worked out exclusions and winners), so
 * a change costs in proportion to its size, whatever the size of the table.
 *
 * Bulk mode: above `bulkAddresses` exact answer addresses (default 65,536; an address file of a
 * million lines) per-group state is not kept at all: all-multicast on, no per-group MACs and no
 * MLD reports for those groups (nor the table read, the group map, or the million-record join
 * that would cost seconds and tens of MB at start). Trade-off: an MLD-snooping switch forwards a
 * group's NS only to ports that reported it, so behind such a switch those targets go unheard.
 * No switch's snooping table holds that many groups anyway (they hold thousands): above that
 * size the LAN must flood multicast to this port (snooping off, or this port a multicast router
 * port). Entering bulk mode is logged with that warning; the groups are not left explicitly
 * (the switch's memberships time out). Bulk mode ends, with a full read and joins for every
 * group, when the count falls to half the threshold. Deciding needs only the table's count of
 * exact answers (`exactAnswerCount`), so a change still costs in proportion to its size.
 */
import type { Logger } from 'pino';
import type { PacketBackend } from '../io/backend.js';
import {
  buildMldv1Done,
  buildMldv1Report,
  buildMldv2Report,
  MLD2_CHANGE_TO_EXCLUDE,
  MLD2_CHANGE_TO_INCLUDE,
  MLD2_MODE_IS_EXCLUDE,
  MLD_QUERY_ERROR_NAMES,
  mldv1FrameLength,
  mldv2ReportLength,
  mldv2ReportMaxGroups,
  type MldQuery,
  type MldQueryReject,
} from '../ndp/mld.js';
import type { Rule } from '../table/rule.js';
import type { TableChange } from '../table/target-table.js';
import type { HostFacts } from './types.js';

/** What the manager needs of the target table (TargetTable has it). */
export interface MembershipTable {
  /** The winning /128 answer rules. */
  exactAnswers(): Iterable<Rule>;
  /** How many answer rules are shorter than /128. */
  answerPrefixCount(): number;
  /** How many winning /128 answers there are; without it bulk mode is never used. */
  exactAnswerCount?(): number;
  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(listener: (change: TableChange) => void): () => void;
}

export type MembershipBackend = Pick<PacketBackend, 'send' | 'addMulticast' | 'removeMulticast' | 'setAllMulticast'>;

/** Time and timers (milliseconds); tests pass a fake one. */
export interface MembershipClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock: monotonic time, timers that do not keep the process alive. */
export const REAL_CLOCK: MembershipClock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (fn: () => void, ms: number): unknown => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h: unknown): void => clearTimeout(h as NodeJS.Timeout),
});

export interface MembershipOptions {
  backend: MembershipBackend;
  host: HostFacts;
  table: MembershipTable;
  /** Above this many groups, use all-multicast instead of per-group MACs. Default 4096. */
  maxGroups?: number | undefined;
  /**
   * Above this many exact answer addresses, bulk mode (see the file header): all-multicast, no
   * per-group state, MACs or MLD reports. Back to per-group at half of it. Default 65,536.
   */
  bulkAddresses?: number | undefined;
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
  /**
   * 802.1Q VIDs (1..4094) we serve: tagged queries on other VIDs are ignored (counted), and
   * unsolicited reports are also sent tagged on each of these. Untagged and priority-tagged
   * (VID 0) queries are always served. Default empty: untagged only.
   */
  servedVlans?: ReadonlySet<number> | undefined;
  /**
   * The interface's own addresses (unicast; link-local included): a query addressed to one of
   * them is accepted (RFC 3810 section 5.1.15). Read only for queries to a unicast destination.
   * Default: just `host.linkLocal`.
   */
  ownAddresses?: (() => Iterable<Uint8Array>) | undefined;
  /** At most one full-state response (and one answer per group) per VLAN in this many ms. Default 1000. */
  minFullReportIntervalMs?: number | undefined;
  /** Random source in [0, 1) for report delays. Default Math.random. */
  random?: (() => number) | undefined;
  /** Default {@link REAL_CLOCK}. */
  clock?: MembershipClock | undefined;
}

/** The codec's reasons for an invalid query ({@link MLD_QUERY_ERROR_NAMES} without its unused 0). */
type QueryErrorName = Exclude<(typeof MLD_QUERY_ERROR_NAMES)[number], ''>;

/** Why a query drew nothing: the codec's reasons (MLD_QUERY_ERROR_NAMES), then the manager's. */
export const QUERY_IGNORE_REASONS = [
  ...(MLD_QUERY_ERROR_NAMES.slice(1) as QueryErrorName[]),
  /** Tagged with a VID we do not serve. */
  'vlan',
  /** Addressed to neither ff02::1, a group we report, nor one of our own addresses. */
  'destination',
  /** Group-specific, for a group we do not hold. */
  'other-group',
] as const;
export type QueryIgnoreReason = (typeof QUERY_IGNORE_REASONS)[number];

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
  /** Bulk mode: too many addresses to follow per group (no MACs, no MLD reports for them). */
  bulk: boolean;
  /** MLD report frames (v2 reports, v1 reports and dones) the back end accepted. */
  reportsSent: number;
  /** Full-state responses (to general queries) sent; each may take several frames. */
  fullReports: number;
  /** Query frames handed to us, valid or not. */
  queriesReceived: number;
  /** Queries answered with at least one report. */
  queriesAnswered: number;
  /** Accepted queries that drew no report of their own: a response was pending or sent within the rate-limit interval. */
  queriesAbsorbed: number;
  /** Queries ignored, by reason. */
  queriesIgnored: Record<QueryIgnoreReason, number>;
  /** MLD version we speak now: 1 while an MLDv1 querier is present (RFC 3810 section 8.2). */
  mldVersion: 1 | 2;
  /** Milliseconds until we return to MLDv2; 0 when speaking MLDv2. */
  olderVersionQuerierMs: number;
  /** Back-end calls that failed (logged). */
  errors: number;
}

const SOLICITED_NODE_PREFIX = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/** RFC 3810 section 9 defaults for what we learn from MLDv2 queries. */
const DEFAULT_QUERY_INTERVAL_MS = 125_000;
const DEFAULT_QUERY_RESPONSE_INTERVAL_MS = 10_000;

/** The solicited-node group of a 24-bit key. */
function groupOf(key: number): Uint8Array {
  const g = new Uint8Array(16);
  g.set(SOLICITED_NODE_PREFIX);
  g[13] = (key >>> 16) & 0xff;
  g[14] = (key >>> 8) & 0xff;
  g[15] = key & 0xff;
  return g;
}

/** Write the solicited-node group of `key` into `g` (16 bytes). */
function setGroup(g: Uint8Array, key: number): void {
  g.set(SOLICITED_NODE_PREFIX);
  g[13] = (key >>> 16) & 0xff;
  g[14] = (key >>> 8) & 0xff;
  g[15] = key & 0xff;
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

function isAllNodes(a: Uint8Array): boolean {
  if (a[0] !== 0xff || a[1] !== 0x02 || a[15] !== 0x01) return false;
  for (let i = 2; i < 15; i++) if (a[i] !== 0) return false;
  return true;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== 16 || b.length !== 16) return false;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

function positiveInt(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) {
    throw Object.assign(new RangeError(`membership: ${name} must be an integer >= ${min}, got ${v}`), { code: 'ERR_OUT_OF_RANGE' });
  }
  return v;
}

/**
 * A pending state-change record as one number (no object per group: a million joins at start):
 * record type x 256 + transmissions left (robustness is at most a few).
 */
const pendingOf = (type: number, left: number): number => type * 256 + Math.min(left, 255);
const pendingType = (p: number): number => p >>> 8;
const pendingLeft = (p: number): number => p & 0xff;

/** Frames handed to one backend.send call. */
const FRAMES_PER_SEND = 32;

/** Per-VLAN general-query state (key: VID, -1 for untagged). */
interface VlanState {
  /** Pending full-state response, its due time and the TCI to answer with. */
  timer: unknown;
  due: number;
  tci: number;
  /** When the last full-state response went out. */
  lastFull: number;
}

/** Per-(VLAN, group) key for group-specific state: VID (-1..4095) + 1, then the 24-bit group key. */
const groupSlot = (vid: number, key: number): number => (vid + 1) * 0x1000000 + key;

const UNSPECIFIED = new Uint8Array(16);

/**
 * Source of our MLD messages: the interface's link-local address, or :: while it has no valid one
 * yet (RFC 3810 section 5.2.13, RFC 3590), as the kernel does: a tentative address must not be
 * used, and the stand-in (EUI-64 of the MAC) may not be an address of this host at all.
 */
const mldSource = (host: HostFacts): Uint8Array => (host.linkLocalValid === false ? UNSPECIFIED : host.linkLocal);

/** Default {@link MembershipOptions.bulkAddresses}. */
export const DEFAULT_BULK_ADDRESSES = 65_536;

export class MembershipManager {
  readonly maxGroups: number;
  readonly bulkAddresses: number;
  readonly mld: boolean;

  readonly #backend: MembershipBackend;
  readonly #table: MembershipTable;
  readonly #logger: Logger | undefined;
  readonly #coalesceMs: number;
  readonly #robustness: number;
  readonly #uriMs: number;
  readonly #vlanTci: number;
  readonly #servedVlans: ReadonlySet<number>;
  readonly #ownAddresses: (() => Iterable<Uint8Array>) | undefined;
  readonly #minFullMs: number;
  readonly #random: () => number;
  readonly #clock: MembershipClock;
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
  /** Keys whose MAC add failed: retried at each sync while the group lasts. */
  readonly #macRetry = new Set<number>();
  /** True while per-group MACs follow the groups (at most maxGroups groups). */
  #macsTracking = false;
  /** Group key -> net change of its count from table changes not applied yet. */
  readonly #delta = new Map<number, number>();
  #allMulti = false;
  /** Bulk mode (see the file header): no per-group state; `#addresses` is the table's count. */
  #bulk = false;

  /** Pending state-change retransmissions: key -> record type and transmissions left (pendingOf). */
  readonly #pending = new Map<number, number>();
  #syncTimer: unknown;
  #retransmitTimer: unknown;
  readonly #vlans = new Map<number, VlanState>();
  #groupTimer: unknown;
  #groupTimerDue = 0;
  /** Pending group-specific answers by groupSlot. */
  readonly #groupDue = new Map<number, { key: number; due: number; tci: number }>();
  /** When each groupSlot was last answered (pruned once older than the interval). */
  readonly #groupLast = new Map<number, number>();

  /** MLDv1 compatibility: we speak MLDv1 until this time (RFC 3810 section 8.2.1). */
  #v1Until = -Infinity;
  #v1Timer: unknown;
  /** Learned from MLDv2 queries (RFC 3810 sections 5.1.8, 5.1.9, 9.3). */
  #qrv: number;
  #queryIntervalMs = DEFAULT_QUERY_INTERVAL_MS;
  #queryResponseIntervalMs = DEFAULT_QUERY_RESPONSE_INTERVAL_MS;

  // Report frames are built here and sent FRAMES_PER_SEND at a time.
  readonly #out: Uint8Array;
  /** perReport group buffers for #sendRecords. */
  readonly #groupBufs: Uint8Array[];
  readonly #offsets = new Uint32Array(FRAMES_PER_SEND);
  readonly #lengths = new Uint32Array(FRAMES_PER_SEND);

  #reportsSent = 0;
  #fullReports = 0;
  #queriesReceived = 0;
  #queriesAnswered = 0;
  #queriesAbsorbed = 0;
  readonly #ignored = Object.fromEntries(QUERY_IGNORE_REASONS.map((r) => [r, 0])) as Record<QueryIgnoreReason, number>;
  #errors = 0;

  /**
   * Subscribes to the table and applies its current state at once (MACs added, join reports
   * sent). Call close() to undo.
   * @throws RangeError ERR_OUT_OF_RANGE for bad numeric options.
   */
  constructor(opts: MembershipOptions) {
    this.maxGroups = positiveInt('maxGroups', opts.maxGroups, 4096, 0);
    this.bulkAddresses = positiveInt('bulkAddresses', opts.bulkAddresses, DEFAULT_BULK_ADDRESSES, 1);
    this.mld = opts.mld ?? true;
    this.#backend = opts.backend;
    this.#table = opts.table;
    this.#host = opts.host;
    this.#logger = opts.logger;
    this.#coalesceMs = positiveInt('coalesceMs', opts.coalesceMs, 10, 0);
    this.#robustness = positiveInt('robustness', opts.robustness, 2, 1);
    this.#qrv = this.#robustness;
    this.#uriMs = positiveInt('unsolicitedReportIntervalMs', opts.unsolicitedReportIntervalMs, 1000, 1);
    this.#minFullMs = positiveInt('minFullReportIntervalMs', opts.minFullReportIntervalMs, 1000, 0);
    const mtu = positiveInt('mtu', opts.mtu, 1500, 1280);
    this.#perReport = mldv2ReportMaxGroups(mtu);
    this.#groupBufs = Array.from({ length: this.#perReport }, () => new Uint8Array(16));
    this.#vlanTci = opts.vlanTci ?? -1;
    const served = opts.servedVlans ?? new Set<number>();
    for (const v of served) {
      if (!Number.isInteger(v) || v < 1 || v > 4094) {
        throw Object.assign(new RangeError(`membership: servedVlans entries must be VIDs 1..4094, got ${v}`), { code: 'ERR_OUT_OF_RANGE' });
      }
    }
    this.#servedVlans = served;
    this.#ownAddresses = opts.ownAddresses;
    this.#random = opts.random ?? Math.random;
    this.#clock = opts.clock ?? REAL_CLOCK;
    this.#out = new Uint8Array(FRAMES_PER_SEND * Math.max(mldv2ReportLength(this.#perReport, true), mldv1FrameLength(true)));
    this.#unsubscribe = this.#table.onChange((c) => this.#noteChange(c));
    const exact = this.#table.exactAnswerCount?.();
    if (exact !== undefined && exact > this.bulkAddresses) this.#enterBulk(exact);
    else this.#apply(this.#readAll(), []);
  }

  /**
   * Stop following groups: all-multicast on, per-group MACs, state and pending reports dropped
   * (the switch's memberships time out), one warning.
   */
  #enterBulk(exact: number): void {
    this.#bulk = true;
    this.#prefixes = this.#table.answerPrefixCount();
    if (!this.#allMulti) this.#setAllMulticast(true);
    this.#macsTracking = false;
    this.#macRetry.clear();
    for (const k of [...this.#macs]) this.#removeMac(k);
    this.#groups = new Map();
    this.#delta.clear();
    this.#pending.clear();
    this.#groupDue.clear();
    this.#addresses = exact;
    this.#logger?.warn(
      { addresses: exact, bulkAddresses: this.bulkAddresses, allmulti: this.#allMulti, reason: 'mld-bulk' },
      `${exact} exact addresses exceed ${this.bulkAddresses}: all-multicast on, no per-group MLD reports; an MLD-snooping switch will not forward their NS to this port`,
    );
  }

  /** Follow groups again (the count fell to half the threshold): read the table, join every group. */
  #leaveBulk(): void {
    this.#bulk = false;
    this.#addresses = 0;
    this.#logger?.info({ bulkAddresses: this.bulkAddresses }, 'exact addresses back under the bulk threshold: per-group membership again');
    this.#apply(this.#readAll(), []);
  }

  /** Replace the host facts (MAC or link-local changed): later reports use them. */
  setHost(host: HostFacts): void {
    this.#host = host;
  }

  #scheduleSync(): void {
    if (this.#closed || this.#syncTimer !== undefined) return;
    this.#syncTimer = this.#clock.setTimeout(() => {
      this.#syncTimer = undefined;
      this.sync();
    }, this.#coalesceMs);
  }

  /** Record a table change's /128 answers as per-group count deltas (applied by sync). */
  #noteChange(change: TableChange): void {
    if (this.#closed) return;
    if (this.#bulk) {
      // Only the count matters (read at sync).
      this.#scheduleSync();
      return;
    }
    for (const r of change.added) if (r.length === 128) this.#bump(r.prefix, 1);
    for (const r of change.removed) if (r.length === 128) this.#bump(r.prefix, -1);
    this.#scheduleSync();
  }

  #bump(p: Uint8Array, by: number): void {
    const key = (p[13]! << 16) | (p[14]! << 8) | p[15]!;
    const d = (this.#delta.get(key) ?? 0) + by;
    if (d === 0) this.#delta.delete(key);
    else this.#delta.set(key, d);
  }

  /** Read the whole table once (at start): every group is a join. */
  #readAll(): number[] {
    const groups = this.#groups;
    for (const r of this.#table.exactAnswers()) {
      if (r.length !== 128) continue;
      const p = r.prefix;
      const key = (p[13]! << 16) | (p[14]! << 8) | p[15]!;
      groups.set(key, (groups.get(key) ?? 0) + 1);
      this.#addresses++;
    }
    return [...groups.keys()];
  }

  /** Fold the pending deltas into the group counts; returns the groups that appeared and went. */
  #applyDelta(): { joined: number[]; left: number[] } {
    const joined: number[] = [];
    const left: number[] = [];
    for (const [k, d] of this.#delta) {
      const before = this.#groups.get(k) ?? 0;
      // A count below zero would mean the table reported a removal it never added: clamp.
      const after = Math.max(0, before + d);
      this.#addresses += after - before;
      if (after === 0) {
        if (before > 0) {
          this.#groups.delete(k);
          left.push(k);
        }
      } else {
        this.#groups.set(k, after);
        if (before === 0) joined.push(k);
      }
    }
    this.#delta.clear();
    return { joined, left };
  }

  /**
   * Apply the pending table changes now (normally done `coalesceMs` after a change). The cost is
   * proportional to the change: only the groups it touched are looked at (plus every group once
   * when the interface crosses `maxGroups` and per-group MACs come back).
   */
  sync(): void {
    if (this.#closed) return;
    if (this.#syncTimer !== undefined) {
      this.#clock.clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
    }
    const exact = this.#table.exactAnswerCount?.();
    if (this.#bulk) {
      if (exact !== undefined && 2 * exact <= this.bulkAddresses) {
        this.#leaveBulk();
      } else {
        this.#addresses = exact ?? this.#addresses;
        this.#prefixes = this.#table.answerPrefixCount();
        if (!this.#allMulti) this.#setAllMulticast(true); // an earlier attempt failed
      }
      return;
    }
    if (exact !== undefined && exact > this.bulkAddresses) {
      this.#enterBulk(exact);
      return;
    }
    const { joined, left } = this.#applyDelta();
    this.#apply(joined, left);
  }

  /** Bring the link layer and MLD in line after `joined` groups appeared and `left` ones went. */
  #apply(joined: readonly number[], left: readonly number[]): void {
    const groups = this.#groups;
    this.#prefixes = this.#table.answerPrefixCount();

    // Link layer. All-multicast goes on before MACs leave and off after MACs are back, so no
    // NS is missed in between.
    const wantAll = this.#prefixes > 0 || groups.size > this.maxGroups;
    const wantMacs = groups.size <= this.maxGroups;
    if (wantAll && !this.#allMulti) this.#setAllMulticast(true);
    if (wantMacs) {
      if (!this.#macsTracking) {
        // Back below maxGroups (or the first sync): every group needs its MAC.
        this.#macsTracking = true;
        for (const k of groups.keys()) if (!this.#macs.has(k)) this.#addMac(k);
      } else {
        // MACs whose add failed at an earlier sync are retried (once per sync).
        const retry = [...this.#macRetry];
        this.#macRetry.clear();
        for (const k of retry) if (groups.has(k) && !this.#macs.has(k)) this.#addMac(k);
        for (const k of left) if (this.#macs.has(k)) this.#removeMac(k);
        for (const k of joined) if (!this.#macs.has(k)) this.#addMac(k);
      }
    } else {
      this.#macsTracking = false;
      this.#macRetry.clear();
      for (const k of [...this.#macs]) this.#removeMac(k);
    }
    if (!wantAll && this.#allMulti) this.#setAllMulticast(false);

    if (joined.length > 0 || left.length > 0) {
      this.#logger?.debug(
        { joined: joined.length, left: left.length, groups: groups.size, prefixes: this.#prefixes, allmulti: this.#allMulti },
        'multicast groups changed',
      );
    }
    if (!this.mld || (joined.length === 0 && left.length === 0)) return;
    // State change records (RFC 3810 section 6.1), merged with any not yet fully retransmitted.
    for (const k of joined) this.#pending.set(k, pendingOf(MLD2_CHANGE_TO_EXCLUDE, this.#robustness));
    if (left.length > 0) {
      const gone = new Set(left);
      for (const k of left) this.#pending.set(k, pendingOf(MLD2_CHANGE_TO_INCLUDE, this.#robustness));
      for (const [slot, v] of this.#groupDue) if (gone.has(v.key)) this.#groupDue.delete(slot);
    }
    this.#transmitPending(joined.length === 0 ? left : left.length === 0 ? joined : [...joined, ...left]);
  }

  /** TCIs unsolicited reports go out with: `vlanTci`, then each served VID not already that. */
  #unsolicitedTcis(): number[] {
    const tcis = [this.#vlanTci];
    for (const vid of this.#servedVlans) if ((this.#vlanTci & 0xfff) !== vid || this.#vlanTci < 0) tcis.push(vid);
    return tcis;
  }

  /**
   * Send the pending records (only `only`, when given), count a transmission, schedule the rest.
   * In MLDv1 mode a join is an MLDv1 report and a leave an MLDv1 done (RFC 2710 section 4).
   */
  #transmitPending(only?: readonly number[]): void {
    const toEx: number[] = [];
    const toIn: number[] = [];
    const take = (k: number, p: number): void => {
      (pendingType(p) === MLD2_CHANGE_TO_EXCLUDE ? toEx : toIn).push(k);
      if (pendingLeft(p) <= 1) this.#pending.delete(k);
      else this.#pending.set(k, p - 1);
    };
    if (only === undefined) for (const [k, p] of this.#pending) take(k, p);
    else
      for (const k of only) {
        const p = this.#pending.get(k);
        if (p !== undefined) take(k, p);
      }
    const v1 = this.#inV1();
    for (const tci of this.#unsolicitedTcis()) {
      if (v1) {
        this.#sendV1(toEx, false, tci);
        this.#sendV1(toIn, true, tci);
      } else {
        this.#sendRecords(toEx, MLD2_CHANGE_TO_EXCLUDE, tci);
        this.#sendRecords(toIn, MLD2_CHANGE_TO_INCLUDE, tci);
      }
    }
    if (this.#pending.size > 0 && this.#retransmitTimer === undefined) {
      const delay = 1 + Math.floor(this.#random() * this.#uriMs); // (0, URI]
      this.#retransmitTimer = this.#clock.setTimeout(
        () => {
          this.#retransmitTimer = undefined;
          if (!this.#closed) this.#transmitPending();
        },
        Math.min(delay, this.#uriMs),
      );
    }
  }

  #inV1(): boolean {
    return this.#clock.now() < this.#v1Until;
  }

  /**
   * Judge and answer a Multicast Listener Query (RFC 3810 section 6.2). In order:
   *  1. a reject (invalid query) is counted by its reason;
   *  2. a tag whose VID is neither 0 nor in `servedVlans`: ignored ('vlan');
   *  3. a destination other than ff02::1, a group we report, or one of our own addresses:
   *     ignored ('destination');
   *  4. an MLDv1 query (re)starts MLDv1 mode for the Older Version Querier Present Timeout; an
   *     MLDv2 one updates the learned Robustness, Query Interval and Query Response Interval;
   *  5. a general query: answered with the full state after a random delay in [0, Maximum
   *     Response Delay], unless (absorbed) a full-state response for that VLAN is already
   *     pending (it is moved earlier if this query's delay is shorter) or went out less than
   *     `minFullReportIntervalMs` ago;
   *  6. a group-specific query: for a group we do not hold, ignored ('other-group'); else that
   *     group's record after a random delay, unless (absorbed) a full-state response due no
   *     later is pending, an answer for the group is pending, or one went out less than
   *     `minFullReportIntervalMs` ago.
   * Which version the answer uses is decided when it goes out.
   */
  handleMldQuery(q: MldQuery | MldQueryReject): void {
    if (this.#closed || !this.mld) return;
    this.#queriesReceived++;
    if (q.error !== 0) {
      this.#ignored[MLD_QUERY_ERROR_NAMES[q.error] as QueryIgnoreReason]++;
      return;
    }
    const query = q as MldQuery;
    const vid = query.vlanTci < 0 || (query.vlanTci & 0xfff) === 0 ? -1 : query.vlanTci & 0xfff;
    if (vid >= 0 && !this.#servedVlans.has(vid)) {
      this.#ignored.vlan++;
      return;
    }
    if (!this.#addressedToUs(query.destination)) {
      this.#ignored.destination++;
      return;
    }
    const now = this.#clock.now();
    const maxDelay = Number.isFinite(query.maxResponseDelayMs) && query.maxResponseDelayMs > 0 ? query.maxResponseDelayMs : 0;
    if (query.version === 1) {
      this.#olderVersionQuerier(now, maxDelay);
    } else {
      if (query.qrv > 0) this.#qrv = query.qrv;
      if (query.qqicSeconds > 0) this.#queryIntervalMs = query.qqicSeconds * 1000;
      if (query.group === null && maxDelay > 0) this.#queryResponseIntervalMs = maxDelay;
    }
    const delay = Math.floor(this.#random() * maxDelay);
    const due = now + delay;
    let st = this.#vlans.get(vid);
    if (st === undefined) {
      st = { timer: undefined, due: 0, tci: query.vlanTci, lastFull: -Infinity };
      this.#vlans.set(vid, st);
    }

    if (query.group === null) {
      if (st.timer !== undefined) {
        this.#queriesAbsorbed++;
        if (due < st.due) this.#armFull(vid, st, due, now);
        return;
      }
      if (now - st.lastFull < this.#minFullMs) {
        this.#queriesAbsorbed++;
        return;
      }
      st.tci = query.vlanTci;
      this.#armFull(vid, st, due, now);
      return;
    }

    const key = keyOfGroup(query.group);
    if (key < 0 || !this.#groups.has(key)) {
      this.#ignored['other-group']++;
      return;
    }
    const slot = groupSlot(vid, key);
    const pending = this.#groupDue.get(slot);
    const last = this.#groupLast.get(slot);
    if ((st.timer !== undefined && st.due <= due) || pending !== undefined || (last !== undefined && now - last < this.#minFullMs)) {
      this.#queriesAbsorbed++;
      if (pending !== undefined && due < pending.due) {
        pending.due = due;
        this.#armGroupTimer();
      }
      return;
    }
    this.#groupDue.set(slot, { key, due, tci: query.vlanTci });
    this.#armGroupTimer();
  }

  /** ff02::1, a solicited-node group we report, or one of our own unicast addresses. */
  #addressedToUs(dst: Uint8Array): boolean {
    if (dst[0] === 0xff) {
      if (isAllNodes(dst)) return true;
      const key = keyOfGroup(dst);
      return key >= 0 && this.#groups.has(key);
    }
    if (sameAddress(dst, this.#host.linkLocal)) return true;
    if (this.#ownAddresses === undefined) return false;
    try {
      for (const a of this.#ownAddresses()) if (sameAddress(dst, a)) return true;
    } catch (err) {
      this.#error('read own addresses', err);
    }
    return false;
  }

  /** RFC 3810 section 8.2.1: an MLDv1 querier is present; speak MLDv1 until the timeout. */
  #olderVersionQuerier(now: number, v1MaxDelayMs: number): void {
    const qri = v1MaxDelayMs > 0 ? v1MaxDelayMs : this.#queryResponseIntervalMs;
    const timeout = this.#qrv * this.#queryIntervalMs + qri;
    const wasV1 = now < this.#v1Until;
    this.#v1Until = now + timeout;
    if (!wasV1) {
      // RFC 3810 section 8.2.1 (as RFC 3376 section 7.2.1): pending MLDv2 retransmissions are
      // cancelled; the MLDv1 querier learns our groups from our answer to its query.
      this.#pending.clear();
      if (this.#retransmitTimer !== undefined) this.#clock.clearTimeout(this.#retransmitTimer);
      this.#retransmitTimer = undefined;
      this.#logger?.info({ timeoutMs: timeout }, 'MLDv1 querier present: speaking MLDv1');
    }
    if (this.#v1Timer !== undefined) this.#clock.clearTimeout(this.#v1Timer);
    this.#v1Timer = this.#clock.setTimeout(() => {
      this.#v1Timer = undefined;
      if (!this.#closed) this.#logger?.info('MLDv1 querier gone: speaking MLDv2');
    }, timeout);
  }

  /** (Re)arm the full-state response of VLAN `vid` for `due`. */
  #armFull(vid: number, st: VlanState, due: number, now: number): void {
    if (st.timer !== undefined) this.#clock.clearTimeout(st.timer);
    st.due = due;
    st.timer = this.#clock.setTimeout(
      () => {
        st.timer = undefined;
        if (this.#closed) return;
        st.lastFull = this.#clock.now();
        this.#fullReports++;
        const keys = [...this.#groups.keys()];
        const sent = this.#inV1() ? this.#sendV1(keys, false, st.tci) : this.#sendRecords(keys, MLD2_MODE_IS_EXCLUDE, st.tci);
        if (sent > 0) this.#queriesAnswered++;
        // The full state covers this VLAN's pending group answers.
        for (const slot of [...this.#groupDue.keys()]) {
          if (slot >= groupSlot(vid, 0) && slot < groupSlot(vid + 1, 0)) {
            this.#groupDue.delete(slot);
            this.#groupLast.set(slot, st.lastFull);
          }
        }
      },
      Math.max(0, due - now),
    );
  }

  #armGroupTimer(): void {
    let first = Infinity;
    for (const v of this.#groupDue.values()) if (v.due < first) first = v.due;
    if (first === Infinity) return;
    if (this.#groupTimer !== undefined) {
      if (this.#groupTimerDue <= first) return;
      this.#clock.clearTimeout(this.#groupTimer);
    }
    this.#groupTimerDue = first;
    this.#groupTimer = this.#clock.setTimeout(
      () => {
        this.#groupTimer = undefined;
        if (this.#closed) return;
        const now = this.#clock.now();
        for (const [slot, t] of this.#groupLast) if (now - t >= this.#minFullMs) this.#groupLast.delete(slot);
        const byTci = new Map<number, number[]>();
        for (const [slot, v] of this.#groupDue) {
          if (v.due > now) continue;
          this.#groupDue.delete(slot);
          if (!this.#groups.has(v.key)) continue;
          this.#groupLast.set(slot, now);
          const list = byTci.get(v.tci) ?? [];
          list.push(v.key);
          byTci.set(v.tci, list);
        }
        const v1 = this.#inV1();
        for (const [tci, keys] of byTci) {
          // One query answered per group reported.
          const sent = v1 ? this.#sendV1(keys, false, tci) : this.#sendRecords(keys, MLD2_MODE_IS_EXCLUDE, tci);
          if (sent > 0) this.#queriesAnswered += keys.length;
        }
        this.#armGroupTimer();
      },
      Math.max(0, first - this.#clock.now()),
    );
  }

  /** Build and send MLDv2 reports with one `recordType` record per key. Returns frames accepted. */
  #sendRecords(keys: readonly number[], recordType: number, vlanTci: number): number {
    const host = this.#host;
    const per = this.#perReport;
    // One set of group buffers, refilled for each report (the builder copies them into the
    // frame): a million-group report round allocates nothing per group.
    const bufs = this.#groupBufs;
    return this.#sendFrames(Math.ceil(keys.length / per), 'MLDv2 report', (i, off) => {
      const n = Math.min(per, keys.length - i * per);
      for (let j = 0; j < n; j++) setGroup(bufs[j]!, keys[i * per + j]!);
      return buildMldv2Report(this.#out, off, host.mac, mldSource(host), n === per ? bufs : bufs.slice(0, n), recordType, vlanTci);
    });
  }

  /** One MLDv1 report (or done, when `done`) per key. Returns frames accepted. */
  #sendV1(keys: readonly number[], done: boolean, vlanTci: number): number {
    const host = this.#host;
    const build = done ? buildMldv1Done : buildMldv1Report;
    return this.#sendFrames(keys.length, done ? 'MLDv1 done' : 'MLDv1 report', (i, off) =>
      build(this.#out, off, host.mac, mldSource(host), groupOf(keys[i]!), vlanTci),
    );
  }

  /** Build `count` frames with `build(i, offset)` into the out buffer, FRAMES_PER_SEND per send. */
  #sendFrames(count: number, what: string, build: (i: number, off: number) => number): number {
    if (count === 0) return 0;
    let accepted = 0;
    let n = 0;
    let off = 0;
    const flush = (): void => {
      if (n === 0) return;
      try {
        accepted += this.#backend.send(this.#out, this.#offsets, this.#lengths, n);
      } catch (err) {
        this.#error(`send ${what}`, err);
      }
      n = 0;
      off = 0;
    };
    for (let i = 0; i < count; i++) {
      let len: number;
      try {
        len = build(i, off);
      } catch (err) {
        this.#error(`build ${what}`, err);
        break;
      }
      if (len === 0) {
        this.#error(`build ${what}`, new Error('report buffer too small'));
        break;
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
      this.#macRetry.add(key);
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
    const v1Ms = this.#closed ? 0 : Math.max(0, this.#v1Until - this.#clock.now());
    return {
      groups: this.#groups.size,
      addresses: this.#addresses,
      prefixes: this.#prefixes,
      macs: this.#macs.size,
      allmulti: this.#allMulti,
      bulk: this.#bulk,
      reportsSent: this.#reportsSent,
      fullReports: this.#fullReports,
      queriesReceived: this.#queriesReceived,
      queriesAnswered: this.#queriesAnswered,
      queriesAbsorbed: this.#queriesAbsorbed,
      queriesIgnored: { ...this.#ignored },
      mldVersion: v1Ms > 0 ? 1 : 2,
      olderVersionQuerierMs: Math.ceil(v1Ms),
      errors: this.#errors,
    };
  }

  /**
   * Leave: one CHANGE_TO_INCLUDE report round (MLDv1 mode: one done per group) for every group
   * (no retransmissions: we are going), untagged and on each served VLAN; remove our MACs, turn
   * all-multicast off, stop every timer. Never throws; safe twice. Call it before closing the
   * back end.
   */
  close(): void {
    if (this.#closed) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const timers = [
      this.#syncTimer,
      this.#retransmitTimer,
      this.#groupTimer,
      this.#v1Timer,
      ...[...this.#vlans.values()].map((v) => v.timer),
    ];
    for (const t of timers) if (t !== undefined) this.#clock.clearTimeout(t);
    this.#syncTimer = this.#retransmitTimer = this.#groupTimer = this.#v1Timer = undefined;
    for (const v of this.#vlans.values()) v.timer = undefined;
    this.#pending.clear();
    this.#groupDue.clear();
    if (this.mld && this.#groups.size > 0) {
      const keys = [...this.#groups.keys()];
      const v1 = this.#inV1();
      for (const tci of this.#unsolicitedTcis()) {
        if (v1) this.#sendV1(keys, true, tci);
        else this.#sendRecords(keys, MLD2_CHANGE_TO_INCLUDE, tci);
      }
    }
    for (const k of [...this.#macs]) this.#removeMac(k);
    if (this.#allMulti) this.#setAllMulticast(false);
    this.#closed = true;
    this.#groups = new Map();
    this.#delta.clear();
    this.#macRetry.clear();
    this.#addresses = 0;
  }
}
