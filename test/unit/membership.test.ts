import t from 'tap';
import { MembershipManager, type MembershipBackend, type MembershipTable } from '../../src/engine/membership.js';
import type { HostFacts } from '../../src/engine/types.js';
import type { MldQuery } from '../../src/ndp/mld.js';
import { Action, type Rule } from '../../src/table/rule.js';
import { makeRule, TargetTable } from '../../src/table/target-table.js';
import { ip6, mac, referenceIcmp6Checksum } from '../support/frames.js';

const host: HostFacts = { ifname: 'eth0', mac: mac('02:00:00:00:00:aa'), linkLocal: ip6('fe80::aa') };

// ---------------------------------------------------------------------------------------------
// Fakes: a table that reports changes like TargetTable, and a back end that records calls.

class FakeTable implements MembershipTable {
  readonly rules = new Map<string, Rule>();
  prefixes = 0;
  readonly listeners = new Set<(c: unknown) => void>();
  exactAnswers(): Iterable<Rule> {
    return this.rules.values();
  }
  answerPrefixCount(): number {
    return this.prefixes;
  }
  onChange(listener: (c: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  #emit(): void {
    for (const l of this.listeners) l({ added: [], removed: [] });
  }
  add(...addrs: string[]): void {
    for (const a of addrs) {
      this.rules.set(a, { prefix: ip6(a), length: 128, action: Action.Answer, source: { kind: 'static', flag: '--address' }, text: a });
    }
    this.#emit();
  }
  remove(...addrs: string[]): void {
    for (const a of addrs) this.rules.delete(a);
    this.#emit();
  }
  setPrefixes(n: number): void {
    this.prefixes = n;
    this.#emit();
  }
}

interface Report {
  vlan: number;
  records: { type: number; group: string }[];
}

type Ev = { op: 'add' | 'remove'; mac: string } | { op: 'allmulti'; on: boolean } | { op: 'send'; report: Report };

class FakeBackend implements MembershipBackend {
  readonly events: Ev[] = [];
  failAdd = false;
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    for (let i = 0; i < count; i++) {
      this.events.push({ op: 'send', report: decodeReport(buf.slice(offsets[i]!, offsets[i]! + lengths[i]!)) });
    }
    return count;
  }
  addMulticast(m: Uint8Array): void {
    if (this.failAdd) throw Object.assign(new Error('no room'), { code: 'ENOSPC' });
    this.events.push({ op: 'add', mac: macText(m) });
  }
  removeMulticast(m: Uint8Array): void {
    this.events.push({ op: 'remove', mac: macText(m) });
  }
  setAllMulticast(on: boolean): void {
    this.events.push({ op: 'allmulti', on });
  }
  reports(): Report[] {
    return this.events.flatMap((e) => (e.op === 'send' ? [e.report] : []));
  }
  macs(): Set<string> {
    const s = new Set<string>();
    for (const e of this.events) {
      if (e.op === 'add') s.add(e.mac);
      else if (e.op === 'remove') s.delete(e.mac);
    }
    return s;
  }
  clear(): void {
    this.events.length = 0;
  }
}

