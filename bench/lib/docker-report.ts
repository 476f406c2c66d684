/** The Docker benchmark's summary: statistics of (a) and the plain-text report of (a) and (b). */
import os from 'node:os';
import path from 'node:path';

import { REPO } from './common.js';
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
  summaryA: StartSummary;
  rssA: { rssKb: number } | undefined;
  syncRuns: SyncRun[];
  fills: Fill[];
  outFile: string;
}

/** The plain-text summary, one line per entry. */
export function reportLines(r: ReportInput): string[] {
  const { command, la0, la1, summaryA, rssA, syncRuns, fills, outFile } = r;
  const ver = r.dockerd;
  const p = summaryA.predicted;
  const txt: string[] = [];
  txt.push(
    '',
    '=== docker-latency summary ===',
    `command: ${command}`,
    `dockerd ${ver}, ${os.cpus().length} CPUs, load at start ${r.loadavgStart}, during (a) ${la0} -> ${la1}, end ${r.loadavgEnd}`,
  );
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
