import t from 'tap';
import { MembershipManager, type MembershipBackend, type MembershipClock, type MembershipTable } from '../../src/engine/membership.js';
import type { HostFacts } from '../../src/engine/types.js';
import { MldQueryError, mldv2ReportMaxGroups, type MldQuery } from '../../src/ndp/mld.js';
import { Action, type Rule } from '../../src/table/rule.js';
import { makeAddressRules, makeRule, TargetTable, type TableChange } from '../../src/table/target-table.js';
import { ip6, mac, referenceIcmp6Checksum } from '../support/frames.js';

const host: HostFacts = { ifname: 'eth0', mac: mac('02:00:00:00:00:aa'), linkLocal: ip6('fe80::aa') };

// ---------------------------------------------------------------------------------------------
// Fakes: a table that reports changes like TargetTable, and a back end that records calls.

class FakeTable implements MembershipTable {
  readonly rules = new Map<string, Rule>();
  prefixes = 0;
  readonly listeners = new Set<(c: TableChange) => void>();
  /** exactAnswers() calls: the manager reads the whole table only when it starts. */
  reads = 0;
  exactAnswers(): Iterable<Rule> {
    this.reads++;
    return this.rules.values();
  }
  answerPrefixCount(): number {
    return this.prefixes;
  }
  onChange(listener: (c: TableChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  #emit(c: TableChange): void {
    for (const l of this.listeners) l(c);
  }
  add(...addrs: string[]): void {
    const added: Rule[] = [];
    for (const a of addrs) {
      if (this.rules.has(a)) continue;
      const r: Rule = { prefix: ip6(a), length: 128, action: Action.Answer, source: { kind: 'static', flag: '--address' }, text: a };
      this.rules.set(a, r);
      added.push(r);
    }
    this.#emit({ added, removed: [], prefixesChanged: false });
  }
  remove(...addrs: string[]): void {
    const removed: Rule[] = [];
    for (const a of addrs) {
      const r = this.rules.get(a);
      if (r === undefined) continue;
      this.rules.delete(a);
      removed.push(r);
    }
    this.#emit({ added: [], removed, prefixesChanged: false });
  }
  setPrefixes(n: number): void {
    this.prefixes = n;
    this.#emit({ added: [], removed: [], prefixesChanged: true });
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
  const dst = f.subarray(ip + 24, ip + 40);
  // RFC 2464 section 7: 33:33 and the low 32 bits of the IPv6 destination.
  if (macText(f.subarray(0, 6)) !== macText(Uint8Array.of(0x33, 0x33, ...dst.subarray(12)))) fail('ethernet destination');
  const plen = dv.getUint16(ip + 4);
  if (ip + 40 + plen !== f.length) fail('payload length');
  const hbh = ip + 40;
  if (f[hbh] !== 58 || f[hbh + 1] !== 0 || f[hbh + 2] !== 5 || f[hbh + 3] !== 2 || dv.getUint16(hbh + 4) !== 0) fail('router alert');
  const icmp = f.subarray(hbh + 8);
  const want = referenceIcmp6Checksum(f.subarray(ip + 8, ip + 24), dst, icmp);
  if (dv.getUint16(hbh + 8 + 2) !== want) fail('checksum');
  if (icmp[0] === 131 || icmp[0] === 132) {
    // MLDv1 (RFC 2710 section 3): 24 bytes; a report goes to its group, a done to ff02::2.
    if (icmp.length !== 24 || icmp[1] !== 0 || dv.getUint32(hbh + 12) !== 0) fail('MLDv1 layout');
    const group = groupText(icmp.subarray(8, 24));
    if (groupText(dst) !== (icmp[0] === 131 ? group : 'ff02:0:0:0:0:0:0:2')) fail('MLDv1 destination');
    return { vlan, records: [{ type: icmp[0], group }] };
  }
  if (groupText(dst) !== 'ff02:0:0:0:0:0:0:16') fail('destination');
  if (icmp[0] !== 143) fail('type');
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
const V1_REPORT = 131;
const V1_DONE = 132;

/** Timers on a fake clock: advance() runs what falls due, in order. */
class FakeClock implements MembershipClock {
  t = 0;
  #seq = 0;
  readonly #timers = new Map<number, { due: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { due: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  /** Move time forward by `ms`, running every timer that falls due (bounded). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].due <= end && (next === undefined || e[1].due < next[1].due)) next = e;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].due);
      next[1].fn();
    }
    this.t = end;
  }
  pending(): number {
    return this.#timers.size;
  }
}

/** `n` addresses with distinct solicited-node groups (low 24 bits 1..n). */
function manyAddresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `2001:db8::${((i + 1) >>> 16).toString(16)}:${((i + 1) & 0xffff).toString(16)}`);
}

