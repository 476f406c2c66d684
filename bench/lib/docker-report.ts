/** The Docker benchmark's summary: statistics of (a) and the plain-text report of (a) and (b). */
import os from 'node:os';
import path from 'node:path';

import { type CdfSeries, plotCdf } from './cdf-plot.js';
import { REPO } from './common.js';
import type { BurstResult } from './docker-burst.js';
import type { Sample } from './docker-start.js';
import type { Fill, SyncRun } from './docker-sync.js';
import { fmtStats, stats } from './docker-util.js';

/** Statistics of (a), per method (address predicted, or read by inspect). */
export function summarizeStart(samples: Sample[], rssA: { rssKb: number } | undefined, la0: string, la1: string) {
  const pred = samples.filter((s) => s.method === 'predicted' && s.predictedOk);
  const naive = samples.filter((s) => s.method === 'inspect');
  return {
    predicted: {
      n: pred.length,
      mispredicted: samples.filter((s) => s.method === 'predicted' && !s.predictedOk).length,
      unanswered: pred.filter((s) => s.answeredMs === null).length,
      answeredMs: stats(pred.map((s) => s.answeredMs)),
      announcedMs: stats(pred.map((s) => s.announcedMs)),
      dockerEventMs: stats(pred.map((s) => s.dockerEventMs)),
      responderTableMs: stats(pred.map((s) => s.responderTableMs)),
      answeredAfterEventMs: stats(
        pred.map((s) => (s.answeredMs !== null && s.dockerEventMs !== null ? s.answeredMs - s.dockerEventMs : null)),
      ),
      announcedAfterEventMs: stats(
        pred.map((s) => (s.announcedMs !== null && s.dockerEventMs !== null ? s.announcedMs - s.dockerEventMs : null)),
      ),
      dockerStartCliMs: stats(pred.map((s) => s.cliMs)),
    },
    inspect: {
      n: naive.length,
      answeredMs: stats(naive.map((s) => s.answeredMs)),
      announcedMs: stats(naive.map((s) => s.announcedMs)),
      addressKnownMs: stats(naive.map((s) => s.addressKnownMs)),
      dockerRunCliMs: stats(naive.map((s) => s.cliMs)),
    },
    responderRssKb: rssA?.rssKb ?? null,
    loadavgBefore: la0,
    loadavgAfter: la1,
  };
}

export type StartSummary = ReturnType<typeof summarizeStart>;

export interface ReportInput {
  command: string;
  dockerd: string;
  loadavgStart: string;
  loadavgEnd: string;
  la0: string;
  la1: string;
  /** Undefined when (a) was skipped. */
  summaryA: StartSummary | undefined;
  rssA: { rssKb: number } | undefined;
  burst: BurstResult | undefined;
  syncRuns: SyncRun[];
  fills: Fill[];
  outFile: string;
}

/** The plain-text summary, one line per entry. */
export function reportLines(r: ReportInput): string[] {
  const { command, la0, la1, summaryA, rssA, syncRuns, fills, outFile, burst } = r;
  const ver = r.dockerd;
  const txt: string[] = [];
  txt.push(
    '',
    '=== docker-latency summary ===',
    `command: ${command}`,
    `dockerd ${ver}, ${os.cpus().length} CPUs, load at start ${r.loadavgStart}${summaryA ? `, during (a) ${la0} -> ${la1}` : ''}, end ${r.loadavgEnd}`,
  );
  if (summaryA) startLines(txt, summaryA, rssA);
  if (burst) burstLines(txt, burst);
  for (const s of syncRuns) {
    txt.push(
      `(b) ${s.containers} running: ready ${s.readyMs} ms after spawn, table full (own log) ${s.syncLineMs ?? '-'} ms, gauge seen full ${s.gaugeFullMs ?? '-'} ms, RSS ${Math.round((s.rssSettledKb ?? 0) / 1024)} MB (peak ${Math.round((s.hwmKb ?? 0) / 1024)} MB), load ${s.loadavg}`,
    );
  }
  for (const f of fills)
    txt.push(
      `    fill to ${f.target}: ${f.reached} running after ${(f.ms / 1000).toFixed(0)} s (${f.perContainerMs ?? '-'} ms/container, ${f.failed} failed, vfs ${f.diskMb ?? '?'} MB)${f.stoppedBecause ? ', stopped: ' + f.stoppedBecause : ''}`,
    );
  txt.push(`results: ${path.relative(REPO, outFile)}`);
  return txt;
}

function startLines(txt: string[], summaryA: StartSummary, rssA: { rssKb: number } | undefined): void {
  const p = summaryA.predicted;
  txt.push(
    `(a) ${p.n} containers, address known before 'docker start' (${p.mispredicted} mispredicted, ${p.unanswered} unanswered); ms from 'docker start' returning:`,
  );
  txt.push(`    first answered NS      ${fmtStats(p.answeredMs)}`);
  txt.push(`    first unsolicited NA   ${fmtStats(p.announcedMs)}`);
  txt.push(`    docker 'start' event   ${fmtStats(p.dockerEventMs)}`);
  txt.push(`    responder table update ${fmtStats(p.responderTableMs)}   (pino time, 1 ms resolution)`);
  txt.push(`    answered - event       ${fmtStats(p.answeredAfterEventMs)}`);
  txt.push(`    announced - event      ${fmtStats(p.announcedAfterEventMs)}`);
  txt.push(`    'docker start' itself  ${fmtStats(p.dockerStartCliMs)}`);
  const q = summaryA.inspect;
  if (q.n > 0) {
    txt.push(`    ${q.n} more with 'docker run -d' + 'docker inspect' first: answered ${fmtStats(q.answeredMs)}`);
    txt.push(`        address known ${fmtStats(q.addressKnownMs)}; announced ${fmtStats(q.announcedMs)}`);
  }
  txt.push(
    `    responder RSS after (a): ${rssA ? Math.round(rssA.rssKb / 1024) : '?'} MB; target p99 < 50 ms: answered ${p.answeredMs.p99 !== null && p.answeredMs.p99 < 50 ? 'met' : 'NOT met'}, announced ${p.announcedMs.p99 !== null && p.announcedMs.p99 < 50 ? 'met' : 'NOT met'}`,
  );
}

