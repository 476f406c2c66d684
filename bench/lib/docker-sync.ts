/**
 * (b) Start-up sync: fill d1 with M running containers, then start a fresh responder and time
 * how long until it is ready, holds every address, and has announced them.
 */
import path from 'node:path';

import { type DockerLab, IMAGE } from '../../src/lab/docker-lab.js';
import { run, sleep } from '../../src/lab/process.js';
import type { Options } from './docker-options.js';
import type { Peer } from './docker-peer.js';
import { metricsGauge, pinoTime, Responder } from './docker-responder.js';
import { loadavg, METRICS, monoNs, SLEEPER, waitUntil } from './docker-util.js';

async function runningCount(lab: DockerLab): Promise<number> {
  const r = await lab.docker('d1', ['ps', '-q'], { timeoutMs: 60_000 });
  return r.stdout.split('\n').filter((s) => s.trim() !== '').length;
}

export interface Fill {
  target: number;
  reached: number;
  created: number;
  failed: number;
  ms: number;
  perContainerMs: number | null;
  stoppedBecause: string | null;
  loadavgAfter: string;
  diskMb: number | null;
}

export async function fillTo(lab: DockerLab, target: number, opts: Options, deadline: number): Promise<Fill> {
  const start = await runningCount(lab);
  const need = Math.max(0, target - start);
  const t0 = Date.now();
  let next = 0;
  let created = 0;
  let failed = 0;
  let stoppedBecause: string | null = null;
  const worker = async (w: number): Promise<void> => {
    while (next < need) {
      if (Date.now() > deadline) {
        stoppedBecause ??= `creation budget of ${opts.createBudgetS} s used up`;
        return;
      }
      if (failed > 20) {
        stoppedBecause ??= 'more than 20 docker run failures';
        return;
      }
      const k = next++;
      const name = `s${start + k}`;
      const r = await lab.docker('d1', ['run', '-d', '--name', name, IMAGE, ...SLEEPER], { timeoutMs: 120_000 });
      if (r.code === 0) created++;
      else {
        failed++;
        if (failed <= 3) console.log(`  docker run ${name} failed (worker ${w}): ${r.stderr.trim().slice(0, 200)}`);
      }
      if ((created + failed) % 100 === 0)
        console.log(`  ... ${start + created} running (${Math.round((Date.now() - t0) / 1000)} s, load ${loadavg()})`);
    }
  };
  await Promise.all(Array.from({ length: opts.parallel }, (_, w) => worker(w)));
  const ms = Date.now() - t0;
  const reached = await runningCount(lab);
  let diskMb: number | null = null;
  const du = await run('du', ['-sm', path.join(lab.dir, 'd1', 'data')], { timeoutMs: 120_000 });
  if (du.code === 0) diskMb = Number(du.stdout.split(/\s/)[0]);
  return {
    target,
    reached,
    created,
    failed,
    ms,
    perContainerMs: created ? Math.round(ms / created) : null,
    stoppedBecause,
    loadavgAfter: loadavg(),
    diskMb,
  };
}

export interface SyncRun {
  containers: number;
  addressesExpected: number;
  readyMs: number;
  readyPinoMs: number;
  syncLineMs: number | null;
  syncAddresses: number | null;
  syncDockerMs: number | null;
  gaugeFullMs: number | null;
  gaugeValue: number | null;
  rssAtReadyKb: number | null;
  rssSettledKb: number | null;
  hwmKb: number | null;
  unsolicitedTargets: number;
  lastFirstUnsolicitedMs: number | null;
  loadavg: string;
  comm: string;
}

export async function measureSync(lab: DockerLab, peer: Peer, logFile: string): Promise<SyncRun> {
  const expected = await runningCount(lab);
  const la = loadavg();
  const offset = await peer.clockOffset();
  const r = Responder.start(lab, logFile, ['--metrics', METRICS]);
  const spawnRt = r.spawnNs + offset;
  const ready = await r.waitReady(120_000);
  const rssReady = r.rss();
  const readyMs = Number(ready.atNs - r.spawnNs) / 1e6;
  const readyPinoMs = pinoTime(ready.rec) - Number(spawnRt) / 1e6;
  const sync = r.find((x) => x['msg'] === 'docker addresses updated' && x['trigger'] === 'sync');
  let gaugeFullMs: number | null = null;
  let gaugeValue: number | null = null;
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const g = await metricsGauge(lab, 'ndp_docker_addresses');
    if (g !== undefined) gaugeValue = g;
    if (g !== undefined && g >= expected) {
      gaugeFullMs = Number(monoNs() - r.spawnNs) / 1e6;
      break;
    }
    await sleep(20);
  }
  // Unsolicited NAs: the first of each address, seen in d2 (bounded wait: they are paced).
  const firstNa = (): bigint[] => {
    const v: bigint[] = [];
    for (const list of peer.nas.values()) {
      const e = list.find((x) => (x.flags & 0x40) === 0 && x.dst === 'ff02::1' && x.rtNs >= spawnRt);
      if (e) v.push(e.rtNs);
    }
    return v;
  };
  await waitUntil(() => firstNa().length >= expected, 15_000, 100);
  await sleep(1500);
  const fn = firstNa();
  const rssSettled = r.rss();
  const comm = r.comm();
  await r.stop();
  const maxNa = fn.length ? fn.reduce((a, b) => (a > b ? a : b)) : undefined;
  return {
    containers: expected,
    addressesExpected: expected,
    readyMs: Math.round(readyMs * 10) / 10,
    readyPinoMs: Math.round(readyPinoMs * 10) / 10,
    syncLineMs: sync ? Math.round((pinoTime(sync.rec) - Number(spawnRt) / 1e6) * 10) / 10 : null,
    syncAddresses: sync ? Number(sync.rec['addresses']) : null,
    syncDockerMs: sync ? Number(sync.rec['ms']) : null,
    gaugeFullMs: gaugeFullMs === null ? null : Math.round(gaugeFullMs * 10) / 10,
    gaugeValue,
    rssAtReadyKb: rssReady?.rssKb ?? null,
    rssSettledKb: rssSettled?.rssKb ?? null,
    hwmKb: rssSettled?.hwmKb ?? null,
    unsolicitedTargets: fn.length,
    lastFirstUnsolicitedMs: maxNa === undefined ? null : Number(maxNa - spawnRt) / 1e6,
    loadavg: la,
    comm,
  };
}
