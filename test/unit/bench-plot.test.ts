import t from 'tap';
import { plotResults, type PlotRun } from '../../bench/lib/plot.js';

const run = (contender: string, size: number, pps: number, p50: number, status = 'ok'): PlotRun => ({
  contender,
  size,
  status,
  best: { answered_pps: pps },
  latency: { answered: 10, p50_us: p50 },
  loadavg_before: '1.00 0.50 0.25 1/100 1',
});

/** The points of the polylines (panel 1, then panel 2) of a contender. */
function lines(svg: string, contender: string): [number, number][][] {
  const out: [number, number][][] = [];
  const re = new RegExp(`<polyline data-contender="${contender}"[^>]*points="([^"]*)"`, 'g');
  for (const m of svg.matchAll(re)) out.push(m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]));
  return out;
}

t.test('one line per contender and panel, log x, higher values drawn higher', async (t) => {
  const svg = plotResults({
    started: '2026-11-30T16:00:00.000Z',
    runs: [
      run('kernel0', 1, 100_000, 30),
      run('kernel0', 1000, 90_000, 40),
      run('ndpr-afpacket', 1, 200_000, 20),
      run('ndpr-afpacket', 1000, 200_000, 20),
      run('ndpr-afpacket', 1_000_000, 150_000, 25),
      run('npd6', 1000, 5, 5, 'failed'),
    ],
  });
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /2026-11-30T16:00:00.000Z/, 'the run date');
  t.match(svg, /load before runs: 1.00 0.50 0.25/, 'the load');
  const k = lines(svg, 'kernel0');
  const n = lines(svg, 'ndpr-afpacket');
  t.equal(k.length, 2, 'kernel0: a rate line and a latency line');
  t.equal(n.length, 2);
  t.same(lines(svg, 'npd6'), [], 'a failed run draws nothing');
  const [r1, r1k, r1m] = n[0]!;
  // Log x: 1 -> 1000 -> 1,000,000 are equally spaced.
  t.ok(Math.abs(r1k![0] - r1![0] - (r1m![0] - r1k![0])) < 0.2, 'sizes on a log axis');
  t.equal(k[0]![0]![0], r1![0], 'same size, same x');
  t.ok(r1![1] < k[0]![0]![1], 'more NA/s is drawn higher');
  t.ok(n[1]![0]![1] > k[1]![0]![1], 'less latency is drawn lower');
});

t.test('no data, odd names', async (t) => {
  const svg = plotResults({ runs: [run('<x&y>', 10, 1, 1, 'skipped')] });
  t.match(svg, /no data/);
  t.match(svg, /date unknown/);
  const odd = plotResults({ runs: [run('a"b', 10, 1, 1), run('<x&y>', 10, 1, 1)] });
  t.match(odd, /data-contender="a&quot;b"/, 'names are escaped');
  t.match(odd, /&lt;x&amp;y&gt;/);
  t.notMatch(odd, /<x&y>/);
});
