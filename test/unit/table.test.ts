import t from 'tap';
import { TargetTable, makeAddressRules, makeRule, sameSource, type TableChange } from '../../src/table/target-table.js';
import { Action, type Rule, type RuleSource } from '../../src/table/rule.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';
import { Prng } from '../support/prng.js';
import { covers } from '../support/reference-trie.js';

const A = (text: string): Uint8Array => parseAddress(text);
const STATIC: RuleSource = { kind: 'static', flag: '--prefix' };
const ADDR: RuleSource = { kind: 'static', flag: '--address' };
const EXCL: RuleSource = { kind: 'static', flag: '--exclude' };
const HOST: RuleSource = { kind: 'host', ifname: 'eth0' };
const docker = (name: string): RuleSource => ({ kind: 'docker', containerId: `id-${name}`, containerName: name, network: 'v6net' });

const answer = (text: string, source: RuleSource = STATIC): Rule => makeRule(text, Action.Answer, source);
const exclude = (text: string, source: RuleSource = EXCL): Rule => makeRule(text, Action.Exclude, source);

function winner(table: TargetTable, addr: string): string | undefined {
  const r = table.match(A(addr), 0);
  return r === undefined ? undefined : `${r.action === Action.Answer ? 'answer' : 'exclude'} ${r.text} ${r.source.kind}`;
}

const texts = (rules: readonly Rule[]): string[] => rules.map((r) => r.text);

t.test('makeRule', async (t) => {
  const r = makeRule('2001:db8::1234/64', Action.Answer, STATIC);
  t.equal(r.text, '2001:db8::/64');
  t.equal(r.length, 64);
  t.equal(Buffer.from(r.prefix).toString('hex'), '20010db8000000000000000000000000');
  t.equal(makeRule('2001:DB8::0001', Action.Exclude, EXCL).text, '2001:db8::1/128');
  t.throws(() => makeRule('2001:db8::/129', Action.Answer, STATIC), /out of range/);
  t.throws(() => makeRule('10.0.0.1', Action.Answer, STATIC), /IPv4/);
  t.throws(() => makeRule('2001:db8::1', Action.Answer, HOST), /'host' rule must be Action.Exclude/);
  t.throws(() => makeRule('2001:db8::1', 7 as Action, STATIC), /unknown action/);
  t.throws(() => makeRule('2001:db8::1', Action.Answer, { kind: 'nope' } as unknown as RuleSource), /source must be/);
});

t.test('longest prefix match: an exclusion inside a prefix beats the prefix', async (t) => {
  const table = new TargetTable();
  table.replaceGroup('static', [
    answer('2001:db8::/48'),
    exclude('2001:db8:0:1::/64'),
    answer('2001:db8:0:1::8/125', ADDR),
    exclude('2001:db8::5'),
  ]);
  t.equal(winner(table, '2001:db8::4'), 'answer 2001:db8::/48 static');
  t.equal(winner(table, '2001:db8::5'), 'exclude 2001:db8::5/128 static');
  t.equal(winner(table, '2001:db8:0:1::7'), 'exclude 2001:db8:0:1::/64 static');
  t.equal(winner(table, '2001:db8:0:1::9'), 'answer 2001:db8:0:1::8/125 static', 'an answer inside an exclusion');
  t.equal(winner(table, '2001:db9::1'), undefined);
  t.equal(table.size, 4);
  t.equal(table.groupSize('static'), 4);
  t.equal(table.answerPrefixCount(), 2);
  t.same([...table.exactAnswers()], []);
});