// ---------------------------------------------------------------------------------------------

t.test('addresses sharing a solicited-node group: one MAC, counted per group', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock });
  t.teardown(() => m.close());
  // Same low 24 bits (00:00:0a) in two /64s: one group ff02::1:ff00:a.
  table.add('2001:db8:1::a', '2001:db8:2::a', '2001:db8:1::1:b');
  clock.advance(20);
  t.same([...backend.macs()].sort(), ['33:33:ff:00:00:0a', '33:33:ff:01:00:0b']);
  t.match(m.stats(), { groups: 2, addresses: 3, macs: 2, allmulti: false });
  const joins = backend.reports();
  t.equal(joins.length, 1, 'one report for the burst');
  t.same(joins[0]!.records.map((r) => [r.type, r.group]).sort(), [
    [TO_EX, 'ff02:0:0:0:0:1:ff00:a'],
    [TO_EX, 'ff02:0:0:0:0:1:ff01:b'],
  ]);
  clock.advance(100); // the retransmission
  backend.clear();

  table.remove('2001:db8:1::a');
  clock.advance(20);
  t.same(backend.events, [], 'group still held by 2001:db8:2::a: no MAC change, no report');
  t.match(m.stats(), { groups: 2, addresses: 2 });

  table.remove('2001:db8:2::a');
  clock.advance(20);
  t.same(backend.events[0], { op: 'remove', mac: '33:33:ff:00:00:0a' });
  t.same(
    backend.reports().map((r) => r.records),
    [[{ type: TO_IN, group: 'ff02:0:0:0:0:1:ff00:a' }]],
  );
  t.match(m.stats(), { groups: 1, addresses: 1, macs: 1 });
});

t.test('a burst of changes is coalesced, sent twice (robustness 2), then no more', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock });
  t.teardown(() => m.close());
  for (let i = 1; i <= 50; i++) table.add(`2001:db8::${i.toString(16)}`);
  t.equal(backend.events.length, 0, 'nothing before the coalescing delay');
  clock.advance(15);
  t.equal(backend.reports().length, 1, 'one report');
  t.equal(backend.reports()[0]!.records.length, 50);
  t.ok(backend.reports()[0]!.records.every((r) => r.type === TO_EX));
  clock.advance(60); // retransmission after 1 + 0.5 * 40 = 21 ms
  const reps = backend.reports();
  t.equal(reps.length, 2, 'one retransmission');
  t.same(reps[1], reps[0], 'the retransmission repeats the same records');
  clock.advance(100);
  t.equal(backend.reports().length, 2, 'robustness 2: two transmissions in all');
  t.equal(m.stats().reportsSent, 2);
});

t.test('a leave before the join was retransmitted replaces it', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, unsolicitedReportIntervalMs: 200 });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  clock.advance(15);
  table.remove('2001:db8::1');
  clock.advance(15);
  clock.advance(150); // retransmission at 1 + 0.5 * 200 = 101 ms after the first
  const recs = backend.reports().map((r) => r.records.map((x) => x.type));
  t.same(recs, [[TO_EX], [TO_IN], [TO_IN]], 'join once, then the leave twice; the join is not repeated');
});

t.test('reports are split to fit the MTU', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, robustness: 1 });
  t.teardown(() => m.close());
  const addrs = Array.from({ length: 200 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
  table.add(...addrs);
  m.sync();
  const reps = backend.reports();
  // (1500 - 40 IPv6 - 8 HBH - 8 MLD header) / 20 per record = 72.
  t.same(
    reps.map((r) => r.records.length),
    [72, 72, 56],
  );
  t.equal(new Set(reps.flatMap((r) => r.records.map((x) => x.group))).size, 200, 'every group once');

  const small = make({ robustness: 1, mtu: 1280 });
  t.teardown(() => small.m.close());
  small.table.add(...addrs);
  small.m.sync();
  t.same(
    small.backend.reports().map((r) => r.records.length),
    [61, 61, 61, 17],
  );
});

