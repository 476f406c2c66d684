/**
 * decide()'s link-level policy, with a real TargetTable, answers checked by the independent NA
 * reference:
 *  - VLANs: untagged and priority-tagged (VID 0) NS are answered; a tagged NS only when `--vlan`
 *    names its VLAN ID, and then the NA carries the same tag. Also the flag parser and the CLI's
 *    error lines.
 *  - Ethernet destination: a unicast MAC other than ours means the frame is for another host.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { UsageError, vlanFlags } from '../../src/cli/flags.js';
import { decide, Decision } from '../../src/engine/decide.js';
import type { AnswerSettings, HostFacts } from '../../src/engine/types.js';
import { UNTAGGED_ONLY, VlanSet } from '../../src/engine/vlans.js';
import { NA_FRAME_LEN_VLAN } from '../../src/ndp/constants.js';
import { dropReasonName } from '../../src/engine/verdict.js';
import { NsView } from '../../src/ndp/ns-view.js';
import { Action } from '../../src/table/rule.js';
import { TargetTable, makeRule } from '../../src/table/target-table.js';
import { ip6, mac, makeNS } from '../support/frames.js';
import { checkAnswer } from '../support/reference-na.js';

const root = new URL('../..', import.meta.url).pathname;
const TARGET = '2001:db8::8000:0:0:10';
const host: HostFacts = { ifname: 'v0', mac: mac('02:00:00:00:00:02'), linkLocal: ip6('fe80::2') };
const table = new TargetTable();
table.replaceGroup('static', [makeRule('2001:db8::8000:0:0:0/66', Action.Answer, { kind: 'static', flag: '--prefix' })]);

/** decide() on one frame: 'answer' (checked against the reference) or the drop reason's name. */
function verdict(frame: Uint8Array, vlans: AnswerSettings['vlans']): string {
  const settings: AnswerSettings = { sourcePolicy: 'target', router: false, override: true, vlans };
  const out = new Uint8Array(NA_FRAME_LEN_VLAN);
  const d = decide(frame, 0, frame.length, table, host, settings, new NsView(), out, 0, new Decision());
  if (!d.answered) return dropReasonName(d.reason);
  const problems = checkAnswer(frame, out.subarray(0, d.length), { mac: host.mac, sourcePolicy: 'target', router: false, override: true });
  return problems.length === 0 ? 'answer' : `wrong answer: ${problems.join('; ')}`;
}

t.test('decide: which tags are answered', async (t) => {
  const served = new VlanSet([42, 4094]);
  const cases: [string, Uint8Array, AnswerSettings['vlans'], string][] = [
    ['untagged, no --vlan', makeNS({ target: TARGET }), undefined, 'answer'],
    ['untagged, --vlan 42', makeNS({ target: TARGET }), served, 'answer'],
    ['VID 0 priority tag (PCP 5), no --vlan', makeNS({ target: TARGET, vlan: 0xa000 }), undefined, 'answer'],
    ['VID 999, no --vlan', makeNS({ target: TARGET, vlan: 999 }), undefined, 'vlan-not-served'],
    ['VID 999, explicit empty set', makeNS({ target: TARGET, vlan: 999 }), UNTAGGED_ONLY, 'vlan-not-served'],
    ['VID 999, --vlan 42', makeNS({ target: TARGET, vlan: 999 }), served, 'vlan-not-served'],
    ['VID 42, --vlan 42', makeNS({ target: TARGET, vlan: 42 }), served, 'answer'],
    ['VID 42 with PCP 7 and DEI, --vlan 42', makeNS({ target: TARGET, vlan: 0xf000 | 42 }), served, 'answer'],
    ['VID 4094, --vlan 4094', makeNS({ target: TARGET, vlan: 4094 }), served, 'answer'],
    ['VID 4095 (reserved) is never served', makeNS({ target: TARGET, vlan: 4095 }), served, 'vlan-not-served'],
    ['DAD probe on VID 42, --vlan 42: defended on VLAN 42', makeNS({ target: TARGET, src: '::', sllao: null, vlan: 42 }), served, 'answer'],
    ['DAD probe on VID 43, --vlan 42', makeNS({ target: TARGET, src: '::', sllao: null, vlan: 43 }), served, 'vlan-not-served'],
    ['invalid NS on VID 999: the codec reason wins', makeNS({ target: TARGET, vlan: 999, hopLimit: 64 }), undefined, 'bad-hop-limit'],
    ['VID 42 for a target with no rule', makeNS({ target: '2001:db8::1', vlan: 42 }), served, 'no-rule'],
  ];
  for (const [name, frame, vlans, want] of cases) t.equal(verdict(frame, vlans), want, name);
});

