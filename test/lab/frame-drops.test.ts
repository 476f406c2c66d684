/**
 * `ndp-responder run` (afpacket back end) on a real kernel must not answer NS frames that Linux's
 * own IPv6 input would throw away, nor NS tagged with a VLAN the uplink does not serve.
 *
 * Namespaces R (the responder, `--prefix 2001:db8::8000:0:0:0/66 --vlan 42`) and P (the peer)
 * joined by veth. P sends crafted frames through a raw AF_PACKET socket
 * (test/lab/support/afpacket-agent.ts) and captures every NA that reaches it on a second socket.
 * The frames that must be dropped go first, two valid NS (untagged, and tagged VID 42) last:
 * their answers prove the responder has read everything before them, in order. Then: no NA for
 * any dropped target, and each drop counted under its own reason in /metrics and in the
 * daemon's `stopped` log line. (A NUD probe to another host's MAC is in the list too: Linux's
 * PACKET_OTHERHOST, which a veth still delivers to packet sockets.)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeNS } from '../support/frames.js';
import type { JsonLinesProcess } from '../../src/lab/json-lines.js';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const R_MAC = '02:00:00:00:fd:01';
const P_MAC = '02:00:00:00:fd:02';
const P_ADDR = '2001:db8::2';
const METRICS = '[::1]:9464';
const PREFIX = '2001:db8::8000:0:0:0/66';
const T = (last: string): string => `2001:db8::8000:0:0:${last}`;

/** The frames that must not be answered: [reason the daemon must count, target, frame]. */
const DROPS: [string, string, Uint8Array][] = [
  ['loopback-source', T('21'), makeNS({ ethSrc: P_MAC, src: '::1', target: T('21') })],
  ['ipv4-mapped-source', T('22'), makeNS({ ethSrc: P_MAC, src: '::ffff:192.0.2.1', target: T('22') })],
  ['vlan-not-served', T('23'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('23'), vlan: 999 })],
  ['loopback-destination', T('24'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('24'), dst: '::1', ethDst: R_MAC })],
  ['interface-local-destination', T('25'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('25'), dst: 'ff01::1:ff00:25' })],
  ['reserved-scope-destination', T('26'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('26'), dst: 'ff00::1:ff00:26' })],
  // A NUD probe to another host's MAC: a veth hands it to packet sockets all the same.
  ['other-host', T('27'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('27'), dst: T('27'), ethDst: '02:00:00:00:fd:99' })],
];
/** Valid NS sent after the drops: both must be answered (the second with VLAN tag 42). */
const CONTROLS: [string, Uint8Array][] = [
  [T('10'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('10') })],
  [T('11'), makeNS({ ethSrc: P_MAC, src: P_ADDR, target: T('11'), vlan: 42 })],
];

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const targetHex = (a: string): string => hex(makeNS({ target: a }).subarray(62, 78));

/** NA frames (hex) the peer's capture socket has reported so far (taken out of the record list). */
function drainNAs(p: JsonLinesProcess, into: Buffer[]): Buffer[] {
  for (let i = 0; i < p.records.length; i++) {
    const r = p.records[i]!;
    if (r['ev'] === 'batch' && r['h'] === 'rx') {
      into.push(...(r['frames'] as string[]).map((f) => Buffer.from(f, 'hex')));
      p.records.splice(i--, 1);
    }
  }
  return into;
}

/** Target (hex) and VLAN ID (-1 untagged) of an NA frame. */
function naTarget(f: Buffer): { target: string; vid: number } {
  const tagged = f.readUInt16BE(12) === 0x8100;
  const l2 = tagged ? 18 : 14;
  return { target: f.subarray(l2 + 48, l2 + 64).toString('hex'), vid: tagged ? f.readUInt16BE(14) & 0xfff : -1 };
}

async function metrics(r: Netns): Promise<Map<string, number>> {
  const js = `fetch('http://${METRICS}/metrics').then((x) => x.text()).then((s) => process.stdout.write(s))`;
  const text = await r.execOk(process.execPath, ['-e', js], { timeoutMs: 10_000 });
  const drops = new Map<string, number>();
  for (const m of text.matchAll(/^ndp_drops_total\{reason="([a-z0-9-]+)"\} (\d+)/gm)) drops.set(m[1]!, Number(m[2]));
  return drops;
}

