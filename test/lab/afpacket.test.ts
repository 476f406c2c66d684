/**
 * AfPacketBackend against a real kernel: namespaces R (the back end) and P (a peer) joined by
 * veth, plus Q (a Linux bridge acting as MLD querier) on a second link of R. The back end runs
 * inside R in a child process (test/lab/support/afpacket-agent.ts) driven over JSON lines.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { makeIcmp6Frame, makeMldQuery, makeNA, makeNS, solicitedNode, multicastMacOf } from '../support/frames.js';
import type { JsonLinesProcess, JsonRecord } from '../../src/lab/json-lines.js';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { collectUntil, drainFrames } from './support/agent-frames.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');

const R_MAC = '02:00:00:00:aa:01';
const P_MAC = '02:00:00:00:bb:02';

async function startAgent(ns: Netns, wrapper: string[] = []): Promise<JsonLinesProcess> {
  const argv = [...wrapper, 'node', '--import', 'tsx', AGENT, '--agent'];
  const p = ns.spawnJsonLines(argv[0]!, argv.slice(1), { cwd: ROOT });
  await p.waitFor((r) => r['ev'] === 'ready', 15_000);
  return p;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (hex: string): Buffer => Buffer.from(hex, 'hex');

/** ICMPv6 type of an untagged/tagged frame, following at most one 8-byte Hop-by-Hop header. */
function icmpType(f: Buffer): number | undefined {
  let l2 = 14;
  while (f.readUInt16BE(l2 - 2) === 0x8100 || f.readUInt16BE(l2 - 2) === 0x88a8) l2 += 4;
  if (f.readUInt16BE(l2 - 2) !== 0x86dd) return undefined;
  const nh = f[l2 + 6];
  if (nh === 58) return f[l2 + 40];
  if (nh === 0 && f[l2 + 40] === 58) return f[l2 + 48];
  return undefined;
}

/** Target address (text-free: hex) of an untagged NS. */
const nsTargetHex = (f: Buffer): string => f.subarray(14 + 40 + 8, 14 + 40 + 24).toString('hex');
const ip6Hex = (a: string): string => hexOf(makeNS({ target: a }).subarray(62, 78));

const lab = await Lab.create(t, 'nra');
const r = await lab.netns('r');
const p = await lab.netns('p');
const q = await lab.netns('q');
await lab.veth(r, 'eth0', p, 'eth0', { aMac: R_MAC, bMac: P_MAC });
await r.addr('eth0', '2001:db8::1/64');
await p.addr('eth0', '2001:db8::2/64');

const [ra, pa] = await Promise.all([startAgent(r), startAgent(p)]);
t.teardown(async () => {
  await Promise.all([ra.end(), pa.end()]);
});

// The peer's tool for crafted frames: a back end that receives everything, used to send.
await pa.call({ op: 'open', h: 'tx', ifname: 'eth0', filter: 'all', opts: { ignoreOutgoing: true } });

t.test('open errors are Node-style system errors', async (t) => {
  const e1 = (await ra.request({ op: 'open', h: 'x', ifname: 'nope0' }))['error'] as JsonRecord;
  t.equal(e1['code'], 'ENODEV');
  t.equal(e1['errno'], -19);
  t.equal(e1['syscall'], 'if_nametoindex');
  t.match(e1['message'], /no network interface 'nope0'/);

  const e2 = (await ra.request({ op: 'open', h: 'x', ifname: 'ghost0', opts: { ifindex: 99999 } }))['error'] as JsonRecord;
  t.equal(e2['code'], 'ENODEV', 'bind to a missing ifindex');
  t.equal(e2['syscall'], 'bind');

  const e3 = (await ra.request({ op: 'open', h: 'x', ifname: 'eth0', opts: { batchSize: 0 } }))['error'] as JsonRecord;
  t.equal(e3['code'], 'ERR_OUT_OF_RANGE', 'options are checked in JS');

  // Without CAP_NET_RAW (root, but the capability is removed from the bounding set).
  const unpriv = await startAgent(r, ['setpriv', '--bounding-set=-net_raw']);
  try {
    const e4 = (await unpriv.request({ op: 'open', ifname: 'eth0' }))['error'] as JsonRecord;
    t.equal(e4['code'], 'EPERM');
    t.equal(e4['syscall'], 'socket');
    t.match(e4['message'], /needs CAP_NET_RAW \(run as root\)/);
  } finally {
    await unpriv.end();
  }
});