function macText(m: Uint8Array): string {
  return [...m].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function groupText(b: Uint8Array): string {
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return w.join(':');
}

/**
 * Decode an MLDv2 report frame independently of src/ and check what RFC 3810 section 5.2
 * requires of it: Ethernet to 33:33:00:00:00:16 from our MAC, IPv6 from our link-local to
 * ff02::16 with hop limit 1, Hop-by-Hop with Router Alert 0, ICMPv6 143 with a valid checksum.
 */
function decodeReport(f: Uint8Array): Report {
  const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const fail = (why: string): never => {
    throw new Error(`bad MLDv2 report: ${why}`);
  };
  if (macText(f.subarray(0, 6)) !== '33:33:00:00:00:16') fail('ethernet destination');
  if (macText(f.subarray(6, 12)) !== macText(host.mac)) fail('ethernet source');
  let ip = 14;
  let vlan = -1;
  if (dv.getUint16(12) === 0x8100) {
    vlan = dv.getUint16(14);
    ip = 18;
  }
  if (dv.getUint16(ip - 2) !== 0x86dd) fail('ethertype');
  if (f[ip + 6] !== 0 || f[ip + 7] !== 1) fail('next header / hop limit');
  if (groupText(f.subarray(ip + 8, ip + 24)) !== groupText(host.linkLocal)) fail('source');
  if (groupText(f.subarray(ip + 24, ip + 40)) !== 'ff02:0:0:0:0:0:0:16') fail('destination');
  const plen = dv.getUint16(ip + 4);
  if (ip + 40 + plen !== f.length) fail('payload length');
  const hbh = ip + 40;
  if (f[hbh] !== 58 || f[hbh + 1] !== 0 || f[hbh + 2] !== 5 || f[hbh + 3] !== 2 || dv.getUint16(hbh + 4) !== 0) fail('router alert');
  const icmp = f.subarray(hbh + 8);
  if (icmp[0] !== 143) fail('type');
  const want = referenceIcmp6Checksum(f.subarray(ip + 8, ip + 24), f.subarray(ip + 24, ip + 40), icmp);
  if (dv.getUint16(hbh + 8 + 2) !== want) fail('checksum');
  const n = dv.getUint16(hbh + 8 + 6);
  if (icmp.length !== 8 + 20 * n) fail('record count');
  const records: Report['records'] = [];
  for (let i = 0; i < n; i++) {
    const r = 8 + 20 * i;
    if (icmp[r + 1] !== 0 || icmp[r + 2] !== 0 || icmp[r + 3] !== 0) fail('aux/sources');
    records.push({ type: icmp[r]!, group: groupText(icmp.subarray(r + 4, r + 20)) });
  }
  return { vlan, records };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function make(opts: Partial<ConstructorParameters<typeof MembershipManager>[0]> = {}): {
  table: FakeTable;
  backend: FakeBackend;
  m: MembershipManager;
} {
  const table = (opts.table as FakeTable | undefined) ?? new FakeTable();
  const backend = new FakeBackend();
  const m = new MembershipManager({
    backend,
    host,
    table,
    coalesceMs: 5,
    unsolicitedReportIntervalMs: 40,
    random: () => 0.5,
    ...opts,
  });
  return { table, backend, m };
}

/** A valid MLDv2 query as the codec returns it: general to ff02::1, group-specific to the group. */
function query(q: Partial<MldQuery> & { group: Uint8Array | null }): MldQuery {
  return {
    error: 0,
    version: 2,
    destination: q.group ?? ip6('ff02::1'),
    maxResponseDelayMs: 10_000,
    vlanTci: -1,
    qrv: 0,
    qqicSeconds: 0,
    sources: 0,
    ...q,
  };
}

const TO_IN = 3;
const TO_EX = 4;
const IS_EX = 2;

// ---------------------------------------------------------------------------------------------

t.test('addresses sharing a solicited-node group: one MAC, counted per group', async (t) => {
  const { table, backend, m } = make();
  t.teardown(() => m.close());
  // Same low 24 bits (00:00:0a) in two /64s: one group ff02::1:ff00:a.
  table.add('2001:db8:1::a', '2001:db8:2::a', '2001:db8:1::1:b');
  await sleep(20);
  t.same([...backend.macs()].sort(), ['33:33:ff:00:00:0a', '33:33:ff:01:00:0b']);
  t.match(m.stats(), { groups: 2, addresses: 3, macs: 2, allmulti: false });
  const joins = backend.reports();
  t.equal(joins.length, 1, 'one report for the burst');
  t.same(
    joins[0]!.records.map((r) => [r.type, r.group]).sort(),
    [
      [TO_EX, 'ff02:0:0:0:0:1:ff00:a'],
      [TO_EX, 'ff02:0:0:0:0:1:ff01:b'],
    ],
  );
  await sleep(100); // the retransmission
  backend.clear();

  table.remove('2001:db8:1::a');
  await sleep(20);
  t.same(backend.events, [], 'group still held by 2001:db8:2::a: no MAC change, no report');
  t.match(m.stats(), { groups: 2, addresses: 2 });

  table.remove('2001:db8:2::a');
  await sleep(20);
  t.same(backend.events[0], { op: 'remove', mac: '33:33:ff:00:00:0a' });
  t.same(
    backend.reports().map((r) => r.records),
    [[{ type: TO_IN, group: 'ff02:0:0:0:0:1:ff00:a' }]],
  );
  t.match(m.stats(), { groups: 1, addresses: 1, macs: 1 });
});

t.test('a burst of changes is coalesced, sent twice (robustness 2), then no more', async (t) => {
  const { table, backend, m } = make();
  t.teardown(() => m.close());
  for (let i = 1; i <= 50; i++) table.add(`2001:db8::${i.toString(16)}`);
  t.equal(backend.events.length, 0, 'nothing before the coalescing delay');
  await sleep(15);
  t.equal(backend.reports().length, 1, 'one report');
  t.equal(backend.reports()[0]!.records.length, 50);
  t.ok(backend.reports()[0]!.records.every((r) => r.type === TO_EX));
  await sleep(60); // retransmission after 1 + 0.5 * 40 = 21 ms
  const reps = backend.reports();
  t.equal(reps.length, 2, 'one retransmission');
  t.same(reps[1], reps[0], 'the retransmission repeats the same records');
  await sleep(100);
  t.equal(backend.reports().length, 2, 'robustness 2: two transmissions in all');
  t.equal(m.stats().reportsSent, 2);
});

t.test('a leave before the join was retransmitted replaces it', async (t) => {
  const { table, backend, m } = make({ unsolicitedReportIntervalMs: 200 });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  await sleep(15);
  table.remove('2001:db8::1');
  await sleep(15);
  await sleep(150); // retransmission at 1 + 0.5 * 200 = 101 ms after the first
  const recs = backend.reports().map((r) => r.records.map((x) => x.type));
  t.same(recs, [[TO_EX], [TO_IN], [TO_IN]], 'join once, then the leave twice; the join is not repeated');
});

t.test('reports are split to fit the MTU', async (t) => {
  const { table, backend, m } = make({ robustness: 1 });
  t.teardown(() => m.close());
  const addrs = Array.from({ length: 200 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
  table.add(...addrs);
  m.sync();
  const reps = backend.reports();
  // (1500 - 40 IPv6 - 8 HBH - 8 MLD header) / 20 per record = 72.
  t.same(reps.map((r) => r.records.length), [72, 72, 56]);
  t.equal(new Set(reps.flatMap((r) => r.records.map((x) => x.group))).size, 200, 'every group once');

  const small = make({ robustness: 1, mtu: 1280 });
  t.teardown(() => small.m.close());
  small.table.add(...addrs);
  small.m.sync();
  t.same(small.backend.reports().map((r) => r.records.length), [61, 61, 61, 17]);
});

t.test('above maxGroups: all-multicast on before MACs go; back below: MACs first, then off', async (t) => {
  const { table, backend, m } = make({ maxGroups: 3, mld: false });
  t.teardown(() => m.close());
  table.add('2001:db8::1', '2001:db8::2', '2001:db8::3');
  m.sync();
  t.match(m.stats(), { groups: 3, macs: 3, allmulti: false });
  backend.clear();

  table.add('2001:db8::4');
  m.sync();
  t.same(backend.events[0], { op: 'allmulti', on: true }, 'all-multicast first');
  t.same(
    backend.events.slice(1).map((e) => e.op),
    ['remove', 'remove', 'remove'],
  );
  t.match(m.stats(), { groups: 4, macs: 0, allmulti: true });
  backend.clear();

  table.remove('2001:db8::4');
  m.sync();
  t.same(
    backend.events.map((e) => e.op),
    ['add', 'add', 'add', 'allmulti'],
    'MACs back before all-multicast goes off',
  );
  t.same(backend.events[3], { op: 'allmulti', on: false });
  t.match(m.stats(), { groups: 3, macs: 3, allmulti: false });
  t.same(backend.reports(), [], 'mld: false sends nothing');
});

t.test('answer prefixes need all-multicast; exact addresses keep their MACs', async (t) => {
  const { table, backend, m } = make({ mld: false });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  table.setPrefixes(1);
  m.sync();
  t.match(m.stats(), { prefixes: 1, allmulti: true, macs: 1 });
  table.setPrefixes(0);
  m.sync();
  t.match(m.stats(), { prefixes: 0, allmulti: false, macs: 1 });
  t.same(
    backend.events.filter((e) => e.op === 'allmulti'),
    [
      { op: 'allmulti', on: true },
      { op: 'allmulti', on: false },
    ],
  );
});

t.test('state present at construction is applied at once', async (t) => {
  const table = new FakeTable();
  table.add('2001:db8::7');
  const { backend, m } = make({ table });
  t.teardown(() => m.close());
  t.same([...backend.macs()], ['33:33:ff:00:00:07']);
  t.equal(backend.reports().length, 1);
});

t.test('MLD queries', async (t) => {
  // No rate limit here (it has its own test with a fake clock); VLAN 100 is served.
  const { table, backend, m } = make({ robustness: 1, minFullReportIntervalMs: 0, servedVlans: new Set([100]) });
  t.teardown(() => m.close());
  table.add('2001:db8::1', '2001:db8::2');
  m.sync();
  backend.clear();

  // General query, 40 ms max delay, random 0.5: answered after 20 ms with all groups.
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 40, vlanTci: -1 }));
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 400, vlanTci: -1 })); // later: the earlier one stands
  await sleep(5);
  t.equal(backend.reports().length, 0, 'not before the delay');
  await sleep(60);
  let reps = backend.reports();
  t.equal(reps.length, 1, 'one answer for both general queries');
  t.same(reps[0]!.records.map((r) => [r.type, r.group]).sort(), [
    [IS_EX, 'ff02:0:0:0:0:1:ff00:1'],
    [IS_EX, 'ff02:0:0:0:0:1:ff00:2'],
  ]);
  await sleep(250);
  t.equal(backend.reports().length, 1, 'the later general query was absorbed');
  backend.clear();

  // Group-specific, for our group and on VLAN 100: that group only, tagged.
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:2'), maxResponseDelayMs: 10, vlanTci: 100 }));
  // Not ours: a solicited-node group we do not hold, and a non-solicited-node group.
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:9'), maxResponseDelayMs: 10, vlanTci: -1 }));
  m.handleMldQuery(query({ group: ip6('ff02::fb'), maxResponseDelayMs: 10, vlanTci: -1 }));
  await sleep(40);
  reps = backend.reports();
  t.same(reps, [{ vlan: 100, records: [{ type: IS_EX, group: 'ff02:0:0:0:0:1:ff00:2' }] }]);
  t.match(m.stats(), { queriesReceived: 5, queriesAnswered: 2 });

  // A zero delay answers on the next turn.
  backend.clear();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0, vlanTci: -1 }));
  await sleep(5);
  t.equal(backend.reports().length, 1);
});

