/**
 * Seeded mutation fuzz of the whole decision engine: frames near valid NS (test/support/mutate.ts)
 * through decide() with a real TargetTable. For every frame:
 *   - decide() never throws;
 *   - it answers exactly when an independent reference says so: the reference NS validator
 *     accepts the frame, it is not from the host's MAC, and a linear longest-prefix scan of the
 *     rules (exclusions and host addresses winning ties) ends on an answer rule;
 *   - every answer is right by the independent NA reference (test/support/reference-na.ts).
 *
 *   NDP_FUZZ_ITERATIONS=1000000 npx tap test/unit/engine-fuzz.test.ts   (default 5000)
 */
import t from 'tap';
import { decide, Decision } from '../../src/engine/decide.js';
import type { AnswerSettings, HostFacts } from '../../src/engine/types.js';
import { NA_FRAME_LEN_VLAN } from '../../src/ndp/constants.js';
import { dropReasonName } from '../../src/engine/verdict.js';
import { NsView } from '../../src/ndp/ns-view.js';
import { Action, type Rule } from '../../src/table/rule.js';
import { TargetTable, makeRule } from '../../src/table/target-table.js';
import { ip6, mac, makeNS } from '../support/frames.js';
import { BASES, NONCE, mutatedFrame } from '../support/mutate.js';
import { Prng } from '../support/prng.js';
import { checkAnswer } from '../support/reference-na.js';
import { referenceDecodeNS } from '../support/reference-ns.js';
import { covers } from '../support/reference-trie.js';
import { VlanSet } from '../../src/engine/vlans.js';

const ITERATIONS = Number(process.env.NDP_FUZZ_ITERATIONS ?? 5000);
/** The host's MAC; unicast NS (NUD probes) in the bases are sent to it, as a peer would. */
const HOST_MAC = '02:42:ac:11:00:09';
const SEED = Number(process.env.NDP_FUZZ_SEED ?? 0xe9e);

const rules: Rule[] = [
  makeRule('2001:db8::8000:0:0:0/112', Action.Answer, { kind: 'static', flag: '--prefix' }),
  makeRule('2001:db8::8000:0:0:20/126', Action.Exclude, { kind: 'static', flag: '--exclude' }),
  makeRule('2001:db8::8000:0:0:11', Action.Exclude, { kind: 'host', ifname: 'fuzz0' }),
  makeRule('fe80::abcd', Action.Answer, { kind: 'static', flag: '--address' }),
  makeRule('2001:db8::8000:0:0:10', Action.Answer, { kind: 'docker', containerId: 'c0ffee', containerName: 'web1', network: 'bridge' }),
];

/** The codec's bases plus valid NS for targets on each side of every rule. */
const ENGINE_BASES: readonly Uint8Array[] = [
  ...BASES,
  ...['2001:db8::8000:0:0:21', '2001:db8::8000:0:0:11', '2001:db8::8000:0:1:10', '2001:db8::8000:0:0:ffff', 'fe80::abce'].flatMap(
    (target) => [
      makeNS({ target }),
      makeNS({ target, src: '::', sllao: null, options: [NONCE] }),
      makeNS({ target, src: 'fe80::1', dst: target, vlan: 5, ethDst: HOST_MAC }),
      makeNS({ target, src: '2001:db8::1', dst: target, ethDst: HOST_MAC }),
    ],
  ),
];

/** Linear reference: longest covering rule; at equal length host > exclude > answer. */
function referenceVerdict(target: Uint8Array): 'answer' | 'drop' {
  let best: Rule | undefined;
  const rank = (r: Rule) => (r.source.kind === 'host' ? 2 : r.action === Action.Exclude ? 1 : 0);
  for (const r of rules) {
    if (!covers(r.prefix, r.length, target, 0)) continue;
    if (best === undefined || r.length > best.length || (r.length === best.length && rank(r) > rank(best))) best = r;
  }
  return best !== undefined && best.action === Action.Answer ? 'answer' : 'drop';
}