t.test('decide: Ethernet destination', async (t) => {
  const nud = { target: TARGET, src: '2001:db8::1', dst: TARGET };
  const cases: [string, Uint8Array, string][] = [
    ['unicast NUD probe to our MAC', makeNS({ ...nud, ethDst: '02:00:00:00:00:02' }), 'answer'],
    ["unicast NUD probe to another host's MAC", makeNS({ ...nud, ethDst: '02:00:00:00:00:99' }), 'other-host'],
    ['multicast NS to our MAC (unusual, still ours)', makeNS({ target: TARGET, ethDst: '02:00:00:00:00:02' }), 'answer'],
    ['multicast NS to another unicast MAC', makeNS({ target: TARGET, ethDst: '00:11:22:33:44:55' }), 'other-host'],
    ['multicast NS to the Ethernet broadcast address', makeNS({ target: TARGET, ethDst: 'ff:ff:ff:ff:ff:ff' }), 'answer'],
    ['multicast NS to its solicited-node MAC', makeNS({ target: TARGET }), 'answer'],
    ['DAD probe to another unicast MAC', makeNS({ target: TARGET, src: '::', sllao: null, ethDst: '02:00:00:00:00:99' }), 'other-host'],
    [
      'from our own MAC to another MAC: from-self first',
      makeNS({ ...nud, ethSrc: '02:00:00:00:00:02', ethDst: '02:00:00:00:00:99' }),
      'from-self',
    ],
  ];
  for (const [name, frame, want] of cases) t.equal(verdict(frame, undefined), want, name);
});

t.test('VlanSet', async (t) => {
  const s = new VlanSet([100, 7, 100, 4094, 1]);
  t.same(s.ids, [1, 7, 100, 4094], 'sorted, duplicates once');
  t.ok(s.servesTci(-1), 'untagged');
  t.ok(s.servesTci(0xe000), 'VID 0 with PCP 7');
  t.ok(s.servesTci(0x2064), 'VID 100 with PCP 1');
  t.notOk(s.servesTci(8), 'VID 8');
  t.notOk(s.servesTci(0xfff), 'VID 4095');
  t.notOk(UNTAGGED_ONLY.servesTci(1), 'the empty set serves no VLAN');
  for (const bad of [0, 4095, -1, 1.5, Number.NaN]) t.throws(() => new VlanSet([bad]), RangeError, `${bad} refused`);
});

t.test('--vlan parsing', async (t) => {
  t.equal(vlanFlags(undefined), UNTAGGED_ONLY, 'absent: untagged only');
  t.same(vlanFlags(['42']).ids, [42]);
  t.same(vlanFlags(['42', '7,100', ' 5 ']).ids, [5, 7, 42, 100], 'repeatable and comma-separated');
  for (const bad of ['0', '4095', '-1', 'x', '', '1.5', '42,', '0x10']) {
    t.throws(() => vlanFlags([bad]), UsageError, `'${bad}' is a usage error`);
  }
  t.throws(() => vlanFlags(['0']), /priority tag/, '0 explains itself');
});

t.test('CLI: a bad --vlan is one line and exit 2', async (t) => {
  for (const v of ['0', '4095', 'trunk']) {
    const args = [
      '--import',
      'tsx',
      `${root}src/cli.ts`,
      'replay',
      `${root}fixtures/vlan-ns.pcap`,
      '-o',
      '/dev/null',
      '--mac',
      '02:00:00:bb:00:42',
      '--vlan',
      v,
    ];
    try {
      execFileSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      t.fail(`--vlan ${v} should fail`);
    } catch (e) {
      const err = e as { status: number; stderr: string };
      t.equal(err.status, 2, `--vlan ${v}: exit 2`);
      t.match(err.stderr, /^ndp-responder: --vlan: .+\n$/, `--vlan ${v}: ${err.stderr.trim()}`);
    }
  }
});
