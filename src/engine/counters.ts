/** Counters kept by the responder: every frame lands in exactly one of answered[] or drops[]. */
import { ANSWER_KIND_NAMES, DROP_REASON_COUNT, dropReasonName } from './verdict.js';

export class Counters {
  /** Frames handed to the engine. */
  frames = 0;
  /** Answers by AnswerKind (index 1 = solicited, 2 = DAD defence). */
  readonly answered = new Float64Array(ANSWER_KIND_NAMES.length);
  /** Drops by DropReason. */
  readonly drops = new Float64Array(DROP_REASON_COUNT);
  /** MLD queries seen (they share the capture filter with NS). */
  mldQueries = 0;
  /** Router and Neighbor Advertisements of other nodes read by the conflict guard. */
  adverts = 0;
  /** NAs the back end accepted / refused. */
  sent = 0;
  sendFailed = 0;
  /** Unsolicited NAs sent on address appearance (RFC 4861 7.2.6). */
  announced = 0;

  totalAnswered(): number {
    let s = 0;
    for (let i = 1; i < this.answered.length; i++) s += this.answered[i]!;
    return s;
  }

  totalDropped(): number {
    let s = 0;
    for (let i = 1; i < this.drops.length; i++) s += this.drops[i]!;
    return s;
  }

  /** Plain object for logs and `replay` summaries; zero drop reasons are left out. */
  snapshot(): {
    frames: number;
    answered: number;
    answeredByKind: Record<string, number>;
    dropped: number;
    drops: Record<string, number>;
    mldQueries: number;
    adverts: number;
    sent: number;
    sendFailed: number;
    announced: number;
  } {
    const drops: Record<string, number> = {};
    for (let i = 1; i < this.drops.length; i++) {
      const n = this.drops[i]!;
      if (n > 0) drops[dropReasonName(i)] = n;
    }
    const answeredByKind: Record<string, number> = {};
    for (let i = 1; i < this.answered.length; i++) {
      const n = this.answered[i]!;
      if (n > 0) answeredByKind[ANSWER_KIND_NAMES[i]!] = n;
    }
    return {
      frames: this.frames,
      answered: this.totalAnswered(),
      answeredByKind,
      dropped: this.totalDropped(),
      drops,
      mldQueries: this.mldQueries,
      adverts: this.adverts,
      sent: this.sent,
      sendFailed: this.sendFailed,
      announced: this.announced,
    };
  }
}