t.test('receives the NS the kernel and ndisc6 send, and nothing else', async (t) => {
  await ra.call({ op: 'open', h: 'main', ifname: 'eth0' });
  await ra.call({ op: 'start', h: 'main', mode: 'frames' });
  // A second socket on the same link with no filter: proves the other traffic did arrive.
  await ra.call({ op: 'open', h: 'all', ifname: 'eth0', filter: 'all' });
  await ra.call({ op: 'start', h: 'all', mode: 'frames' });

  // Traffic that must NOT pass: pings to R's own address (echo request/reply, and the NS/NA
  // that resolve it: the NS does pass), a crafted echo request, an NA, an RS and an MLD report.
  const pings = await p.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '1', '2001:db8::1']);
  t.equal(pings.code, 0, 'R answers pings');
  const noise = [
    makeIcmp6Frame({
      ethDst: R_MAC,
      ethSrc: P_MAC,
      src: '2001:db8::2',
      dst: '2001:db8::1',
      hopLimit: 64,
      icmp: [128, 0, 0, 0, 0, 1, 0, 1],
    }),
    makeNA({ ethSrc: P_MAC, target: '2001:db8::2' }),
    makeIcmp6Frame({ ethSrc: P_MAC, dst: 'ff02::2', icmp: [133, 0, 0, 0, 0, 0, 0, 0] }),
    makeMldQuery({ ethSrc: P_MAC, type: 143, dst: 'ff02::16' }),
    makeNS({ ethSrc: P_MAC, target: '2001:db8::55', nextHeader: 17 }), // "NS" bytes inside UDP
  ];
  t.equal((await pa.call({ op: 'send', h: 'tx', frames: noise.map(hexOf) }))['sent'], noise.length);

  // Real NS: the kernel resolving an unknown neighbour, and ndisc6.
  const ping99 = p.exec('ping', ['-6', '-c', '1', '-W', '1', '2001:db8::99']);
  const nd = await p.exec('ndisc6', ['-1', '-r', '1', '-w', '300', '2001:db8::77', 'eth0']);
  t.not(nd.code, 0, 'nobody answers for ::77 (ndisc6 times out)');
  t.not((await ping99).code, 0, 'nobody answers for ::99');

  const seen: Buffer[] = [];
  const t99 = ip6Hex('2001:db8::99');
  const t77 = ip6Hex('2001:db8::77');
  await collectUntil(ra, 'main', (f) => nsTargetHex(f) === t99, seen);
  await collectUntil(ra, 'main', (f) => nsTargetHex(f) === t77, seen);
  await collectUntil(ra, 'all', (f) => icmpType(f) === 128, []);
  await new Promise((res) => setTimeout(res, 200));
  seen.push(...drainFrames(ra, 'main'));

  t.ok(seen.length >= 2, `received ${seen.length} frames`);
  for (const f of seen) {
    t.equal(f.readUInt16BE(12), 0x86dd, 'untagged IPv6');
    t.equal(f[20], 58, 'next header ICMPv6');
    t.equal(f[54], 135, 'ICMPv6 type NS right after the IPv6 header');
    t.equal(f[21], 255, 'hop limit 255');
  }
  const ns99 = seen.find((f) => nsTargetHex(f) === t99)!;
  t.equal(ns99.subarray(0, 6).toString('hex'), hexOf(multicastMacOf(solicitedNode('2001:db8::99'))), 'to the solicited-node MAC');
  t.equal(ns99.subarray(6, 12).toString('hex'), P_MAC.replaceAll(':', ''), 'from the peer');
  t.notOk(
    seen.some((f) => nsTargetHex(f) === ip6Hex('2001:db8::55')),
    'NS bytes inside UDP do not pass',
  );

  const stats = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  const counted = (await ra.call({ op: 'stats', h: 'main' }))['counted'] as number;
  t.equal(stats['received'], counted, 'received = frames handed to JS');
  t.ok(stats['kernelPackets']! >= counted, 'kernel counted at least as many');
  t.equal(stats['kernelDrops'], 0);
  t.ok(stats['batches']! >= 1 && stats['batches']! <= counted);
  await ra.call({ op: 'close', h: 'all' });
});

