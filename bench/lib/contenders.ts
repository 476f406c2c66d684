/**
 * The contenders: kernel proxy_ndp (proxy_delay 0 and default), ndppd and npd6 (one rule per
 * address, or one prefix rule), and ndp-responder (afpacket and pcap back ends). Each knows how
 * to start in the rig's host namespace for a table of N addresses and when it is answering.
 */
import fs from 'node:fs';
import path from 'node:path';

import { run, sleep } from '../../src/lab/process.js';
import { BUILD, REPO } from './common.js';
import { type SizeFiles, writeLines } from './inputs.js';
import { answers, waitAnswering } from './measure.js';
import type { Options } from './options.js';
import { HOST_IF, PREFIX, PREFIX_NPD6, type Rig, startDaemon, stopChild } from './rig.js';

export interface Started {
  pid?: number;
  /** seconds from start (or from the first proxy entry) until it answered the last address */
  readyS: number;
  /** for ndp-responder: seconds until the "ready" log line */
  readyLineS?: number;
  stop: () => Promise<void>;
  notes: string[];
}

export interface Contender {
  name: string;
  label: string;
  family: 'kernel0' | 'kernel' | 'ndppd' | 'npd6' | 'ndpr';
  /** after the last NS of a step, how long NAs may still come */
  drainMs: number;
  latency: { samples?: number; timeoutMs: number; gapUs: number };
  skip: (n: number, o: Options) => string | undefined;
  start: (rig: Rig, files: SizeFiles, list: string[], o: Options, logDir: string) => Promise<Started>;
}

function kernelContender(name: 'kernel0' | 'kernel'): Contender {
  const delay0 = name === 'kernel0';
  return {
    name,
    label: delay0 ? 'kernel proxy_ndp, proxy_delay 0' : 'kernel proxy_ndp, default proxy_delay (0.8 s)',
    family: name,
    // with the default delay, answers to multicast NS come up to 0.8 s late
    drainMs: delay0 ? 300 : 1000,
    latency: delay0 ? { timeoutMs: 200, gapUs: 500 } : { samples: 40, timeoutMs: 2000, gapUs: 0 },
    skip: (n, o) =>
      n > o.kernelMax
        ? `N=${n} > --kernel-max ${o.kernelMax} (each proxy entry joins a multicast group; 100,000 took 8 min to load here)`
        : undefined,
    async start(rig, files, list) {
      const sysctls = ['net.ipv6.conf.all.proxy_ndp=1', `net.ipv6.conf.${HOST_IF}.proxy_ndp=1`];
      if (delay0) sysctls.push(`net.ipv6.neigh.${HOST_IF}.proxy_delay=0`);
      await rig.host.execOk('sysctl', ['-qw', ...sysctls]);
      const delay = (await rig.host.execOk('sysctl', ['-n', `net.ipv6.neigh.${HOST_IF}.proxy_delay`])).trim();
      const batch = path.join(BUILD, `kproxy-${path.basename(files.addrs, '.txt')}.batch`);
      writeLines(batch, list.length, (i) => `neigh add proxy ${list[i]} dev ${HOST_IF}\n`);
      const t0 = Date.now();
      const r = await run('ip', ['-n', rig.host.name, '-6', '-batch', batch], { timeoutMs: Math.max(120, files.n / 50) * 1000 });
      if (r.code !== 0) throw new Error(`ip -batch failed: ${r.stderr.trim().slice(0, 300)}`);
      const loadS = (Date.now() - t0) / 1000;
      const t1 = Date.now();
      if (!(await answers(rig, files, 10000))) throw new Error('kernel proxy did not answer within 10 s');
      return {
        readyS: loadS + (Date.now() - t1) / 1000,
        stop: async () => {},
        notes: [`proxy_delay=${delay} (USER_HZ)`, `ip -batch load ${loadS.toFixed(2)} s`],
      };
    },
  };
}

function ndppdContender(prefix: boolean): Contender {
  return {
    name: prefix ? 'ndppd-prefix' : 'ndppd',
    label: prefix ? `ndppd 0.2.5, one static rule ${PREFIX}` : 'ndppd 0.2.5, one static /128 rule per address',
    family: 'ndppd',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: () => (fs.existsSync('/usr/sbin/ndppd') ? undefined : '/usr/sbin/ndppd not installed'),
    async start(rig, files, list, o, logDir) {
      const conf = path.join(BUILD, prefix ? 'ndppd-prefix.conf' : `ndppd-${path.basename(files.addrs, '.txt')}.conf`);
      // defaults spelled out: router yes, ttl 30000, timeout 500
      const head = `proxy ${HOST_IF} {\n  router yes\n  ttl 30000\n  timeout 500\n`;
      if (prefix) writeLines(conf, 1, () => `  rule ${PREFIX} {\n    static\n  }\n`, head, '}\n');
      else writeLines(conf, list.length, (i) => `  rule ${list[i]}/128 {\n    static\n  }\n`, head, '}\n');
      const t0 = Date.now();
      const child = startDaemon(rig, ['/usr/sbin/ndppd', '-c', conf], path.join(logDir, `${this.name}-${files.n}.log`));
      const readyS = await waitAnswering(rig, files, child, t0, o.readyTimeoutS);
      return { pid: child.pid, readyS, stop: () => stopChild(child), notes: [`config ${path.relative(REPO, conf)}`] };
    },
  };
}

