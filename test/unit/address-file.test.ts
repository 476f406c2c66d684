/** --address-file: comments, blank lines, prefixes, errors with line numbers, bulk rules that behave like any rule. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { UsageError, readAddressFile, type AddressFileStats } from '../../src/cli/flags.js';
import { formatAddress, parseAddress, parseAddressBytes } from '../../src/addr/index.js';
import { Prng } from '../support/prng.js';
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

t.test('parseAddressBytes accepts exactly what parseAddress accepts among hex-group forms, with the same bytes', async (t) => {
  const rng = new Prng(2026);
  const alphabet = '0123456789abcdefABCDEF:::';
  const out = new Uint8Array(20);
  let accepted = 0;
  let bad = 0;
  const tryOne = (text: string): void => {
    const bytes = Buffer.from(`#${text}#`, 'latin1');
    const fast = parseAddressBytes(bytes, 1, bytes.length - 1, out, 2);
    let slow: Uint8Array | undefined;
    try {
      slow = parseAddress(text);
    } catch {
      slow = undefined;
    }
    if (fast) accepted++;
    if (fast !== (slow !== undefined) || (fast && Buffer.compare(out.subarray(2, 18), slow!) !== 0)) {
      bad++;
      if (bad < 5) t.fail(`'${text}': bytes ${fast}, text ${slow === undefined ? 'refused' : formatAddress(slow)}`);
    }
  };
  for (let i = 0; i < 20000; i++) {
    // Random strings over the hex-group alphabet, and mutations of valid addresses.
    if (rng.chance(0.5)) {
      let s = '';
      for (let k = rng.int(40); k > 0; k--) s += alphabet[rng.int(alphabet.length)];
      tryOne(s);
    } else {
      const a = new Uint8Array(16);
      for (let k = 0; k < 16; k++) a[k] = rng.chance(0.4) ? 0 : rng.byte();
      let s = formatAddress(a);
      if (rng.chance(0.3)) s = s.toUpperCase();
      if (rng.chance(0.3)) {
        const at = rng.int(s.length + 1);
        s = s.slice(0, at) + alphabet[rng.int(alphabet.length)] + s.slice(at + (rng.chance(0.5) ? 1 : 0));
      }
      tryOne(s);
    }
  }
  for (const s of [
    '::',
    '::1',
    '1::',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    '01234::',
    ':1::',
    '1:::2',
    '1:2:3:4:5:6:7:8:9',
  ])
    tryOne(s);
  t.equal(bad, 0, `agree on 20,010 strings (${accepted} addresses)`);
});

t.test('the byte path and the text path read a file the same way', async (t) => {
  const rng = new Prng(7);
  const lines: string[] = [];
  const want = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const a = parseAddress('2001:db8:7::');
    for (let k = 10; k < 16; k++) a[k] = rng.chance(0.3) ? 0 : rng.byte();
    if (rng.chance(0.05)) a[15] = 1; // duplicates
    want.add(formatAddress(a));
    const form = rng.int(6);
    let text = formatAddress(a);
    if (form === 1) text = text.toUpperCase();
    if (form === 2) text = `  ${text}\t# a comment`;
    if (form === 3) text = `${text}\r`;
    if (form === 4) text = `${[...Array(8)].map((_, g) => ((a[2 * g]! << 8) | a[2 * g + 1]!).toString(16).padStart(4, '0')).join(':')}`;
    if (form === 5) text = `\u00a0${text}`; // a non-ASCII space: the text path trims it
    lines.push(text);
    if (rng.chance(0.05)) lines.push(rng.chance(0.5) ? '' : '# only a comment');
  }
  lines.push('::ffff:192.0.2.1'); // a dotted tail: the text path parses it
  want.add('::ffff:c000:201');
  const f = join(dir, 'mixed.txt');
  writeFileSync(f, lines.join('\n'));
  const stats: AddressFileStats[] = [];
  const rules = readAddressFile(f, stats);
  t.same(new Set(rules.map((r) => formatAddress(r.prefix))), want);
  t.equal(rules.length, want.size, 'one rule per distinct address');
  t.equal(stats[0]!.addresses, want.size);
  t.equal(stats[0]!.duplicates, lines.filter((l) => l.trim() !== '' && !l.startsWith('#')).length - want.size);
  for (const bad of ['ff02::1', 'fe80::1', '::1', '::', '2001:db8::1/64x']) {
    writeFileSync(f, `2001:db8::5\n${bad}\n`);
    t.throws(() => readAddressFile(f), { message: new RegExp(`mixed\\.txt:2: .*${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`) }, bad);
  }
});
