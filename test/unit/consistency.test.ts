/**
 * explain and replay cannot disagree: for seeded random rule sets and targets, the verdict of
 * `ndp-responder explain --json` equals the decision `ndp-responder replay --explain` makes for
 * an NS for the same target, through the real CLI (both build their table with the one scope
 * builder, service/scope.ts). Targets: the fixtures' own, random ones near every rule's edges,
 * multicast, link-local, loopback and unspecified.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { formatAddress } from '../../src/addr/index.js';
import { PcapFileWriter } from '../../src/io/pcap-writer.js';
import { makeNS } from '../support/frames.js';
import { readPcap } from '../support/pcap.js';
import { Prng } from '../support/prng.js';

const exec = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli.ts')];
const SEED = Number(process.env.NDP_CONSISTENCY_SEED ?? 0xc0115);
const RULE_SETS = Number(process.env.NDP_CONSISTENCY_SETS ?? 4);
const TARGETS = 150;
const MAC = '02:00:00:00:00:aa';

const dir = mkdtempSync(join(tmpdir(), 'ndp-consistency-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** An address inside 2001:db8:0:0:8000::/65, biased to a few hot spots so rules overlap. */
function randomAddress(rng: Prng): Uint8Array {
  const a = new Uint8Array(16);
  a.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0x80]);
  a[13] = rng.int(4);
  a[14] = rng.int(4);
  a[15] = rng.int(256);
  return a;
}

function randomRules(rng: Prng): string[] {
  const flags: string[] = [];
  const n = 3 + rng.int(8);
  for (let i = 0; i < n; i++) {
    const a = randomAddress(rng);
    const kind = rng.int(3);
    if (kind === 0) flags.push('--address', formatAddress(a));
    else {
      const len = 104 + rng.int(25);
      // Host bits zeroed: a rule with host bits set is refused.
      for (let b = len; b < 128; b++) a[b >> 3] = a[b >> 3]! & ~(0x80 >> (b & 7));
      flags.push(kind === 1 ? '--prefix' : '--exclude', `${formatAddress(a)}/${len}`);
    }
  }
  return flags;
}

function randomTargets(rng: Prng): string[] {
  const out = ['ff02::1', 'ff02::1:ff00:1', 'fe80::1', '::1', '::', '2001:db8::8000:0:0:1', '2001:db8:ffff::1'];
  while (out.length < TARGETS) out.push(formatAddress(randomAddress(rng)));
  return out;
}

interface Verdict {
  address: string;
  answered: boolean;
  verdict: string;
}

for (let set = 0; set < RULE_SETS; set++) {
  t.test(`rule set ${set} (seed ${SEED})`, async (t) => {
    const rng = new Prng(SEED + set);
    const rules = randomRules(rng);
    const targets = randomTargets(rng);
    // One NS per target, from a neighbour (link-local source) to the solicited-node group. (A
    // DAD probe is not a question about the target but another node claiming it: the conflict
    // guard's business, tested in service.test.ts.)
    const input = join(dir, `in-${set}.pcap`);
    const w = new PcapFileWriter(input);
    for (const target of targets) {
      const frame = makeNS({ target });
      w.write(frame, 0, frame.length);
    }
    w.close();
    const replay = await exec(process.execPath, [
      ...CLI,
      'replay',
      input,
      '-o',
      join(dir, `out-${set}.pcap`),
      '--mac',
      MAC,
      '--explain',
      '--json',
      ...rules,
    ]);
    const lines = replay.stdout.split('\n').filter((l) => /^\d+\t/.test(l));
    t.equal(lines.length, targets.length, 'replay decided every frame');
    const explain = await exec(process.execPath, [...CLI, 'explain', '--json', ...rules, ...targets]);
    const verdicts = JSON.parse(explain.stdout) as Verdict[];
    t.equal(verdicts.length, targets.length, 'explain answered every target');
    let disagreements = 0;
    let answered = 0;
    for (let i = 0; i < targets.length; i++) {
      const v = verdicts[i]!;
      const [, , decision, reason] = lines[i]!.split('\t');
      const replayAnswered = decision !== 'drop';
      const same = replayAnswered === v.answered && (replayAnswered || reason === v.verdict);
      if (!same) {
        disagreements++;
        t.fail(`${targets[i]}: explain says ${v.verdict}, replay says ${decision}/${reason} (rules: ${rules.join(' ')})`);
      }
      if (v.answered) answered++;
    }
    t.equal(disagreements, 0, `explain and replay agree on ${targets.length} targets (${answered} answered)`);
    t.ok(answered > 0 && answered < targets.length, 'the set has answered and unanswered targets');
    // Replay wrote exactly one NA per target explain calls answered.
    const out = readPcap(join(dir, `out-${set}.pcap`));
    t.equal(out.frames.length, answered, `replay wrote ${out.frames.length} NAs`);
  });
}

t.test('explain of a multicast target: not answered, for the reason the engine gives', async (t) => {
  const rules = ['--prefix', '2001:db8::/32'];
  const { stdout } = await exec(process.execPath, [...CLI, 'explain', '--json', ...rules, 'ff02::1']);
  const [v] = JSON.parse(stdout) as Verdict[];
  t.equal(v!.answered, false);
  t.equal(v!.verdict, 'target-multicast');
  const input = join(dir, 'mc.pcap');
  const w = new PcapFileWriter(input);
  const f = makeNS({ target: 'ff02::1', dst: 'ff02::1:ff00:1' });
  w.write(f, 0, f.length);
  w.close();
  const r = await exec(process.execPath, [...CLI, 'replay', input, '-o', join(dir, 'mc-out.pcap'), '--mac', MAC, '--explain', ...rules]);
  t.match(r.stdout, /\tdrop\ttarget-multicast\t/);
});
