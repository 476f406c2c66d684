import t from 'tap';
import fc from 'fast-check';
import { RadixTrie } from '../../src/table/trie.js';
import { parseCidr, parseAddress, formatCidr } from '../../src/addr/index.js';
import { Prng } from '../support/prng.js';
import { ReferenceTrie, masked } from '../support/reference-trie.js';
import { checkTrieInvariants } from '../support/trie-invariants.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const A = (text: string): Uint8Array => parseAddress(text);

function put<V>(trie: RadixTrie<V>, cidr: string, value: V): V | undefined {
  const c = parseCidr(cidr);
  return trie.insert(c.prefix, 0, c.length, value);
}

function listing<V>(trie: RadixTrie<V>): string[] {
  return [...trie.entries()].map((e) => `${formatCidr(e.key, e.length)}=${String(e.value)}`);
}

t.test('empty trie', async (t) => {
  const trie = new RadixTrie<string>();
  t.equal(trie.size, 0);
  t.equal(trie.lookup(A('2001:db8::1'), 0), undefined);
  t.equal(trie.lookupLength(A('::'), 0), -1);
  t.same([...trie.entries()], []);
  t.same([...trie.values()], []);
  t.equal(trie.delete(A('::'), 0, 0), undefined);
  t.equal(trie.delete(A('::1'), 0, 128), undefined);
  checkTrieInvariants(trie);
});

t.test('longest prefix match across /0, prefixes and /128', async (t) => {
  const trie = new RadixTrie<string>();
  t.equal(put(trie, '::/0', 'default'), undefined);
  t.equal(put(trie, '2001:db8::/32', 'doc'), undefined);
  t.equal(put(trie, '2001:db8:1::/48', 'site'), undefined);
  t.equal(put(trie, '2001:db8:1:2::/64', 'lan'), undefined);
  t.equal(put(trie, '2001:db8:1:2::/127', 'p2p'), undefined);
  t.equal(put(trie, '2001:db8:1:2::5', 'host'), undefined);
  t.equal(trie.size, 6);
  const cases: Array<[string, string, number]> = [
    ['2001:db8:1:2::5', 'host', 128],
    ['2001:db8:1:2::1', 'p2p', 127],
    ['2001:db8:1:2::', 'p2p', 127],
    ['2001:db8:1:2::2', 'lan', 64],
    ['2001:db8:1:2::4', 'lan', 64],
    ['2001:db8:1:3::5', 'site', 48],
    ['2001:db8:2::5', 'doc', 32],
    ['2001:db9::5', 'default', 0],
    ['::', 'default', 0],
  ];
  for (const [addr, want, len] of cases) {
    t.equal(trie.lookup(A(addr), 0), want, addr);
    t.equal(trie.lookupLength(A(addr), 0), len, `${addr} length`);
  }
  t.same(
    trie.matchAll(A('2001:db8:1:2::1'), 0).map((m) => `${m.length}=${m.value}`),
    ['127=p2p', '64=lan', '48=site', '32=doc', '0=default'],
  );
  t.same(listing(trie), [
    '::/0=default',
    '2001:db8::/32=doc',
    '2001:db8:1::/48=site',
    '2001:db8:1:2::/64=lan',
    '2001:db8:1:2::/127=p2p',
    '2001:db8:1:2::5/128=host',
  ]);
  t.equal(trie.delete(A('::'), 0, 0), 'default');
  t.equal(trie.lookup(A('2001:db9::5'), 0), undefined);
  t.equal(trie.lookupLength(A('2001:db9::5'), 0), -1);
  t.equal(trie.delete(A('2001:db8:1:2::'), 0, 127), 'p2p');
  t.equal(trie.lookup(A('2001:db8:1:2::1'), 0), 'lan');
  checkTrieInvariants(trie);
});

