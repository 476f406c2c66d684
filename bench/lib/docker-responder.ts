/**
 * The responder under test: `ndp-responder run --interface eth0 --docker` in Docker host d1,
 * run from a private copy of the build (snapshotBuild), its JSON log lines timed on arrival.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import type { DockerLab } from '../../src/lab/docker-lab.js';
import { stopProcess } from '../../src/lab/process.js';
import { readStatus, REPO } from './common.js';
import { canon, lines, METRICS, monoNs, track, waitUntil } from './docker-util.js';

export const REPO_CLI = path.join(REPO, 'dist', 'src', 'cli.js');
export const ADDON = path.join(REPO, 'build', 'Release', 'ndp_native.node');
/** The responder actually run: a private copy of dist/ and the addon (see snapshotBuild). */
let CLI = REPO_CLI;

/**
 * Other sessions may rebuild dist/ and the addon in this working tree while we run: a rebuilt
 * .node file under a running responder kills it with SIGBUS. So the responder runs
 * from a copy (package.json, dist/, build/Release/ndp_native.node, node_modules symlinked),
 * taken once both have been quiet for 5 s. Returns what was copied, for the results.
 */
export async function snapshotBuild(dir: string): Promise<Record<string, unknown>> {
  const quiet = (): boolean => {
    const newest = Math.max(
      fs.statSync(ADDON).mtimeMs,
      fs.statSync(REPO_CLI).mtimeMs,
      fs.statSync(path.join(REPO, 'dist', 'src', 'service', 'daemon.js')).mtimeMs,
    );
    return Date.now() - newest > 5000;
  };
  if ((await waitUntil(quiet, 120_000, 500)) === undefined)
    throw new Error('dist/ or the addon keep changing (someone is building); try again later');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
  fs.copyFileSync(ADDON, path.join(dir, 'build', 'Release', 'ndp_native.node'));
  fs.cpSync(path.join(REPO, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  CLI = path.join(dir, 'dist', 'src', 'cli.js');
  const git = (args: string[]): string => {
    try {
      return execFileSync('git', ['-C', REPO, ...args], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      return '?';
    }
  };
  return {
    snapshot: path.relative(REPO, dir),
    gitHead: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain', '--', 'src', 'native'])
      .split('\n')
      .filter((l) => l !== ''),
    addonMtime: fs.statSync(ADDON).mtime.toISOString(),
    distMtime: fs.statSync(REPO_CLI).mtime.toISOString(),
  };
}

/**
 * Another build for --compare-with: `dir` holds dist/src/cli.js and build/Release/ndp_native.node
 * (and package.json); copied like {@link snapshotBuild}, its git HEAD recorded.
 */
export function snapshotOther(dir: string, to: string): { label: string; cli: string; dir: string; gitHead: string } {
  const src = path.resolve(dir);
  for (const f of ['dist/src/cli.js', 'build/Release/ndp_native.node', 'package.json'])
    if (!fs.existsSync(path.join(src, f))) throw new Error(`--compare-with ${dir}: ${f} is missing (build that tree first)`);
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(path.join(to, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(path.join(src, 'package.json'), path.join(to, 'package.json'));
  fs.copyFileSync(path.join(src, 'build', 'Release', 'ndp_native.node'), path.join(to, 'build', 'Release', 'ndp_native.node'));
  fs.cpSync(path.join(src, 'dist'), path.join(to, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(to, 'node_modules'));
  let gitHead = '?';
  try {
    gitHead = execFileSync('git', ['-C', src, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    /* not a git tree */
  }
  return {
    label: `other build (${path.basename(src)}${gitHead !== '?' ? ` ${gitHead}` : ''})`,
    cli: path.join(to, 'dist', 'src', 'cli.js'),
    dir: src,
    gitHead,
  };
}

/** pino's `time` (epoch ms, or an ISO string with ms resolution as this CLI logs it). */
export function pinoTime(rec: Record<string, unknown>): number {
  const t = rec['time'];
  return typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
}

export interface ResponderLine {
  atNs: bigint;
  rec: Record<string, unknown>;
}

export class Responder {
  readonly log: ResponderLine[] = [];
  readonly spawnNs: bigint;
  /** Set when the process ended (by itself or by us). */
  exited: { code: number | null; signal: string | null; atMs: number } | null = null;
  private stopping = false;
  private constructor(
    readonly child: ChildProcess,
    spawnNs: bigint,
  ) {
    this.spawnNs = spawnNs;
  }

  /** `cli`: another build's dist/src/cli.js (--compare-with); default the snapshot of this tree's. */
  static start(lab: DockerLab, logFile: string, extra: string[] = [], cli = CLI): Responder {
    const spawnNs = monoNs();
    const child = track(
      lab.spawnIn('d1', process.execPath, [
        cli,
        'run',
        '--interface',
        'eth0',
        '--docker',
        lab.host('d1').url,
        '--log-level',
        'info',
        ...extra,
      ]),
    );
    const r = new Responder(child, spawnNs);
    child.once('exit', (code, signal) => {
      r.exited = { code, signal, atMs: Date.now() };
      if (!r.stopping) console.log(`  ! responder (pid ${child.pid}) exited by itself: code ${code} signal ${signal}; see ${logFile}`);
    });
    lines(
      child,
      (l, at) => {
        try {
          r.log.push({ atNs: at, rec: JSON.parse(l) as Record<string, unknown> });
        } catch {
          /* not JSON */
        }
      },
      logFile,
    );
    return r;
  }

  find(pred: (rec: Record<string, unknown>) => boolean): ResponderLine | undefined {
    return this.log.find((l) => pred(l.rec));
  }

  async waitReady(timeoutMs: number): Promise<ResponderLine> {
    const l = await waitUntil(
      () => this.find((r) => r['msg'] === 'ready') ?? (this.child.exitCode !== null ? null : undefined),
      timeoutMs,
      1,
    );
    if (l === undefined) throw new Error(`responder not ready within ${timeoutMs} ms (exit ${this.child.exitCode})`);
    return l;
  }

  /** pino's time (ms since the epoch) of the "docker addresses updated" line that added addr. */
  addedAt(addr: string): number | undefined {
    const l = this.addedLine(addr);
    return l ? pinoTime(l.rec) : undefined;
  }

  /** The "docker addresses updated" line that added addr (its `ms`: the batch's read and swap). */
  addedLine(addr: string): ResponderLine | undefined {
    const c = canon(addr);
    return this.find(
      (r) =>
        r['msg'] === 'docker addresses updated' &&
        Array.isArray(r['added']) &&
        (r['added'] as { address?: string }[]).some((a) => a.address !== undefined && canon(a.address) === c),
    );
  }

  rss(): { rssKb: number; hwmKb: number } | undefined {
    return this.child.pid === undefined ? undefined : readStatus(this.child.pid);
  }

  comm(): string {
    try {
      return fs.readFileSync(`/proc/${this.child.pid}/comm`, 'utf8').trim();
    } catch {
      return '?';
    }
  }

  stop(): Promise<void> {
    this.stopping = true;
    return stopProcess(this.child, 5000);
  }
}

export async function metricsGauge(lab: DockerLab, name: string): Promise<number | undefined> {
  const r = await lab.exec('d1', ['curl', '-sg', '-m', '2', `http://${METRICS}/metrics`], { timeoutMs: 5000 });
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : undefined;
}
