import t from 'tap';
import { cdfSteps, percentile, plotCdf } from '../../bench/lib/cdf-plot.js';

/** The points of a series' polyline. */
function line(svg: string, name: string): [number, number][] {
  const m = new RegExp(`<polyline data-series="${name}"[^>]*points="([^"]*)"`).exec(svg);
  return m ? m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]) : [];
}

t.test('percentile: nearest rank', async (t) => {
  const v = Array.from({ length: 200 }, (_, i) => i + 1);
  t.equal(percentile(v, 0.5), 100);
  t.equal(percentile(v, 0.99), 198);
  t.equal(percentile(v, 1), 200);
  t.equal(percentile([7], 0.99), 7);
  t.equal(percentile([], 0.5), undefined);
});

t.test('cdfSteps: a step of 1/n per sample, ending at 1', async (t) => {
  t.same(cdfSteps([1, 2, 4, 8]), [
    [1, 0],
    [1, 0.25],
    [2, 0.25],
    [2, 0.5],
    [4, 0.5],
    [4, 0.75],
    [8, 0.75],
    [8, 1],
  ]);
  t.same(cdfSteps([]), []);
});

t.test('one step line per series, log x, the target line, legend figures', async (t) => {
  const fast = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const slow = fast.map((v) => v * 100);
  const svg = plotCdf({
    title: 'burst',
    subtitle: ['2026-11-30, load 1.00 0.50 0.25', `node bench ${'x'.repeat(300)}`],
    xLabel: 'ms after start',
    series: [
      { name: 'fast', values: [...fast, null] },
      { name: 'slow', values: slow },
    ],
    target: { x: 100, label: 'target 100 ms' },
  });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /load 1.00 0.50 0.25/);
  t.match(svg, /node bench x{138}…</, 'a long subtitle line is cut');
  const f = line(svg, 'fast');
  const s = line(svg, 'slow');
  t.equal(f.length, 20, 'two points per sample');
  t.equal(s.length, 20);
  t.ok(f[0]![1] > f[19]![1], 'the line climbs (SVG y grows downwards)');
  t.ok(s[0]![0] > f[19]![0], 'slower samples lie to the right');
  // Log x: 1 -> 10 -> 100 -> 1000 equally spaced.
  const x1 = f[0]![0];
  const x10 = f[19]![0];
  const x100 = s[0]![0];
  const x1000 = s[19]![0];
  t.ok(Math.abs(x10 - x1 - (x100 - x10)) < 0.2 && Math.abs(x1000 - x100 - (x100 - x10)) < 0.2, 'log x axis');
  const tgt = /<line data-target="100" x1="([\d.]+)"/.exec(svg);
  t.ok(tgt && Math.abs(Number(tgt[1]) - x100) < 0.2, 'target line at x = 100');
  t.match(svg, /n=10 \(\+1 missing\) p50 5 p99 10 max 10/, 'legend: n, missing, p50, p99, max');
  t.match(svg, /n=10 p50 500 p99 1k max 1k/);
});

t.test('no samples, values <= 0, odd names', async (t) => {
  const svg = plotCdf({ title: 'a<b', xLabel: 'ms', series: [{ name: 'x"y', values: [null] }] });
  t.match(svg, /no samples \(1 missing\)/);
  t.match(svg, /a&lt;b/);
  t.notMatch(svg, /polyline/);
  const neg = plotCdf({ title: 't', xLabel: 'ms', series: [{ name: 'n', values: [-3, 0, 5, 50] }] });
  const p = line(neg, 'n');
  t.equal(p[0]![0], p[2]![0], 'negative and zero values share the left edge');
  t.ok(p.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
});