t.test('above maxGroups: all-multicast on before MACs go; back below: MACs first, then off', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, maxGroups: 3, mld: false });
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
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, mld: false });
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
  const clock = new FakeClock();
  const { backend, m } = make({ clock, table });
  t.teardown(() => m.close());
  t.same([...backend.macs()], ['33:33:ff:00:00:07']);
  t.equal(backend.reports().length, 1);
});

t.test('MLD queries', async (t) => {
  // No rate limit here (it has its own test with a fake clock); VLAN 100 is served.
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, robustness: 1, minFullReportIntervalMs: 0, servedVlans: new Set([100]) });
  t.teardown(() => m.close());
  table.add('2001:db8::1', '2001:db8::2');
  m.sync();
  backend.clear();

  // General query, 40 ms max delay, random 0.5: answered after 20 ms with all groups.
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 40, vlanTci: -1 }));
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 400, vlanTci: -1 })); // later: the earlier one stands
  clock.advance(5);
  t.equal(backend.reports().length, 0, 'not before the delay');
  clock.advance(60);
  let reps = backend.reports();
  t.equal(reps.length, 1, 'one answer for both general queries');
  t.same(reps[0]!.records.map((r) => [r.type, r.group]).sort(), [
    [IS_EX, 'ff02:0:0:0:0:1:ff00:1'],
    [IS_EX, 'ff02:0:0:0:0:1:ff00:2'],
  ]);
  clock.advance(250);
  t.equal(backend.reports().length, 1, 'the later general query was absorbed');
  backend.clear();

  // Group-specific, for our group and on VLAN 100: that group only, tagged.
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:2'), maxResponseDelayMs: 10, vlanTci: 100 }));
  // Not ours: a solicited-node group we do not hold, and a non-solicited-node group.
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:9'), maxResponseDelayMs: 10, vlanTci: -1 }));
  m.handleMldQuery(query({ group: ip6('ff02::fb'), maxResponseDelayMs: 10, vlanTci: -1 }));
  clock.advance(40);
  reps = backend.reports();
  t.same(reps, [{ vlan: 100, records: [{ type: IS_EX, group: 'ff02:0:0:0:0:1:ff00:2' }] }]);
  t.match(m.stats(), { queriesReceived: 5, queriesAnswered: 2 });

  // A zero delay answers on the next turn.
  backend.clear();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0, vlanTci: -1 }));
  clock.advance(5);
  t.equal(backend.reports().length, 1);
});

t.test('a group-specific response is dropped if the group left meanwhile', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, robustness: 1 });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:1'), maxResponseDelayMs: 60, vlanTci: -1 }));
  table.remove('2001:db8::1');
  m.sync();
  backend.clear();
  clock.advance(60);
  t.same(backend.reports(), []);
  t.equal(m.stats().queriesAnswered, 0);
});

t.test('close(): leave reports, MACs removed, all-multicast off, timers and listener gone', async (t) => {
  const clock = new FakeClock();
  const { table, backend, m } = make({ clock, unsolicitedReportIntervalMs: 100 });
  table.add('2001:db8::1', '2001:db8::2');
  table.setPrefixes(1);
  m.sync();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 100, vlanTci: -1 }));
  backend.clear();
  m.close();
  m.close();
  const reps = backend.reports();
  t.equal(reps.length, 1);
  t.same(
    reps[0]!.records.map((r) => r.type),
    [TO_IN, TO_IN],
  );
  t.same(backend.macs().size, 0);
  t.same(
    backend.events.filter((e) => e.op !== 'send').map((e) => e.op),
    ['remove', 'remove', 'allmulti'],
  );
  t.equal(table.listeners.size, 0, 'unsubscribed');
  backend.clear();
  table.add('2001:db8::3');
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0, vlanTci: -1 }));
  clock.advance(150); // past the pending retransmission and query response
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

