/**
 * NDP responder benchmark harness: kernel proxy_ndp, ndppd, npd6 and ndp-responder, side by
 * side, on a two-namespace veth lab. See bench/README.md for the method and what each number
 * means. Run as root through bench/run.sh (which also cleans up if this process is killed).
 *
 *   bash bench/run.sh --quick
 *   bash bench/run.sh                      # full run (about 20 minutes)
 *   bash bench/run.sh --help
 *
 * The pieces live in bench/lib/: options, inputs (C tools, address lists), rig (namespaces, RPS,
 * pinning), contenders, measure (ladder, latency) and report.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { BUILD, RESULTS } from './lib/common.js';
import { CONTENDERS } from './lib/contenders.js';
import { buildTools } from './lib/inputs.js';
import { measure, type Outcome, say } from './lib/measure.js';
import { parseOptions } from './lib/options.js';
import { plotResults } from './lib/plot.js';
import { report } from './lib/report.js';
import { HOST_IP, LAN_IP, PREFIX, RESPONDER_CPU, SENDER_CPU } from './lib/rig.js';

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('must run as root (network namespaces)');
  if (os.cpus().length < 2) throw new Error('needs at least 2 CPUs (sender and responder pinned apart)');
  const cmdline = process.env['NDPB_CMDLINE'] ?? `node --import tsx bench/run.ts ${process.argv.slice(2).join(' ')}`;
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
  fs.mkdirSync(RESULTS, { recursive: true });
  const outFile = o.out || path.join(RESULTS, `${stamp}.json`);
  const logDir = path.join(BUILD, 'logs', stamp);
  fs.mkdirSync(logDir, { recursive: true });
  buildTools();
  console.log(`command: ${cmdline}`);
  say(`results -> ${path.relative(process.cwd(), outFile)}, daemon logs -> ${path.relative(process.cwd(), logDir)}`);

  const host = {
    kernel: os.release(),
    cpus: os.cpus().length,
    node: process.version,
    ndppd: fs.existsSync('/usr/sbin/ndppd') ? trySpawnText(['dpkg-query', '-W', '-f', '${Version}', 'ndppd']) : null,
    npd6: fs.existsSync('/usr/bin/npd6') ? trySpawnText(['dpkg-query', '-W', '-f', '${Version}', 'npd6']) : null,
    loadavg_start: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    loadavg_end: '',
  };
  const outcomes: Outcome[] = [];
  const save = (): void => {
    host.loadavg_end = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    const doc = {
      command: cmdline,
      started: startedAt.toISOString(),
      finished: new Date().toISOString(),
      host,
      options: o,
      lab: { prefix: PREFIX, lan_ip: LAN_IP, host_ip: HOST_IP, sender_cpu: SENDER_CPU, responder_cpu: RESPONDER_CPU },
      runs: outcomes,
    };
    fs.writeFileSync(outFile, `${JSON.stringify(doc, null, 2)}\n`);
    fs.writeFileSync(`${outFile.replace(/\.json$/, '')}.svg`, plotResults(doc));
  };
  for (const n of o.sizes) {
    for (const name of o.contenders) {
      const c = CONTENDERS[name];
      if (!c) continue;
      outcomes.push(await measure(c, n, o, logDir));
      save();
    }
  }
  const text = report(outcomes, o, cmdline);
  fs.writeFileSync(outFile.replace(/\.json$/, '.txt'), `${text}\n`);
  console.log(text);
  console.log(`\nJSON: ${path.relative(process.cwd(), outFile)}`);
}

function trySpawnText(argv: string[]): string | null {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { timeout: 20000, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

// The namespaces and processes of this run are removed at exit and on a signal by the lab
// library's sweep (src/lab/sweep.ts); bench/run.sh sweeps again by name if even that is skipped.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => say(`${sig}: cleaning up`));

main().then(
  () => process.exit(0),
  (e: unknown) => {
    say(`error: ${(e as Error).message}`);
    process.exit(1);
  },
);
