/**
 * `--realtime`: SCHED_FIFO for the calling thread only, through the real addon and kernel (the
 * change is made on a worker thread, so the test runner's own thread is never made real-time).
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import t from 'tap';

import { setRealtime, threadScheduling } from '../../src/io/scheduler.js';

const isRoot = process.getuid?.() === 0;

t.test('a priority outside 1..99 is refused before any syscall', async (t) => {
  for (const p of [0, 100, -1, 1.5, Number.NaN]) t.throws(() => setRealtime(p), { code: 'ERR_OUT_OF_RANGE' }, String(p));
});

t.test('threadScheduling reads the calling thread', async (t) => {
  t.same(threadScheduling(), { policy: 'other', priority: 0 }, 'the test runner runs at normal priority');
});

t.test('setRealtime changes the calling thread only, once', { skip: isRoot ? false : 'needs CAP_SYS_NICE (run as root)' }, async (t) => {
  // The worker has no TypeScript loader: it runs the compiled module (npm run build).
  const url = new URL('../../dist/src/io/scheduler.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then((m) => {
      const first = m.setRealtime(1);
      const again = m.setRealtime(1);
      const higher = m.setRealtime(2);
      const tid = require('node:fs').readlinkSync('/proc/thread-self').split('/').pop();
      const stat = require('node:fs').readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
      parentPort.postMessage({ first, again, higher, now: m.threadScheduling(), stat });
    }, (e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
  `;
  t.ok(existsSync(new URL(url)), 'dist/src/io/scheduler.js is built');
  const w = new Worker(code, { eval: true, execArgv: process.execArgv });
  const r = await new Promise<Record<string, unknown>>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  t.notOk(r['error'], String(r['error'] ?? ''));
  t.equal(r['first'], true, 'switched to SCHED_FIFO');
  t.equal(r['again'], false, 'already at that priority: left alone');
  t.equal(r['higher'], true, 'a higher priority is applied');
  t.same(r['now'], { policy: 'fifo', priority: 2 });
  // /proc/PID/task/TID/stat fields 40 (rt_priority) and 41 (policy: 1 = SCHED_FIFO; the
  // reset-on-fork flag is not shown there).
  const fields = String(r['stat'])
    .slice(String(r['stat']).lastIndexOf(')') + 2)
    .split(' ');
  t.equal(fields[40 - 3], '2', 'the kernel reports rt_priority 2');
  t.equal(fields[41 - 3], '1', 'the kernel reports SCHED_FIFO');
  t.same(threadScheduling(), { policy: 'other', priority: 0 }, 'the main thread is unchanged');
});