function burstLines(txt: string[], b: BurstResult): void {
  const o = b.options;
  for (const [label, s] of Object.entries(b.summary)) {
    const rounds = b.rounds.filter((r) => r.variant === label);
    txt.push(
      `(c) ${label}: ${o.containers} containers started at once, ${rounds.length} rounds (${s.unanswered} unanswered, ${s.early} answered before their start event, ${s.mismatched} mispredicted); ms from each container's own Docker 'start' event:`,
    );
    txt.push(`    first answered NS      ${fmtStats(s.answered)}`);
    txt.push(`    (lower bound: prev NS) ${fmtStats(s.answeredLow)}`);
    txt.push(`    first unsolicited NA   ${fmtStats(s.announced)}   (after the 1 s probe)`);
    txt.push(`    where the time goes:`);
    txt.push(`      start event seen by the benchmark's own 'docker events' ${fmtStats(s.eventSeen)}`);
    txt.push(`      responder table update (its log, 1 ms)                 ${fmtStats(s.table)}`);
    txt.push(`      that batch's read from dockerd and swap (its log)      ${fmtStats(s.batch)}`);
    txt.push(`      NA - the NS it answered (round trip once in the table) ${fmtStats(s.rtt)}`);
    txt.push(`    API start call returned ${fmtStats(s.apiReturn)}`);
    txt.push(`    answered - API return  ${fmtStats(s.answeredAfterApi)}`);
    for (const r of rounds)
      txt.push(
        `    round ${r.round}: last start event ${r.spreadEventsMs ?? '-'} ms after the first call, last answer ${r.spreadAnsweredMs ?? '-'} ms, RSS ${r.responderRssKb === null ? '?' : Math.round(r.responderRssKb / 1024)} MB, load ${r.loadavgBefore} -> ${r.loadavgAfter}`,
      );
    txt.push(
      `    target p99 < 100 ms: ${s.answered.p99 !== null && s.answered.p99 < 100 && s.unanswered === 0 && s.early === 0 ? 'met' : 'NOT met'}`,
    );
  }
}

/** The fields of a bench/docker-latency.ts result document the picture reads. */
export interface DockerPlotDoc {
  date?: string;
  command?: string;
  startLatency?: { samples: Pick<Sample, 'method' | 'predictedOk' | 'answeredMs' | 'dockerEventMs'>[] };
  burst?: Pick<BurstResult, 'options' | 'rounds' | 'samples'>;
}

/** True when `doc` looks like a bench/docker-latency.ts result (for bench/plot.ts). */
export function isDockerDoc(doc: unknown): doc is DockerPlotDoc {
  const d = doc as Record<string, unknown> | null;
  return d !== null && typeof d === 'object' && ('burst' in d || 'startLatency' in d);
}

/**
 * The latency distributions of a Docker benchmark result as a CDF SVG: the burst's answered
 * and announced times after each container's own start event and after its API call
 * returned, and (a)'s sequential starts after their start event, against the 100 ms target.
 */
export function dockerPlot(doc: DockerPlotDoc): string {
  const series: CdfSeries[] = [];
  const b = doc.burst;
  let what = '';
  let load = '';
  if (b) {
    what = `; burst: ${b.options.containers} containers started at once, ${b.options.rounds} rounds`;
    const labels = [...new Set(b.samples.map((s) => s.variant ?? 'this tree'))];
    for (const l of labels) {
      const mine = b.samples.filter((s) => (s.variant ?? 'this tree') === l);
      const tag = labels.length > 1 ? `${l}: ` : 'burst: ';
      series.push({
        name: labels.length > 1 ? `${l}: answered` : `${tag}answered, from start event`,
        values: mine.map((s) => s.answeredMs),
      });
      if (labels.length === 1) {
        series.push({ name: `${tag}answered, from API return`, values: mine.map((s) => s.answeredAfterApiMs) });
        series.push({ name: `${tag}announced, from start event`, values: mine.map((s) => s.announcedMs) });
      }
    }
    const first = b.rounds[0];
    const last = b.rounds[b.rounds.length - 1];
    if (first && last) load = `, load during the burst ${first.loadavgBefore} -> ${last.loadavgAfter}`;
  }
  const pred = doc.startLatency?.samples.filter((s) => s.method === 'predicted' && s.predictedOk) ?? [];
  if (pred.length > 0)
    series.push({
      name: 'one at a time: answered, from start event',
      values: pred.map((s) => (s.answeredMs !== null && s.dockerEventMs !== null ? s.answeredMs - s.dockerEventMs : null)),
    });
  return plotCdf({
    title: 'ndp-responder --docker: container start to first NA seen by a soliciting peer',
    subtitle: [`${doc.date ?? 'date unknown'}${load}${what}`, doc.command ?? ''],
    xLabel: "ms after each container's own Docker start event (<= 0 on the left edge)",
    series,
    target: { x: 100, label: 'target p99 100 ms' },
  });
}
