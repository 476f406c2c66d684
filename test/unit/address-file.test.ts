/** --address-file: comments, blank lines, prefixes, errors with line numbers, bulk rules that behave like any rule. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { UsageError, readAddressFile } from '../../src/cli/flags.js';
import { parseAddress } from '../../src/addr/index.js';
import { Action } from '../../src/table/rule.js';
import { TargetTable } from '../../src/table/target-table.js';

const dir = mkdtempSync(join(tmpdir(), 'ndp-af-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('addresses, a prefix, comments and blank lines', async (t) => {
  const f = join(dir, 'ok.txt');
  writeFileSync(f, '# containers\n2001:db8::1\n\n  2001:DB8::2  # web2\n2001:db8:1::/64\n');
  const rules = readAddressFile(f);
  t.same(rules.map((r) => r.text).sort(), ['2001:db8:1::/64', '2001:db8::1/128', '2001:db8::2/128']);
  t.ok(rules.every((r) => r.action === Action.Answer && r.source.kind === 'static'));
  const table = new TargetTable();
  table.replaceGroup('static', rules);
  t.equal(table.match(parseAddress('2001:db8::2'), 0)?.text, '2001:db8::2/128', 'bulk rules match like any rule');
  t.equal(table.match(parseAddress('2001:db8::3'), 0), undefined);
  t.equal(table.match(parseAddress('2001:db8:1::9'), 0)?.text, '2001:db8:1::/64');
  t.same(
    [...table.exactAnswers()].map((r) => r.length),
    [128, 128],
    'exact answers are the two /128s',
  );
});

t.test('a bad line names the file and the line', async (t) => {
  const f = join(dir, 'bad.txt');
  writeFileSync(f, '2001:db8::1\n2001:db8::zz\n');
  const message = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      t.ok(e instanceof UsageError, 'a UsageError');
      return (e as Error).message;
    }
    return 'did not throw';
  };
  t.match(
    message(() => readAddressFile(f)),
    /bad\.txt:2: .*2001:db8::zz/,
  );
  t.match(
    message(() => readAddressFile(join(dir, 'missing.txt'))),
    /ENOENT/,
  );
});
