/**
 * What an operator sees from the CLI without a network: `replay -o -` writes the same pcap to
 * stdout (text to stderr), replay without rules says so and still runs, and the logger's
 * format choice (JSON when piped, readable lines for `pretty`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { logFormat, prettyFor } from '../../src/cli/logger.js';
import { describeServed } from '../../src/service/served.js';
import { makeRule } from '../../src/table/target-table.js';
import { Action } from '../../src/table/rule.js';

const root = new URL('../../', import.meta.url).pathname;
const cli = ['--import', 'tsx', `${root}src/cli.ts`];
const GOLDEN = ['--mac', '02:00:00:bb:00:02', '--prefix', '2003:ab11:0:0:8000::/66'];

t.test('replay -o - writes the pcap to stdout, byte for byte the golden output; the summary to stderr', async (t) => {
  const r = spawnSync(process.execPath, [...cli, 'replay', `${root}fixtures/kernel-ns.pcap`, '-o', '-', ...GOLDEN], { maxBuffer: 1 << 20 });
  t.equal(r.status, 0);
  t.same(Buffer.compare(r.stdout, readFileSync(`${root}fixtures/kernel-ns.out.pcap`)), 0, 'stdout is the golden pcap');
  t.match(r.stderr.toString(), /answered: 1\n[\s\S]*written to stdout: 1\n/);
});

t.test('replay without rules: one line on stderr, and it still runs', async (t) => {
  const r = spawnSync(
    process.execPath,
    [...cli, 'replay', `${root}fixtures/kernel-ns.pcap`, '-o', '/dev/null', '--mac', '02:00:00:bb:00:02'],
    { encoding: 'utf8' },
  );
  t.equal(r.status, 0);
  t.equal(r.stderr, 'replay: no rules given: nothing will be answered (give --prefix/--address/--address-file)\n');
  t.match(r.stdout, /^frames read: 1\nanswered: 0\n/);
});

t.test('--log-format: json, pretty, auto (pretty only on a terminal)', async (t) => {
  t.equal(prettyFor(logFormat(undefined), false), false, 'auto, piped: JSON');
  t.equal(prettyFor(logFormat(undefined), true), true, 'auto, terminal: pretty');
  t.equal(prettyFor(logFormat('json'), true), false);
  t.equal(prettyFor(logFormat('pretty'), false), true);
  t.throws(() => logFormat('xml'), /--log-format: 'xml' is not one of json, pretty, auto/);
  const code = `import { makeLogger } from '${root}src/cli/logger.ts'; const l = makeLogger('info', 'ndp-responder', process.argv[1]); l.info({ serves: 'x' }, 'ready');`;
  const json = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, 'auto'], { encoding: 'utf8' });
  t.match(JSON.parse(json), { msg: 'ready', serves: 'x', name: 'ndp-responder' }, 'piped: one JSON line');
  const pretty = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, 'pretty'], { encoding: 'utf8' });
  t.match(pretty, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: ready\n\s+serves: "x"\n$/, 'pretty: a readable line');
});

t.test('the ready line says what is served', async (t) => {
  const src = { kind: 'static', flag: '--prefix' } as const;
  const rules = [
    makeRule('2001:db8:1::/64', Action.Answer, src),
    makeRule('2001:db8:2::/64', Action.Answer, src),
    makeRule('2001:db8:1::5', Action.Answer, { kind: 'static', flag: '--address' }),
    makeRule('2001:db8:1::/120', Action.Exclude, { kind: 'static', flag: '--exclude' }),
  ];
  t.equal(describeServed(rules, undefined), 'prefixes 2001:db8:1::/64, 2001:db8:2::/64; 1 address; excluded 2001:db8:1::/120');
  t.equal(
    describeServed([], { networks: ['web'], labelOptIn: true }),
    'Docker containers (networks: web, labelled ndp-responder.enable=true only)',
  );
  t.equal(describeServed([], undefined), 'nothing');
});
