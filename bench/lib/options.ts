/** bench/run.ts's command line: the contenders, table sizes, rate ladder and timings. */
import path from 'node:path';

import { REPO } from './common.js';

export type Rate = number | 'max';

export interface Options {
  quick: boolean;
  sizes: number[];
  contenders: string[];
  rates: Rate[];
  stepS: number;
  settleMs: number;
  settleMaxS: number;
  latencySamples: number;
  latencyMaxS: number;
  kernelMax: number;
  layout: 'scatter' | 'seq';
  blastSample: number;
  readyTimeoutS: number;
  ndprCli: string;
  ndprArgs: string[];
  out: string;
}

export const ALL_CONTENDERS = ['kernel0', 'kernel', 'ndppd', 'ndppd-prefix', 'npd6', 'npd6-prefix', 'ndpr-afpacket', 'ndpr-pcap'] as const;
export const DEFAULT_CONTENDERS = [...ALL_CONTENDERS];

const USAGE = `usage: bash bench/run.sh [options]
  --quick                 sizes 1,1000; rates 10k,50k,200k,max; 1 s steps; 200 latency samples;
                          no *-prefix contenders
  --sizes LIST            table sizes, e.g. 1,1000,10000,100000,1000000 (default: all five)
  --contenders LIST       from ${ALL_CONTENDERS.join(',')}
                          (default: ${DEFAULT_CONTENDERS.join(',')})
  --rates LIST            offered NS/s ladder; "max" = unpaced (default 10000,25000,50000,100000,200000,max)
  --step S                seconds per ladder step (default 2; quick 1)
  --latency-samples N     latency probe samples (default 1000; quick 200)
  --kernel-max N          largest table for kernel proxy_ndp (default 10000: loading is O(N^2))
  --layout scatter|seq    how the N addresses are spread in 2003:ab11::8000:0:0:0/66 (default scatter)
  --blast-sample K        blast at most K distinct targets, evenly spread over the N (default 100000)
  --ready-timeout S       how long a daemon may take to load and answer (default 300)
  --ndpr-cli PATH         ndp-responder CLI (default dist/src/cli.js)
  --ndpr-args "ARGS"      extra arguments for ndp-responder run
  --out FILE              JSON result file (default bench/results/DATE.json)`;

function parseList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

function parseCount(s: string, what: string): number {
  const v = Number(s.replace(/_/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad ${what}: ${s}`);
  return Math.round(v);
}

export function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    sizes: quick ? [1, 1000] : [1, 1000, 10000, 100000, 1000000],
    contenders: quick ? DEFAULT_CONTENDERS.filter((c) => !c.endsWith('-prefix')) : [...DEFAULT_CONTENDERS],
    rates: quick ? [10000, 50000, 200000, 'max'] : [10000, 25000, 50000, 100000, 200000, 'max'],
    stepS: quick ? 1 : 2,
    settleMs: 300,
    settleMaxS: quick ? 3 : 5,
    latencySamples: quick ? 200 : 1000,
    latencyMaxS: quick ? 10 : 20,
    kernelMax: 10000,
    layout: 'scatter',
    blastSample: 100000,
    readyTimeoutS: 300,
    ndprCli: path.join(REPO, 'dist', 'src', 'cli.js'),
    ndprArgs: [],
    out: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick':
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
        break;
      case '--sizes':
        o.sizes = parseList(next()).map((s) => parseCount(s, 'size'));
        break;
      case '--contenders': {
        o.contenders = parseList(next());
        for (const c of o.contenders) {
          if (!(ALL_CONTENDERS as readonly string[]).includes(c)) throw new Error(`unknown contender ${c}`);
        }
        break;
      }
      case '--rates':
        o.rates = parseList(next()).map((s) => (s === 'max' ? 'max' : parseCount(s, 'rate')));
        break;
      case '--step':
        o.stepS = Number(next());
        break;
      case '--latency-samples':
        o.latencySamples = parseCount(next(), 'samples');
        break;
      case '--kernel-max':
        o.kernelMax = parseCount(next(), 'kernel-max');
        break;
      case '--layout': {
        const v = next();
        if (v !== 'scatter' && v !== 'seq') throw new Error('--layout must be scatter or seq');
        o.layout = v;
        break;
      }
      case '--blast-sample':
        o.blastSample = parseCount(next(), 'blast-sample');
        break;
      case '--ready-timeout':
        o.readyTimeoutS = Number(next());
        break;
      case '--ndpr-cli':
        o.ndprCli = path.resolve(next());
        break;
      case '--ndpr-args':
        o.ndprArgs = next()
          .split(/\s+/)
          .filter((x) => x.length > 0);
        break;
      case '--out':
        o.out = path.resolve(next());
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (!(o.stepS > 0 && o.stepS <= 30)) throw new Error('--step must be in (0, 30]');
  if (o.sizes.some((n) => n < 1 || n > 4_000_000)) throw new Error('sizes must be in [1, 4000000]');
  if (!(o.readyTimeoutS > 0 && o.readyTimeoutS <= 1800)) throw new Error('--ready-timeout must be in (0, 1800]');
  return o;
}
