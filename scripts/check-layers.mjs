#!/usr/bin/env node
/**
 * The layering rule of docs/architecture.md, checked on every import in src/:
 *
 *   cli -> service -> engine, docker -> table, io -> ndp -> addr
 *
 * A module may import its own folder and any folder of a lower layer, never one of a higher
 * layer or a different folder of the same layer. `lab/` (namespaces for tests, the demo and the
 * benchmarks) may be imported by `cli/` only, and imports below `service/`. Type-only imports
 * count: a type is a dependency too. Prints one line per violation; exit 1 if any.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

/** Layer of each top folder of src/ (higher may import lower). */
const LAYER = { cli: 6, service: 5, lab: 4.5, engine: 4, docker: 4, table: 3, io: 3, ndp: 2, addr: 1 };

/** src/cli.ts is the entry point: it belongs to the cli layer. */
function folderOf(file) {
  const rel = relative(src, file).split('/');
  if (rel.length === 1) return rel[0] === 'cli.ts' ? 'cli' : `(top-level ${rel[0]})`;
  return rel[0];
}

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

const problems = [];
let edges = 0;
for (const file of walk(src)) {
  const from = folderOf(file);
  if (!(from in LAYER)) {
    problems.push(`${relative(root, file)}: not in a layer folder (${Object.keys(LAYER).join(', ')})`);
    continue;
  }
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    if (!target.startsWith(src + '/')) {
      problems.push(`${relative(root, file)}: imports '${spec}' from outside src/`);
      continue;
    }
    const to = folderOf(target);
    edges++;
    if (to === from) continue;
    const ok = to in LAYER && LAYER[to] < LAYER[from] && (to !== 'lab' || from === 'cli') && !(LAYER[to] === LAYER[from]);
    if (!ok) problems.push(`${relative(root, file)}: ${from} must not import ${to} ('${spec}')`);
  }
}
for (const p of problems) console.log(p);
if (problems.length > 0) {
  console.log(`check-layers: ${problems.length} violation(s); see docs/architecture.md`);
  process.exit(1);
}
console.log(`check-layers: ${edges} imports, layering holds`);