t.test('same prefix: host beats everything, exclude beats answer, else first come', async (t) => {
  const orders: Array<Array<[string, Rule]>> = [];
  const d = answer('2001:db8::10', docker('web'));
  const s = answer('2001:db8::10', ADDR);
  const x = exclude('2001:db8::10');
  const h = exclude('2001:db8::10', HOST);
  orders.push([
    ['docker', d],
    ['static', s],
    ['static', x],
    ['host', h],
  ]);
  orders.push([
    ['host', h],
    ['static', x],
    ['static', s],
    ['docker', d],
  ]);
  orders.push([
    ['static', x],
    ['docker', d],
    ['host', h],
    ['static', s],
  ]);
  for (const order of orders) {
    const table = new TargetTable();
    for (const [g, r] of order) table.addRules(g, [r]);
    t.equal(table.match(A('2001:db8::10'), 0), h, 'host wins in any order');
    table.replaceGroup('host', []);
    t.equal(table.match(A('2001:db8::10'), 0), x, 'then the exclusion');
    table.removeRules('static', (r) => r.action === Action.Exclude);
    const first = order.find(([, r]) => r === d || r === s)![1];
    t.equal(table.match(A('2001:db8::10'), 0), first, 'then the answer that came first');
  }
});

t.test('host address beats a docker /128 and removing it restores the docker rule', async (t) => {
  const table = new TargetTable();
  const d = answer('2001:db8::10', docker('web'));
  let c = table.replaceGroup('docker', [d]);
  t.same(texts(c.added), ['2001:db8::10/128']);
  t.same([...table.exactAnswers()], [d]);
  c = table.replaceGroup('host', [exclude('2001:db8::10', HOST)]);
  t.same(c.added, []);
  t.equal(c.removed.length, 1);
  t.equal(c.removed[0], d, 'removed names the rule that used to answer');
  t.same([...table.exactAnswers()], []);
  t.equal(table.explain(A('2001:db8::10')).answered, false);
  c = table.replaceGroup('host', []);
  t.equal(c.added[0], d, 'the docker rule answers again');
  t.same(c.removed, []);
  t.same([...table.exactAnswers()], [d]);
});

t.test('change diffs are exact and keyed by address', async (t) => {
  const table = new TargetTable();
  const seen: TableChange[] = [];
  table.onChange((c) => seen.push(c));
  const r1 = answer('2001:db8::1', docker('a'));
  const r2 = answer('2001:db8::2', docker('b'));
  const r3 = answer('2001:db8::3', docker('c'));
  let c = table.replaceGroup('docker', [r1, r2, r3]);
  t.same(texts(c.added), ['2001:db8::1/128', '2001:db8::2/128', '2001:db8::3/128']);
  t.same(c.removed, []);
  t.equal(c.prefixesChanged, false);
  const r4 = answer('2001:db8::4', docker('d'));
  c = table.replaceGroup('docker', [r1, r3, r4]);
  t.same(texts(c.added), ['2001:db8::4/128']);
  t.same(texts(c.removed), ['2001:db8::2/128']);
  // A static /128 for an address docker also answers: still answered, so no change.
  c = table.addRules('static', [answer('2001:db8::1', ADDR)]);
  t.same(c, { added: [], removed: [], prefixesChanged: false });
  // Docker drops it: the static rule keeps it answered.
  c = table.replaceGroup('docker', [r3, r4]);
  t.same(c, { added: [], removed: [], prefixesChanged: false });
  t.equal(table.match(A('2001:db8::1'), 0)?.source.kind, 'static');
  // A prefix: no /128 change, but prefixesChanged.
  c = table.addRules('static', [answer('2001:db8:1::/64')]);
  t.same(c, { added: [], removed: [], prefixesChanged: true });
  t.equal(table.answerPrefixCount(), 1);
  // Excluding the prefix's exact twin: the prefix is no longer answered.
  c = table.addRules('static', [exclude('2001:db8:1::/64')]);
  t.same(c, { added: [], removed: [], prefixesChanged: true });
  t.equal(table.answerPrefixCount(), 0);
  // A second answer at the same prefix while excluded: nothing answered changes.
  c = table.addRules('docker', [answer('2001:db8:1::/64', docker('net'))]);
  t.same(c, { added: [], removed: [], prefixesChanged: false });
  t.equal(seen.length, 4, 'listeners only hear about calls that changed something');
});