t.test('a group-specific response is dropped if the group left meanwhile', async (t) => {
  const { table, backend, m } = make({ robustness: 1 });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:1'), maxResponseDelayMs: 60, vlanTci: -1 }));
  table.remove('2001:db8::1');
  m.sync();
  backend.clear();
  await sleep(60);
  t.same(backend.reports(), []);
  t.equal(m.stats().queriesAnswered, 0);
});

t.test('close(): leave reports, MACs removed, all-multicast off, timers and listener gone', async (t) => {
  const { table, backend, m } = make({ unsolicitedReportIntervalMs: 100 });
  table.add('2001:db8::1', '2001:db8::2');
  table.setPrefixes(1);
  m.sync();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 100, vlanTci: -1 }));
  backend.clear();
  m.close();
  m.close();
  const reps = backend.reports();
  t.equal(reps.length, 1);
  t.same(reps[0]!.records.map((r) => r.type), [TO_IN, TO_IN]);
  t.same(backend.macs().size, 0);
  t.same(
    backend.events.filter((e) => e.op !== 'send').map((e) => e.op),
    ['remove', 'remove', 'allmulti'],
  );
  t.equal(table.listeners.size, 0, 'unsubscribed');
  backend.clear();
  table.add('2001:db8::3');
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0, vlanTci: -1 }));
  await sleep(150); // past the pending retransmission and query response
  t.same(backend.events, [], 'nothing after close');
  t.match(m.stats(), { groups: 0, macs: 0, allmulti: false });
});