t.test('a change of one address after 100,000 costs one group of work, whatever the table size', async (t) => {
  const N = 100_000;
  const tt = new TargetTable();
  let reads = 0;
  // The real table, with a count of full reads.
  const table: MembershipTable = {
    exactAnswers: () => {
      reads++;
      return tt.exactAnswers();
    },
    answerPrefixCount: () => tt.answerPrefixCount(),
    onChange: (l) => tt.onChange(l),
  };
  const bytes = new Uint8Array(16 * N);
  for (let i = 0; i < N; i++) {
    // 2001:db8::/96 + i + 1: distinct low 24 bits, so N distinct groups.
    bytes.set([0x20, 0x01, 0x0d, 0xb8], 16 * i);
    const v = i + 1;
    bytes[16 * i + 13] = (v >>> 16) & 0xff;
    bytes[16 * i + 14] = (v >>> 8) & 0xff;
    bytes[16 * i + 15] = v & 0xff;
  }
  tt.replaceGroup('static', makeAddressRules(bytes, N, Action.Answer, { kind: 'static', flag: '--address' }));
  const backend = new FakeBackend();
  const m = new MembershipManager({ backend, host, table, maxGroups: 2 * N, robustness: 1, coalesceMs: 1000 });
  t.teardown(() => m.close());
  t.equal(reads, 1, 'the table is read once, at start');
  t.match(m.stats(), { groups: N, addresses: N, macs: N });
  t.equal(backend.events.filter((e) => e.op === 'add').length, N);

  const one = (a: string): Rule =>
    makeRule(a, Action.Answer, { kind: 'docker', containerId: 'c1', containerName: 'one', network: 'bridge' });
  for (const [what, change] of [
    ['add', () => tt.addRules('docker', [one('2001:db8::ff:fffe')])],
    ['remove', () => tt.removeRules('docker', () => true)],
  ] as const) {
    backend.clear();
    change();
    m.sync();
    t.equal(reads, 1, `${what}: no full read`);
    const macOps = backend.events.filter((e) => e.op === 'add' || e.op === 'remove');
    t.same(macOps, [{ op: what, mac: '33:33:ff:ff:ff:fe' }], `${what}: one MAC call`);
    const reports = backend.reports();
    t.equal(reports.length, 1, `${what}: one report`);
    t.same(reports[0]!.records, [{ type: what === 'add' ? TO_EX : TO_IN, group: 'ff02:0:0:0:0:1:ffff:fffe' }], `${what}: one record`);
    t.match(m.stats(), { groups: what === 'add' ? N + 1 : N, macs: what === 'add' ? N + 1 : N });
  }

  // An exclusion hides one of the 100,000: its group leaves, nothing else moves.
  backend.clear();
  tt.addRules('x', [makeRule('2001:db8::1:0/128', Action.Exclude, { kind: 'static', flag: '--exclude' })]);
  m.sync();
  t.same(
    backend.events.filter((e) => e.op !== 'send'),
    [{ op: 'remove', mac: '33:33:ff:01:00:00' }],
  );
  t.equal(reads, 1);
});

t.test('with the real TargetTable: only winning /128 answers count; answer prefixes need all-multicast', async (t) => {
  const table = new TargetTable();
  const backend = new FakeBackend();
  const clock = new FakeClock();
  const m = new MembershipManager({ backend, host, table, coalesceMs: 1, robustness: 1, clock });
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
  clock.advance(10); // through the table's change listener and the coalescing timer
  t.match(m.stats(), { prefixes: 0, allmulti: false });
});

// ---------------------------------------------------------------------------------------------
// Query handling on a fake clock: rate limit, acceptance, VLANs, MLDv1 compatibility.

function makeClocked(opts: Partial<ConstructorParameters<typeof MembershipManager>[0]> = {}): {
  table: FakeTable;
  backend: FakeBackend;
  m: MembershipManager;
  clock: FakeClock;
} {
  const clock = new FakeClock();
  const r = make({ clock, robustness: 1, ...opts });
  r.m.sync();
  r.backend.clear();
  return { ...r, clock };
}

t.test('rate limit: 10 general queries within 200 ms with 2,000 groups draw ONE full-state report', async (t) => {
  const table = new FakeTable();
  table.add(...manyAddresses(2000));
  let i = 0;
  const randoms = [0.9, 0.1, 0.5, 0.05, 0.7, 0.3, 0.02, 0.6, 0.01, 0.8];
  const { backend, m, clock } = makeClocked({ table, random: () => randoms[i++ % randoms.length]! });
  t.teardown(() => m.close());
  t.equal(m.stats().groups, 2000);
  const perFrame = mldv2ReportMaxGroups(1500);
  const framesPerFull = Math.ceil(2000 / perFrame);
  t.equal(framesPerFull, 28, '2,000 groups at 72 records a frame: 28 frames');

  for (let q = 0; q < 10; q++) {
    m.handleMldQuery(query({ group: null, maxResponseDelayMs: 1000 }));
    clock.advance(20); // 10 queries within 200 ms
  }
  clock.advance(1000 - 200);
  let reps = backend.reports();
  t.equal(reps.length, framesPerFull, `exactly the ${framesPerFull} frames of one full-state report`);
  const groups = new Set(reps.flatMap((r) => r.records.map((x) => x.group)));
  t.equal(groups.size, 2000, 'every group once');
  t.ok(
    reps.every((r) => r.records.every((x) => x.type === IS_EX)),
    'all MODE_IS_EXCLUDE',
  );
  t.match(m.stats(), { fullReports: 1, queriesReceived: 10, queriesAnswered: 1, queriesAbsorbed: 9 });

  // A query flood for a further 5 s: at most one full report per second.
  backend.clear();
  for (let q = 0; q < 500; q++) {
    m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0 }));
    clock.advance(10);
  }
  reps = backend.reports();
  const fulls = reps.length / framesPerFull;
  t.ok(Number.isInteger(fulls) && fulls >= 4 && fulls <= 5, `5 s of 100 queries/s: ${fulls} full reports (at most 5)`);
});