for (const sourcePolicy of ['target', 'link-local'] as const) {
  t.test(`engine fuzz, ${sourcePolicy} source policy (${ITERATIONS} frames, seed ${SEED})`, async (t) => {
    const table = new TargetTable();
    table.replaceGroup(
      'static',
      rules.filter((r) => r.source.kind === 'static'),
    );
    table.replaceGroup(
      'host',
      rules.filter((r) => r.source.kind === 'host'),
    );
    table.replaceGroup(
      'docker',
      rules.filter((r) => r.source.kind === 'docker'),
    );
    const host: HostFacts = { ifname: 'fuzz0', mac: mac(HOST_MAC), linkLocal: ip6('fe80::42:acff:fe11:9') };
    // One run serves VLANs 5 and 100 (the bases carry 5, 7, 100 and 0: priority tag), the other none.
    const served = sourcePolicy === 'target' ? [5, 100] : [];
    const settings: AnswerSettings = { sourcePolicy, router: sourcePolicy === 'link-local', override: true, vlans: new VlanSet(served) };
    const rng = new Prng(SEED + (sourcePolicy === 'target' ? 0 : 1));
    const view = new NsView();
    const d = new Decision();
    const out = new Uint8Array(NA_FRAME_LEN_VLAN + 16);
    const problems: string[] = [];
    const verdicts = new Map<string, number>();
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

    for (let i = 0; i < ITERATIONS; i++) {
      const f = mutatedFrame(rng, ENGINE_BASES);
      if (rng.chance(0.02) && f.length >= 12)
        f.set(host.mac, 6); // our own frames come back sometimes
      else if (rng.chance(0.02) && f.length >= 6) f.set(mac('02:00:00:00:00:99'), 0); // unicast to another host
      try {
        decide(f, 0, f.length, table, host, settings, view, out, 8, d);
      } catch (e) {
        problems.push(`threw ${String(e)} on ${hex(f)}`);
        continue;
      }
      const key = d.kind !== 0 ? 'answered' : dropReasonName(d.reason);
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
      const ref = referenceDecodeNS(f);
      const fromSelf = f.length >= 12 && hex(f.subarray(6, 12)) === hex(host.mac);
      // A unicast Ethernet destination must be ours (a group MAC, I/G bit set, is for everyone).
      const otherHost = f.length >= 12 && (f[0]! & 1) === 0 && hex(f.subarray(0, 6)) !== hex(host.mac);
      // Untagged, VID 0 (priority tag only) or a served VLAN ID may be answered.
      const vid = ref.vlanTci & 0x0fff;
      const onServedVlan = ref.vlanTci === -1 || vid === 0 || served.includes(vid);
      const want =
        ref.problem === null && !fromSelf && !otherHost && onServedVlan
          ? referenceVerdict(f.subarray(ref.targetOffset, ref.targetOffset + 16))
          : 'drop';
      const got = d.kind !== 0 ? 'answer' : 'drop';
      if (want !== got) {
        problems.push(`engine ${got} (${dropReasonName(d.reason)}), reference ${want} (${ref.problem ?? 'valid'}): ${hex(f)}`);
        continue;
      }
      if (got === 'answer') {
        const p = checkAnswer(f, out.subarray(8, 8 + d.length), {
          mac: host.mac,
          sourcePolicy,
          linkLocal: host.linkLocal,
          router: settings.router,
          override: true,
        });
        if (p.length > 0) problems.push(`wrong answer (${p.join('; ')}) to ${hex(f)}`);
      }
    }
    t.same(problems.slice(0, 10), [], `no false answers, no missed answers, no wrong answers (${problems.length} problems)`);
    t.comment([...verdicts].map(([k, v]) => `${k}=${v}`).join(' '));
    t.ok((verdicts.get('answered') ?? 0) > ITERATIONS * 0.02, 'the fuzz reaches answers');
    for (const r of ['no-rule', 'excluded', 'own-address', 'from-self', 'vlan-not-served', 'other-host']) {
      if (ITERATIONS >= 2000) t.ok((verdicts.get(r) ?? 0) > 0, `reaches ${r}`);
    }
  });
}