t.test('the first load into an empty table: each /128 reported once, by its final winner', async (t) => {
  // Several rules at one /128 in the one call that fills an empty table (the start-up load).
  const table = new TargetTable();
  const c = table.replaceGroup('static', [
    answer('2001:db8::1', ADDR),
    answer('2001:db8::1', STATIC), // same prefix, another source: loses (first come)
    answer('2001:db8::2', ADDR),
    exclude('2001:db8::2/128'), // beats the answer at ::2
    answer('2001:db8::3', ADDR),
    answer('2001:db8::3', ADDR), // a duplicate
    exclude('2001:db8::4/128'),
    answer('2001:db8::4', ADDR), // loses to the exclusion
    answer('2001:db8:9::/64'),
  ]);
  t.same(texts(c.added), ['2001:db8::1/128', '2001:db8::3/128']);
  t.equal(c.added[0]!.source, ADDR, 'the winner at ::1');
  t.same(c.removed, []);
  t.equal(c.prefixesChanged, true);
  // The next call is not from empty: a removal of the winner at ::1 reports nothing (the other rule answers).
  const d = table.removeRules('static', (r) => r.text === '2001:db8::1/128' && r.source === ADDR);
  t.same(d, { added: [], removed: [], prefixesChanged: false });
  const e = table.removeRules('static', (r) => r.action === Action.Exclude);
  t.same(texts(e.added), ['2001:db8::2/128', '2001:db8::4/128']);
});

t.test('replaceGroup is idempotent and keeps the rules it already had', async (t) => {
  const table = new TargetTable();
  let calls = 0;
  table.onChange(() => calls++);
  const make = (): Rule[] => [answer('2001:db8::1', docker('a')), answer('2001:db8::/64'), exclude('2001:db8::7')];
  const first = make();
  table.replaceGroup('g', first);
  t.equal(calls, 1);
  const c = table.replaceGroup('g', make());
  t.same(c, { added: [], removed: [], prefixesChanged: false });
  t.equal(calls, 1, 'no notification the second time');
  t.equal(table.match(A('2001:db8::1'), 0), first[0], 'the original rule object is kept');
  t.equal(table.size, 3);
  // Duplicates collapse.
  table.replaceGroup('g', [...make(), ...make()]);
  t.equal(table.groupSize('g'), 3);
  // Same prefix, different source: a different rule.
  table.replaceGroup('g', [...make(), answer('2001:db8::1', docker('b'))]);
  t.equal(table.groupSize('g'), 4);
  t.equal(table.match(A('2001:db8::1'), 0)?.source, first[0]!.source, 'first come still wins');
  table.replaceGroup('g', []);
  t.equal(table.size, 0);
  t.same(table.groupNames(), []);
  t.same(texts(table.groupRules('g')), []);
});

