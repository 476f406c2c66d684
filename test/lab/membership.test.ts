/**
 * MembershipManager on a real link, with each live back end (afpacket, pcap):
 *
 *   P (peer) eth0 -- pp [ S: br0, MLD snooping + querier, mcast_flood off on both ports ] pr -- eth0 R
 *
 * R runs the back end, a TargetTable and the manager (this file again, with `--agent`, inside R). The bridge
 * forwards a solicited-node NS to R only once R has reported the group with MLD, which is what
 * the manager is for. tcpdump on the switch port pr records every MLD report R sends.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveJsonLines } from '../../src/lab/json-lines.js';

if (process.argv[2] === '--agent') await agent();
else await main();

// ---------------------------------------------------------------------------------------------
// Agent, inside R: a back end, the target table, the manager; JSON lines on stdio.

async function agent(): Promise<void> {
  const { MembershipManager } = await import('../../src/engine/membership.js');
  const { parseMldQuery } = await import('../../src/ndp/mld.js');
  const { formatAddress } = await import('../../src/addr/index.js');
  const { readInterfaceFacts, toSenderFacts } = await import('../../src/io/interface.js');
  const { Action } = await import('../../src/table/rule.js');
  const { TargetTable, makeRule } = await import('../../src/table/target-table.js');
  type PacketBackend = import('../../src/io/backend.js').PacketBackend;
  type Manager = import('../../src/engine/membership.js').MembershipManager;

  // The real table: a group of /128 answers and a group of answer prefixes.
  const table = new TargetTable();
  const addresses = new Set<string>();
  const setAddresses = (): void =>
    void table.replaceGroup(
      'lab',
      [...addresses].map((a) => makeRule(a, Action.Answer, { kind: 'static', flag: '--address' })),
    );
  const setPrefixes = (n: number): void =>
    void table.replaceGroup(
      'prefixes',
      Array.from({ length: n }, (_, i) =>
        makeRule(`2001:db8:${(i + 1).toString(16)}::/64`, Action.Answer, { kind: 'static', flag: '--prefix' }),
      ),
    );

  const out = (rec: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(rec) + '\n');
  let backend: PacketBackend | undefined;
  let manager: Manager | undefined;

  const handle = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    switch (req['op']) {
      case 'open': {
        const ifname = req['ifname'] as string;
        const host = toSenderFacts(readInterfaceFacts(ifname));
        if (req['backend'] === 'pcap') {
          const { PcapBackend } = await import('../../src/io/pcap-backend.js');
          backend = PcapBackend.open({ ifname, host });
        } else {
          const { AfPacketBackend } = await import('../../src/io/afpacket.js');
          backend = AfPacketBackend.open({ ifname });
        }
        const b = backend;
        manager = new MembershipManager({
          backend: b,
          host,
          table,
          unsolicitedReportIntervalMs: req['uriMs'] as number,
          ...(req['maxGroups'] !== undefined ? { maxGroups: req['maxGroups'] as number } : {}),
        });
        const m = manager;
        b.start((batch) => {
          for (let i = 0; i < batch.count; i++) {
            const off = batch.offsets[i]!;
            const len = batch.lengths[i]!;
            const q = parseMldQuery(batch.buf, off, len);
            if (q !== null) {
              m.handleMldQuery(q);
              out({ ev: 'query', group: q.group && formatAddress(q.group), maxResponseDelayMs: q.maxResponseDelayMs });
              continue;
            }
            const f = batch.buf.subarray(off, off + len);
            if (len >= 78 && f[12] === 0x86 && f[13] === 0xdd && f[54] === 135) out({ ev: 'ns', target: formatAddress(f, 62) });
          }
        });
        return {};
      }
      case 'add':
        for (const a of req['addresses'] as string[]) addresses.add(a);
        setAddresses();
        return {};
      case 'remove':
        for (const a of req['addresses'] as string[]) addresses.delete(a);
        setAddresses();
        return {};
      case 'prefixes':
        setPrefixes(req['n'] as number);
        return {};
      case 'stats':
        return { manager: manager!.stats(), backend: backend!.stats() };
      case 'close':
        manager!.close();
        backend!.close();
        return { manager: manager!.stats() };
      default:
        throw new Error(`unknown op ${String(req['op'])}`);
    }
  };

  serveJsonLines(handle);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { default: t } = await import('tap');
  const { Lab } = await import('../../src/lab/netns.js');
  const { waitFor } = await import('../../src/lab/process.js');
  type Netns = import('../../src/lab/netns.js').Netns;
  type JsonLinesProcess = import('../../src/lab/json-lines.js').JsonLinesProcess;

  const SELF = fileURLToPath(import.meta.url);
  const ROOT = join(SELF, '..', '..', '..');
  const R_MAC = '02:00:00:00:aa:01';
  const P_MAC = '02:00:00:00:bb:02';

  // Two addresses in one solicited-node group (low 24 bits 00:00:10), one in another.
  const A1 = '2001:db8::a:0:10';
  const A2 = '2001:db8::b:0:10';
  const B1 = '2001:db8::c:12:3456';
  const G_A = 'ff02::1:ff00:10';
  const G_B = 'ff02::1:ff12:3456';
  const MAC_A = '33:33:ff:00:00:10';
  const MAC_B = '33:33:ff:12:34:56';

  const tmp = mkdtempSync(join(tmpdir(), 'membership-lab-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

  /** IPv6 text of 16 bytes, RFC 5952 (small and independent of src/). */
  function ip6Text(b: Uint8Array): string {
    const g: string[] = [];
    for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    const s = g.join(':');
    const runs = [...s.matchAll(/(^|:)0(:0)+(:|$)/g)];
    if (runs.length === 0) return s;
    const best = runs.reduce((a, b) => (b[0].length > a[0].length ? b : a));
    return `${s.slice(0, best.index)}::${s.slice(best.index! + best[0].length)}`;
  }

  interface Record_ {
    type: number;
    group: string;
  }
  /** MLDv2 reports (ICMPv6 143 after an 8-byte Hop-by-Hop header) from R_MAC in a pcap file. */
  function reportsIn(path: string): Record_[][] {
    const b = readFileSync(path);
    const reps: Record_[][] = [];
    for (let o = 24; o + 16 <= b.length;) {
      const len = b.readUInt32LE(o + 8);
      const f = b.subarray(o + 16, o + 16 + len);
      o += 16 + len;
      if (f.subarray(6, 12).toString('hex') !== R_MAC.replaceAll(':', '')) continue;
      if (f.readUInt16BE(12) !== 0x86dd || f[20] !== 0 || f[54] !== 58 || f[62] !== 143) continue;
      if (f[21] !== 1) throw new Error('MLD report with hop limit != 1');
      const n = f.readUInt16BE(62 + 6);
      const recs: Record_[] = [];
      for (let i = 0; i < n; i++) {
        const r = 62 + 8 + 20 * i;
        recs.push({ type: f[r]!, group: ip6Text(f.subarray(r + 4, r + 20)) });
      }
      reps.push(recs);
    }
    return reps;
  }

  async function mdbGroups(s: Netns, port: string): Promise<string[]> {
    const j = JSON.parse(await s.execOk('bridge', ['-j', 'mdb', 'show', 'dev', 'br0'])) as { mdb?: { port: string; grp: string }[] }[];
    return (j[0]?.mdb ?? []).filter((e) => e.port === port).map((e) => e.grp);
  }

  for (const kind of ['afpacket', 'pcap'] as const) {
    t.test(`${kind}: MACs, all-multicast, MLD reports and a snooping switch`, async (t) => {
      const lab = await Lab.create(t, 'nmb');
      const r = await lab.netns('r');
      const p = await lab.netns('p');
      const s = await lab.netns('s');
      // The switch: snooping, querier with short intervals (queries every 1.5 s, 0.5 s max
      // response delay; leaves expire after 2 x 0.1 s).
      await s.ip([
        'link',
        'add',
        'br0',
        'type',
        'bridge',
        'mcast_snooping',
        '1',
        'mcast_querier',
        '1',
        'mcast_mld_version',
        '2',
        'mcast_query_interval',
        '150',
        'mcast_query_response_interval',
        '50',
        'mcast_startup_query_interval',
        '50',
        'mcast_last_member_interval',
        '10',
      ]);
      await s.up('br0');
      await lab.veth(r, 'eth0', s, 'pr', { aMac: R_MAC });
      await lab.veth(p, 'eth0', s, 'pp', { aMac: P_MAC });
      for (const port of ['pr', 'pp']) {
        await s.ip(['link', 'set', port, 'master', 'br0']);
        await s.execOk('bridge', ['link', 'set', 'dev', port, 'mcast_flood', 'off']);
      }
      await r.addr('eth0', '2001:db8::1/64');
      await p.addr('eth0', '2001:db8::2/64');
      // R's kernel speaks MLDv1 (it reports its own groups, and with the pcap back end ours too:
      // type 131); the switch queries with MLDv2, so we stay in MLDv2 and the type 143 reports
      // counted below are ours alone.
      await r.sysctl('net.ipv6.conf.eth0.force_mld_version', 1);
      // A snooping bridge forwards by its group table only once it knows a querier; its own
      // counts after a startup delay (10 s by default). Re-enabling it restarts that with our
      // 0.5 s response interval. Then wait until R's kernel-reported group works end to end.
      await s.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '0']);
      await s.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '1']);
      await waitFor(async () => (await p.exec('ping', ['-6', '-c', '1', '-W', '1', '2001:db8::1'])).code === 0, {
        timeoutMs: 15_000,
        intervalMs: 10,
        what: 'the snooping switch to forward',
      });

      // tcpdump on the switch port facing R: every MLD report R sends.
      const pcapFile = join(tmp, `${kind}-pr.pcap`);
      const dump = s.spawn('tcpdump', ['-i', 'pr', '--immediate-mode', '-U', '-n', '-w', pcapFile, 'ip6 and ip6[6] == 0']);
      let dumpErr = '';
      dump.stderr!.setEncoding('utf8').on('data', (d: string) => (dumpErr += d));
      await waitFor(() => dumpErr.includes('listening on'), { timeoutMs: 5000, what: 'tcpdump' });

      const a: JsonLinesProcess = r.spawnJsonLines('node', ['--import', 'tsx', SELF, '--agent'], { cwd: ROOT });
      t.teardown(() => a.end().then(() => undefined));
      await a.waitFor((x) => x['ev'] === 'ready', 15_000);
      await a.call({ op: 'open', backend: kind, ifname: 'eth0', uriMs: 300 });

      const nsSeen = (target: string): number => a.records.filter((x) => x['ev'] === 'ns' && x['target'] === target).length;
      const solicit = async (target: string): Promise<void> => {
        await p.exec('ndisc6', ['-1', '-r', '1', '-w', '200', target, 'eth0']);
      };

      // Before any answer: the switch has no member for the group, so the NS does not reach R.
      await solicit(A1);
      await solicit(A1);
      await new Promise((res) => setTimeout(res, 200));
      t.equal(nsSeen(A1), 0, 'without a report, the snooping switch keeps the NS from R (0 of 2)');

      await a.call({ op: 'add', addresses: [A1, A2, B1] });
      await waitFor(async () => (await r.linkMulticast('eth0')).includes(MAC_B), { timeoutMs: 3000, what: 'the MACs on eth0' });
      const macs = await r.linkMulticast('eth0');
      t.ok(macs.includes(MAC_A) && macs.includes(MAC_B), '`ip maddr` lists both solicited-node MACs');
      let st = (await a.call({ op: 'stats' }))['manager'] as Record<string, unknown>;
      t.match(st, { groups: 2, addresses: 3, macs: 2, allmulti: false });

      await waitFor(async () => (await mdbGroups(s, 'pr')).includes(G_B) && (await mdbGroups(s, 'pr')).includes(G_A), {
        timeoutMs: 3000,
        what: 'the switch to learn the groups',
      });
      t.pass("`bridge mdb show` lists both groups on R's port");
      const onPp = await mdbGroups(s, 'pp');
      t.notOk(onPp.includes(G_A) || onPp.includes(G_B), "our groups are not on the peer's port");

      await solicit(A1);
      await solicit(A2);
      await waitFor(() => nsSeen(A1) === 1 && nsSeen(A2) === 1, { timeoutMs: 3000, what: 'the NS to reach R' });
      t.pass('after the report, the one NS for each address of the group reaches R');

      // Remove one address of the shared group: nothing changes; remove B1: its group leaves.
      await a.call({ op: 'remove', addresses: [A2, B1] });
      await waitFor(async () => !(await r.linkMulticast('eth0')).includes(MAC_B), { timeoutMs: 3000, what: 'MAC_B to go' });
      t.ok((await r.linkMulticast('eth0')).includes(MAC_A), 'the shared group keeps its MAC');
      await waitFor(async () => !(await mdbGroups(s, 'pr')).includes(G_B), { timeoutMs: 4000, what: 'the switch to drop G_B' });
      t.pass('the leave made the switch drop the group');
      t.ok((await mdbGroups(s, 'pr')).includes(G_A), 'the other group stays');

      // An answer prefix: all-multicast on, then off again. The device flags in /sys count
      // every holder (PACKET_MR_ALLMULTI does not show in `ip link`, `allmulticast on` does).
      const allmulti = async (): Promise<boolean> =>
        (parseInt((await r.execOk('cat', ['/sys/class/net/eth0/flags'])).trim(), 16) & 0x200) !== 0;
      t.notOk(await allmulti(), 'not all-multicast before');
      await a.call({ op: 'prefixes', n: 1 });
      await waitFor(allmulti, { timeoutMs: 3000, what: 'IFF_ALLMULTI' });
      t.pass('an answer prefix turns all-multicast on');
      await a.call({ op: 'prefixes', n: 0 });
      await waitFor(async () => !(await allmulti()), { timeoutMs: 3000, what: 'IFF_ALLMULTI off' });
      t.pass('and off again');

      // The querier's general queries are answered.
      await s.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '0']);
      await s.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_querier', '1']);
      await waitFor(async () => (((await a.call({ op: 'stats' }))['manager'] as Record<string, number>)['queriesAnswered'] ?? 0) >= 1, {
        timeoutMs: 5000,
        what: 'a query answered',
      });
      t.ok(
        a.records.some((x) => x['ev'] === 'query' && x['group'] === null),
        'a general query from the bridge arrived',
      );

      const closed = await a.call({ op: 'close' });
      t.match(closed['manager'], { macs: 0, allmulti: false });
      t.notOk((await r.linkMulticast('eth0')).includes(MAC_A), 'close removed the MAC');
      await waitFor(async () => !(await mdbGroups(s, 'pr')).includes(G_A), { timeoutMs: 4000, what: 'the switch to forget G_A' });
      t.pass("after close the switch forgets our group (R's kernel keeps its own)");

      await new Promise((res) => setTimeout(res, 300));
      dump.kill('SIGINT');
      await new Promise((res) => dump.on('exit', res));
      const reps = reportsIn(pcapFile);
      const ours = (recs: Record_[]): Record_[] => recs.filter((x) => x.group === G_A || x.group === G_B);
      const flat = reps.map(ours).filter((x) => x.length > 0);
      const count = (type: number, group: string): number => flat.flat().filter((x) => x.type === type && x.group === group).length;
      t.equal(count(4, G_A), 2, 'join of G_A: CHANGE_TO_EXCLUDE sent twice (robustness 2)');
      t.equal(count(4, G_B), 2, 'join of G_B sent twice');
      t.ok(
        flat.some((recs) => recs.length === 2 && recs.every((x) => x.type === 4)),
        'the burst of joins went out together in one report',
      );
      t.equal(count(3, G_B), 2, 'leave of G_B: CHANGE_TO_INCLUDE sent twice');
      t.ok(count(2, G_A) >= 1, 'the general query was answered with MODE_IS_EXCLUDE for G_A');
      const seq = flat.flat();
      const leftAt = seq.findIndex((x) => x.type === 3 && x.group === G_B);
      t.notOk(
        seq.slice(leftAt).some((x) => x.type === 2 && x.group === G_B),
        'G_B is not reported after it left',
      );
      t.equal(count(3, G_A), 1, 'close: one leave for G_A');
      st = (await a.call({ op: 'stats' }))['manager'] as Record<string, unknown>;
      t.equal(st['errors'], 0, 'no back-end errors');
    });
  }
}