t.test('afpacket: NS Linux drops on input, and NS on an unserved VLAN, are dropped and counted', async (t) => {
  const lab = await Lab.create(t, 'nfd');
  const r = await lab.netns('r');
  const p = await lab.netns('p');
  await lab.veth(r, 'eth0', p, 'eth0', { aMac: R_MAC, bMac: P_MAC });
  await r.addr('eth0', '2001:db8::1/64');
  await p.addr('eth0', `${P_ADDR}/64`);
  // The container range sits behind R (routed to a veth whose both ends are in R, as a Docker
  // bridge would be), so the route check lets R answer for it.
  await r.ip(['link', 'add', 'ct0', 'type', 'veth', 'peer', 'name', 'ct1']);
  await r.up('ct0');
  await r.up('ct1');
  await r.ip(['-6', 'route', 'add', PREFIX, 'dev', 'ct0']);

  // The responder, as an operator runs it.
  const daemon = r.spawn(process.execPath, [
    CLI,
    'run',
    '--interface',
    'eth0',
    '--backend',
    'afpacket',
    '--prefix',
    PREFIX,
    '--vlan',
    '42',
    '--metrics',
    METRICS,
    '--log-level',
    'info',
    '--no-announce',
  ]);
  const log: string[] = [];
  daemon.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  t.teardown(() => void daemon.kill('SIGKILL'));
  await waitFor(() => log.some((l) => l.includes('"msg":"ready"')), { timeoutMs: 20_000, what: 'the responder to be ready' });

  // The peer: one raw socket to send, one capturing every NA that arrives.
  const pa = p.spawnJsonLines('node', ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT });
  t.teardown(() => pa.end());
  await pa.waitFor((x) => x['ev'] === 'ready', 15_000);
  await pa.call({ op: 'open', h: 'tx', ifname: 'eth0', filter: 'all', opts: { ignoreOutgoing: true } });
  await pa.call({ op: 'open', h: 'rx', ifname: 'eth0', filter: 'na', opts: { ignoreOutgoing: true } });
  await pa.call({ op: 'start', h: 'rx', mode: 'frames' });

  const frames = [...DROPS.map(([, , f]) => f), ...CONTROLS.map(([, f]) => f)];
  const sent = await pa.call({ op: 'send', h: 'tx', frames: frames.map(hex) });
  t.equal(sent['sent'], frames.length, `the peer sent ${frames.length} frames`);

  const nas: Buffer[] = [];
  const answeredFor = (a: string): { target: string; vid: number }[] => nas.map(naTarget).filter((n) => n.target === targetHex(a));
  await waitFor(() => drainNAs(pa, nas) && CONTROLS.every(([a]) => answeredFor(a).length > 0), {
    timeoutMs: 5000,
    what: 'answers to both valid NS sent after the others',
  });
  t.same(
    answeredFor(T('10')).map((n) => n.vid),
    [-1],
    'the untagged NS is answered untagged',
  );
  t.same(
    answeredFor(T('11')).map((n) => n.vid),
    [42],
    'the NS on VLAN 42 (--vlan 42) is answered on VLAN 42',
  );

  // The answers to the last two frames mean everything before them was read and decided, so
  // no NA for a dropped frame can still be on its way; a little slack anyway, then the counters.
  await new Promise((res) => setTimeout(res, 300));
  drainNAs(pa, nas);
  const counted = await metrics(r);
  for (const [reason, target] of DROPS) {
    t.same(answeredFor(target), [], `${reason}: no NA for ${target} reached the peer`);
    t.equal(counted.get(reason), 1, `${reason}: counted once in /metrics`);
  }
  t.equal(nas.length, CONTROLS.length, 'the peer saw exactly the two answers, nothing else');

  // The same counters at exit, in the `stopped` line.
  const exited = new Promise<number | null>((res) => daemon.once('exit', (code) => res(code)));
  daemon.kill('SIGTERM');
  t.equal(
    await Promise.race([exited, new Promise<string>((res) => setTimeout(() => res('timeout'), 10_000))]),
    0,
    'the responder exits 0 on SIGTERM',
  );
  const stopped = log
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .find((x) => x['msg'] === 'stopped');
  const drops = ((stopped?.['counters'] as Record<string, unknown> | undefined)?.['drops'] ?? {}) as Record<string, number>;
  for (const [reason] of DROPS) t.equal(drops[reason], 1, `${reason}: 1 in the stopped log line`);
  const answered = (stopped?.['counters'] as Record<string, unknown> | undefined)?.['answered'];
  t.equal(answered, CONTROLS.length, 'two answers in the stopped log line');
});
