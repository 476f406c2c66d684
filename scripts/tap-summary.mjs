// Read a TAP report written by `tap --reporter=tap -f FILE` and print the closing line CI reads:
// 'N passed, N failed' (with ', N skipped' when any). Exit 1 when anything failed or nothing ran.
// An optional second argument counts failures from outside the report (the lint step).
import { readFileSync } from 'node:fs';

const text = readFileSync(process.argv[2], 'utf8');
const m = [...text.matchAll(/^# \{ (.*) \}$/gm)].pop();
if (!m) {
  console.log('0 passed, 1 failed');
  console.error('tap-summary: no summary line in the report (did tap crash?)');
  process.exit(1);
}
const counts = Object.fromEntries(
  m[1]
    .split(',')
    .map((kv) => kv.split(':').map((s) => s.trim()))
    .map(([k, v]) => [k, Number(v)]),
);
const pass = counts.pass ?? 0;
const fail = (counts.fail ?? 0) + Number(process.argv[3] ?? 0);
const skip = counts.skip ?? 0;
const line = `${pass} passed, ${fail} failed` + (skip ? `, ${skip} skipped` : '');
console.log(line);
process.exit(fail > 0 || pass === 0 ? 1 : 0);