t.test('host bits are masked on insert, get and delete', async (t) => {
  const trie = new RadixTrie<string>();
  t.equal(trie.insert(A('2001:db8::ffff'), 0, 64, 'a'), undefined);
  t.equal(trie.get(A('2001:db8::'), 0, 64), 'a');
  t.equal(trie.get(A('2001:db8::1234'), 0, 64), 'a', 'get masks too');
  t.equal(trie.insert(A('2001:db8::1'), 0, 64, 'b'), 'a', 'same /64 overwrites and returns previous');
  t.equal(trie.size, 1);
  t.same(listing(trie), ['2001:db8::/64=b']);
  t.equal(trie.insert(A('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 0, 1, 'top'), undefined);
  t.same(listing(trie), ['2001:db8::/64=b', '8000::/1=top']);
  t.equal(trie.delete(A('2001:db8::abcd'), 0, 64), 'b');
  t.equal(trie.size, 1);
  checkTrieInvariants(trie);
});

t.test('get is exact, delete of absent keys changes nothing', async (t) => {
  const trie = new RadixTrie<number>();
  put(trie, '2001:db8::/48', 1);
  put(trie, '2001:db8::1', 2);
  t.equal(trie.get(A('2001:db8::'), 0, 64), undefined, 'no prefix matching in get');
  t.equal(trie.get(A('2001:db8::'), 0, 47), undefined);
  t.equal(trie.get(A('2001:db8::1'), 0, 128), 2);
  t.equal(trie.get(A('2001:db8::2'), 0, 128), undefined);
  t.ok(trie.has(A('2001:db8::'), 0, 48));
  t.notOk(trie.has(A('2001:db8::'), 0, 49));
  t.equal(trie.delete(A('2001:db8::'), 0, 64), undefined);
  t.equal(trie.delete(A('2001:db9::'), 0, 48), undefined, 'same length, other key');
  t.equal(trie.delete(A('2001:db8::2'), 0, 128), undefined);
  t.equal(trie.delete(A('2001:db8::'), 0, 0), undefined);
  t.equal(trie.size, 2);
  t.same(listing(trie), ['2001:db8::/48=1', '2001:db8::1/128=2']);
  checkTrieInvariants(trie);
});

t.test('keys and addresses at an offset', async (t) => {
  const trie = new RadixTrie<string>();
  const buf = new Uint8Array(40);
  buf.set(A('2001:db8::7'), 11);
  t.equal(trie.insert(buf, 11, 128, 'x'), undefined);
  t.equal(trie.insert(buf, 11, 64, 'net'), undefined);
  const pkt = new Uint8Array(64).fill(0xee);
  pkt.set(A('2001:db8::7'), 24);
  t.equal(trie.lookup(pkt, 24), 'x');
  pkt[39] = 8;
  t.equal(trie.lookup(pkt, 24), 'net');
  t.equal(trie.lookupLength(pkt, 24), 64);
  t.equal(trie.lookup(pkt, 48), undefined, 'last 16 bytes, nothing matches');
});

t.test('bad arguments are clear errors', async (t) => {
  const trie = new RadixTrie<number>();
  const k = new Uint8Array(16);
  t.throws(() => trie.insert(k, 0, 129, 1), RangeError);
  t.throws(() => trie.insert(k, 0, -1, 1), RangeError);
  t.throws(() => trie.insert(k, 0, 64.5, 1), RangeError);
  t.throws(() => trie.insert(k, 1, 64, 1), RangeError);
  t.throws(() => trie.insert(new Uint8Array(15), 0, 64, 1), RangeError);
  t.throws(() => trie.insert([] as unknown as Uint8Array, 0, 64, 1), TypeError);
  t.throws(() => trie.delete(k, -1, 64), RangeError);
  t.throws(() => trie.get(k, 0, NaN), RangeError);
  t.throws(() => trie.lookup(k, 1), RangeError);
  t.throws(() => trie.lookup(k, -1), RangeError);
  t.throws(() => trie.lookup(k, 0.5), RangeError);
  t.throws(() => trie.lookupLength(new Uint8Array(8), 0), RangeError);
  t.equal(trie.size, 0);
});

t.test('iteration throws when the trie changes underneath', async (t) => {
  const trie = new RadixTrie<number>();
  put(trie, '2001:db8::1', 1);
  put(trie, '2001:db8::2', 2);
  put(trie, '2001:db8::/64', 3);
  t.throws(() => {
    for (const e of trie.entries()) trie.delete(e.key, 0, e.length);
  }, /modified during iteration/);
  t.throws(() => {
    for (const v of trie.values()) put(trie, `2001:db8::${v + 10}`, v);
  }, /modified during iteration/);
  t.throws(() => trie.forEachValue((v) => put(trie, `2001:db8::${v + 20}`, v)), /modified during iteration/);
});

t.test('the invariant checks catch a corrupted store', async (t) => {
  const build = (): RadixTrie<number> => {
    const trie = new RadixTrie<number>();
    for (let i = 0; i < 40; i++) put(trie, `2001:db8::${i.toString(16)}`, i % 3);
    put(trie, '2001:db8::/64', 100);
    put(trie, '2001:db8:0:0:8000::/65', 101);
    put(trie, '2001:db8:1::/48', 102);
    checkTrieInvariants(trie);
    return trie;
  };
  const occupied = (trie: RadixTrie<number>): number => trie['hosts'].ctrl.findIndex((c) => c !== 0);
  let trie = build();
  trie['hosts'].ctrl[occupied(trie)]! ^= 1;
  t.throws(() => checkTrieInvariants(trie), /control byte/);
  trie = build();
  trie['hosts'].slotRefs[0]!++;
  t.throws(() => checkTrieInvariants(trie), /references counted/);
  trie = build();
  const lost = occupied(trie); // a bucket emptied behind the store's back
  trie['hosts'].ctrl[lost] = 0;
  trie['hosts'].buckets.fill(0, lost * 5, lost * 5 + 5);
  t.throws(() => checkTrieInvariants(trie), /hole in its probe run|exact count/);
  trie = build();
  const lengthWord = (trie: RadixTrie<number>, length: number): number =>
    trie['prefixes'].nodes.findIndex((v, i) => i % 4 === 2 && v === length);
  trie['prefixes'].nodes[lengthWord(trie, 64)] = 66; // the /64 node now claims to be longer than its /65 child
  t.throws(() => checkTrieInvariants(trie), /^node \d+: child 1 leaves the prefix/);
  trie = build();
  const slot48 = trie['prefixes'].nodes[lengthWord(trie, 48) + 1]!;
  trie['prefixes'].keys[slot48 * 4 + 3] = 1; // the key of 2001:db8:1::/48 gets a host bit
  t.throws(() => checkTrieInvariants(trie), /^node \d+: host bits set/);
  trie = build();
  trie['prefixes'].nodeTop++;
  t.throws(() => checkTrieInvariants(trie), /nodes leak/);
});

t.test('clear', async (t) => {
  const trie = new RadixTrie<number>();
  for (let i = 0; i < 100; i++) put(trie, `2001:db8::${i.toString(16)}/${100 + (i % 29)}`, i);
  for (let i = 0; i < 100; i++) put(trie, `2001:db8::${i.toString(16)}`, i);
  trie.clear();
  t.equal(trie.size, 0);
  t.equal(trie.lookup(A('2001:db8::1'), 0), undefined);
  put(trie, '2001:db8::1', 7);
  t.equal(trie.lookup(A('2001:db8::1'), 0), 7);
  checkTrieInvariants(trie);
});

t.test('shared values: overwrite and delete keep each entry its own value', async (t) => {
  const trie = new RadixTrie<object>();
  const red = { c: 'red' };
  const blue = { c: 'blue' };
  const key = (i: number): Uint8Array => A(`2001:db8::${i.toString(16)}`);
  for (let i = 0; i < 100; i++) trie.insert(key(i), 0, 128, i % 2 === 0 ? red : blue);
  checkTrieInvariants(trie);
  t.equal(trie.insert(key(4), 0, 128, blue), red, 'overwrite returns the old shared value');
  t.equal(trie.insert(key(4), 0, 128, blue), blue, 'same value again');
  t.equal(trie.lookup(key(4), 0), blue);
  t.equal(trie.lookup(key(6), 0), red, 'the neighbour sharing the old value keeps it');
  for (let i = 0; i < 100; i += 3) trie.delete(key(i), 0, 128);
  checkTrieInvariants(trie);
  let bad = 0;
  for (let i = 0; i < 100; i++) {
    const want = i % 3 === 0 ? undefined : i === 4 || i % 2 === 1 ? blue : red;
    if (trie.lookup(key(i), 0) !== want) bad++;
  }
  t.equal(bad, 0, 'every entry has its own value after overwrites and deletes');
  // Many distinct values interleaved with shared ones.
  for (let i = 100; i < 300; i++) trie.insert(key(i), 0, 128, i % 5 === 0 ? red : { i });
  checkTrieInvariants(trie);
  t.same((trie.lookup(key(123), 0) as { i: number }).i, 123);
  t.equal(trie.lookup(key(125), 0), red);
});

t.test('undefined as a value does not revive a freed value slot', async (t) => {
  const trie = new RadixTrie<string | undefined>();
  trie.insert(A('::ff'), 0, 128, 'keep'); // so the table does not reset when ::a goes
  trie.insert(A('::a'), 0, 128, undefined);
  trie.delete(A('::a'), 0, 128);
  trie.insert(A('::b'), 0, 128, undefined);
  trie.insert(A('::c'), 0, 128, 'x');
  t.ok(trie.has(A('::b'), 0, 128));
  t.equal(trie.lookup(A('::b'), 0), undefined);
  t.equal(trie.lookup(A('::c'), 0), 'x');
  checkTrieInvariants(trie);
});

t.test('many /128 in one /64 with deletes (hash growth and backward shift)', async (t) => {
  const trie = new RadixTrie<number>();
  const base = A('2001:db8:0:1::');
  const key = new Uint8Array(16);
  const setKey = (i: number): Uint8Array => {
    key.set(base);
    key[12] = (i >>> 24) & 0xff;
    key[13] = (i >>> 16) & 0xff;
    key[14] = (i >>> 8) & 0xff;
    key[15] = i & 0xff;
    return key;
  };
  const N = 20000;
  let replaced = 0;
  for (let i = 0; i < N; i++) if (trie.insert(setKey(i * 7), 0, 128, i) !== undefined) replaced++;
  t.equal(replaced, 0, 'all new');
  t.equal(trie.size, N);
  for (let i = 0; i < N; i += 2) trie.delete(setKey(i * 7), 0, 128);
  t.equal(trie.size, N / 2);
  let bad = 0;
  for (let i = 0; i < N; i++) {
    const want = i % 2 === 0 ? undefined : i;
    if (trie.lookup(setKey(i * 7), 0) !== want) bad++;
    if (trie.lookup(setKey(i * 7 + 1), 0) !== undefined) bad++;
  }
  t.equal(bad, 0, 'every lookup right after deleting half');
  checkTrieInvariants(trie);
  const listed = [...trie.entries()];
  t.equal(listed.length, N / 2);
  t.ok(
    listed.every((e, i) => i === 0 || Buffer.compare(listed[i - 1]!.key, e.key) < 0),
    'entries in address order',
  );
});

/** Random keys clustered around a few bases, so prefixes share long runs of bits. */
function makeGen(rng: Prng) {
  const bases = [new Uint8Array(16), new Uint8Array(16).fill(0xff), A('2001:db8:0:1::'), A('fe80::'), rng.bytes(16), rng.bytes(16)];
  const edgeLengths = [0, 1, 7, 8, 63, 64, 65, 66, 120, 126, 127, 128, 128, 128];
  return {
    key(): Uint8Array {
      const k = rng.pick(bases).slice();
      const from = rng.chance(0.5) ? rng.pick([64, 96, 112, 120, 124, 126, 127]) : rng.int(129);
      for (let i = from; i < 128; i++) if (rng.chance(0.5)) k[i >> 3] = k[i >> 3]! ^ (0x80 >> (i & 7));
      return k;
    },
    length(): number {
      return rng.chance(0.5) ? rng.pick(edgeLengths) : rng.int(129);
    },
  };
}

t.test('seeded random operations agree with a linear-scan reference', async (t) => {
  for (const seed of [1, 2, 3, 0xdecaf, 0x5eed]) {
    // Odd seeds draw values from a pool of three, so value slots are shared and reference counted.
    const shared = seed % 2 === 1;
    const rng = new Prng(seed);
    const gen = makeGen(rng);
    const trie = new RadixTrie<number>();
    const ref = new ReferenceTrie<number>();
    const live: Array<[Uint8Array, number]> = [];
    let mismatches = 0;
    let checks = 0;
    for (let op = 0; op < 4000; op++) {
      const r = rng.next() % 10;
      if (r < 5 || live.length === 0) {
        const k = gen.key();
        const len = gen.length();
        const v = shared ? op % 3 : op;
        if (trie.insert(k, 0, len, v) !== ref.insert(k, 0, len, v)) mismatches++;
        live.push([k, len]);
      } else if (r < 7) {
        // overwrite an existing prefix, through a key with different host bits
        const [k0, len] = rng.pick(live);
        const k = k0.slice();
        if (len < 128) k[15] = k[15]! ^ 1;
        const v = shared ? (op + 1) % 3 : -op;
        if (trie.insert(k, 0, len, v) !== ref.insert(k, 0, len, v)) mismatches++;
      } else if (r < 9) {
        const i = rng.int(live.length);
        const [k, len] = live[i]!;
        live[i] = live[live.length - 1]!;
        live.pop();
        if (trie.delete(k, 0, len) !== ref.delete(k, 0, len)) mismatches++;
      } else {
        const k = gen.key();
        const len = gen.length();
        if (trie.delete(k, 0, len) !== ref.delete(k, 0, len)) mismatches++;
      }
      if (op % 5 === 4) {
        for (let q = 0; q < 20; q++) {
          const a = q % 4 === 0 && live.length > 0 ? masked(rng.pick(live)[0], 0, 128) : gen.key();
          checks++;
          const want = ref.best(a, 0);
          if (trie.lookup(a, 0) !== want?.value || trie.lookupLength(a, 0) !== (want?.length ?? -1)) {
            mismatches++;
            t.fail(`seed ${seed} op ${op}: lookup ${hex(a)}: ${trie.lookup(a, 0)} vs ${want?.value}`);
          }
        }
        if (trie.size !== ref.size) mismatches++;
      }
      if (op % 500 === 499) {
        checkTrieInvariants(trie);
        const a = gen.key();
        t.same(
          trie.matchAll(a, 0).map((m) => [m.length, m.value]),
          ref.matchAll(a, 0).map((m) => [m.length, m.value]),
          `seed ${seed} op ${op}: matchAll`,
        );
      }
    }
    t.equal(mismatches, 0, `seed ${seed}: ${checks} lookups and every insert/delete result agree`);
    t.same(
      [...trie.entries()].map((e) => [hex(e.key), e.length, e.value]),
      ref.entries().map((e) => [hex(e.key), e.length, e.value]),
      `seed ${seed}: entries() order and content`,
    );
    const want = ref
      .entries()
      .map((e) => e.value)
      .sort((a, b) => a - b);
    t.same(
      [...trie.values()].sort((a, b) => a - b),
      want,
      'values()',
    );
    const each: number[] = [];
    trie.forEachValue((v) => each.push(v));
    t.same(
      each.sort((a, b) => a - b),
      want,
      'forEachValue()',
    );
    checkTrieInvariants(trie);
    // Drain completely: the trie returns to empty with no leaked nodes.
    let drainBad = 0;
    for (const e of ref.entries()) if (trie.delete(e.key, 0, e.length) !== e.value) drainBad++;
    t.equal(drainBad, 0, `seed ${seed}: every delete while draining returns the value`);
    t.equal(trie.size, 0, `seed ${seed}: drained`);
    checkTrieInvariants(trie);
  }
});

t.test('model-based property: command sequences against the reference', async (t) => {
  // Keys from a small clustered pool so that commands hit, miss, split and merge nodes.
  const keyArb = fc
    .tuple(fc.constantFrom(0x00, 0x20, 0xff), fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: 3 }))
    .map(([hi, bitFrom, pattern]) => {
      const k = new Uint8Array(16).fill(hi);
      for (let i = bitFrom; i < 128; i++) if (((i * (pattern + 1)) >> 1) & 1) k[i >> 3] = k[i >> 3]! ^ (0x80 >> (i & 7));
      return k;
    });
  const lenArb = fc.oneof(fc.constantFrom(0, 1, 64, 127, 128), fc.integer({ min: 0, max: 128 }));
  const cmd = fc.oneof(
    fc.record({ op: fc.constant('insert' as const), key: keyArb, len: lenArb, value: fc.integer() }),
    fc.record({ op: fc.constant('delete' as const), key: keyArb, len: lenArb }),
    fc.record({ op: fc.constant('get' as const), key: keyArb, len: lenArb }),
    fc.record({ op: fc.constant('lookup' as const), key: keyArb }),
  );
  fc.assert(
    fc.property(fc.array(cmd, { maxLength: 80 }), (cmds) => {
      const trie = new RadixTrie<number>();
      const ref = new ReferenceTrie<number>();
      for (const c of cmds) {
        switch (c.op) {
          case 'insert':
            if (trie.insert(c.key, 0, c.len, c.value) !== ref.insert(c.key, 0, c.len, c.value)) return false;
            break;
          case 'delete':
            if (trie.delete(c.key, 0, c.len) !== ref.delete(c.key, 0, c.len)) return false;
            break;
          case 'get':
            if (trie.get(c.key, 0, c.len) !== ref.get(c.key, 0, c.len)) return false;
            break;
          case 'lookup':
            if (trie.lookup(c.key, 0) !== ref.lookup(c.key, 0)) return false;
            if (trie.lookupLength(c.key, 0) !== ref.lookupLength(c.key, 0)) return false;
            break;
        }
        if (trie.size !== ref.size) return false;
      }
      checkTrieInvariants(trie);
      const got = [...trie.entries()].map((e) => `${hex(e.key)}/${e.length}=${e.value}`);
      const want = ref.entries().map((e) => `${hex(e.key)}/${e.length}=${e.value}`);
      return got.join() === want.join();
    }),
    { seed: 0x7e1e, numRuns: 400 },
  );
  t.pass('400 command sequences agree with the reference');
});
