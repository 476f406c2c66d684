/**
 * Sanity figure: how many frames/s AfPacketBackend hands to JavaScript with a trivial callback
 * (it only counts). Not the benchmark harness: one bounded blast, checked for consistency.
 *
 * S (sender) and R (receiver) joined by veth. As in docs/lab-notes.md: RPS on R's eth0 puts R's
 * receive softirq on CPU 1 (otherwise it runs inside the sender's sendmmsg()), the receiver
 * process is pinned to CPU 1 and the sender to CPU 0. The sender is another AfPacketBackend
 * (PACKET_QDISC_BYPASS, sendmmsg batches of 64) sending 64 distinct NS round-robin for at most
 * RATE_MS milliseconds (default 2000) or RATE_MAX frames (default 2,000,000).
 *
 *   npx tap test/lab/afpacket-rate.test.ts          (the figure is printed as a '# ' comment)
 *   RATE_RPS=0 npx tap test/lab/afpacket-rate.test.ts   (no RPS: R's softirq runs on the sender's
 *     CPU inside sendmmsg(), so CPU 1 is all the receiver's user space: the JS hand-off alone)
 */
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { makeNS } from '../support/frames.js';
import type { JsonLinesProcess } from '../../src/lab/json-lines.js';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');
const DURATION_MS = Number(process.env['RATE_MS'] ?? 2000);
const MAX_FRAMES = Number(process.env['RATE_MAX'] ?? 2_000_000);
const RPS = process.env['RATE_RPS'] !== '0';

const twoCpus = cpus().length >= 2;
const SENDER_CPU = '0';
const RECEIVER_CPU = twoCpus ? '1' : '0';

async function startAgent(ns: Netns, cpu: string): Promise<JsonLinesProcess> {
  const p = ns.spawnJsonLines('node', ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT, cpus: cpu });
  await p.waitFor((r) => r['ev'] === 'ready', 15_000);
  return p;
}

const lab = await Lab.create(t, 'nrr');
const s = await lab.netns('s');
const r = await lab.netns('r');
await lab.veth(s, 'eth0', r, 'eth0', { aMac: '02:00:00:00:5e:01', bMac: '02:00:00:00:5e:02' });
// Receive work for R's eth0 on R's CPU (bitmask), or (RATE_RPS=0) wherever the sender runs.
const rpsMask = RPS ? 1 << Number(RECEIVER_CPU) : 0;
await r.execOk('sh', ['-c', `echo ${rpsMask} > /sys/class/net/eth0/queues/rx-0/rps_cpus`]);

const [sa, ra] = await Promise.all([startAgent(s, SENDER_CPU), startAgent(r, RECEIVER_CPU)]);
t.teardown(async () => {
  await Promise.all([sa.end(), ra.end()]);
});

t.test(`receive rate with a counting callback (blast ${DURATION_MS} ms / ${MAX_FRAMES} frames)`, async (t) => {
  await ra.call({ op: 'open', ifname: 'eth0', opts: { batchSize: 64, rcvbuf: 8 << 20 } });
  await ra.call({ op: 'start', mode: 'count' });
  await sa.call({ op: 'open', ifname: 'eth0', filter: 'na', opts: { qdiscBypass: true } });

  const frames = Array.from({ length: 64 }, (_, i) =>
    Buffer.from(makeNS({ ethSrc: '02:00:00:00:5e:01', src: 'fe80::1', target: `2001:db8::${(i + 1).toString(16)}` })).toString('hex'),
  );
  const blast = await sa.call({ op: 'blast', frames, batch: 64, durationMs: DURATION_MS, maxFrames: MAX_FRAMES }, DURATION_MS + 20_000);
  const sent = blast['sent'] as number;
  const sendMs = blast['elapsedMs'] as number;

  // Let the receiver finish its queue (bounded), then read its counters.
  let last = -1;
  const st = await waitFor(
    async () => {
      const x = await ra.call({ op: 'stats' });
      const stats = x['stats'] as Record<string, number>;
      const done = stats['received'] === last;
      last = stats['received']!;
      return done ? x : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 200, what: 'the receiver to go idle' },
  );
  const stats = st['stats'] as Record<string, number>;
  const counted = st['counted'] as number;
  const spanMs = st['spanMs'] as number;
  const rate = counted / (spanMs / 1000);

  t.comment(
    `sender: ${sent} frames in ${sendMs.toFixed(0)} ms = ${Math.round(sent / (sendMs / 1000))} frames/s ` +
      `(${blast['errors']} send errors, cpu ${SENDER_CPU}); receiver (cpu ${RECEIVER_CPU}): ${counted} frames handed to JS ` +
      `in ${spanMs.toFixed(0)} ms = ${Math.round(rate)} frames/s, ${stats['batches']} batches ` +
      `(${(counted / stats['batches']!).toFixed(1)} frames/batch), ${stats['wakeups']} wake-ups, ` +
      `kernel drops ${stats['kernelDrops']}; rps_cpus=${rpsMask}`,
  );
  t.ok(sent > 0, 'sender sent');
  t.equal(stats['received'], counted, 'every frame counted by the callback');
  t.equal(stats['received']! + stats['kernelDrops']!, stats['kernelPackets'], 'received + dropped = passed the filter');
  t.ok(stats['kernelPackets']! <= sent, 'no more frames than were sent');
  t.ok(stats['kernelPackets']! >= sent * 0.5, 'most sent frames reached the socket');
  t.ok(rate > 20_000, `at least 20k frames/s (got ${Math.round(rate)})`);
});
