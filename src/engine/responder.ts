/**
 * The responder: a batch of frames in, one decision per frame, the NAs out in one batch.
 * Owns no socket and no policy: the back end moves frames, `decide` decides.
 */
import type { Logger } from 'pino';
import type { FrameBatch, FrameSink } from '../io/backend.js';
import { ICMPV6_NA, NA_FRAME_LEN_VLAN } from '../ndp/constants.js';
import { advertisedAddress } from '../ndp/advert.js';
import { DropReason, FIRST_TARGET_REASON, dropReasonName, ANSWER_KIND_NAMES } from './verdict.js';
import { NsView } from '../ndp/ns-view.js';
import { readMldQuery, type MldQuery, type MldQueryReject } from '../ndp/mld.js';
import { formatAddress } from '../addr/index.js';
import { Counters } from './counters.js';
import { decide, Decision, type MatchTable } from './decide.js';
import type { AnswerSettings, HostFacts } from './types.js';

export interface ResponderOptions {
  /** Where answers go (the back end, or the daemon routing to whichever is open). */
  sink: FrameSink;
  table: MatchTable;
  host: HostFacts;
  settings: AnswerSettings;
  logger?: Logger | undefined;
  /**
   * MLD queries share the capture filter with NS; they are handed here (membership manager),
   * invalid ones as a reject naming the rule broken, so they are counted where queries are judged.
   */
  onMldQuery?: ((q: MldQuery | MldQueryReject) => void) | undefined;
  /**
   * Called after every decision, in frame order (replay's `--explain`). The view and decision
   * are reused: copy what you keep.
   */
  onDecision?: ((frameIndex: number, view: NsView, d: Decision) => void) | undefined;
}

const SLOT = NA_FRAME_LEN_VLAN;

export class Responder {
  readonly counters = new Counters();
  private readonly sink: FrameSink;
  private readonly table: MatchTable;
  private host: HostFacts;
  private readonly settings: AnswerSettings;
  private readonly logger: Logger | undefined;
  private readonly onMldQuery: ((q: MldQuery | MldQueryReject) => void) | undefined;
  private readonly onDecision: ((frameIndex: number, view: NsView, d: Decision) => void) | undefined;
  private readonly view = new NsView();
  private readonly decision = new Decision();
  private out: Uint8Array;
  private outOffsets: Uint32Array;
  private outLengths: Uint32Array;

  constructor(opts: ResponderOptions) {
    this.sink = opts.sink;
    this.table = opts.table;
    this.host = opts.host;
    this.settings = opts.settings;
    this.logger = opts.logger;
    this.onMldQuery = opts.onMldQuery;
    this.onDecision = opts.onDecision;
    this.out = new Uint8Array(64 * SLOT);
    this.outOffsets = new Uint32Array(64);
    this.outLengths = new Uint32Array(64);
  }

  /** Replace the host facts (the interface's MAC or link-local address changed). */
  setHost(host: HostFacts): void {
    this.host = host;
  }

  /** Handle one batch: decide every frame, then send all answers with one back-end call. */
  handleBatch(batch: FrameBatch): void {
    if (batch.count > this.outOffsets.length) this.grow(batch.count);
    const { buf, offsets, lengths, count } = batch;
    const d = this.decision;
    const c = this.counters;
    const debug = this.logger !== undefined && this.logger.isLevelEnabled('debug');
    let n = 0;
    for (let i = 0; i < count; i++) {
      const start = offsets[i]!;
      const len = lengths[i]!;
      c.frames++;
      const outOff = n * SLOT;
      decide(buf, start, len, this.table, this.host, this.settings, this.view, this.out, outOff, d);
      if (d.kind !== 0) {
        c.answered[d.kind]!++;
        this.outOffsets[n] = outOff;
        this.outLengths[n] = d.length;
        n++;
      } else if (d.reason === DropReason.NotICMPv6 && this.onMldQuery !== undefined) {
        // The capture filter also passes MLD queries (behind a Hop-by-Hop header).
        const q = readMldQuery(buf, start, len);
        if (q !== null) {
          c.mldQueries++;
          this.onMldQuery(q);
        } else {
          c.drops[d.reason]!++;
        }
      } else if (d.reason === DropReason.NotNS && this.table.observe !== undefined) {
        // ... and Router and Neighbor Advertisements of other nodes: what they use is not ours.
        const at = advertisedAddress(buf, start, len);
        if (at >= 0) {
          c.adverts++;
          this.table.observe(buf, at, buf, start + 6, buf[at - 8] === ICMPV6_NA ? 'na-target' : 'ra-source');
        } else {
          c.drops[d.reason]!++;
        }
      } else {
        c.drops[d.reason]!++;
      }
      if (debug) this.logDecision(d);
      if (this.onDecision !== undefined) this.onDecision(c.frames - 1, this.view, d);
    }
    if (n > 0) {
      const sent = this.sink.send(this.out, this.outOffsets, this.outLengths, n);
      c.sent += sent;
      c.sendFailed += n - sent;
    }
  }

  private logDecision(d: Decision): void {
    // The target is known once the frame parsed as an NS: answers and table verdicts.
    const target = d.kind !== 0 || d.reason >= FIRST_TARGET_REASON ? formatAddress(this.view.frame, this.view.targetOff) : undefined;
    if (d.kind !== 0) {
      this.logger!.debug({ decision: ANSWER_KIND_NAMES[d.kind], target, rule: d.rule?.text }, 'answer');
    } else {
      this.logger!.debug({ decision: 'drop', reason: dropReasonName(d.reason), target, rule: d.rule?.text }, 'drop');
    }
  }

  private grow(count: number): void {
    this.out = new Uint8Array(count * SLOT);
    this.outOffsets = new Uint32Array(count);
    this.outLengths = new Uint32Array(count);
  }
}
