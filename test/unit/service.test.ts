/**
 * The service layer's pure parts and the engine parts it wires, without sockets: the scope
 * builder (which addresses are ours), explain (the verdict for one address), the responder
 * (a batch in, answers out through one sink, counters) and the announcer (three unsolicited NAs
 * a second apart, stopped when the address goes).
 */
import t from 'tap';
import { formatAddress, parseAddress, parseMac } from '../../src/addr/index.js';
import { Announcer } from '../../src/engine/announcer.js';
import { Counters } from '../../src/engine/counters.js';
import { Responder } from '../../src/engine/responder.js';
import { DEFAULT_ANSWER_SETTINGS, type HostFacts } from '../../src/engine/types.js';
import type { FrameBatch } from '../../src/io/backend.js';
import type { InterfaceAddress } from '../../src/io/interface.js';
import { explainAddress } from '../../src/service/explain.js';
import { GROUP, Scope, ruleProblem, ruleWarnings } from '../../src/service/scope.js';
import { strictRule } from '../../src/cli/flags.js';
import { onLinkPrefixes } from '../../src/io/interface.js';
import { selectRules, type ContainerInfo } from '../../src/docker/addresses.js';
import { Action } from '../../src/table/rule.js';
import { makeRule } from '../../src/table/target-table.js';
import { makeNS } from '../support/frames.js';
import { checkAnswer } from '../support/reference-na.js';

const host: HostFacts = { ifname: 'eth0', mac: parseMac('02:00:00:00:00:02'), linkLocal: parseAddress('fe80::2') };
const prefix = (text: string) => makeRule(text, Action.Answer, { kind: 'static', flag: '--prefix' });
const exclude = (text: string) => makeRule(text, Action.Exclude, { kind: 'static', flag: '--exclude' });
const address = (text: string) => makeRule(text, Action.Answer, { kind: 'static', flag: '--address' });
const uplinkAddr = (text: string, len: number, scope: InterfaceAddress['scope'] = 'global'): InterfaceAddress => ({
  addr: parseAddress(text),
  prefixLength: len,
  scope,
  flags: 0,
});
const container = (name: string, ...addresses: string[]): ContainerInfo => ({
  id: `${name}-0123456789ab`,
  name,
  labels: {},
  running: true,
  addresses: addresses.map((a) => ({ network: 'bridge', networkId: 'n1', address: a })),
});
const dockerSet = (scope: Scope, ...cs: ContainerInfo[]) => {
  const sel = selectRules(cs, { scope: (a) => scope.dockerVerdict(a) });
  scope.replaceGroup(GROUP.docker, sel.rules);
  return sel;
};

t.test('scope: Docker addresses inside the on-link prefix when no answer rule is given', async (t) => {
  const s = new Scope();
  s.setStatic([]);
  s.setUplink({ ifname: 'eth0', addresses: [uplinkAddr('2001:db8:a::2', 64), uplinkAddr('fe80::2', 64, 'link')] });
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a::8000:1')), undefined, 'inside 2001:db8:a::/64');
  t.equal(s.dockerVerdict(parseAddress('2001:db8:b::1')), 'outside-on-link');
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a::2')), 'own-address', "the uplink's own address");
  t.equal(s.dockerVerdict(parseAddress('fe80::5')), 'not-unicast');
  t.equal(s.dockerVerdict(parseAddress('ff02::1')), 'not-unicast');
  t.equal(s.dockerVerdict(parseAddress('::1')), 'not-unicast');
  const sel = dockerSet(s, container('web1', '2001:db8:a::8000:1'), container('far', '2001:db8:b::1'));
  t.same(
    sel.rules.map((r) => r.text),
    ['2001:db8:a::8000:1/128'],
  );
  t.same(
    sel.skipped.map((x) => `${x.containerName} ${x.reason}`),
    ['far outside-on-link'],
  );
});