t.test('VLAN: the stripped tag is put back, for 802.1Q and 802.1ad', async (t) => {
  // Without relying on the kernel's 802.1Q support (docs/lab-notes.md), the peer sends tagged frames itself. The receiving kernel strips the
  // outer tag into metadata (skb_vlan_untag) before packet sockets see the frame.
  const dot1q = makeNS({ ethSrc: P_MAC, target: '2001:db8::100', vlan: 0xa064 }); // PCP 5, VID 100
  const qinq = makeNS({ ethSrc: P_MAC, target: '2001:db8::101', vlan: [0x00c8, 0x0064], tpid: [0x88a8, 0x8100] });
  const mld = makeMldQuery({ ethSrc: P_MAC, vlan: 7 });
  const before = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  await pa.call({ op: 'send', h: 'tx', frames: [dot1q, qinq, mld].map(hexOf) });
  const seen = await collectUntil(ra, 'main', (f) => f.equals(Buffer.from(mld)), []);
  await collectUntil(ra, 'main', (f) => f.equals(Buffer.from(qinq)), seen);
  const got1q = seen.find((f) => f.length === dot1q.length && f.readUInt16BE(12) === 0x8100);
  t.ok(got1q, 'tagged NS received');
  t.equal(got1q?.toString('hex'), hexOf(dot1q), 'byte for byte the frame on the wire, tag 0x8100 a064 included');
  t.ok(
    seen.some((f) => f.equals(Buffer.from(qinq))),
    '802.1ad outer tag (0x88a8) re-inserted, inner tag kept',
  );
  const after = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  t.ok(after['vlanReinserted']! - before['vlanReinserted']! >= 3, 'three tags re-inserted');
});

t.test('RX ring and recvmmsg deliver the same frames (tags, truncation, counters)', async (t) => {
  const main = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  t.ok(main['ringFrames']! > 0, 'the default back end receives through a ring');
  // Small slots (256 bytes: 252 of frame) so that a long frame is cut the same way by both.
  await ra.call({ op: 'open', h: 'ring', ifname: 'eth0', filter: 'all', opts: { rxRing: true, slotSize: 256 } });
  await ra.call({ op: 'open', h: 'mmsg', ifname: 'eth0', filter: 'all', opts: { rxRing: false, slotSize: 256 } });
  // Ring frames sized for a 68-byte MTU (256 bytes, the smallest): longer frames take the
  // PACKET_COPY_THRESH path (queued whole on the socket, marked TP_STATUS_COPY in the ring).
  await ra.call({ op: 'open', h: 'ringbig', ifname: 'eth0', filter: 'all', opts: { rxRing: true, mtu: 68, slotSize: 2048 } });
  await ra.call({ op: 'start', h: 'ring' });
  await ra.call({ op: 'start', h: 'mmsg' });
  await ra.call({ op: 'start', h: 'ringbig' });
  t.equal(((await ra.call({ op: 'stats', h: 'mmsg' }))['stats'] as Record<string, number>)['ringFrames'], 0, 'rxRing false: no ring');
  const long = makeIcmp6Frame({ ethSrc: P_MAC, icmp: [200, 0, 0, 0, ...new Array<number>(400).fill(0x5a)] });
  const frames = [
    makeNS({ ethSrc: P_MAC, target: '2001:db8::200' }),
    makeNS({ ethSrc: P_MAC, target: '2001:db8::201', vlan: 0xa064 }),
    makeNS({ ethSrc: P_MAC, target: '2001:db8::202', vlan: [0x00c8, 0x0064], tpid: [0x88a8, 0x8100] }),
    long,
  ];
  await pa.call({ op: 'send', h: 'tx', frames: frames.map(hexOf) });
  const last = (f: Buffer): boolean => f.length === 252 && f.subarray(0, 12).equals(Buffer.from(long.subarray(0, 12)));
  const viaRing = await collectUntil(ra, 'ring', last, []);
  const viaMmsg = await collectUntil(ra, 'mmsg', last, []);
  const ours = (fs: Buffer[]): string[] =>
    fs.filter((f) => f.subarray(6, 12).equals(bytes(P_MAC.replaceAll(':', '')))).map((f) => f.toString('hex'));
  t.same(ours(viaRing), ours(viaMmsg), 'same frames, same bytes, same order');
  t.equal(ours(viaRing).length, 4);
  t.equal(ours(viaRing)[1], hexOf(frames[1]!), '802.1Q tag put back from the ring header');
  t.equal(ours(viaRing)[2], hexOf(frames[2]!), '802.1ad outer tag put back from the ring header');
  t.equal(ours(viaRing)[3], hexOf(long.subarray(0, 252)), 'long frame cut to slotSize - 4');
  // Longer than a ring frame (about 190 bytes), shorter than a slot: handed over whole.
  const viaBig = await collectUntil(ra, 'ringbig', (f) => f.length === long.length, []);
  t.equal(ours(viaBig)[3], hexOf(long), 'a frame longer than a ring frame arrives whole, in order');
  await ra.call({ op: 'close', h: 'ringbig' });
  const sr = (await ra.call({ op: 'stats', h: 'ring' }))['stats'] as Record<string, number>;
  const sm = (await ra.call({ op: 'stats', h: 'mmsg' }))['stats'] as Record<string, number>;
  t.ok(sr['truncated']! >= 1 && sm['truncated']! >= 1, 'truncation counted by both');
  t.ok(sr['vlanReinserted']! >= 2 && sm['vlanReinserted']! >= 2, 'tags counted by both');
  t.equal(sr['kernelDrops'], 0);
  await ra.call({ op: 'close', h: 'ring' });
  await ra.call({ op: 'close', h: 'mmsg' });
});