t.test('bad input throws and leaves the table as it was', async (t) => {
  const table = new TargetTable();
  const good = answer('2001:db8::1', docker('a'));
  table.replaceGroup('docker', [good]);
  const unmasked: Rule = { ...answer('2001:db8::/64'), prefix: A('2001:db8::1') };
  const badLen: Rule = { ...answer('2001:db8::/64'), length: 200 };
  const shortPrefix: Rule = { ...answer('2001:db8::/64'), prefix: new Uint8Array(4) };
  const hostAnswer: Rule = { ...answer('2001:db8::9'), source: HOST };
  for (const [bad, re] of [
    [unmasked, /bits set beyond \/64/],
    [badLen, /out of range/],
    [shortPrefix, /16-byte/],
    [hostAnswer, /'host' rule must be Action.Exclude/],
  ] as const) {
    t.throws(() => table.replaceGroup('docker', [answer('2001:db8::2', docker('b')), bad]), re);
    t.throws(() => table.addRules('docker', [answer('2001:db8::3', docker('c')), bad]), re);
  }
  t.throws(() => table.replaceGroup('', [good]), /group name/);
  t.throws(
    () =>
      table.removeRules('docker', () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  t.equal(table.size, 1);
  t.equal(table.match(A('2001:db8::1'), 0), good);
  t.equal(table.match(A('2001:db8::2'), 0), undefined);
  t.throws(() => table.match(new Uint8Array(10), 0), RangeError);
});

t.test('removeRules and addRules', async (t) => {
  const table = new TargetTable();
  const rules = [1, 2, 3, 4].map((i) => answer(`2001:db8::${i}`, docker(`c${i}`)));
  let c = table.addRules('docker', rules);
  t.equal(c.added.length, 4);
  c = table.addRules('docker', [answer('2001:db8::1', docker('c1'))]);
  t.same(c.added, [], 'an equal rule is not added twice');
  t.equal(table.groupSize('docker'), 4);
  c = table.removeRules('docker', (r) => r.source.kind === 'docker' && r.source.containerName === 'c2');
  t.same(texts(c.removed), ['2001:db8::2/128']);
  t.equal(table.groupSize('docker'), 3);
  c = table.removeRules('nosuch', () => true);
  t.same(c, { added: [], removed: [], prefixesChanged: false });
  c = table.removeRules('docker', () => true);
  t.equal(c.removed.length, 3);
  t.equal(table.size, 0);
});

t.test('explain lists the winner and every covering rule, most specific first', async (t) => {
  const table = new TargetTable();
  table.replaceGroup('static', [answer('2001:db8::/32'), answer('2001:db8::/64'), exclude('2001:db8::5')]);
  table.replaceGroup('docker', [answer('2001:db8::5', docker('web')), answer('2001:db8::/64', docker('net'))]);
  table.replaceGroup('host', [exclude('2001:db8::5', HOST)]);
  const e = table.explain(A('2001:db8::5'));
  t.equal(e.rule?.source.kind, 'host');
  t.equal(e.answered, false);
  t.same(
    e.shadowed.map((r) => `${r.text} ${r.source.kind} ${r.action}`),
    [
      '2001:db8::5/128 static 2', // arrival order at /128: static exclude, docker answer
      '2001:db8::5/128 docker 1',
      '2001:db8::/64 static 1',
      '2001:db8::/64 docker 1',
      '2001:db8::/32 static 1',
    ],
  );
  const buf = new Uint8Array(40);
  buf.set(A('2001:db8::6'), 20);
  const e2 = table.explain(buf, 20);
  t.equal(e2.rule?.text, '2001:db8::/64');
  t.equal(e2.answered, true);
  t.same(texts(e2.shadowed), ['2001:db8::/64', '2001:db8::/32']);
  t.same(table.explain(A('fe80::1')), { rule: undefined, shadowed: [], answered: false });
});

t.test('onChange: unsubscribe, and a throwing listener does not stop the others', async (t) => {
  const table = new TargetTable();
  const got: string[] = [];
  const off1 = table.onChange(() => {
    got.push('one');
    throw new Error('listener failed');
  });
  table.onChange((c) => got.push(`two:${c.added.length}`));
  t.throws(() => table.addRules('s', [answer('2001:db8::1')]), /listener failed/);
  t.same(got, ['one', 'two:1']);
  t.equal(table.match(A('2001:db8::1'), 0)?.text, '2001:db8::1/128', 'the change stands');
  off1();
  off1();
  table.addRules('s', [answer('2001:db8::2')]);
  t.same(got, ['one', 'two:1', 'two:1']);
});

t.test('sameSource compares field by field', async (t) => {
  t.ok(sameSource(docker('a'), docker('a')));
  t.notOk(sameSource(docker('a'), docker('b')));
  t.notOk(sameSource(STATIC, ADDR));
  t.notOk(sameSource(HOST, { kind: 'host', ifname: 'eth1' }));
  t.notOk(sameSource(STATIC, HOST));
});

// ------------------------------------------------------------------ seeded model test

/** The reference: every (group, rule) with the arrival number it got when it first entered. */
interface RefEntry {
  group: string;
  rule: Rule;
  seq: number;
}

class ReferenceTable {
  entries: RefEntry[] = [];
  private seq = 0;

  private identical(a: Rule, b: Rule): boolean {
    return a.length === b.length && Buffer.compare(a.prefix, b.prefix) === 0 && a.action === b.action && sameSource(a.source, b.source);
  }

  replaceGroup(group: string, rules: readonly Rule[]): void {
    const old = this.entries.filter((e) => e.group === group);
    const next: RefEntry[] = [];
    for (const r of rules) {
      if (next.some((e) => this.identical(e.rule, r))) continue;
      next.push(old.find((e) => this.identical(e.rule, r)) ?? { group, rule: r, seq: this.seq++ });
    }
    this.entries = [...this.entries.filter((e) => e.group !== group), ...next];
  }

  addRules(group: string, rules: readonly Rule[]): void {
    for (const r of rules) {
      if (this.entries.some((e) => e.group === group && this.identical(e.rule, r))) continue;
      this.entries.push({ group, rule: r, seq: this.seq++ });
    }
  }

  removeRules(group: string, pred: (r: Rule) => boolean): void {
    this.entries = this.entries.filter((e) => e.group !== group || !pred(e.rule));
  }

  /** Longest-prefix match; with `exactLength`, only rules of that length (the winner at one prefix). */
  match(addr: Uint8Array, exactLength = -1): Rule | undefined {
    let best: RefEntry | undefined;
    const rank = (r: Rule): number => (r.source.kind === 'host' ? 0 : r.action === Action.Exclude ? 1 : 2);
    for (const e of this.entries) {
      if (exactLength >= 0 && e.rule.length !== exactLength) continue;
      if (!covers(e.rule.prefix, e.rule.length, addr, 0)) continue;
      if (
        best === undefined ||
        e.rule.length > best.rule.length ||
        (e.rule.length === best.rule.length && (rank(e.rule) < rank(best.rule) || (rank(e.rule) === rank(best.rule) && e.seq < best.seq)))
      ) {
        best = e;
      }
    }
    return best?.rule;
  }

  /** Addresses of /128 keys whose winner answers. */
  answeredExact(): Set<string> {
    const out = new Set<string>();
    for (const e of this.entries) {
      if (e.rule.length !== 128) continue;
      const w = this.match(e.rule.prefix);
      if (w !== undefined && w.length === 128 && w.action === Action.Answer) out.add(formatAddress(e.rule.prefix));
    }
    return out;
  }

  answerPrefixCount(): number {
    const keys = new Map<string, Rule>();
    for (const e of this.entries) if (e.rule.length < 128) keys.set(e.rule.text, e.rule);
    let n = 0;
    for (const r of keys.values()) {
      const w = this.match(r.prefix, r.length);
      if (w !== undefined && w.action === Action.Answer) n++;
    }
    return n;
  }
}

t.test('seeded random operations agree with a linear reference over rules', async (t) => {
  for (const seed of [11, 22, 33]) {
    const rng = new Prng(seed);
    const bases = ['2001:db8::', '2001:db8:0:1::', '2001:db8:0:1:8000::', 'fd00::'].map(A);
    const groups = ['static', 'docker', 'host', 'extra'];
    const sources: Record<string, RuleSource[]> = {
      static: [STATIC, ADDR, EXCL],
      docker: [docker('a'), docker('b'), docker('c')],
      host: [HOST, { kind: 'host', ifname: 'eth1' }],
      extra: [{ kind: 'static', flag: 'config' }],
    };
    const randomAddr = (): Uint8Array => {
      const a = rng.pick(bases).slice();
      if (rng.chance(0.7)) a[15] = rng.int(16);
      else for (let i = 8; i < 16; i++) a[i] = rng.chance(0.5) ? 0 : rng.byte();
      return a;
    };
    const randomRule = (group: string): Rule => {
      const len = rng.chance(0.6) ? 128 : rng.pick([0, 32, 48, 64, 65, 66, 120, 124, 126, 127]);
      const text = `${formatAddress(randomAddr())}/${len}`;
      const source = rng.pick(sources[group]!);
      const action = source.kind === 'host' ? Action.Exclude : rng.chance(0.3) ? Action.Exclude : Action.Answer;
      return makeRule(text, action, source);
    };
    const table = new TargetTable();
    const ref = new ReferenceTable();
    let bad = 0;
    let checks = 0;
    let prevAnswered = new Set<string>();
    for (let op = 0; op < 300; op++) {
      const group = rng.pick(groups);
      const kind = rng.int(3);
      let change: TableChange;
      if (kind === 0) {
        // replace: keep some of the current rules (as fresh equal objects) and add new ones
        const cur = ref.entries.filter((e) => e.group === group).map((e) => e.rule);
        const rules = cur.filter(() => rng.chance(0.7)).map((r) => ({ ...r }));
        for (let i = rng.int(6); i > 0; i--) rules.push(randomRule(group));
        if (rng.chance(0.2) && rules.length > 0) rules.push({ ...rules[0]! }); // a duplicate
        change = table.replaceGroup(group, rules);
        ref.replaceGroup(group, rules);
      } else if (kind === 1) {
        const rules = Array.from({ length: 1 + rng.int(4) }, () => randomRule(group));
        change = table.addRules(group, rules);
        ref.addRules(group, rules);
      } else {
        const cut = rng.int(16);
        const pred = (r: Rule): boolean => r.prefix[15]! < cut;
        change = table.removeRules(group, pred);
        ref.removeRules(group, pred);
      }
      for (let q = 0; q < 30; q++) {
        const a = randomAddr();
        checks++;
        if (table.match(a, 0) !== ref.match(a)) {
          bad++;
          if (bad < 5) t.fail(`seed ${seed} op ${op}: ${formatAddress(a)}: ${table.match(a, 0)?.text} vs ${ref.match(a)?.text}`);
        }
      }
      // The change report against the reference's answered /128 set.
      const answered = ref.answeredExact();
      const wantAdded = [...answered].filter((x) => !prevAnswered.has(x)).sort();
      const wantRemoved = [...prevAnswered].filter((x) => !answered.has(x)).sort();
      const gotAdded = change.added.map((r) => formatAddress(r.prefix)).sort();
      const gotRemoved = change.removed.map((r) => formatAddress(r.prefix)).sort();
      if (gotAdded.join() !== wantAdded.join() || gotRemoved.join() !== wantRemoved.join()) {
        bad++;
        t.fail(`seed ${seed} op ${op}: change +${gotAdded} -${gotRemoved}, want +${wantAdded} -${wantRemoved}`);
      }
      for (const r of change.added) if (table.match(r.prefix, 0) !== r) bad++;
      prevAnswered = answered;
      const exact = [...table.exactAnswers()].map((r) => formatAddress(r.prefix)).sort();
      if (exact.join() !== [...answered].sort().join()) {
        bad++;
        if (bad < 3) t.fail(`exact ${exact} vs ${[...answered].sort()}`);
      }
      if (table.answerPrefixCount() !== ref.answerPrefixCount()) {
        bad++;
        if (bad < 3) t.fail(`prefixes ${table.answerPrefixCount()} vs ${ref.answerPrefixCount()}`);
      }
      if (table.size !== ref.entries.length) {
        bad++;
        if (bad < 3) t.fail(`size ${table.size} vs ${ref.entries.length}`);
      }
      if (table.groupSize(group) !== ref.entries.filter((e) => e.group === group).length) bad++;
    }
    t.equal(bad, 0, `seed ${seed}: ${checks} matches, every change report, exactAnswers and counts agree`);
  }
});

// ------------------------------------------------------------------ address blocks

t.test('address blocks: seeded random operations agree with the linear reference', async (t) => {
  // Blocks (address files) mixed with ordinary rules at the same addresses, in every group:
  // taken whole, taken with duplicates, stored rule by rule, partly replaced, partly removed.
  for (const seed of [5, 6, 7, 8]) {
    const rng = new Prng(seed);
    const base = A('2001:db8::');
    const randomAddr = (): Uint8Array => {
      const a = base.slice();
      a[14] = rng.int(3);
      a[15] = rng.int(24);
      return a;
    };
    const sources: RuleSource[] = [ADDR, STATIC, docker('a'), EXCL];
    const makeBlock = (): Rule[] => {
      const n = rng.int(40);
      const bytes = new Uint8Array(16 * n);
      for (let i = 0; i < n; i++) bytes.set(randomAddr(), 16 * i); // duplicates likely
      const source = rng.pick(sources);
      return makeAddressRules(bytes, n, source === EXCL ? Action.Exclude : Action.Answer, source);
    };
    const ordinary = (): Rule => {
      const len = rng.chance(0.7) ? 128 : rng.pick([112, 120, 124]);
      const source = rng.pick(sources);
      return makeRule(`${formatAddress(randomAddr())}/${len}`, source === EXCL || rng.chance(0.2) ? Action.Exclude : Action.Answer, source);
    };
    const table = new TargetTable();
    const ref = new ReferenceTable();
    let bad = 0;
    let prevAnswered = new Set<string>();
    for (let op = 0; op < 250; op++) {
      const group = rng.pick(['static', 'docker', 'extra']);
      const kind = rng.int(5);
      let change: TableChange;
      if (kind <= 1) {
        // replace with blocks and ordinary rules; sometimes re-give the group's own rules (a reload)
        const rules: Rule[] = [];
        if (rng.chance(0.4)) for (const e of ref.entries) if (e.group === group && rng.chance(0.8)) rules.push(e.rule);
        for (let k = rng.int(3); k >= 0; k--) {
          if (rng.chance(0.6)) for (const r of makeBlock()) rules.push(r);
          else for (let i = rng.int(4); i >= 0; i--) rules.push(ordinary());
        }
        if (rng.chance(0.1) && rules.length > 0) rules.push(rules[0]!); // the same object twice
        change = table.replaceGroup(group, rules);
        ref.replaceGroup(group, rules);
      } else if (kind === 2) {
        const rules = rng.chance(0.5) ? makeBlock() : [ordinary(), ordinary()];
        change = table.addRules(group, rules);
        ref.addRules(group, rules);
      } else {
        const cut = rng.int(24);
        const pred = (r: Rule): boolean => r.prefix[15]! < cut && rng.chance(0.5);
        // The same decisions for both: decide once per rule object.
        const memo = new Map<Rule, boolean>();
        const once = (r: Rule): boolean => {
          if (!memo.has(r)) memo.set(r, pred(r));
          return memo.get(r)!;
        };
        change = table.removeRules(group, once);
        ref.removeRules(group, once);
      }
      for (let q = 0; q < 40; q++) {
        const a = randomAddr();
        if (table.match(a, 0) !== ref.match(a)) {
          bad++;
          if (bad < 5) t.fail(`seed ${seed} op ${op}: ${formatAddress(a)}: ${table.match(a, 0)?.text} vs ${ref.match(a)?.text}`);
        }
        const e = table.explain(a, 0);
        const want = ref.entries.filter((x) => covers(x.rule.prefix, x.rule.length, a, 0)).length;
        if ((e.rule === undefined ? 0 : 1) + e.shadowed.length !== want) {
          bad++;
          if (bad < 5) t.fail(`seed ${seed} op ${op}: explain ${formatAddress(a)} lists ${e.shadowed.length + 1}, want ${want}`);
        }
      }
      const answered = ref.answeredExact();
      const wantAdded = [...answered].filter((x) => !prevAnswered.has(x)).sort();
      const wantRemoved = [...prevAnswered].filter((x) => !answered.has(x)).sort();
      const gotAdded = change.added.map((r) => formatAddress(r.prefix)).sort();
      const gotRemoved = change.removed.map((r) => formatAddress(r.prefix)).sort();
      if (gotAdded.join() !== wantAdded.join() || gotRemoved.join() !== wantRemoved.join()) {
        bad++;
        if (bad < 5) t.fail(`seed ${seed} op ${op}: change +${gotAdded} -${gotRemoved}, want +${wantAdded} -${wantRemoved}`);
      }
      prevAnswered = answered;
      if (table.exactAnswerCount() !== answered.size) bad++;
      if ([...table.exactAnswers()].length !== answered.size) bad++;
      if (table.size !== ref.entries.length) {
        bad++;
        if (bad < 5) t.fail(`seed ${seed} op ${op}: size ${table.size} vs ${ref.entries.length}`);
      }
      for (const g of ['static', 'docker', 'extra']) {
        const got = table.groupRules(g);
        const want = ref.entries.filter((e) => e.group === g).map((e) => e.rule);
        if (got.length !== want.length || table.groupSize(g) !== want.length || !want.every((r) => got.includes(r))) {
          bad++;
          if (bad < 5) t.fail(`seed ${seed} op ${op}: group ${g} holds ${got.length} rules, want ${want.length}`);
        }
      }
    }
    t.equal(bad, 0, `seed ${seed}: matches, explain, change reports, counts and group contents agree`);
  }
});

t.test('address blocks: a group takes a block whole, and a reload of the same file changes nothing', async (t) => {
  const n = 5000;
  const bytes = new Uint8Array(16 * n);
  for (let i = 0; i < n; i++) {
    bytes.set(A('2001:db8:5::'), 16 * i);
    bytes[16 * i + 13] = i >> 16;
    bytes[16 * i + 14] = (i >> 8) & 0xff;
    bytes[16 * i + 15] = i & 0xff;
  }
  const first = makeAddressRules(bytes, n, Action.Answer, ADDR);
  const table = new TargetTable();
  const c1 = table.replaceGroup('static', first);
  t.equal(c1.added.length, n);
  t.equal(table.exactAnswerCount(), n);
  t.equal((first[0] as unknown as { block: { owner?: string } }).block.owner, 'static', 'held whole');
  const again = makeAddressRules(bytes, n, Action.Answer, ADDR); // a reload: equal rules, new objects
  const c2 = table.replaceGroup('static', again);
  t.same([c2.added.length, c2.removed.length], [0, 0], 'nothing changed');
  t.equal(table.match(bytes, 16 * 77), first[77], 'the first objects stay');
  const fewer = makeAddressRules(bytes.subarray(16), n - 1, Action.Answer, ADDR);
  const c3 = table.replaceGroup('static', fewer);
  t.same([c3.added.length, c3.removed.length], [0, 1], 'one line dropped: one address removed');
  t.equal(table.match(bytes, 0), undefined);
  t.equal(table.size, n - 1);
});

t.test('makeAddressRules: deduplicates, keeps first-seen order, finds its addresses', async (t) => {
  const rng = new Prng(99);
  const n = 3000;
  const bytes = new Uint8Array(16 * n);
  for (let i = 0; i < n; i++) {
    const a = A('fd00::');
    a[13] = rng.int(2);
    a[14] = rng.int(8);
    a[15] = rng.byte();
    bytes.set(a, 16 * i);
  }
  const rules = makeAddressRules(bytes, n, Action.Answer, ADDR);
  const want: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const s = formatAddress(bytes, 16 * i);
    if (!seen.has(s)) want.push(`${s}/128`);
    seen.add(s);
  }
  t.same(
    rules.map((r) => r.text),
    want,
  );
  t.ok(rules.every((r) => r.length === 128 && r.action === Action.Answer && r.source === ADDR));
  t.throws(() => makeAddressRules(bytes, n + 1, Action.Answer, ADDR), RangeError);
});
