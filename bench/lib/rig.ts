/**
 * The rig: namespace "lan" (the sender, like an upstream router) and "host" (the responder), one
 * veth pair between them, each side's receive work on its own CPU (RPS) and each process pinned
 * to that CPU. Built with the lab library (src/lab/netns.ts): unique names per run
 * (`$NDPB_TAG-N-lan`, `$NDPB_TAG-N-host`), deleted by name also on a crash or a signal.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';

import { Lab, type Netns } from '../../src/lab/netns.js';
import { type RunResult, sleep, stopProcess } from '../../src/lab/process.js';

export const PREFIX = '2003:ab11::8000:0:0:0/66';
export const PREFIX_NPD6 = '2003:ab11:0:0:8000::/66';
export const LAN_IP = '2003:ab11::1';
export const HOST_IP = '2003:ab11::2';
export const LAN_MAC = '02:00:5e:10:00:01';
export const HOST_MAC = '02:00:5e:10:00:02';
export const LAN_IF = 'v-lan';
export const HOST_IF = 'v-host';
export const SENDER_CPU = 0;
export const RESPONDER_CPU = 1;

const TAG = process.env['NDPB_TAG'] ?? `ndpb${process.pid}`;

export interface Rig {
  lab: Lab;
  lan: Netns;
  host: Netns;
}

let rigSeq = 0;

export async function makeRig(): Promise<Rig> {
  rigSeq++;
  const lab = await Lab.create(undefined, '', { tag: `${TAG}-${rigSeq}` });
  try {
    // lo up and no DAD (Lab.netns), and no RA/RS noise on the lab links; set before the links
    // exist so they inherit it
    const lan = await lab.netns('-lan');
    const host = await lab.netns('-host');
    for (const ns of [lan, host])
      await ns.execOk('sysctl', ['-qw', 'net.ipv6.conf.default.accept_ra=0', 'net.ipv6.conf.default.router_solicitations=0']);
    // A Docker host forwards: forwarding=1 in the responder namespace for every contender.
    await host.sysctl('net.ipv6.conf.all.forwarding', 1);
    // both ends are created directly inside the namespaces: nothing ever appears in ours
    await lab.veth(lan, LAN_IF, host, HOST_IF, { aMac: LAN_MAC, bMac: HOST_MAC });
    await lan.addr(LAN_IF, `${LAN_IP}/64`);
    await host.addr(HOST_IF, `${HOST_IP}/64`);
    // RPS: each side's receive softirq runs on its own CPU (without it, the responder's kernel
    // work would run inside the sender's sendmmsg() on the sender's CPU).
    const rps = async (ns: Netns, dev: string, cpu: number): Promise<void> => {
      const mask = (1 << cpu).toString(16);
      await ns.execOk('sh', [
        '-c',
        `for q in /sys/class/net/${dev}/queues/rx-*; do echo ${mask} > $q/rps_cpus; done; cat /sys/class/net/${dev}/queues/rx-*/rps_cpus`,
      ]);
    };
    await rps(lan, LAN_IF, SENDER_CPU);
    await rps(host, HOST_IF, RESPONDER_CPU);
    // The solicitor is a known, reachable neighbour (as an upstream router is): replies from the
    // kernel's IPv6 stack (kernel proxy, ndppd, npd6) need no resolution round trip of their own.
    await host.ip(['-6', 'neigh', 'replace', LAN_IP, 'lladdr', LAN_MAC, 'dev', HOST_IF, 'nud', 'permanent']);
    // wait for carrier + operstate (linkwatch may take up to a second)
    for (let i = 0; i < 50; i++) {
      const a = (await host.execOk('cat', [`/sys/class/net/${HOST_IF}/operstate`])).trim();
      const b = (await lan.execOk('cat', [`/sys/class/net/${LAN_IF}/operstate`])).trim();
      if (a === 'up' && b === 'up') break;
      await sleep(100);
    }
    // linkwatch also activates the device and addrconf marks the interface ready a moment later
    await sleep(1200);
    return { lab, lan, host };
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}

/** Kill everything inside the rig's namespaces and delete them. */
export async function deleteRig(rig: Rig): Promise<void> {
  await rig.lab.cleanup();
}

/** Run a measuring tool in the sender namespace, pinned to the sender CPU. */
export function inLan(rig: Rig, argv: string[], timeoutMs: number): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  return rig.lan.exec(cmd, args, { cpus: SENDER_CPU, timeoutMs });
}

/** The last lines each daemon printed, for error messages. */
export const tails = new WeakMap<ChildProcess, string[]>();

/** Starts a daemon in the host namespace pinned to the responder CPU; output goes to logFile. */
export function startDaemon(rig: Rig, argv: string[], logFile: string, onLine?: (line: string) => void): ChildProcess {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('empty command');
  const child = rig.host.spawn(cmd, args, { cpus: RESPONDER_CPU });
  const log = fs.createWriteStream(logFile);
  const tail: string[] = [];
  tails.set(child, tail);
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const rl = readline.createInterface({ input: stream });
    rl.on('line', (l) => {
      log.write(`${l}\n`);
      tail.push(l);
      if (tail.length > 40) tail.shift();
      onLine?.(l);
    });
  }
  child.on('close', () => {
    log.end();
  });
  return child;
}

/** SIGTERM, then SIGKILL after 5 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  return stopProcess(child, 5000);
}