t.test('send: a hand-built NA arrives at the peer, byte for byte', async (t) => {
  await pa.call({ op: 'open', h: 'cap', ifname: 'eth0', filter: 'na' });
  await pa.call({ op: 'start', h: 'cap', mode: 'frames' });
  const na = makeNA({ ethSrc: R_MAC, ethDst: P_MAC, src: '2001:db8::1', dst: '2001:db8::2', target: '2001:db8::99', solicited: true });
  const na2 = makeNA({
    ethSrc: R_MAC,
    ethDst: P_MAC,
    src: '2001:db8::1',
    dst: '2001:db8::2',
    target: '2001:db8::98',
    solicited: true,
    vlan: 42,
  });
  const before = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  t.equal((await ra.call({ op: 'send', h: 'main', frames: [hexOf(na), hexOf(na2)] }))['sent'], 2);
  const got = await collectUntil(pa, 'cap', (f) => f.equals(Buffer.from(na)), []);
  await collectUntil(pa, 'cap', (f) => f.equals(Buffer.from(na2)), got);
  t.pass('both frames captured at the peer unchanged (the VLAN one with its tag back)');

  // Again through PACKET_QDISC_BYPASS.
  await ra.call({ op: 'open', h: 'bypass', ifname: 'eth0', opts: { qdiscBypass: true } });
  const na3 = makeNA({ ethSrc: R_MAC, ethDst: P_MAC, src: '2001:db8::1', dst: '2001:db8::2', target: '2001:db8::97' });
  t.equal((await ra.call({ op: 'send', h: 'bypass', frames: [hexOf(na3)] }))['sent'], 1);
  await collectUntil(pa, 'cap', (f) => f.equals(Buffer.from(na3)), []);
  await ra.call({ op: 'close', h: 'bypass' });

  const after = (await ra.call({ op: 'stats', h: 'main' }))['stats'] as Record<string, number>;
  t.equal(after['sent']! - before['sent']!, 2, 'stats().sent');
  t.equal(after['sendErrors'], 0);
  const capStats = (await pa.call({ op: 'stats', h: 'cap' }))['stats'] as Record<string, number>;
  t.ok(capStats['received']! >= 3);
  await pa.call({ op: 'close', h: 'cap' });

  const bad = await ra.request({ op: 'send', h: 'main', frames: ['0011'] });
  t.equal((bad['error'] as JsonRecord)['code'], 'ERR_OUT_OF_RANGE', 'a 2-byte frame is refused in JS');
});