t.test('rate limit: the exact rule (pending absorbs, earlier due wins, then 1 s after the last full report)', async (t) => {
  let r = 0.5;
  const { table, backend, m, clock } = makeClocked({ random: () => r });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  backend.clear();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 1000 })); // due at 500
  r = 0.1;
  clock.advance(100);
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 1000 })); // due at 100+100 = 200: moves it earlier
  clock.advance(99);
  t.equal(backend.reports().length, 0, 'not before 200 ms');
  clock.advance(1);
  t.equal(backend.reports().length, 1, 'answered at 200 ms');
  clock.advance(1000);
  t.equal(backend.reports().length, 1, 'the moved response is not sent again');
  // Last full report at 200: a query at 1199 is absorbed, one at 1200 is answered.
  clock.t = 1199;
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0 }));
  clock.advance(0);
  t.equal(backend.reports().length, 1, '999 ms after the last full report: absorbed');
  clock.t = 1200;
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0 }));
  clock.advance(0);
  t.equal(backend.reports().length, 2, '1000 ms after: answered');
  t.match(m.stats(), { fullReports: 2, queriesAbsorbed: 2 });
});

t.test('group-specific queries: only for groups we hold, at most one answer per group per second', async (t) => {
  const { table, backend, m, clock } = makeClocked({ random: () => 0 });
  t.teardown(() => m.close());
  table.add('2001:db8::1', '2001:db8::2');
  m.sync();
  backend.clear();
  const g1 = ip6('ff02::1:ff00:1');
  for (let i = 0; i < 10; i++) {
    m.handleMldQuery(query({ group: g1, maxResponseDelayMs: 0 }));
    clock.advance(50);
  }
  t.same(backend.reports(), [{ vlan: -1, records: [{ type: IS_EX, group: 'ff02:0:0:0:0:1:ff00:1' }] }], '10 queries in 500 ms: one answer');
  clock.advance(600);
  m.handleMldQuery(query({ group: g1, maxResponseDelayMs: 0 }));
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:2'), maxResponseDelayMs: 0 }));
  clock.advance(0);
  t.equal(backend.reports().length, 2, '1.1 s later: answered again; the two groups due together go in one report');
  t.equal(backend.reports()[1]!.records.length, 2);
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:9'), destination: ip6('ff02::1'), maxResponseDelayMs: 0 }));
  clock.advance(0);
  t.equal(backend.reports().length, 2, 'a group we do not hold: nothing');
  t.equal(m.stats().queriesIgnored['other-group'], 1);
});

