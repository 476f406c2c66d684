/**
 * The peer: bench/docker-peer.c run in Docker host d2 (same link as d1). It solicits the
 * watched addresses every --period-us and reports every NA with its kernel receive time.
 */
import type { ChildProcess } from 'node:child_process';

import type { DockerLab } from '../../src/lab/docker-lab.js';
import { buildTool } from './common.js';
import { canon, lines, track } from './docker-util.js';

/** Build bench/docker-peer.c (when stale); returns the binary. */
export function buildPeer(): string {
  return buildTool('docker-peer');
}

export interface NaEvent {
  rtNs: bigint;
  dst: string;
  flags: number;
}

export class Peer {
  readonly nas = new Map<string, NaEvent[]>();
  private waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  private constructor(readonly child: ChildProcess) {}

  static async start(lab: DockerLab, bin: string, periodUs: number, logFile: string): Promise<Peer> {
    // SCHED_FIFO: the peer is the instrument. Under a burst the load average passes 30, and a
    // peer at normal priority sent its "1 ms" NSs up to 70 ms apart, which counted as latency.
    // It sleeps between sends, so it takes little CPU from the others.
    const child = track(
      lab.spawnIn(
        'd2',
        'chrt',
        ['-f', '20', bin, '--if', 'eth0', '--src', '2003:ab11::2', '--period-us', String(periodUs), '--max-seconds', '3600'],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      ),
    );
    const p = new Peer(child);
    lines(child, (l) => p.onLine(l), logFile);
    const hello = await p.expect(/^hello /, 5000);
    if (hello === undefined) throw new Error('docker-peer did not start (see ' + logFile + ')');
    return p;
  }

  private onLine(l: string): void {
    if (l.startsWith('na ')) {
      const [, ts, target, dst, flags] = l.split(' ');
      const key = canon(target!);
      const list = this.nas.get(key) ?? [];
      list.push({ rtNs: BigInt(ts!), dst: dst!, flags: Number(flags) });
      this.nas.set(key, list);
      return;
    }
    const i = this.waiters.findIndex((w) => w.re.test(l));
    if (i >= 0) {
      const w = this.waiters[i]!;
      this.waiters.splice(i, 1);
      w.resolve(l);
    }
  }

  /** Registers interest in a line now; resolves with it, or undefined after timeoutMs. */
  expect(re: RegExp, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const w = {
        re,
        resolve: (l: string) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(cmd: string): void {
    this.child.stdin!.write(cmd + '\n');
  }

  /** CLOCK_REALTIME - CLOCK_MONOTONIC, in ns, read by the peer back to back. */
  async clockOffset(): Promise<bigint> {
    const p = this.expect(/^clock /, 2000);
    this.send('clock');
    const l = await p;
    if (l === undefined) throw new Error('docker-peer: no clock answer');
    const [, rt, mono] = l.split(' ');
    return BigInt(rt!) - BigInt(mono!);
  }

  firstUnsolicited(addr: string, afterRtNs: bigint): NaEvent | undefined {
    return this.nas.get(canon(addr))?.find((e) => (e.flags & 0x40) === 0 && e.dst === 'ff02::1' && e.rtNs >= afterRtNs);
  }
}