t.test('memberships: multicast MACs (reference counted), ALLMULTI, PROMISC', async (t) => {
  await ra.call({ op: 'open', h: 'mc', ifname: 'eth0' });
  const mac = '33:33:ff:00:00:99';
  const mac2 = '33:33:ff:00:00:98';
  t.notOk((await r.linkMulticast('eth0')).includes(mac), 'not there before');
  await ra.call({ op: 'addMulticast', h: 'mc', mac });
  await ra.call({ op: 'addMulticast', h: 'mc', mac });
  await ra.call({ op: 'addMulticast', h: 'mc', mac: mac2 });
  t.ok((await r.linkMulticast('eth0')).includes(mac), '`ip maddr` shows link 33:33:ff:00:00:99');
  await ra.call({ op: 'removeMulticast', h: 'mc', mac });
  t.ok((await r.linkMulticast('eth0')).includes(mac), 'still there after one of two removes');
  await ra.call({ op: 'removeMulticast', h: 'mc', mac });
  t.notOk((await r.linkMulticast('eth0')).includes(mac), 'gone after the second remove');
  const e = (await ra.request({ op: 'removeMulticast', h: 'mc', mac }))['error'] as JsonRecord;
  t.equal(e['code'], 'EADDRNOTAVAIL', 'removing one too many');
  const e2 = (await ra.request({ op: 'addMulticast', h: 'mc', mac: '02:00:00:00:00:01' }))['error'] as JsonRecord;
  t.equal(e2['code'], 'ERR_INVALID_ARG_VALUE', 'unicast MAC refused');

  // PACKET_MR_ALLMULTI / PACKET_MR_PROMISC raise the device's counters shown by `ip -d link`
  // ("allmulti N", "promiscuity N"); the ALLMULTI/PROMISC flag words of `ip link` only show
  // what `ip link set ... allmulticast on` set.
  t.same(await r.linkCounters('eth0'), { promiscuity: 0, allmulti: 0 }, 'counters at 0 before');
  await ra.call({ op: 'setAllMulticast', h: 'mc', on: true });
  await ra.call({ op: 'setAllMulticast', h: 'mc', on: true });
  t.equal((await r.linkCounters('eth0')).allmulti, 1, '`ip -d link` shows allmulti 1 (idempotent set)');
  await ra.call({ op: 'setAllMulticast', h: 'mc', on: false });
  t.equal((await r.linkCounters('eth0')).allmulti, 0, 'allmulti back to 0');
  await ra.call({ op: 'setAllMulticast', h: 'mc', on: true });
  await ra.call({ op: 'setPromiscuous', h: 'mc', on: true });
  t.same(await r.linkCounters('eth0'), { promiscuity: 1, allmulti: 1 }, '`ip -d link` shows promiscuity 1');

  // close() releases everything still held.
  t.ok((await r.linkMulticast('eth0')).includes(mac2));
  await ra.call({ op: 'close', h: 'mc' });
  t.notOk((await r.linkMulticast('eth0')).includes(mac2), 'close dropped the multicast MAC');
  t.same(await r.linkCounters('eth0'), { promiscuity: 0, allmulti: 0 }, 'close dropped allmulti and promiscuity');
  const e3 = (await ra.request({ op: 'addMulticast', h: 'mc', mac }))['error'] as JsonRecord;
  t.equal(e3['code'], 'EBADF', 'after close');
});

