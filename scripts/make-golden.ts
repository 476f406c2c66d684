/**
 * Regenerate the golden replay outputs listed in fixtures/golden.json:
 * `ndp-responder replay INPUT -o OUTPUT ARGS`, then `tcpdump -vvv -e -nn -r` renders each beside it.
 * Review the renderings before committing: a golden file is a claim about the right answer.
 *   node --import tsx scripts/make-golden.ts
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const fixtures = join(root, 'fixtures');
const golden = JSON.parse(readFileSync(join(fixtures, 'golden.json'), 'utf8')) as {
  cases: { input: string; output: string; args: string[] }[];
};
for (const c of golden.cases) {
  const out = join(fixtures, c.output);
  execFileSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'replay', join(fixtures, c.input), '-o', out, ...c.args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const txt = execFileSync('tcpdump', ['-vvv', '-e', '-nn', '-r', out], {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  writeFileSync(out.replace(/\.pcap$/, '.txt'), txt);
  console.log(`${c.output}: ${txt.split('\n').filter((l) => /^\d/.test(l)).length} frames`);
}
