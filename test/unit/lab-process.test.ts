/**
 * The lab library's command runner (src/lab/process.ts): bounded runs, the two ways a spawn
 * error is reported, and bounded waits. Real processes (sh, true), no namespaces.
 */
import t from 'tap';

import { pollUntil, run, runOk, waitFor } from '../../src/lab/process.js';

t.test('run: exit code, output, input', async (t) => {
  const r = await run('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello' });
  t.equal(r.code, 3);
  t.equal(r.stdout, 'hello');
  t.equal(r.stderr, 'err\n');
  t.equal(r.timedOut, false);
});

t.test('run: killed at timeoutMs', async (t) => {
  const t0 = Date.now();
  const r = await run('sleep', ['10'], { timeoutMs: 200 });
  t.ok(Date.now() - t0 < 5000, 'returned long before the command would have ended');
  t.equal(r.timedOut, true);
  t.equal(r.signal, 'SIGKILL');
  t.equal(r.code, -1);
});

t.test('spawn errors: rejected by default, a result with spawnErrorAsResult', async (t) => {
  await t.rejects(run('/nonexistent/ndp-lab-cmd', []), { code: 'ENOENT' });
  const r = await run('/nonexistent/ndp-lab-cmd', [], { spawnErrorAsResult: true });
  t.equal(r.code, 1);
  t.match(r.stderr, /ENOENT/);
});

t.test('runOk: stdout, or an error naming the command and its stderr', async (t) => {
  t.equal(await runOk('sh', ['-c', 'echo ok']), 'ok\n');
  await t.rejects(runOk('sh', ['-c', 'echo bad >&2; exit 2']), /'sh -c echo bad >&2; exit 2' exited 2: bad/);
});

t.test('pollUntil and waitFor are bounded', async (t) => {
  let n = 0;
  t.equal(await pollUntil(() => ++n >= 3 && n, 1000, 1), 3);
  t.equal(await pollUntil(() => false, 50, 5), undefined);
  await t.rejects(
    waitFor(() => false, { timeoutMs: 50, intervalMs: 5, what: 'nothing' }),
    /timed out after 50 ms waiting for nothing/,
  );
});
