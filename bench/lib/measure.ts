/**
 * The measurements: the rate ladder (ns-blaster against na-counter's kernel count), idle latency
 * (latency-probe), waiting for a daemon to answer and to go quiet, and one contender measured at
 * one table size (`measure`).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

import { sleep } from '../../src/lab/process.js';
import { readStatus } from './common.js';
import type { Contender, Started } from './contenders.js';
import { type SizeFiles, sizeFiles, tool } from './inputs.js';
import type { Options, Rate } from './options.js';
import { deleteRig, inLan, LAN_IF, LAN_IP, makeRig, RESPONDER_CPU, type Rig, tails } from './rig.js';

export interface Step {
  target_rate: number;
  targets: number;
  offered: number;
  delivered: number;
  veth_drops: number;
  elapsed_s: number;
  offered_pps: number;
  answered: number;
  answered_in_window: number;
  answered_pps: number;
  loss: number;
  window_s: number;
  pid_cpu_s?: number | null;
  pid_cpu_pct?: number | null;
  cpu_busy_pct: number[];
  label?: string;
  /** time waited before the step for the responder to go quiet, and whether it did */
  settle_ms?: number;
  settled?: boolean;
}

export interface Latency {
  samples: number;
  answered: number;
  lost: number;
  timeout_ms: number;
  min_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
  took_s: number;
}

async function blast(rig: Rig, files: SizeFiles, rate: Rate, o: Options, drainMs: number, pid: number | undefined): Promise<Step> {
  const argv = [
    tool('ns-blaster'),
    '--if',
    LAN_IF,
    '--targets',
    files.addrs,
    '--sample',
    String(o.blastSample),
    '--src',
    LAN_IP,
    '--rate',
    String(rate === 'max' ? 0 : rate),
    '--duration',
    String(o.stepS),
    '--count',
    String(Math.ceil(o.stepS * 2_000_000)),
    '--drain-ms',
    String(drainMs),
  ];
  if (pid !== undefined) argv.push('--watch-pid', String(pid));
  const quiet = await settle(rig, o.settleMs, o.settleMaxS * 1000);
  const r = await inLan(rig, argv, (o.stepS + drainMs / 1000 + 60) * 1000);
  if (r.code !== 0) throw new Error(`ns-blaster failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim()}`);
  const step = JSON.parse(r.stdout.trim()) as Step;
  step.label = rate === 'max' ? 'max' : String(rate);
  step.settle_ms = quiet.ms;
  step.settled = quiet.quiet;
  return step;
}