t.test('acceptance: ff02::1, our groups and our own addresses only', async (t) => {
  const own = [ip6('2001:db8::aa'), ip6('fe80::aa')];
  const { table, backend, m, clock } = makeClocked({ random: () => 0, minFullReportIntervalMs: 0, ownAddresses: () => own });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  backend.clear();
  const answered = (q: MldQuery): number => {
    const before = backend.reports().length;
    m.handleMldQuery(q);
    clock.advance(10);
    return backend.reports().length - before;
  };
  // Someone else's unicast address (what reaches us through our MAC, e.g. a unicast query for
  // another host, or anything in promiscuous mode): nothing.
  t.equal(answered(query({ group: null, destination: ip6('2001:db8::bb') })), 0, 'general query to another node: nothing');
  t.equal(answered(query({ group: ip6('ff02::1:ff00:1'), destination: ip6('2001:db8::bb') })), 0, 'group query to another node: nothing');
  t.equal(answered(query({ group: null, destination: ip6('fe80::bb') })), 0, 'to another link-local: nothing');
  t.equal(answered(query({ group: null, destination: ip6('ff02::2') })), 0, 'to all-routers: nothing');
  t.equal(answered(query({ group: null, destination: ip6('ff02::1:ff00:9') })), 0, 'to a group we do not report: nothing');
  t.equal(m.stats().queriesIgnored.destination, 5);
  t.equal(answered(query({ group: null })), 1, 'general query to ff02::1: answered');
  t.equal(answered(query({ group: null, destination: ip6('2001:db8::aa') })), 1, 'to our global address: answered (RFC 3810 5.1.15)');
  t.equal(answered(query({ group: null, destination: ip6('fe80::aa') })), 1, 'to our link-local: answered');
  t.equal(answered(query({ group: ip6('ff02::1:ff00:1') })), 1, 'group query to the group: answered');
  clock.advance(1000);
  t.equal(answered(query({ group: ip6('ff02::1:ff00:1'), destination: ip6('ff02::1') })), 1, 'group query to ff02::1: answered');
  t.equal(m.stats().queriesIgnored.destination, 5);

  // Without ownAddresses, the host's link-local still counts as ours.
  const { m: m2, backend: b2, clock: c2, table: t2 } = makeClocked({ random: () => 0 });
  t.teardown(() => m2.close());
  t2.add('2001:db8::1');
  m2.sync();
  b2.clear();
  m2.handleMldQuery(query({ group: null, destination: host.linkLocal }));
  c2.advance(10);
  t.equal(b2.reports().length, 1);
});

t.test('invalid queries (codec rejects) are counted by reason and draw nothing', async (t) => {
  const { table, backend, m, clock } = makeClocked({ random: () => 0 });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  backend.clear();
  for (const e of [MldQueryError.HopLimit, MldQueryError.Source, MldQueryError.RouterAlert, MldQueryError.Checksum, MldQueryError.Source]) {
    m.handleMldQuery({ error: e });
  }
  clock.advance(100);
  t.same(backend.reports(), []);
  t.match(m.stats().queriesIgnored, { 'hop-limit': 1, source: 2, 'router-alert': 1, checksum: 1, length: 0, vlan: 0 });
  t.equal(m.stats().queriesReceived, 5);
});

