/** bench/docker-latency.ts's command line (its header comment is the --help text). */
import fs from 'node:fs';
import path from 'node:path';

import { BENCH } from './common.js';

export interface Options {
  containers: number;
  naive: number;
  sync: number;
  syncSteps: number[];
  parallel: number;
  createBudgetS: number;
  doSync: boolean;
  periodUs: number;
  /** (c): containers started at once (0 = skip), rounds, slow solicitation period before a start. */
  burst: number;
  burstRounds: number;
  burstSlowUs: number;
  /** (c): another build (a tree with dist/ and build/Release/), run in every other round. */
  compareWith: string | undefined;
  /** Extra arguments for the --compare-with build's runs only (split on spaces). */
  compareArgs: string[];
  /** Extra arguments for every responder run (split on spaces). */
  responderArgs: string[];
}

function usage(): never {
  console.log(
    fs
      .readFileSync(path.join(BENCH, 'docker-latency.ts'), 'utf8')
      .split('\n')
      .slice(1)
      .filter((_, i, all) => i < all.findIndex((l) => l.startsWith(' */')))
      .map((l) => l.replace(/^ \*\/? ?/, ''))
      .join('\n'),
  );
  process.exit(2);
}

export function parseArgs(argv: string[]): Options {
  const o: Options = {
    containers: 50,
    naive: 10,
    sync: 1000,
    syncSteps: [250, 500],
    parallel: 8,
    createBudgetS: 900,
    doSync: true,
    periodUs: 1000,
    burst: 200,
    burstRounds: 3,
    burstSlowUs: 20_000,
    responderArgs: [],
    compareWith: undefined,
    compareArgs: [],
  };
  const num = (v: string | undefined, name: string, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case '--containers':
        o.containers = num(v, a, 0, 500);
        i++;
        break;
      case '--naive':
        o.naive = num(v, a, 0, 200);
        i++;
        break;
      case '--sync':
        o.sync = num(v, a, 1, 1020);
        i++;
        break;
      case '--sync-steps':
        o.syncSteps = (v ?? '')
          .split(',')
          .filter((s) => s !== '')
          .map((s) => num(s, a, 1, 1020));
        i++;
        break;
      case '--parallel':
        o.parallel = num(v, a, 1, 32);
        i++;
        break;
      case '--create-budget-s':
        o.createBudgetS = num(v, a, 10, 3600);
        i++;
        break;
      case '--period-us':
        o.periodUs = num(v, a, 100, 100_000);
        i++;
        break;
      case '--burst':
        o.burst = num(v, a, 0, 1000);
        i++;
        break;
      case '--burst-rounds':
        o.burstRounds = num(v, a, 1, 20);
        i++;
        break;
      case '--burst-slow-us':
        o.burstSlowUs = num(v, a, 1000, 1_000_000);
        i++;
        break;
      case '--compare-with':
        if (!v) throw new Error('--compare-with needs a directory');
        o.compareWith = v;
        i++;
        break;
      case '--compare-args':
        o.compareArgs = (v ?? '').split(' ').filter((x) => x !== '');
        i++;
        break;
      case '--responder-args':
        o.responderArgs = (v ?? '').split(' ').filter((x) => x !== '');
        i++;
        break;
      case '--no-sync':
        o.doSync = false;
        break;
      case '-h':
      case '--help':
        return usage();
      default:
        throw new Error(`unknown option ${a} (--help)`);
    }
  }
  return o;
}
