/**
 * Redraw the SVG of a bench/run.ts result: `node --import tsx bench/plot.ts bench/results/DATE.json`
 * writes bench/results/DATE.svg (bench/run.ts does this itself after every run); a
 * bench/docker-latency.ts result (docker-DATE.json) gets its latency CDF instead.
 */
import fs from 'node:fs';
import { dockerPlot, isDockerDoc } from './lib/docker-report.js';
import { plotResults, type PlotDoc } from './lib/plot.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node --import tsx bench/plot.ts RESULT.json...');
  process.exit(2);
}
for (const f of files) {
  const doc = JSON.parse(fs.readFileSync(f, 'utf8')) as unknown;
  const out = `${f.replace(/\.json$/, '')}.svg`;
  fs.writeFileSync(out, isDockerDoc(doc) ? dockerPlot(doc) : plotResults(doc as PlotDoc));
  console.log(out);
}
