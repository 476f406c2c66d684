/**
 * A small process that drives AfPacketBackend instances inside a network namespace for the lab
 * tests: `ip netns exec NS node --import tsx test/lab/support/afpacket-agent.ts --agent`.
 * Reads one JSON request per line on stdin, answers `{id, ...}` (or `{id, error}`), and
 * reports received batches as unsolicited `{ev: 'batch', h, frames: [hex...]}` lines.
 *
 * Requests (h names a back end, default 'main'):
 *   open {ifname, opts?, filter?: 'ns'|'na'|'all'}       -> {ifindex, fd}
 *   start {mode: 'frames'|'count', closeInCallback?}    frames: one 'batch' line per batch
 *   start {mode: 'transfer'}: like frames, and the first batch's receive buffer is transferred
 *     away (structuredClone with transfer); checkTransferred -> {same, bytes}: whether the
 *     transferred memory still holds what it held then (nothing wrote into it since)
 *   send {frames: hex[]}                                -> {sent}
 *   sendPaced {frames: hex[], intervalMs}               one frame every intervalMs -> {sent, spanMs}
 *   blast {frames: hex[], batch, durationMs, maxFrames} -> {sent, errors, elapsedMs, calls}
 *   addMulticast/removeMulticast {mac}, setAllMulticast/setPromiscuous {on}
 *   stats -> {stats, counted, spanMs, fd}                close -> {}
 *   worker {ifname, mac}: a worker thread opens a back end, adds `mac`, starts, and reports
 *     {ev: 'worker', state: 'started'|'batch'}; terminateWorker -> {exitCode}
 *   exitNow: process.exit(0) with every back end left open (env cleanup hooks close them)
 * Without `--agent` (e.g. when tap runs every file under test/) it exits at once.
 */
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';

import { AfPacketBackend, type AfPacketOptions } from '../../../src/io/afpacket.js';
import { ACCEPT_ALL, type BpfProgram, NA_ONLY, NS_AND_MLD_QUERY } from '../../../src/io/bpf.js';

if (process.argv[2] !== '--agent') process.exit(0);

interface Entry {
  b: AfPacketBackend;
  counted: number;
  firstNs: bigint;
  lastNs: bigint;
  /** mode 'transfer': the receive buffer's memory, now owned by this clone, and a copy of it then. */
  transferred?: { clone: ArrayBuffer; copy: Uint8Array };
}

const backends = new Map<string, Entry>();
let worker: Worker | undefined;

/** Worker thread body (CommonJS eval): loads the TS back end through tsx's API. */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
import('tsx/esm/api')
  .then(({ tsImport }) => tsImport(workerData.module, workerData.parent))
  .then(({ AfPacketBackend }) => {
    const b = AfPacketBackend.open({ ifname: workerData.ifname });
    b.addMulticast(Uint8Array.from(workerData.mac.split(':').map((x) => parseInt(x, 16))));
    b.start((batch) => parentPort.postMessage({ state: 'batch', count: batch.count }));
    parentPort.postMessage({ state: 'started', fd: b.fd });
  })
  .catch((e) => parentPort.postMessage({ state: 'error', message: String(e && e.message) }));
