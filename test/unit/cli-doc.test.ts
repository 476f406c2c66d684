/** docs/cli.md is the program's own --help, regenerated; and the CLI prints those texts. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { RUN_HELP, renderCliDoc } from '../../src/cli/help.js';

const root = new URL('../..', import.meta.url).pathname;

t.test('docs/cli.md is up to date (node --import tsx scripts/make-cli-doc.ts)', async (t) => {
  t.equal(readFileSync(`${root}docs/cli.md`, 'utf8'), renderCliDoc());
});

t.test('`run --help` prints the documented text; bad flags are one line and exit 2', async (t) => {
  const cli = ['--import', 'tsx', `${root}src/cli.ts`];
  t.equal(execFileSync(process.execPath, [...cli, 'run', '--help'], { encoding: 'utf8' }), RUN_HELP);
  for (const args of [
    ['run', '--bogus'],
    ['run', '--interface', 'x', '--prefix', '2001:db8::/200'],
    ['replay'],
    ['nonsense'],
    ['run', '--interface', 'x', '--source-policy', 'maybe', '--prefix', '2001:db8::/64'],
    ['replay', `${root}package.json`, '-o', '/dev/null', '--mac', '02:00:00:00:00:01'],
    ['replay', `${root}fixtures/kernel-ns.pcap`, '-o', '/dev/null', '--mac', 'zz'],
  ]) {
    try {
      execFileSync(process.execPath, [...cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      t.fail(`${args.join(' ')} should fail`);
    } catch (e) {
      const err = e as { status: number; stderr: string };
      t.equal(err.status, 2, `${args.join(' ')}: exit 2`);
      t.match(err.stderr, /^ndp-responder: .+\n$/, `${args.join(' ')}: one line: ${err.stderr.trim()}`);
    }
  }
});

t.test('run on a missing interface: one line, exit 1, no stack trace', async (t) => {
  try {
    execFileSync(
      process.execPath,
      [...['--import', 'tsx', `${root}src/cli.ts`], 'run', '--interface', 'nosuch0', '--prefix', '2001:db8::/64'],
      { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
    );
    t.fail('should fail');
  } catch (e) {
    const err = e as { status: number; stderr: string };
    t.equal(err.status, 1);
    t.equal(err.stderr, "ndp-responder: interface 'nosuch0' does not exist\n");
  }
});
