/**
 * Golden replays: every case of fixtures/golden.json, run through the real CLI
 * (`ndp-responder replay`), must write its .out.pcap byte for byte. And so that a golden file
 * is not just "what the code printed once", every answer is also checked against its NS by an
 * independent reference (test/support/reference-na.ts), and every malformed frame's decision
 * against fixtures/malformed.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readPcap } from '../support/pcap.js';
import { checkAnswer } from '../support/reference-na.js';
import { mac as macOf, ip6 } from '../support/frames.js';

const root = new URL('../..', import.meta.url).pathname;
const fixtures = join(root, 'fixtures');
const golden = JSON.parse(readFileSync(join(fixtures, 'golden.json'), 'utf8')) as {
  cases: { input: string; output: string; args: string[] }[];
};
const tmp = mkdtempSync(join(tmpdir(), 'ndp-golden-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function replay(input: string, out: string, args: string[]): { stdout: string; lines: string[][] } {
  const stdout = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli.ts'), 'replay', input, '-o', out, '--explain', ...args],
    {
      encoding: 'utf8',
    },
  );
  const lines = stdout
    .split('\n')
    .filter((l) => /^\d+\t/.test(l))
    .map((l) => l.split('\t'));
  return { stdout, lines };
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

for (const c of golden.cases) {
  t.test(`${c.input} -> ${c.output}`, async (t) => {
    const out = join(tmp, c.output);
    const { lines } = replay(join(fixtures, c.input), out, c.args);
    const got = readFileSync(out);
    const want = readFileSync(join(fixtures, c.output));
    t.ok(got.equals(want), 'output equals the golden file byte for byte');

    const inFrames = readPcap(join(fixtures, c.input)).frames;
    const outFrames = readPcap(out).frames;
    t.equal(lines.length, inFrames.length, 'one explain line per input frame');
    const answered = lines.filter((l) => l[2] === 'answer' || l[2] === 'dad-defence');
    t.equal(outFrames.length, answered.length, 'one output frame per answered input frame, nothing else');
    const expectation = {
      mac: macOf(flag(c.args, '--mac')!),
      sourcePolicy: (flag(c.args, '--source-policy') ?? 'target') as 'target' | 'link-local',
      linkLocal: flag(c.args, '--link-local') ? ip6(flag(c.args, '--link-local')!) : undefined,
      router: c.args.includes('--router'),
    } as const;
    // O flag (--override, default auto): O=1 only for an exact address (an --address rule, the
    // `rule` column ends in /128), O=0 for an answer from a prefix rule alone.
    const mode = c.args.includes('--no-override') ? 'never' : (flag(c.args, '--override') ?? 'auto');
    answered.forEach((l, k) => {
      const ns = inFrames[Number(l[0])]!;
      const override = mode === 'always' || (mode === 'auto' && /\/128 /.test(l[4] ?? ''));
      const problems = checkAnswer(ns, outFrames[k]!, { ...expectation, override, linkLocal: expectation.linkLocal ?? new Uint8Array(16) });
      t.same(problems, [], `answer ${k} (frame ${l[0]}, target ${l[1]}) is right by the reference`);
    });
  });
}

t.test('malformed.in.pcap: each frame gets exactly the manifest verdict', async (t) => {
  const manifest = JSON.parse(readFileSync(join(fixtures, 'malformed.json'), 'utf8')) as { index: number; name: string; expect: string }[];
  const c = golden.cases.find((x) => x.input === 'malformed.in.pcap')!;
  const { lines } = replay(join(fixtures, c.input), join(tmp, 'm.pcap'), c.args);
  t.equal(lines.length, manifest.length);
  for (const m of manifest) {
    const l = lines[m.index]!;
    const verdict = l[2] === 'drop' ? l[3] : l[2];
    t.equal(verdict, m.expect, `#${m.index} ${m.name}`);
  }
});

t.test('kernel-ns with an exclusion covering the target: nothing is written', async (t) => {
  const c = golden.cases.find((x) => x.output === 'kernel-ns.excluded.out.pcap')!;
  const { lines } = replay(join(fixtures, c.input), join(tmp, 'x.pcap'), c.args);
  t.equal(lines[0]![2], 'drop');
  t.equal(lines[0]![3], 'excluded');
  t.equal(readPcap(join(tmp, 'x.pcap')).frames.length, 0);
});

t.test('vlan-ns without --vlan: the tagged NS is dropped as vlan-not-served, nothing is written', async (t) => {
  const c = golden.cases.find((x) => x.output === 'vlan-ns.not-served.out.pcap')!;
  t.notOk(c.args.includes('--vlan'), 'the case names no VLAN');
  const { lines } = replay(join(fixtures, c.input), join(tmp, 'v.pcap'), c.args);
  t.same(
    lines.map((l) => [l[2], l[3]]),
    [['drop', 'vlan-not-served']],
  );
  t.equal(readPcap(join(tmp, 'v.pcap')).frames.length, 0);
  const served = golden.cases.find((x) => x.output === 'vlan-ns.out.pcap')!;
  t.same(served.args.slice(-2), ['--vlan', '42'], 'the answering case names VLAN 42');
});

t.test('loopback-ns (ndisc6 -s ::1): dropped as loopback-source, nothing is written', async (t) => {
  const c = golden.cases.find((x) => x.input === 'loopback-ns.pcap')!;
  const { lines } = replay(join(fixtures, c.input), join(tmp, 'l.pcap'), c.args);
  t.same(
    lines.map((l) => [l[2], l[3]]),
    [['drop', 'loopback-source']],
  );
  t.equal(readPcap(join(tmp, 'l.pcap')).frames.length, 0);
});