`;

function out(rec: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(rec) + '\n');
}

function errorJson(err: unknown): Record<string, unknown> {
  const e = err as { message?: string; code?: unknown; errno?: unknown; syscall?: unknown; name?: string };
  return { message: e.message ?? String(err), name: e.name, code: e.code, errno: e.errno, syscall: e.syscall };
}

function hex(b: Uint8Array, off: number, len: number): string {
  return Buffer.from(b.buffer, b.byteOffset + off, len).toString('hex');
}

function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(':').map((p) => parseInt(p, 16)));
}

/** Pack hex frames into one buffer with offsets/lengths, as the engine would. */
function pack(frames: string[]): { buf: Uint8Array; offsets: Uint32Array; lengths: Uint32Array } {
  const bufs = frames.map((f) => Buffer.from(f, 'hex'));
  const buf = new Uint8Array(bufs.reduce((n, b) => n + b.length, 0));
  const offsets = new Uint32Array(bufs.length);
  const lengths = new Uint32Array(bufs.length);
  let o = 0;
  bufs.forEach((b, i) => {
    buf.set(b, o);
    offsets[i] = o;
    lengths[i] = b.length;
    o += b.length;
  });
  return { buf, offsets, lengths };
}

const FILTERS: Record<string, BpfProgram> = { ns: NS_AND_MLD_QUERY, na: NA_ONLY, all: ACCEPT_ALL };

function entry(h: string): Entry {
  const e = backends.get(h);
  if (!e) throw new Error(`no back end '${h}'`);
  return e;
}

function handle(req: Record<string, unknown>): Record<string, unknown> {
  const h = typeof req['h'] === 'string' ? req['h'] : 'main';
  switch (req['op']) {
    case 'open': {
      const opts = { ...(req['opts'] as Partial<AfPacketOptions> | undefined), ifname: req['ifname'] as string };
      const f = req['filter'];
      if (typeof f === 'string') opts.filter = FILTERS[f];
      opts.onError = (err) => out({ ev: 'error', h, error: errorJson(err) });
      const b = AfPacketBackend.open(opts);
      backends.set(h, { b, counted: 0, firstNs: 0n, lastNs: 0n });
      return { ifindex: b.ifindex, fd: b.fd };
    }
    case 'start': {
      const e = entry(h);
      if (req['mode'] === 'count') {
        e.b.start((batch) => {
          const now = process.hrtime.bigint();
          if (e.counted === 0) e.firstNs = now;
          e.lastNs = now;
          e.counted += batch.count;
        });
      } else {
        const closeInCallback = req['closeInCallback'] === true;
        const transfer = req['mode'] === 'transfer';
        e.b.start((batch) => {
          const frames: string[] = [];
          for (let i = 0; i < batch.count; i++) frames.push(hex(batch.buf, batch.offsets[i]!, batch.lengths[i]!));
          e.counted += batch.count;
          if (transfer && e.transferred === undefined) {
            const buffer = batch.buf.buffer as ArrayBuffer;
            const clone = structuredClone(buffer, { transfer: [buffer] });
            e.transferred = { clone, copy: new Uint8Array(clone).slice() };
            out({ ev: 'batch', h, frames, transferred: clone.byteLength, detached: batch.buf.byteLength === 0 });
            return;
          }
          if (closeInCallback) {
            e.b.close();
            e.b.close();
            out({ ev: 'batch', h, frames, closedInCallback: true, fdAfterClose: e.b.fd });
            return;
          }
          out({ ev: 'batch', h, frames });
        });
      }
      return {};
    }
    case 'send': {
      const { buf, offsets, lengths } = pack(req['frames'] as string[]);
      return { sent: entry(h).b.send(buf, offsets, lengths, offsets.length) };
    }
    case 'sendPaced': {
      // One frame per timer tick, timed here (no round trip per frame): bounded by frames.length.
      const b = entry(h).b;
      const frames = req['frames'] as string[];
      const intervalMs = Number(req['intervalMs'] ?? 10);
      let sent = 0;
      let i = 0;
      const t0 = process.hrtime.bigint();
      const tick = (): void => {
        const { buf, offsets, lengths } = pack([frames[i]!]);
        sent += b.send(buf, offsets, lengths, 1);
        if (++i < frames.length) setTimeout(tick, intervalMs);
        else out({ id: req['id'], sent, spanMs: Number(process.hrtime.bigint() - t0) / 1e6 });
      };
      tick();
      return { deferred: true };
    }
    case 'blast': {
      // Send the frames round-robin in batches until durationMs or maxFrames: bounded.
      const b = entry(h).b;
      const frames = req['frames'] as string[];
      const batch = Number(req['batch'] ?? 64);
      const durationMs = Number(req['durationMs'] ?? 1000);
      const maxFrames = Number(req['maxFrames'] ?? 1_000_000);
      const list: string[] = [];
      for (let i = 0; i < batch; i++) list.push(frames[i % frames.length]!);
      const { buf, offsets, lengths } = pack(list);
      const before = b.stats();
      const t0 = process.hrtime.bigint();
      const deadline = t0 + BigInt(durationMs) * 1_000_000n;
      let sent = 0;
      let calls = 0;
      while (sent < maxFrames && process.hrtime.bigint() < deadline) {
        sent += b.send(buf, offsets, lengths, Math.min(batch, maxFrames - sent));
        calls++;
      }
      const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
      return { sent, errors: b.stats().sendErrors - before.sendErrors, elapsedMs, calls };
    }
    case 'addMulticast':
      entry(h).b.addMulticast(macBytes(req['mac'] as string));
      return {};
    case 'removeMulticast':
      entry(h).b.removeMulticast(macBytes(req['mac'] as string));
      return {};
    case 'setAllMulticast':
      entry(h).b.setAllMulticast(req['on'] === true);
      return {};
    case 'setPromiscuous':
      entry(h).b.setPromiscuous(req['on'] === true);
      return {};
    case 'stats': {
      const e = entry(h);
      return { stats: e.b.stats(), counted: e.counted, spanMs: Number(e.lastNs - e.firstNs) / 1e6, fd: e.b.fd };
    }
    case 'checkTransferred': {
      const t = entry(h).transferred;
      if (!t) throw new Error('nothing transferred');
      return { same: Buffer.from(t.clone).equals(Buffer.from(t.copy)), bytes: t.clone.byteLength };
    }
    case 'close':
      entry(h).b.close();
      return { fd: entry(h).b.fd };
    case 'worker': {
      worker = new Worker(WORKER_CODE, {
        eval: true,
        workerData: {
          module: new URL('../../../src/io/afpacket.ts', import.meta.url).href,
          parent: import.meta.url,
          ifname: req['ifname'],
          mac: req['mac'],
        },
      });
      worker.on('message', (m: Record<string, unknown>) => out({ ev: 'worker', ...m }));
      worker.on('error', (err) => out({ ev: 'worker', state: 'error', message: err.message }));
      return {};
    }
    case 'terminateWorker':
      if (!worker) throw new Error('no worker');
      // Async: the reply comes when the worker's env (and its cleanup hooks) are gone.
      void worker.terminate().then((exitCode) => out({ id: req['id'], exitCode }));
      return { deferred: true };
    case 'exitNow':
      return process.exit(0);
    default:
      throw new Error(`unknown op ${String(req['op'])}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req: Record<string, unknown>;
  try {
    req = JSON.parse(line) as Record<string, unknown>;
  } catch {
    out({ ev: 'bad-line', line });
    return;
  }
  try {
    const res = handle(req);
    if (res['deferred'] !== true) out({ id: req['id'], ...res });
  } catch (err) {
    out({ id: req['id'], error: errorJson(err) });
  }
});
rl.on('close', () => {
  for (const e of backends.values()) e.b.close();
  process.exit(0);
});
out({ ev: 'ready', pid: process.pid });