t.test('close() inside the batch callback', async (t) => {
  await ra.call({ op: 'open', h: 'cic', ifname: 'eth0' });
  await ra.call({ op: 'start', h: 'cic', mode: 'frames', closeInCallback: true });
  const ns = [1, 2, 3].map((i) => hexOf(makeNS({ ethSrc: P_MAC, target: `2001:db8::c${i}` })));
  await pa.call({ op: 'send', h: 'tx', frames: ns });
  const rec = await ra.waitFor((x) => x['ev'] === 'batch' && x['h'] === 'cic');
  t.equal(rec['closedInCallback'], true);
  t.equal(rec['fdAfterClose'], -1, 'fd closed at once');
  await pa.call({ op: 'send', h: 'tx', frames: ns });
  await new Promise((res) => setTimeout(res, 200));
  t.notOk(
    ra.records.some((x) => x['ev'] === 'batch' && x['h'] === 'cic'),
    'no batch after close',
  );
  const s = await ra.call({ op: 'stats', h: 'cic' });
  t.equal(s['fd'], -1);
  t.equal((s['stats'] as Record<string, number>)['batches'], 1, 'stats readable after close');
  await ra.call({ op: 'close', h: 'cic' });
  t.equal(ra.exitCode, null, 'agent still alive');
  const e = (await ra.request({ op: 'send', h: 'cic', frames: ns }))['error'] as JsonRecord;
  t.equal(e['code'], 'EBADF');
  t.equal(e['syscall'], 'sendmmsg');
});

t.test('MLD queries pass the filter: crafted, and from a real bridge querier', async (t) => {
  const crafted = makeMldQuery({ ethSrc: P_MAC });
  await pa.call({ op: 'send', h: 'tx', frames: [hexOf(crafted)] });
  await collectUntil(ra, 'main', (f) => f.equals(Buffer.from(crafted)), []);
  t.pass('crafted MLDv2 general query (Hop-by-Hop + type 130) received');

  // Q: a bridge with mcast_querier 1; its port qp0 is a veth to R's eth1.
  await lab.veth(r, 'eth1', q, 'qp0');
  await lab.bridge(q, 'br0', { querier: true });
  await q.ip(['link', 'set', 'qp0', 'master', 'br0']);
  await ra.call({ op: 'open', h: 'mld', ifname: 'eth1' });
  await ra.call({ op: 'start', h: 'mld', mode: 'frames' });
  // The querier starts with the bridge; toggling it makes it send a general query at once.
  await q.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '0']);
  await q.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '1']);
  const seen = await collectUntil(ra, 'mld', (f) => icmpType(f) === 130, [], 8000);
  const query = seen.find((f) => icmpType(f) === 130)!;
  t.equal(query[20], 0, 'IPv6 next header Hop-by-Hop');
  t.equal(query[54], 58, 'HBH next header ICMPv6');
  t.equal(query[62], 130, 'MLD query');
  t.equal(query.subarray(38, 54).toString('hex'), 'ff020000000000000000000000000001', 'to ff02::1');
  await ra.call({ op: 'close', h: 'mld' });
});

t.test("worker threads: the socket polls on the worker's own loop; terminating the worker closes it", async (t) => {
  const mac = '33:33:ff:00:00:42';
  await ra.call({ op: 'worker', ifname: 'eth0', mac });
  const started = await ra.waitFor((x) => x['ev'] === 'worker', 15_000);
  t.equal(started['state'], 'started', String(started['message'] ?? ''));
  t.ok((await r.linkMulticast('eth0')).includes(mac), "the worker's membership is on the link");
  await pa.call({ op: 'send', h: 'tx', frames: [hexOf(makeNS({ ethSrc: P_MAC, target: '2001:db8::42' }))] });
  const batch = await ra.waitFor((x) => x['ev'] === 'worker' && x['state'] === 'batch');
  t.ok((batch['count'] as number) >= 1, 'the worker received a batch');
  const term = await ra.call({ op: 'terminateWorker' });
  t.equal(term['exitCode'], 1, 'worker terminated');
  t.notOk((await r.linkMulticast('eth0')).includes(mac), 'its socket was closed by the env cleanup hook');
  t.ok((await ra.call({ op: 'stats', h: 'main' }))['stats'], "the main thread's back end is unaffected");

  // process.exit() with a started back end still open: a clean exit, no crash.
  const ex = await startAgent(r);
  await ex.call({ op: 'open', ifname: 'eth0' });
  await ex.call({ op: 'start', mode: 'frames' });
  await ex.call({ op: 'addMulticast', mac: '33:33:ff:00:00:43' });
  ex.child.stdin!.write(JSON.stringify({ op: 'exitNow', id: 0 }) + '\n');
  t.equal(await ex.end(), 0, 'exit code 0');
  t.notOk((await r.linkMulticast('eth0')).includes('33:33:ff:00:00:43'));
});
