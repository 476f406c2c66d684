/**
 * Docker benchmark (issue 4): how fast does ndp-responder --docker follow a real Docker engine?
 *
 *   node --import tsx bench/docker-latency.ts [--containers 50] [--naive 10] [--sync 1000]
 *                                             [--sync-steps 250,500] [--parallel 8]
 *                                             [--create-budget-s 900] [--no-sync]
 *                                             [--burst 200] [--burst-rounds 3] [--burst-slow-us 20000]
 *                                             [--responder-args "--log-level debug"] [--compare-with DIR] [--compare-args "..."]
 *
 * (a) Start latency: N containers started one after another on Docker host d1, with the
 *     responder running in d1 (`run --interface eth0 --docker`). A C peer in d2 (same link)
 *     solicits each container's address every 1 ms from BEFORE `docker start` is called, and
 *     timestamps (kernel SO_TIMESTAMPNS) every NA it receives. Per container:
 *       answered  = first solicited NA for the address  - `docker start` returning
 *       announced = first unsolicited NA (to ff02::1)   - `docker start` returning
 *     The address is known in advance because the container is created (Docker API, 1.41) with
 *     an explicit MacAddress and Docker 20.10 derives the default bridge's IPv6 address from the
 *     MAC (--fixed-cidr-v6 prefix + MAC in the low 48 bits); each prediction is checked against
 *     `docker inspect` afterwards, and a mismatch drops the sample.
 *     K more containers ("naive" method) are started with plain `docker run -d` and their address
 *     is read with `docker inspect` first: their "answered" includes that read.
 * (c) Burst (run between (a) and (b)): --burst containers created beforehand, then started all at
 *     once (one Engine API start call each, all in flight together), --burst-rounds times with
 *     a stop of all in between. The peer solicits every address slowly (--burst-slow-us) from
 *     before the burst and every 1 ms from the container's `start` event on. Per container:
 *       answered = first solicited NA for the address - its own Docker `start` event (TimeNano)
 *     p50/p90/p99/max over all rounds; `--burst 0` skips it, `--containers 0 --naive 0` skips (a).
 *     --compare-with DIR: every other round runs the responder of another build (a tree with
 *     dist/ and build/Release/, e.g. an older commit built elsewhere): before/after in one run;
 *     --compare-args "..." adds arguments to that build's runs only.
 *     Draws bench/results/docker-DATE.svg, the CDF of every latency series (bench/lib/cdf-plot.ts).
 * (b) Start-up sync: M running containers (created `--parallel` at a time, bounded by
 *     --create-budget-s), then a fresh responder: process spawn -> "ready" line, -> the table
 *     holding every address (its own "docker addresses updated" line, and the
 *     ndp_docker_addresses gauge polled on --metrics), RSS, and the unsolicited NAs on the wire.
 *
 * Writes bench/results/docker-DATE.json (and .svg) and prints a plain-text summary. The lab
 * (scripts/docker-lab.sh, --hosts 2) and every process started here are torn down at the end,
 * on error and on Ctrl-C. Root only. See bench/README-docker.md.
 *
 * The pieces live in bench/lib/docker-*.ts (options, the peer bench/docker-peer.c, the
 * responder under test, (a), (b), the report) and the lab in src/lab/docker-lab.ts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { DockerLab } from '../src/lab/docker-lab.js';
import { sleep } from '../src/lab/process.js';
import { BUILD, REPO, RESULTS } from './lib/common.js';
import { parseArgs } from './lib/docker-options.js';
import { buildPeer, Peer } from './lib/docker-peer.js';
import { type BurstResult, type BurstVariant, burstLatency, StartEvents } from './lib/docker-burst.js';
import { type DockerPlotDoc, dockerPlot, reportLines, type StartSummary, summarizeStart } from './lib/docker-report.js';
import { ADDON, REPO_CLI, Responder, snapshotBuild, snapshotOther } from './lib/docker-responder.js';
import { startLatency } from './lib/docker-start.js';
import { type Fill, fillTo, measureSync, type SyncRun } from './lib/docker-sync.js';
import { killAll, lines, loadavg, track } from './lib/docker-util.js';

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('run as root (namespaces, dockerd, packet sockets)');
  if (!fs.existsSync(REPO_CLI) || !fs.existsSync(ADDON)) throw new Error(`${REPO_CLI} or ${ADDON} is missing: run 'npm run build' first`);
  const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*$/, '');
  const logDir = path.join(BUILD, 'logs', `docker-${stamp}`);
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(RESULTS, { recursive: true });
  const bin = buildPeer();
  const command = `node --import tsx bench/docker-latency.ts ${process.argv.slice(2).join(' ')}`.trim();
  const result: Record<string, unknown> = {
    command,
    date: new Date().toISOString(),
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memMb: Math.round(os.totalmem() / 2 ** 20),
      kernel: os.release(),
      node: process.version,
    },
    options: opts,
    loadavgStart: loadavg(),
    logs: path.relative(REPO, logDir),
  };
  const outFile = path.join(RESULTS, `docker-${stamp}.json`);
  const save = (): void => {
    fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
    if (result['burst'] !== undefined || result['startLatency'] !== undefined)
      fs.writeFileSync(outFile.replace(/\.json$/, '.svg'), dockerPlot(result as DockerPlotDoc));
  };
  const snapDir = path.join(BUILD, `snapshot-${stamp}`);
  result['build'] = await snapshotBuild(snapDir);
  process.on('exit', () => fs.rmSync(snapDir, { recursive: true, force: true }));
  const other = opts.compareWith === undefined ? undefined : snapshotOther(opts.compareWith, `${snapDir}-other`);
  if (other) {
    result['compareWith'] = other;
    process.on('exit', () => fs.rmSync(`${snapDir}-other`, { recursive: true, force: true }));
    console.log(`compared with: ${JSON.stringify(other)}`);
  }
  console.log(`responder under test: copy of dist/ + addon in ${path.relative(REPO, snapDir)} (${JSON.stringify(result['build'])})`);

  console.log(`docker-latency: lab up (2 Docker hosts), load ${loadavg()}`);
  const lab = await DockerLab.up({ hosts: 2, containers: false });
  let status = 0;
  try {
    result['lab'] = { id: lab.id, upMs: Math.round(lab.upMs) };
    const ver = await lab.dockerOk('d1', ['version', '--format', '{{.Server.Version}}']);
    result['dockerd'] = ver;
    console.log(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms (dockerd ${ver}); logs in ${path.relative(REPO, logDir)}`);

    // Docker's own start events, dockerd's clock (realtime ns).
    const events = new Map<string, bigint>();
    const ev = track(
      spawn(
        'docker',
        [
          '-H',
          lab.host('d1').url,
          'events',
          '--filter',
          'type=container',
          '--filter',
          'event=start',
          '--format',
          '{{.Actor.Attributes.name}} {{.TimeNano}}',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    const starts = new StartEvents();
    lines(ev, (l) => {
      const [n, t] = l.split(' ');
      if (n && t && /^\d+$/.test(t)) {
        events.set(n, BigInt(t));
        starts.push(n, BigInt(t));
      }
    });

    const peer = await Peer.start(lab, bin, opts.periodUs, path.join(logDir, 'peer.log'));

    // (a)
    let summaryA: StartSummary | undefined;
    let rssA: { rssKb: number; hwmKb: number } | undefined;
    let la0 = '';
    let la1 = '';
    if (opts.containers + opts.naive > 0) {
      console.log(
        `\n(a) start latency: ${opts.containers} containers (address predicted from MAC) + ${opts.naive} (address read by inspect), load ${loadavg()}`,
      );
      const resp = Responder.start(lab, path.join(logDir, 'responder-a.log'), opts.responderArgs);
      await resp.waitReady(30_000);
      await sleep(500);
      la0 = loadavg();
      const samples = await startLatency(lab, peer, resp, opts, events);
      la1 = loadavg();
      rssA = resp.rss();
      await resp.stop();
      summaryA = summarizeStart(samples, rssA, la0, la1);
      result['startLatency'] = { summary: summaryA, samples };
      save();
    }

    // (c)
    let burst: BurstResult | undefined;
    if (opts.burst > 0) {
      console.log(
        `\n(c) burst: ${opts.burst} containers started at once, ${opts.burstRounds} rounds, slow solicitation every ${opts.burstSlowUs} us before each start event, load ${loadavg()}`,
      );
      const variants: BurstVariant[] = [
        { label: 'this tree', cli: undefined as string | undefined, args: opts.responderArgs },
        ...(other
          ? [
              {
                label: opts.compareArgs.length ? `${other.label} ${opts.compareArgs.join(' ')}` : other.label,
                cli: other.cli,
                args: [...opts.responderArgs, ...opts.compareArgs],
              },
            ]
          : []),
      ].map((v) => ({
        label: v.label,
        start: async (round: number): Promise<Responder> => {
          const r = Responder.start(lab, path.join(logDir, `responder-c${round}.log`), v.args, v.cli);
          await r.waitReady(30_000);
          return r;
        },
      }));
      burst = await burstLatency(
        lab,
        peer,
        starts,
        { containers: opts.burst, rounds: opts.burstRounds, slowUs: opts.burstSlowUs, parallel: opts.parallel },
        variants,
      );
      result['burst'] = burst;
      save();
    }

    // (b)
    const syncRuns: SyncRun[] = [];
    const fills: Fill[] = [];
    if (opts.doSync) {
      const steps = [...new Set([...opts.syncSteps.filter((s) => s < opts.sync), opts.sync])].sort((a, b) => a - b);
      console.log(
        `\n(b) start-up sync at ${steps.join(', ')} running containers (creating ${opts.parallel} at a time, budget ${opts.createBudgetS} s)`,
      );
      const deadline = Date.now() + opts.createBudgetS * 1000;
      for (const step of steps) {
        const f = await fillTo(lab, step, opts, deadline);
        fills.push(f);
        console.log(
          `  created ${f.created} (failed ${f.failed}) in ${(f.ms / 1000).toFixed(1)} s: ${f.reached} running, ${f.perContainerMs ?? '-'} ms each, vfs ${f.diskMb ?? '?'} MB, load ${f.loadavgAfter}${f.stoppedBecause ? ' -- stopped: ' + f.stoppedBecause : ''}`,
        );
        await sleep(2000);
        const s = await measureSync(lab, peer, path.join(logDir, `responder-sync-${f.reached}.log`));
        syncRuns.push(s);
        console.log(
          `  ${s.containers} containers: ready ${s.readyMs} ms after spawn (sync line ${s.syncLineMs ?? '-'} ms: ${s.syncAddresses ?? '-'} addresses, list+select ${s.syncDockerMs ?? '-'} ms), gauge full ${s.gaugeFullMs ?? '-'} ms (${s.gaugeValue}), RSS ${Math.round((s.rssAtReadyKb ?? 0) / 1024)} MB at ready / ${Math.round((s.rssSettledKb ?? 0) / 1024)} MB settled / peak ${Math.round((s.hwmKb ?? 0) / 1024)} MB, first unsolicited NA seen for ${s.unsolicitedTargets} addresses (last ${s.lastFirstUnsolicitedMs?.toFixed(0) ?? '-'} ms), load ${s.loadavg}`,
        );
        result['sync'] = { fills, runs: syncRuns };
        save();
        if (f.stoppedBecause) break;
      }
    }
    result['loadavgEnd'] = loadavg();

    const txt = reportLines({
      command,
      dockerd: ver,
      loadavgStart: String(result['loadavgStart']),
      loadavgEnd: String(result['loadavgEnd']),
      la0,
      la1,
      summaryA,
      rssA,
      burst,
      syncRuns,
      fills,
      outFile,
    });
    console.log(txt.join('\n'));
    result['summaryText'] = txt.join('\n');
    save();
    peer.send('quit');
  } catch (e) {
    status = 1;
    result['error'] = (e as Error).stack ?? String(e);
    save();
    console.error(`docker-latency failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    killAll();
    console.log(`tearing down lab ${lab.id} ...`);
    const t0 = Date.now();
    try {
      await lab.down();
      console.log(`lab ${lab.id} down in ${Math.round((Date.now() - t0) / 1000)} s`);
    } catch (e) {
      status = 1;
      console.error(`teardown: ${(e as Error).message}`);
    }
  }
  return status;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`docker-latency: ${(e as Error).message}`);
    process.exit(1);
  },
);