function npd6Contender(prefix: boolean): Contender {
  return {
    name: prefix ? 'npd6-prefix' : 'npd6',
    label: prefix ? `npd6, prefix ${PREFIX}, no list` : `npd6, prefix ${PREFIX} + whitelist of the N addresses`,
    family: 'npd6',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: () => (fs.existsSync('/usr/bin/npd6') ? undefined : '/usr/bin/npd6 not installed'),
    async start(rig, files, list, o, logDir) {
      const conf = path.join(BUILD, prefix ? 'npd6-prefix.conf' : `npd6-${path.basename(files.addrs, '.txt')}.conf`);
      // everything below the list is npd6's documented default except collectTargets (0 = off:
      // it would keep a tree of every target seen, which only serves the USR2 debug dump)
      const head = `prefix=${PREFIX_NPD6}\ninterface=${HOST_IF}\nlisttype=${prefix ? 'none' : 'white'}\nlistlogging=off\n`;
      const tail = 'collectTargets=0\nlinkOption=false\nignoreLocal=true\nrouterNA=true\nmaxHops=255\npollErrorLimit=20\n';
      if (prefix) writeLines(conf, 0, () => '', head, tail);
      else writeLines(conf, list.length, (i) => `addrlist=${list[i]}\n`, head, tail);
      const t0 = Date.now();
      const log = path.join(logDir, `${this.name}-${files.n}.log`);
      // npd6 keeps a strdupa() copy of every config line on its stack until the whole file is
      // read (readConfig in config.c), so past ~150,000 addrlist lines it dies of SIGSEGV with
      // the default 8 MB stack. An unlimited stack lets it load any size; it changes nothing else.
      const argv = ['sh', '-c', 'ulimit -s unlimited && exec "$@"', 'npd6', '/usr/bin/npd6', '-c', conf, '-f', '-l', `${log}.npd6`];
      const child = startDaemon(rig, argv, log);
      const readyS = await waitAnswering(rig, files, child, t0, o.readyTimeoutS);
      return {
        pid: child.pid,
        readyS,
        stop: () => stopChild(child),
        notes: [`config ${path.relative(REPO, conf)}`, 'run with ulimit -s unlimited'],
      };
    },
  };
}

function ndprContender(backend: 'afpacket' | 'pcap'): Contender {
  return {
    name: `ndpr-${backend}`,
    label: `ndp-responder --backend ${backend}`,
    family: 'ndpr',
    drainMs: 300,
    latency: { timeoutMs: 200, gapUs: 500 },
    skip: (_n, o) =>
      fs.existsSync(o.ndprCli)
        ? undefined
        : `${path.relative(REPO, o.ndprCli)} missing: run \`npm run build\` first (ndp-responder not measured)`,
    async start(rig, files, _list, o, logDir) {
      const argv = [
        process.execPath,
        o.ndprCli,
        'run',
        '--interface',
        HOST_IF,
        '--address-file',
        files.addrs,
        // info (its default) logs lifecycle events only, among them the "ready" line we time;
        // per-packet decisions are at debug
        '--backend',
        backend,
        '--log-level',
        'info',
        ...o.ndprArgs,
      ];
      const t0 = Date.now();
      let readyLineS: number | undefined;
      const child = startDaemon(rig, argv, path.join(logDir, `${this.name}-${files.n}.log`), (line) => {
        if (readyLineS === undefined && line.includes('"msg":"ready"')) readyLineS = (Date.now() - t0) / 1000;
      });
      const readyS = await waitAnswering(rig, files, child, t0, o.readyTimeoutS);
      const notes: string[] = [];
      if (readyLineS === undefined) {
        // the line may come a moment after the first answer
        for (let i = 0; i < 20 && readyLineS === undefined; i++) await sleep(100);
      }
      if (readyLineS === undefined) notes.push('no "ready" log line seen');
      return { pid: child.pid, readyS, readyLineS, stop: () => stopChild(child), notes };
    },
  };
}

export const CONTENDERS: Record<string, Contender> = {
  kernel0: kernelContender('kernel0'),
  kernel: kernelContender('kernel'),
  ndppd: ndppdContender(false),
  'ndppd-prefix': ndppdContender(true),
  npd6: npd6Contender(false),
  'npd6-prefix': npd6Contender(true),
  'ndpr-afpacket': ndprContender('afpacket'),
  'ndpr-pcap': ndprContender('pcap'),
};
