/**
 * plot: the results of bench/run.ts as one dependency-free SVG: answered NA/s (the best step of
 * each ladder) and idle p50 NS->NA latency against the table size, log x axis, one line per
 * contender (latency on a log y axis: the kernel's proxy delay is 1000x the others), with the
 * run's date and the load average before the first and the last run in the title.
 */

/** The fields of a bench/run.ts result document the plot reads (see bench/lib/measure.ts Outcome). */
export interface PlotRun {
  size: number;
  contender: string;
  status: string;
  best?: { answered_pps: number } | undefined;
  latency?: { answered?: number; p50_us: number } | undefined;
  loadavg_before?: string | undefined;
}

export interface PlotDoc {
  started?: string | undefined;
  command?: string | undefined;
  runs: PlotRun[];
}

/** One panel's series: contender -> points (size, value), sizes ascending. */
type Series = Map<string, [number, number][]>;

const W = 900;
const PANEL_H = 300;
const M = { left: 80, right: 170, top: 30, bottom: 45 };
/** Line colours, in order of first appearance. */
export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Text for SVG: the XML specials escaped. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A short number for an axis: 3 significant digits, k and M suffixes. */
export function fmt(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

function series(runs: readonly PlotRun[], value: (r: PlotRun) => number | undefined): Series {
  const out: Series = new Map();
  for (const r of runs) {
    if (r.status !== 'ok' || !(r.size > 0)) continue;
    const v = value(r);
    if (v === undefined || !Number.isFinite(v)) continue;
    const list = out.get(r.contender) ?? [];
    list.push([r.size, v]);
    out.set(r.contender, list);
  }
  for (const list of out.values()) list.sort((a, b) => a[0] - b[0]);
  return out;
}

/** "Nice" linear ticks from 0 to at least `max`. */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = 0; t < max + step; t += step) ticks.push(t);
  return ticks;
}

/** Draw one panel at vertical offset `y0`; `colorOf` keeps one colour per contender across panels. */
function panel(
  s: Series,
  title: string,
  yLabel: string,
  y0: number,
  xMin: number,
  xMax: number,
  colorOf: (c: string) => string,
  logY = false,
): string[] {
  const out: string[] = [];
  const pw = W - M.left - M.right;
  const ph = PANEL_H - M.top - M.bottom;
  const lx0 = Math.log10(xMin);
  const lx1 = Math.max(Math.log10(xMax), lx0 + 1);
  const x = (v: number): number => M.left + ((Math.log10(v) - lx0) / (lx1 - lx0)) * pw;
  let yMax = 0;
  let yMin = Infinity;
  for (const pts of s.values()) {
    for (const [, v] of pts) {
      yMax = Math.max(yMax, v);
      yMin = Math.min(yMin, v);
    }
  }
  let yt: number[];
  let y: (v: number) => number;
  if (logY) {
    // Powers of ten around the data (values <= 0 sit on the bottom edge).
    const e0 = Math.floor(Math.log10(yMin > 0 && Number.isFinite(yMin) ? yMin : 1));
    const e1 = Math.max(Math.ceil(Math.log10(yMax > 0 ? yMax : 10)), e0 + 1);
    yt = [];
    for (let e = e0; e <= e1; e++) yt.push(10 ** e);
    y = (v: number): number => y0 + M.top + ph - ((Math.log10(Math.max(v, 10 ** e0)) - e0) / (e1 - e0)) * ph;
  } else {
    yt = linearTicks(yMax);
    const yTop = yt[yt.length - 1]!;
    y = (v: number): number => y0 + M.top + ph - (v / yTop) * ph;
  }
  out.push(`<text x="${M.left}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${M.left}" y="${y0 + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (const t of yt) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(t)}</text>`);
  }
  for (let e = Math.ceil(lx0); e <= Math.floor(lx1); e++) {
    const xv = x(10 ** e);
    out.push(`<line x1="${xv.toFixed(1)}" x2="${xv.toFixed(1)}" y1="${y0 + M.top}" y2="${y0 + M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${xv.toFixed(1)}" y="${y0 + M.top + ph + 16}" font-size="11" text-anchor="middle">${fmt(10 ** e)}</text>`);
  }
  out.push(
    `<text x="${M.left + pw / 2}" y="${y0 + PANEL_H - 8}" font-size="12" text-anchor="middle">table size (addresses, log scale)</text>`,
  );
  out.push(
    `<text x="16" y="${y0 + M.top + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${y0 + M.top + ph / 2})">${esc(yLabel)}</text>`,
  );
  let legendY = y0 + M.top + 10;
  for (const [c, pts] of s) {
    const col = colorOf(c);
    const path = pts.map(([sz, v]) => `${x(sz).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline data-contender="${esc(c)}" fill="none" stroke="${col}" stroke-width="2" points="${path}"/>`);
    for (const [sz, v] of pts)
      out.push(
        `<circle cx="${x(sz).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${col}"><title>${esc(c)} N=${sz}: ${fmt(v)}</title></circle>`,
      );
    out.push(`<line x1="${M.left + pw + 12}" x2="${M.left + pw + 32}" y1="${legendY}" y2="${legendY}" stroke="${col}" stroke-width="2"/>`);
    out.push(`<text x="${M.left + pw + 36}" y="${legendY + 4}" font-size="12">${esc(c)}</text>`);
    legendY += 16;
  }
  if (s.size === 0) out.push(`<text x="${M.left + pw / 2}" y="${y0 + M.top + ph / 2}" font-size="12" text-anchor="middle">no data</text>`);
  return out;
}

/**
 * The SVG for one bench/run.ts result document: two panels (answered NA/s, p50 latency in us)
 * against the table size on a log axis, one polyline per contender that ran ('ok' rows only).
 */
export function plotResults(doc: PlotDoc): string {
  const runs = Array.isArray(doc.runs) ? doc.runs : [];
  const rate = series(runs, (r) => r.best?.answered_pps);
  const p50 = series(runs, (r) => (r.latency !== undefined && (r.latency.answered ?? 1) > 0 ? r.latency.p50_us : undefined));
  const sizes = runs.filter((r) => r.size > 0).map((r) => r.size);
  const xMin = sizes.length ? Math.min(...sizes) : 1;
  const xMax = sizes.length ? Math.max(...sizes) : 10;
  const names = [...new Set(runs.map((r) => r.contender))];
  const colorOf = (c: string): string => COLORS[names.indexOf(c) % COLORS.length]!;
  // The three load averages of /proc/loadavg (its other fields are task counts).
  const loads = runs
    .map((r) => r.loadavg_before)
    .filter((l): l is string => typeof l === 'string')
    .map((l) => l.split(' ').slice(0, 3).join(' '));
  const loadText = loads.length
    ? `load before runs: ${loads[0]}${loads.length > 1 ? ` .. ${loads[loads.length - 1]}` : ''}`
    : 'load: not recorded';
  const title = `ndp-responder bench, ${doc.started ?? 'date unknown'}; ${loadText}`;
  const h = 30 + 2 * PANEL_H;
  const body = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">`,
    `<rect width="${W}" height="${h}" fill="#fff"/>`,
    `<text x="${M.left}" y="20" font-size="13">${esc(title)}</text>`,
    ...panel(rate, 'Answered NA/s (best ladder step)', 'NA/s', 30, xMin, xMax, colorOf),
    ...panel(p50, 'Idle NS->NA latency, p50 (log scale)', 'p50 (us)', 30 + PANEL_H, xMin, xMax, colorOf, true),
    '</svg>',
  ];
  return `${body.join('\n')}\n`;
}