t.test('scope: with answer rules, only inside them; exclusions win; a reload re-admits', async (t) => {
  const s = new Scope();
  let rescoped = 0;
  s.onRescope(() => rescoped++);
  s.setUplink({ ifname: 'eth0', addresses: [uplinkAddr('2001:db8:a::2', 64)] });
  s.setStatic([prefix('2001:db8:a:0:8000::/66'), exclude('2001:db8:a:0:8000::/120')]);
  t.equal(rescoped, 2, 'each input change asks for re-admission');
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a:0:8000::1:1')), undefined, 'inside the /66');
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a::1:1')), 'outside-rules', 'on-link but outside every answer rule');
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a:0:8000::5')), 'excluded', 'under the /120 exclusion');
  // The docker group itself never admits an address: a container cannot vouch for itself.
  dockerSet(s, container('web1', '2001:db8:a:0:8000::1:1'));
  t.equal(s.table.groupSize(GROUP.docker), 1);
  s.setStatic([prefix('2001:db8:a:0:c000::/66')]);
  t.equal(s.dockerVerdict(parseAddress('2001:db8:a:0:8000::1:1')), 'outside-rules', 'after a reload the old range is out');
  t.equal(rescoped, 3);
  t.equal(s.setUplink({ ifname: 'eth0', addresses: [uplinkAddr('2001:db8:a::2', 64)] }), undefined, 'same addresses: no change');
  t.equal(rescoped, 3);
});

t.test('explain: the verdict of decide() for a neighbour NS, with the deciding rule', async (t) => {
  const s = new Scope();
  s.setUplink({ ifname: 'eth0', addresses: [uplinkAddr('2001:db8:a::2', 64)] });
  s.setStatic([prefix('2001:db8:a::/64'), exclude('2001:db8:a::100/120'), address('2001:db8:a::105')]);
  const ctx = { table: s.table, host, settings: DEFAULT_ANSWER_SETTINGS };
  const v = (a: string) => explainAddress(ctx, a);
  t.match(v('2001:db8:a::7'), { answered: true, verdict: 'answer', rule: { rule: '2001:db8:a::/64', from: '--prefix' } });
  t.match(v('2001:db8:a::101'), { answered: false, verdict: 'excluded', rule: { rule: '2001:db8:a::100/120' } });
  t.match(v('2001:db8:a::105'), { answered: true, rule: { rule: '2001:db8:a::105/128', from: '--address' } });
  t.equal(v('2001:db8:a::105').alsoCovering.length, 2, 'the exclusion and the prefix also cover it');
  t.match(v('2001:db8:a::2'), { answered: false, verdict: 'own-address' });
  t.match(v('2001:db8:b::1'), { answered: false, verdict: 'no-rule', rule: null });
  t.match(v('ff02::1'), { answered: false, verdict: 'target-multicast' });
  t.equal(v('2001:db8:a::7').solicitedNodeGroup, 'ff02::1:ff00:7');
  t.throws(() => v('zz'), { name: 'BadAddressError' });
  // A host whose MAC equals the default synthetic peer's still gets a real verdict.
  const odd = { ...ctx, host: { ...host, mac: parseMac('02:00:00:00:00:01') } };
  t.match(explainAddress(odd, '2001:db8:a::7'), { answered: true });
});

class RecordingSink {
  frames: Uint8Array[] = [];
  accept = true;
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (!this.accept) return 0;
    for (let i = 0; i < count; i++) this.frames.push(buf.slice(offsets[i]!, offsets[i]! + lengths[i]!));
    return count;
  }
}

function batchOf(frames: Uint8Array[]): FrameBatch {
  const size = frames.reduce((n, f) => n + f.length + 3, 0);
  const buf = new Uint8Array(size);
  const offsets = new Uint32Array(frames.length);
  const lengths = new Uint32Array(frames.length);
  let off = 3; // frames never start at 0 in a real ring
  frames.forEach((f, i) => {
    buf.set(f, off);
    offsets[i] = off;
    lengths[i] = f.length;
    off += f.length;
  });
  return { buf, offsets, lengths, count: frames.length };
}