async function probeLatency(rig: Rig, files: SizeFiles, samples: number, timeoutMs: number, maxS: number, gapUs: number): Promise<Latency> {
  const argv = [
    tool('latency-probe'),
    '--if',
    LAN_IF,
    '--targets',
    files.addrs,
    '--src',
    LAN_IP,
    '--samples',
    String(samples),
    '--timeout-ms',
    String(timeoutMs),
    '--max-seconds',
    String(maxS),
    '--gap-us',
    String(gapUs),
  ];
  const r = await inLan(rig, argv, (maxS + timeoutMs / 1000 + 60) * 1000);
  if (r.code !== 0) throw new Error(`latency-probe failed (${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim()) as Latency;
}

/**
 * Waits until the responder has stopped answering (no NA for 200 ms), at most maxMs: a daemon
 * still working through the backlog of the previous step would otherwise spill into the next.
 * Returns the time waited and whether it went quiet.
 */
async function settle(rig: Rig, minMs: number, maxMs: number): Promise<{ ms: number; quiet: boolean }> {
  const t0 = Date.now();
  await sleep(Math.max(0, minMs - 200));
  while (Date.now() - t0 < maxMs) {
    const r = await inLan(rig, [tool('na-counter'), '--if', LAN_IF, '--duration', '0.2'], 10000);
    const n = r.code === 0 ? (JSON.parse(r.stdout.trim()) as { answered: number }).answered : -1;
    if (n === 0) return { ms: Date.now() - t0, quiet: true };
  }
  return { ms: Date.now() - t0, quiet: false };
}

/** Solicits the LAST loaded address until it is answered; true when answered within ms. */
export async function answers(rig: Rig, files: SizeFiles, ms: number): Promise<boolean> {
  const argv = [tool('latency-probe'), '--if', LAN_IF, '--target', files.last, '--src', LAN_IP, '--wait-ready', String(ms)];
  const r = await inLan(rig, argv, ms + 30000);
  return r.code === 0;
}

/** Waits until the daemon answers the last address, or fails when it exits or times out. */
export async function waitAnswering(rig: Rig, files: SizeFiles, child: ChildProcess, t0: number, timeoutS: number): Promise<number> {
  while ((Date.now() - t0) / 1000 < timeoutS) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const last = (tails.get(child) ?? []).filter((l) => /error|fatal|fail/i.test(l)).slice(-1)[0] ?? tails.get(child)?.slice(-1)[0] ?? '';
      throw new Error(`exited during start (code ${child.exitCode}, signal ${child.signalCode}): ${last.trim().slice(0, 300)}`);
    }
    if (await answers(rig, files, 1000)) return (Date.now() - t0) / 1000;
  }
  throw new Error(`did not answer within ${timeoutS} s`);
}

export interface Outcome {
  size: number;
  contender: string;
  label: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  ready_s?: number;
  ready_line_s?: number;
  notes?: string[];
  latency?: Latency;
  ladder?: Step[];
  at80?: Step;
  best?: { answered_pps: number; offered_pps: number; label: string };
  overload?: { answered_pps: number; offered_pps: number };
  rss_kb?: number;
  hwm_kb?: number;
  loadavg_before?: string;
}

export function say(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

export function fmtRate(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v >= 10000) return `${(v / 1000).toFixed(1)}k`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)}k`;
  return v.toFixed(0);
}

export async function measure(c: Contender, n: number, o: Options, logDir: string): Promise<Outcome> {
  const out: Outcome = { size: n, contender: c.name, label: c.label, status: 'ok' };
  const why = c.skip(n, o);
  if (why) {
    say(`[N=${n} ${c.name}] skipped: ${why}`);
    return { ...out, status: 'skipped', reason: why };
  }
  const { files, list } = sizeFiles(n, o.layout);
  out.loadavg_before = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const rig = await makeRig();
  let started: Started | undefined;
  try {
    say(`[N=${n} ${c.name}] starting`);
    started = await c.start(rig, files, list, o, logDir);
    out.ready_s = started.readyS;
    out.ready_line_s = started.readyLineS;
    out.notes = started.notes;
    say(
      `[N=${n} ${c.name}] answering after ${started.readyS.toFixed(2)} s${started.readyLineS !== undefined ? ` ("ready" line at ${started.readyLineS.toFixed(2)} s)` : ''}`,
    );

    const lat = c.latency;
    out.latency = await probeLatency(rig, files, lat.samples ?? o.latencySamples, lat.timeoutMs, o.latencyMaxS, lat.gapUs);
    say(
      `[N=${n} ${c.name}] latency p50 ${out.latency.p50_us} us, p99 ${out.latency.p99_us} us, lost ${out.latency.lost}/${out.latency.samples}`,
    );

    const ladder: Step[] = [];
    for (const rate of o.rates) {
      const s = await blast(rig, files, rate, o, c.drainMs, started.pid);
      ladder.push(s);
      say(
        `[N=${n} ${c.name}] ${s.settled ? '' : `(still answering old NS after ${s.settle_ms} ms) `}offered ${fmtRate(s.offered_pps)}/s -> answered ${fmtRate(s.answered_pps)}/s (loss ${(s.loss * 100).toFixed(1)}%${s.pid_cpu_pct != null ? `, cpu ${s.pid_cpu_pct.toFixed(0)}%` : ''}, cpu1 ${s.cpu_busy_pct[RESPONDER_CPU] ?? '-'}%)`,
      );
      if (started.pid !== undefined && readStatus(started.pid) === undefined) throw new Error('responder died during the ladder');
    }
    // Refine: a daemon that collapses under overload peaks somewhere between two ladder rates;
    // measure the geometric midpoints on both sides of the best step so its best is not missed.
    const peak = ladder.reduce((a, b) => (b.answered_pps > a.answered_pps ? b : a));
    const byOffered = [...ladder].sort((a, b) => a.offered_pps - b.offered_pps);
    const at = byOffered.indexOf(peak);
    const extra: number[] = [];
    const below = byOffered[at - 1];
    const above = byOffered[at + 1];
    if (below) extra.push(Math.round(Math.sqrt(below.offered_pps * peak.offered_pps)));
    if (above) extra.push(Math.round(Math.sqrt(above.offered_pps * peak.offered_pps)));
    for (const rate of extra) {
      const s = await blast(rig, files, rate, o, c.drainMs, started.pid);
      s.label = `refine ${rate}`;
      ladder.push(s);
      say(
        `[N=${n} ${c.name}] refine: offered ${fmtRate(s.offered_pps)}/s -> answered ${fmtRate(s.answered_pps)}/s (loss ${(s.loss * 100).toFixed(1)}%)`,
      );
    }
    out.ladder = ladder;
    const best = ladder.reduce((a, b) => (b.answered_pps > a.answered_pps ? b : a));
    out.best = { answered_pps: best.answered_pps, offered_pps: best.offered_pps, label: best.label ?? '' };
    const top = ladder[o.rates.length - 1];
    if (top) out.overload = { answered_pps: top.answered_pps, offered_pps: top.offered_pps };
    const r80 = Math.max(1, Math.round(best.answered_pps * 0.8));
    out.at80 = await blast(rig, files, r80, o, c.drainMs, started.pid);
    out.at80.label = `80% of best (${r80}/s)`;
    say(`[N=${n} ${c.name}] at 80% of best (${fmtRate(r80)}/s): loss ${(out.at80.loss * 100).toFixed(2)}%`);
    if (started.pid !== undefined) {
      const st = readStatus(started.pid);
      out.rss_kb = st?.rssKb;
      out.hwm_kb = st?.hwmKb;
    }
  } catch (e) {
    out.status = 'failed';
    out.reason = (e as Error).message;
    say(`[N=${n} ${c.name}] FAILED: ${out.reason}`);
  } finally {
    if (started) await started.stop();
    await deleteRig(rig);
  }
  return out;
}