t.test('back-end failures are counted and retried, never thrown', async (t) => {
  const { table, backend, m } = make({ mld: false });
  t.teardown(() => m.close());
  backend.failAdd = true;
  table.add('2001:db8::1');
  t.doesNotThrow(() => m.sync());
  t.match(m.stats(), { macs: 0, errors: 1 });
  backend.failAdd = false;
  table.add('2001:db8::2');
  m.sync();
  t.match(m.stats(), { macs: 2, errors: 1 }, 'the failed MAC is added at the next sync');

  const throwing: MembershipBackend = {
    send: () => {
      throw new Error('EBADF');
    },
    addMulticast: () => {},
    removeMulticast: () => {},
    setAllMulticast: () => {
      throw new Error('ip failed');
    },
  };
  const t2 = new FakeTable();
  t2.add('2001:db8::1');
  t2.prefixes = 1;
  let m2: MembershipManager | undefined;
  t.doesNotThrow(() => {
    m2 = new MembershipManager({ backend: throwing, host, table: t2 });
  });
  t.match(m2!.stats(), { allmulti: false, reportsSent: 0 });
  t.ok(m2!.stats().errors >= 2);
  t.doesNotThrow(() => m2!.close());
});

t.test('bad options', async (t) => {
  const table = new FakeTable();
  const backend = new FakeBackend();
  t.throws(() => new MembershipManager({ backend, host, table, maxGroups: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new MembershipManager({ backend, host, table, robustness: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new MembershipManager({ backend, host, table, mtu: 500 }), { code: 'ERR_OUT_OF_RANGE' });
});

t.test('with the real TargetTable: only winning /128 answers count; answer prefixes need all-multicast', async (t) => {
  const table = new TargetTable();
  const backend = new FakeBackend();
  const m = new MembershipManager({ backend, host, table, coalesceMs: 1, robustness: 1 });
  t.teardown(() => m.close());
  const addr = (a: string): Rule => makeRule(a, Action.Answer, { kind: 'static', flag: '--address' });
  table.replaceGroup('docker', [addr('2001:db8::8000:0:0:10'), addr('2001:db8::8000:0:0:11')]);
  m.sync();
  t.same([...backend.macs()].sort(), ['33:33:ff:00:00:10', '33:33:ff:00:00:11']);

  // An exclusion covering ::11 beats its /128 answer: its group leaves.
  table.replaceGroup('static', [makeRule('2001:db8::8000:0:0:11/128', Action.Exclude, { kind: 'static', flag: '--exclude' })]);
  m.sync();
  t.same([...backend.macs()], ['33:33:ff:00:00:10']);
  t.same(backend.reports().at(-1)!.records, [{ type: TO_IN, group: 'ff02:0:0:0:0:1:ff00:11' }]);

  // The interface's own address (a host rule) is never ours to answer either.
  table.replaceGroup('host', [makeRule('2001:db8::8000:0:0:10', Action.Exclude, { kind: 'host', ifname: 'eth0' })]);
  m.sync();
  t.match(m.stats(), { groups: 0, macs: 0 });

  // An answer prefix.
  table.replaceGroup('static', [makeRule('2001:db8:1::/64', Action.Answer, { kind: 'static', flag: '--prefix' })]);
  m.sync();
  t.match(m.stats(), { prefixes: 1, allmulti: true, groups: 1 }, 'the exclusion went, so ::11 answers again');
  table.replaceGroup('static', []);
  await sleep(10); // through the table's change listener and the coalescing timer
  t.match(m.stats(), { prefixes: 0, allmulti: false });
});