t.test('responder: one batch in, every answer out in one send, counted', async (t) => {
  const s = new Scope();
  s.setStatic([prefix('2001:db8:a::/64'), exclude('2001:db8:a::100/120'), address('2001:db8:a::8')]);
  const sink = new RecordingSink();
  let sends = 0;
  const counted = { send: (...a: Parameters<RecordingSink['send']>) => (sends++, sink.send(...a)) };
  const r = new Responder({ sink: counted, table: s, host, settings: DEFAULT_ANSWER_SETTINGS });
  const ns = [
    makeNS({ target: '2001:db8:a::7' }),
    makeNS({ target: '2001:db8:a::101' }),
    makeNS({ target: '2001:db8:a::8', src: '::', sllao: null }),
    makeNS({ target: '2001:db8:a::9', hopLimit: 64 }),
    makeNS({ target: '2001:db8:a::a', ethSrc: '02:00:00:00:00:02' }),
  ];
  r.handleBatch(batchOf(ns));
  t.equal(sends, 1, 'one send for the batch');
  t.equal(sink.frames.length, 2, 'two answers');
  t.same(
    checkAnswer(ns[0]!, sink.frames[0]!, { mac: host.mac, sourcePolicy: 'target', override: false, router: false }),
    [],
    'a prefix-only answer: O=0',
  );
  t.same(
    checkAnswer(ns[2]!, sink.frames[1]!, { mac: host.mac, sourcePolicy: 'target', override: true, router: false }),
    [],
    'DAD for an exact address defended, O=1',
  );
  const c = r.counters.snapshot();
  t.same(c.answeredByKind, { answer: 1, 'dad-defence': 1 });
  t.same(c.drops, { excluded: 1, 'bad-hop-limit': 1, 'from-self': 1 });
  t.equal(c.sent, 2);
  sink.accept = false;
  r.handleBatch(batchOf([ns[0]!]));
  t.equal(r.counters.sendFailed, 1, 'a refused send is counted');
});

t.test('announcer: three unsolicited NAs a second apart, none after the address goes', async (t) => {
  const sink = new RecordingSink();
  const counters = new Counters();
  const a = new Announcer({ sink, host: () => host, settings: DEFAULT_ANSWER_SETTINGS, counters, intervalMs: 20 });
  t.teardown(() => a.close());
  const r1 = address('2001:db8:a::1');
  const r2 = address('2001:db8:a::2');
  a.added([r1, r2, prefix('2001:db8:b::/64')]);
  t.equal(sink.frames.length, 2, 'both /128s announced at once; a prefix cannot be');
  await new Promise((r) => setTimeout(r, 30));
  a.removed([r2]);
  const countOf = (x: string): number => sink.frames.filter((f) => formatAddress(f, 14 + 40 + 8) === x).length;
  // Timers run late on a loaded machine: wait for the third of the staying address (bounded), then one interval more.
  for (const end = Date.now() + 5000; countOf('2001:db8:a::1') < 3 && Date.now() < end;) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 60));
  const targets = sink.frames.map((f) => formatAddress(f, 14 + 40 + 8));
  t.same(targets.filter((x) => x === '2001:db8:a::1').length, 3, 'three for the address that stays');
  t.ok(targets.filter((x) => x === '2001:db8:a::2').length <= 2, 'the removed one stops');
  t.equal(counters.announced, sink.frames.length);
  for (const f of sink.frames) {
    t.equal(formatAddress(f, 14 + 24), 'ff02::1', 'to all-nodes');
    t.equal(f[14 + 40 + 4]! & 0x60, 0x20, 'S=0, O=1');
  }
});

t.test('rules that cannot be meant are refused; doubtful ones warned about', async (t) => {
  const src = { kind: 'static', flag: '--prefix' } as const;
  t.throws(() => strictRule('2003:ab11::8000/66', Action.Answer, src), {
    message: /host bits set beyond \/66; the prefix is 2003:ab11::\/66/,
  });
  t.equal(strictRule('2003:ab11:0:0:8000::/66', Action.Answer, src).text, '2003:ab11:0:0:8000::/66');
  for (const bad of ['::/0', 'ff02::/16', 'fe80::/64', 'fe80::1', '::1', '::', '8000::/1', '::/1', 'ff02::1:ff00:1']) {
    t.throws(() => strictRule(bad, Action.Answer, src), `${bad} is refused`);
  }
  t.equal(ruleProblem(parseAddress('2001:db8::'), 32), undefined);
  const onLink = onLinkPrefixes({ addresses: [uplinkAddr('2001:db8:a::2', 64)] });
  const w = ruleWarnings(
    [prefix('2001:db8:a:0:8000::/66'), prefix('2001:db8:a:0:8000::/66'), prefix('2001:db8:ff::/64'), exclude('2001:db8:ff::/80')],
    onLink,
  );
  t.equal(w.length, 2);
  t.match(w[0], /duplicate rule answer 2001:db8:a:0:8000::\/66/);
  t.match(w[1], /1 answer rule\(s\) lie outside every on-link prefix .*2001:db8:ff::\/64/);
});
