/** The plain-text report of bench/run.ts: one table per table size, the ladders, the load times. */
import { CONTENDERS } from './contenders.js';
import { fmtRate, type Outcome } from './measure.js';
import type { Options } from './options.js';
import { RESPONDER_CPU, SENDER_CPU } from './rig.js';

function pad(s: string, w: number, right = false): string {
  return right ? s.padStart(w) : s.padEnd(w);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return '-';
  const r = a / b;
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

function bestOf(rows: Outcome[], family: string): number | undefined {
  const v = rows.filter((r) => r.status === 'ok' && CONTENDERS[r.contender]?.family === family).map((r) => r.best?.answered_pps ?? 0);
  return v.length ? Math.max(...v) : undefined;
}

export function report(outcomes: Outcome[], o: Options, cmdline: string): string {
  const lines: string[] = [];
  const sizes = [...new Set(outcomes.map((r) => r.size))];
  const cols: [string, number][] = [
    ['contender', 14],
    ['ready s', 8],
    ['best NA/s', 10],
    ['@offered', 9],
    ['overload', 9],
    ['(offered)', 10],
    ['loss@80%', 9],
    ['p50 us', 8],
    ['p99 us', 8],
    ['lost', 6],
    ['CPU%', 6],
    ['cpu1%', 6],
    ['RSS MB', 7],
    ['x kern0', 8],
    ['x ndppd', 8],
    ['x npd6', 8],
  ];
  lines.push(`command: ${cmdline}`);
  lines.push(
    `lab: veth lan<->host, RPS lan->cpu${SENDER_CPU} host->cpu${RESPONDER_CPU}, sender pinned cpu${SENDER_CPU}, responder pinned cpu${RESPONDER_CPU}; ` +
      `steps ${o.stepS} s; rates ${o.rates.join(',')}; layout ${o.layout}; blast targets <= ${o.blastSample}`,
  );
  for (const n of sizes) {
    const rows = outcomes.filter((r) => r.size === n);
    const k0 = rows.find((r) => r.contender === 'kernel0' && r.status === 'ok')?.best?.answered_pps;
    const nd = bestOf(rows, 'ndppd');
    const np = bestOf(rows, 'npd6');
    lines.push('');
    lines.push(`== N = ${n.toLocaleString('en-US')} proxied addresses ==`);
    lines.push(cols.map(([h, w], i) => pad(h, w, i > 0)).join(' '));
    for (const r of rows) {
      if (r.status !== 'ok') {
        lines.push(`${pad(r.contender, 14)} ${r.status}: ${r.reason ?? ''}`);
        continue;
      }
      const b = r.best?.answered_pps;
      const a80 = r.at80;
      const cells = [
        r.contender,
        r.ready_s?.toFixed(2) ?? '-',
        fmtRate(b),
        fmtRate(r.best?.offered_pps),
        fmtRate(r.overload?.answered_pps),
        `(${fmtRate(r.overload?.offered_pps)})`,
        a80 ? `${(a80.loss * 100).toFixed(2)}%` : '-',
        r.latency?.answered ? r.latency.p50_us.toFixed(0) : '-',
        r.latency?.answered ? r.latency.p99_us.toFixed(0) : '-',
        r.latency ? `${r.latency.lost}` : '-',
        a80?.pid_cpu_pct != null ? a80.pid_cpu_pct.toFixed(0) : '-',
        a80 ? (a80.cpu_busy_pct[RESPONDER_CPU] ?? NaN).toFixed(0) : '-',
        r.rss_kb !== undefined ? (r.rss_kb / 1024).toFixed(1) : '-',
        r.contender === 'kernel0' ? '' : ratio(b, k0),
        CONTENDERS[r.contender]?.family === 'ndppd' ? '' : ratio(b, nd),
        CONTENDERS[r.contender]?.family === 'npd6' ? '' : ratio(b, np),
      ];
      lines.push(cells.map((c, i) => pad(c, cols[i]?.[1] ?? 8, i > 0)).join(' '));
    }
    lines.push('ladder (offered -> answered NA/s):');
    for (const r of rows) {
      if (!r.ladder) continue;
      const steps = [...r.ladder].sort((a, b) => a.offered_pps - b.offered_pps);
      lines.push(`  ${pad(r.contender, 14)} ${steps.map((s) => `${fmtRate(s.offered_pps)}->${fmtRate(s.answered_pps)}`).join('  ')}`);
    }
  }
  const ndprBig = outcomes.filter((r) => r.contender.startsWith('ndpr-') && r.status === 'ok' && r.size >= 1_000_000);
  lines.push('');
  if (ndprBig.length) {
    for (const r of ndprBig) {
      lines.push(
        `ndp-responder load time, ${r.size.toLocaleString('en-US')} addresses, ${r.contender}: "ready" line ${r.ready_line_s?.toFixed(2) ?? '-'} s, first answer for the last address ${r.ready_s?.toFixed(2)} s`,
      );
    }
  } else {
    lines.push('ndp-responder load time at 1,000,000 addresses: not measured in this run');
  }
  lines.push(
    'columns: best = highest answered NA/s over the ladder, @offered = offered NS/s at that step; overload = answered at the last (highest) step; ' +
      'loss@80% = loss at 80% of best; p50/p99 = idle NS->NA latency; lost = probe timeouts; CPU% = responder process utime+stime at the 80% step; ' +
      'cpu1% = whole responder core busy at the 80% step (includes softirq and other load); x = best NA/s ratio (vs ndppd/npd6: their better config).',
  );
  return lines.join('\n');
}
