/**
 * cdf-plot: latency distributions as one dependency-free SVG: the empirical CDF of each series
 * (a step line: x = latency on a log axis, y = share of samples at or below it), dashed guides
 * at p50, p90 and p99, an optional vertical target line, and each series' n, p50, p99 and max
 * in the legend. Used by the Docker benchmark (bench/docker-latency.ts).
 */
import { COLORS, esc, fmt } from './plot.js';

export interface CdfSeries {
  name: string;
  /** Samples; null and non-finite ones are left out and counted as "missing" in the legend. */
  values: readonly (number | null)[];
}

export interface CdfPlot {
  title: string;
  /** Lines under the title: date, load, command (each cut at 150 characters). */
  subtitle?: readonly string[] | undefined;
  xLabel: string;
  series: readonly CdfSeries[];
  /** A vertical line, e.g. the target p99. */
  target?: { x: number; label: string } | undefined;
}

const W = 900;
const H = 480;
const M = { left: 70, right: 300, top: 70, bottom: 50 };

/** Nearest-rank percentile of ascending `v` (same rule as bench/lib/docker-util.ts stats). */
export function percentile(v: readonly number[], p: number): number | undefined {
  if (v.length === 0) return undefined;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
}

/**
 * The CDF points of ascending `v`: a step up of 1/n at each sample, as [x, share] pairs, from
 * share 0 at the first sample to share 1 at the last.
 */
export function cdfSteps(v: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  const n = v.length;
  for (let i = 0; i < n; i++) {
    out.push([v[i]!, i / n], [v[i]!, (i + 1) / n]);
  }
  return out;
}

/** The SVG of {@link CdfPlot}. Values <= 0 (before the reference moment) sit on the left edge. */
export function plotCdf(doc: CdfPlot): string {
  const data = doc.series.map((s) => {
    const v = s.values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
    return { name: s.name, v, missing: s.values.length - v.length };
  });
  const pos = data.flatMap((d) => d.v.filter((x) => x > 0));
  if (doc.target && doc.target.x > 0) pos.push(doc.target.x);
  const lo = pos.length ? Math.min(...pos) : 1;
  const hi = pos.length ? Math.max(...pos) : 10;
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.max(Math.ceil(Math.log10(hi)), e0 + 1);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): number => M.left + ((Math.log10(Math.max(v, 10 ** e0)) - e0) / (e1 - e0)) * pw;
  const y = (share: number): number => M.top + ph - share * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${M.left}" y="20" font-size="14" font-weight="bold">${esc(doc.title)}</text>`,
  ];
  (doc.subtitle ?? []).slice(0, 2).forEach((l, i) => {
    const t = l.length > 150 ? `${l.slice(0, 149)}…` : l;
    out.push(`<text x="${M.left}" y="${38 + 14 * i}" font-size="11">${esc(t)}</text>`);
  });
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  for (let e = e0; e <= e1; e++) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** e;
      if (v > 10 ** e1) break;
      const xv = x(v).toFixed(1);
      out.push(`<line x1="${xv}" x2="${xv}" y1="${M.top}" y2="${M.top + ph}" stroke="${k === 1 ? '#ddd' : '#f2f2f2'}"/>`);
      out.push(`<text x="${xv}" y="${M.top + ph + 16}" font-size="11" text-anchor="middle">${fmt(v)}</text>`);
    }
  }
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y(s).toFixed(1)}" y2="${y(s).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${(y(s) + 4).toFixed(1)}" font-size="11" text-anchor="end">${s * 100}%</text>`);
  }
  for (const [p, label] of [
    [0.5, 'p50'],
    [0.9, 'p90'],
    [0.99, 'p99'],
  ] as const) {
    out.push(
      `<line x1="${M.left}" x2="${M.left + pw}" y1="${y(p).toFixed(1)}" y2="${y(p).toFixed(1)}" stroke="#999" stroke-dasharray="4 3"/>`,
    );
    out.push(`<text x="${M.left + 4}" y="${(y(p) - 3).toFixed(1)}" font-size="10" fill="#666">${label}</text>`);
  }
  if (doc.target) {
    const xv = x(doc.target.x).toFixed(1);
    out.push(
      `<line data-target="${doc.target.x}" x1="${xv}" x2="${xv}" y1="${M.top}" y2="${M.top + ph}" stroke="#000" stroke-dasharray="6 3"/>`,
    );
    out.push(`<text x="${xv}" y="${M.top - 4}" font-size="11" text-anchor="middle">${esc(doc.target.label)}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" font-size="12" text-anchor="middle">${esc(doc.xLabel)} (log scale)</text>`);
  out.push(
    `<text x="16" y="${M.top + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${M.top + ph / 2})">share of samples at or below</text>`,
  );
  let ly = M.top + 10;
  data.forEach((d, i) => {
    const col = COLORS[i % COLORS.length]!;
    if (d.v.length > 0) {
      const pts = cdfSteps(d.v).map(([v, s]) => `${x(v).toFixed(1)},${y(s).toFixed(1)}`);
      out.push(`<polyline data-series="${esc(d.name)}" fill="none" stroke="${col}" stroke-width="2" points="${pts.join(' ')}"/>`);
    }
    out.push(`<line x1="${M.left + pw + 12}" x2="${M.left + pw + 32}" y1="${ly}" y2="${ly}" stroke="${col}" stroke-width="2"/>`);
    out.push(`<text x="${M.left + pw + 36}" y="${ly + 4}" font-size="12">${esc(d.name)}</text>`);
    const f = (p: number): string => {
      const v = percentile(d.v, p);
      return v === undefined ? '-' : fmt(v);
    };
    const stat = d.v.length
      ? `n=${d.v.length}${d.missing ? ` (+${d.missing} missing)` : ''} p50 ${f(0.5)} p99 ${f(0.99)} max ${fmt(d.v[d.v.length - 1]!)}`
      : `no samples${d.missing ? ` (${d.missing} missing)` : ''}`;
    out.push(`<text x="${M.left + pw + 36}" y="${ly + 18}" font-size="10" fill="#555">${esc(stat)}</text>`);
    ly += 38;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