t.test('VLANs: queries tagged with a VID we do not serve are ignored and counted', async (t) => {
  const { table, backend, m, clock } = makeClocked({ random: () => 0, servedVlans: new Set([10]) });
  t.teardown(() => m.close());
  table.add('2001:db8::1');
  m.sync();
  backend.clear();
  m.handleMldQuery(query({ group: null, vlanTci: 20 }));
  m.handleMldQuery(query({ group: null, vlanTci: 0x2000 | 30 })); // priority 1, VID 30
  clock.advance(100);
  t.same(backend.reports(), [], 'VIDs 20 and 30: nothing');
  t.equal(m.stats().queriesIgnored.vlan, 2);
  m.handleMldQuery(query({ group: null, vlanTci: 0x2000 | 10 }));
  m.handleMldQuery(query({ group: null, vlanTci: -1 }));
  clock.advance(100);
  t.same(
    backend
      .reports()
      .map((r) => r.vlan)
      .sort(),
    [-1, 0x2000 | 10],
    "a served VID and untagged: each answered once, with the query's tag",
  );
  // Priority-tagged (VID 0) is untagged: served, and shares the untagged rate limit.
  backend.clear();
  clock.advance(1000);
  m.handleMldQuery(query({ group: null, vlanTci: 0x6000 }));
  clock.advance(100);
  t.same(
    backend.reports().map((r) => r.vlan),
    [0x6000],
    'VID 0 served',
  );

  // Unsolicited reports go untagged and on every served VLAN.
  backend.clear();
  table.add('2001:db8::2');
  m.sync();
  t.same(
    backend.reports().map((r) => [r.vlan, r.records.map((x) => x.type)]),
    [
      [-1, [TO_EX]],
      [10, [TO_EX]],
    ],
  );
  t.equal(makeClocked().m.stats().queriesIgnored.vlan, 0);
  t.throws(() => make({ servedVlans: new Set([4095]) }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => make({ servedVlans: new Set([0]) }), { code: 'ERR_OUT_OF_RANGE' });
});

t.test('MLDv1 compatibility (RFC 3810 section 8.2): v1 reports and dones while a v1 querier is present', async (t) => {
  const { table, backend, m, clock } = makeClocked({ random: () => 0 });
  t.teardown(() => m.close());
  table.add('2001:db8::1', '2001:db8::2');
  m.sync();
  backend.clear();
  t.equal(m.stats().mldVersion, 2);

  // An MLDv1 general query: v1 mode, answered with one v1 report per group, to the group.
  m.handleMldQuery(query({ version: 1, group: null, maxResponseDelayMs: 10_000 }));
  clock.advance(1);
  t.same(
    backend
      .reports()
      .map((r) => [r.records[0]!.type, r.records[0]!.group])
      .sort(),
    [
      [V1_REPORT, 'ff02:0:0:0:0:1:ff00:1'],
      [V1_REPORT, 'ff02:0:0:0:0:1:ff00:2'],
    ],
  );
  // Older Version Querier Present Timeout = Robustness (our 1 here, none learned) x Query
  // Interval (default 125 s) + QRI (the v1 query's 10 s).
  t.match(m.stats(), { mldVersion: 1, olderVersionQuerierMs: 135_000 - 1 });

  // Joins and leaves in v1 mode: v1 report to the group, v1 done to ff02::2.
  backend.clear();
  table.add('2001:db8::3');
  m.sync();
  table.remove('2001:db8::2');
  m.sync();
  t.same(backend.reports(), [
    { vlan: -1, records: [{ type: V1_REPORT, group: 'ff02:0:0:0:0:1:ff00:3' }] },
    { vlan: -1, records: [{ type: V1_DONE, group: 'ff02:0:0:0:0:1:ff00:2' }] },
  ]);

  // An MLDv2 query while v1 mode lasts is answered in v1 as well.
  backend.clear();
  clock.advance(2000);
  m.handleMldQuery(query({ group: ip6('ff02::1:ff00:1'), maxResponseDelayMs: 0 }));
  clock.advance(1);
  t.same(backend.reports(), [{ vlan: -1, records: [{ type: V1_REPORT, group: 'ff02:0:0:0:0:1:ff00:1' }] }]);

  // Back to MLDv2 when the timer runs out (135 s after the v1 query).
  clock.advance(135_000 - 2002 - 1);
  t.equal(m.stats().mldVersion, 1, 'just before the timeout: still v1');
  clock.advance(1);
  t.match(m.stats(), { mldVersion: 2, olderVersionQuerierMs: 0 });
  backend.clear();
  m.handleMldQuery(query({ group: null, maxResponseDelayMs: 0 }));
  clock.advance(1);
  const reps = backend.reports();
  t.equal(reps.length, 1, 'one MLDv2 report again');
  t.same(
    reps[0]!.records.map((x) => x.type),
    [IS_EX, IS_EX],
  );
  backend.clear();
  table.add('2001:db8::4');
  m.sync();
  t.same(backend.reports(), [{ vlan: -1, records: [{ type: TO_EX, group: 'ff02:0:0:0:0:1:ff00:4' }] }]);
});

t.test(
  'MLDv1: the timeout follows the learned QRV and QQIC; close() sends dones; a v1 query to another node does not switch',
  async (t) => {
    const { table, backend, m, clock } = makeClocked({ random: () => 0 });
    table.add('2001:db8::1');
    m.sync();
    backend.clear();
    m.handleMldQuery(query({ version: 1, group: null, destination: ip6('2001:db8::bb') }));
    clock.advance(1);
    t.match(m.stats(), { mldVersion: 2 }, 'an ignored v1 query does not switch');
    // An MLDv2 querier with QRV 3, QQIC 20 s, then a v1 query with 1 s response delay: 3 x 20 + 1 = 61 s.
    m.handleMldQuery(query({ group: null, qrv: 3, qqicSeconds: 20, maxResponseDelayMs: 0 }));
    clock.advance(1);
    m.handleMldQuery(query({ version: 1, group: null, maxResponseDelayMs: 1000 }));
    t.match(m.stats(), { mldVersion: 1, olderVersionQuerierMs: 61_000 });
    // A pending MLDv2 retransmission is cancelled on the switch: no v2 report afterwards.
    clock.advance(1000);
    backend.clear();
    m.close();
    t.same(backend.reports(), [{ vlan: -1, records: [{ type: V1_DONE, group: 'ff02:0:0:0:0:1:ff00:1' }] }], 'close in v1 mode: a done');
    t.equal(clock.pending(), 0, 'no timers left');
  },
);

t.test('while the link-local address is not valid yet, reports come from :: (RFC 3810 5.2.13); then from it', async (t) => {
  const sources: string[] = [];
  let badChecksums = 0;
  const raw: MembershipBackend = {
    send(buf, offsets, lengths, count) {
      for (let i = 0; i < count; i++) {
        const f = buf.subarray(offsets[i]!, offsets[i]! + lengths[i]!);
        const src = f.subarray(14 + 8, 14 + 24);
        // checksum over the pseudo-header with that very source (ICMPv6 after the 8-byte Hop-by-Hop)
        const icmp = f.subarray(14 + 40 + 8);
        const sum = new DataView(icmp.buffer, icmp.byteOffset).getUint16(2);
        if (sum !== referenceIcmp6Checksum(src, f.subarray(14 + 24, 14 + 40), icmp)) badChecksums++;
        sources.push(groupText(src));
      }
      return count;
    },
    addMulticast() {},
    removeMulticast() {},
    setAllMulticast() {},
  };
  const table = new FakeTable();
  const clock = new FakeClock();
  const m = new MembershipManager({
    backend: raw,
    host: { ...host, linkLocalValid: false },
    table,
    coalesceMs: 5,
    unsolicitedReportIntervalMs: 40,
    random: () => 0.5,
    clock,
  });
  table.add('2001:db8::1');
  clock.advance(100);
  t.ok(sources.length >= 1, 'reported');
  t.ok(
    sources.every((s) => s === groupText(new Uint8Array(16))),
    `from :: while tentative (${sources.join(', ')})`,
  );
  sources.length = 0;
  m.setHost({ ...host, linkLocalValid: true });
  table.add('2001:db8::2');
  clock.advance(100);
  t.ok(sources.length >= 1, 'reported again');
  t.ok(
    sources.every((s) => s === groupText(host.linkLocal)),
    `from the link-local once valid (${sources.join(', ')})`,
  );
  m.close();
  t.equal(badChecksums, 0, 'checksums computed with the source used');
});

t.test('bulk mode: above bulkAddresses no per-group state or reports; back under half of it, every group joined', async (t) => {
  const tt = new TargetTable();
  const addr = (i: number): string => `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
  const rule = (i: number): Rule => makeRule(addr(i), Action.Answer, { kind: 'static', flag: '--address' });
  tt.replaceGroup(
    'static',
    Array.from({ length: 30 }, (_, i) => rule(i + 1)),
  );
  const backend = new FakeBackend();
  const m = new MembershipManager({ backend, host, table: tt, maxGroups: 1000, bulkAddresses: 20, robustness: 1, coalesceMs: 1000 });
  t.teardown(() => m.close());
  t.match(m.stats(), { bulk: true, groups: 0, macs: 0, addresses: 30, allmulti: true }, 'starts in bulk mode');
  t.same(backend.reports(), [], 'no join report');
  t.same(
    backend.events.filter((e) => e.op === 'add'),
    [],
    'no MAC',
  );

  // Changes in bulk mode: nothing per group, the count follows.
  backend.clear();
  tt.addRules('docker', [makeRule(addr(100), Action.Answer, { kind: 'docker', containerId: 'c', containerName: 'c', network: 'n' })]);
  m.sync();
  t.match(m.stats(), { bulk: true, addresses: 31, groups: 0 });
  t.same(backend.events, [], 'a change costs no back-end call');

  // Down to 11 (> 20 / 2): still bulk. Down to 10: per-group again, with a join for each group.
  tt.removeRules('static', (r) => r.prefix[15]! > 10);
  tt.removeRules('docker', () => true);
  m.sync();
  t.match(m.stats(), { bulk: false, addresses: 10, groups: 10, macs: 10, allmulti: false });
  const joined = backend.reports().flatMap((r) => r.records.map((x) => x.group));
  t.equal(joined.length, 10, 'one join record per group');
  t.ok(
    backend.events.some((e) => e.op === 'allmulti' && !e.on),
    'all-multicast off again',
  );

  // Up again past the threshold: bulk, MACs dropped, all-multicast on.
  backend.clear();
  tt.addRules(
    'static',
    Array.from({ length: 15 }, (_, i) => rule(1000 + i)),
  );
  m.sync();
  t.match(m.stats(), { bulk: true, groups: 0, macs: 0, allmulti: true, addresses: 25 });
  t.equal(backend.events.filter((e) => e.op === 'remove').length, 10, 'per-group MACs removed');
  t.same(backend.reports(), [], 'no reports for the new groups');
});
