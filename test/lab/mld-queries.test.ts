/**
 * How `ndp-responder run` answers MLD queries on a real link (issue 8, section 5):
 *
 *   Q (querier) eth0 ---- eth0 R (`ndp-responder run --address-file`, 2,000 exact addresses)
 *
 * Q crafts the queries and sends them from a raw AF_PACKET socket (the afpacket agent), and
 * captures everything R sends on the same socket. Counted on the wire: the MLDv2 report frames
 * carrying our groups (R's kernel also reports, for its own groups only; those are told apart by
 * their records). Then an MLDv1 querier (a real Linux bridge with mcast_mld_version 1) switches R
 * to MLDv1 reports, and the bridge learns the groups from them.
 *
 * `NDP_RESPONDER_CLI=/path/to/cli.js` runs another build (e.g. an older one, for comparison).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeMldQuery } from '../support/frames.js';
import { type JsonLinesProcess } from '../../src/lab/json-lines.js';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = join(SELF, '..', '..', '..');
const CLI = process.env['NDP_RESPONDER_CLI'] ?? join(ROOT, 'dist', 'src', 'cli.js');
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const R_MAC = '02:00:00:00:ad:01';
const Q_MAC = '02:00:00:00:ad:02';
const Q_LL = 'fe80::ff:fe00:ad02';
const N = 2000;
/** Low 24 bits 0x010001.. : solicited-node groups ff02::1:ff01:xxxx, none shared with R's own. */
const ADDRESSES = Array.from({ length: N }, (_, i) => `2001:db8::1:${(i + 1).toString(16)}`);
const OUR_GROUP_PREFIX = 'ff0200000000000000000001ff01';

const tmp = mkdtempSync(join(tmpdir(), 'mld-queries-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const addressFile = join(tmp, 'addresses.txt');
writeFileSync(addressFile, ADDRESSES.join('\n') + '\n');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An MLD message R sent, decoded independently of src/ (Hop-by-Hop of 8 bytes assumed: ours is). */
interface Sent {
  /** ICMPv6 type: 143 MLDv2 report, 131 MLDv1 report, 132 MLDv1 done. */
  type: number;
  dst: string;
  /** (record type, group hex) for 143; (type, group hex) for 131/132. */
  records: [number, string][];
}

function decodeSent(hex: string): Sent | null {
  const f = Buffer.from(hex, 'hex');
  if (f.subarray(6, 12).toString('hex') !== R_MAC.replaceAll(':', '')) return null;
  let ip = 14;
  if (f.readUInt16BE(12) === 0x8100) ip = 18;
  if (f.readUInt16BE(ip - 2) !== 0x86dd || f[ip + 6] !== 0 || f[ip + 40] !== 58) return null;
  const icmp = ip + 48;
  const type = f[icmp]!;
  const dst = f.subarray(ip + 24, ip + 40).toString('hex');
  if (type === 131 || type === 132) return { type, dst, records: [[type, f.subarray(icmp + 8, icmp + 24).toString('hex')]] };
  if (type !== 143) return null;
  const n = f.readUInt16BE(icmp + 6);
  const records: [number, string][] = [];
  for (let i = 0; i < n; i++) {
    const r = icmp + 8 + 20 * i;
    records.push([f[r]!, f.subarray(r + 4, r + 20).toString('hex')]);
  }
  return { type, dst, records };
}

/** Frames captured by the agent so far (its 'batch' records), decoded. */
function captured(a: JsonLinesProcess): Sent[] {
  const out: Sent[] = [];
  for (const r of a.records) {
    if (r['ev'] !== 'batch') continue;
    for (const h of r['frames'] as string[]) {
      const s = decodeSent(h);
      if (s !== null) out.push(s);
    }
  }
  return out;
}

const ours = (g: string): boolean => g.startsWith(OUR_GROUP_PREFIX);
/** MLDv2 full-state frames for our groups (MODE_IS_EXCLUDE records). */
const fullStateFrames = (s: Sent[]): Sent[] => s.filter((x) => x.type === 143 && x.records.some(([rt, g]) => rt === 2 && ours(g)));

async function startResponder(ns: Netns, args: string[]): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const child = ns.spawn(process.execPath, [CLI, 'run', '--interface', 'eth0', '--log-level', 'info', ...args]);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitFor(() => out.includes('"msg":"ready"'), { timeoutMs: 20_000, what: `the responder to be ready (${out.slice(-300)})` });
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

t.test('general queries: one full-state report per second; queries for someone else draw nothing', async (t) => {
  const lab = await Lab.create(t, 'nmq');
  const q = await lab.netns('q');
  const r = await lab.netns('r');
  await lab.veth(q, 'eth0', r, 'eth0', { aMac: Q_MAC, bMac: R_MAC });
  await r.addr('eth0', '2001:db8::aa/64');
  await q.addr('eth0', '2001:db8::bb/64');

  const a = q.spawnJsonLines('node', ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT });
  t.teardown(() => a.end().then(() => undefined));
  await a.waitFor((x) => x['ev'] === 'ready', 15_000);
  await a.call({ op: 'open', ifname: 'eth0', filter: 'all' });
  await a.call({ op: 'start', mode: 'frames' });

  const d = await startResponder(r, ['--address-file', addressFile]);
  t.teardown(() => d.stop());
  // The joins go out at start (CHANGE_TO_EXCLUDE, twice); wait until both rounds are through.
  const perFrame = 72;
  const framesPerFull = Math.ceil(N / perFrame);
  await waitFor(
    () => captured(a).filter((x) => x.type === 143 && x.records.some(([rt, g]) => rt === 4 && ours(g))).length >= 2 * framesPerFull,
    {
      timeoutMs: 10_000,
      what: 'the join reports',
    },
  );
  await sleep(1200);
  t.equal(fullStateFrames(captured(a)).length, 0, 'no full-state report before any query');

  const query = (dst: string, ethDst?: string, maxResponseCode = 1000): string =>
    Buffer.from(makeMldQuery({ ethSrc: Q_MAC, src: Q_LL, dst, ...(ethDst ? { ethDst } : {}), maxResponseCode })).toString('hex');

  // 10 general queries within 200 ms (max response delay 1 s).
  // 10 general queries, one every 12 ms (paced by the agent), each with a 50 ms Maximum
  // Response Delay: without a rate limit every few queries would draw a full report of its own.
  const sends = await a.call({ op: 'sendPaced', frames: Array(10).fill(query('ff02::1', undefined, 50)), intervalMs: 12 });
  t.equal(sends['sent'], 10, '10 queries sent');
  t.ok((sends['spanMs'] as number) < 200, `within ${(sends['spanMs'] as number).toFixed(0)} ms`);
  await sleep(1500);
  const full = fullStateFrames(captured(a));
  const groups = new Set(full.flatMap((x) => x.records.filter(([rt, g]) => rt === 2 && ours(g)).map(([, g]) => g)));
  t.comment(`report frames answering 10 general queries (2,000 groups): ${full.length}`);
  t.equal(full.length, framesPerFull, `exactly one full-state report: ${framesPerFull} frames`);
  t.equal(groups.size, N, 'carrying all 2,000 groups');
  t.ok(
    full.every((x) => x.dst === 'ff020000000000000000000000000016'),
    'to ff02::16',
  );

  // A general query to someone else's unicast address, through R's MAC: nothing. (More than 1 s
  // after the last full report, so the rate limit is not what keeps it quiet: the control below.)
  await sleep(1200);
  await a.call({ op: 'send', frames: [query('2001:db8::99', R_MAC, 100)] });
  await sleep(800);
  t.equal(fullStateFrames(captured(a)).length, framesPerFull, "a query to another node's address through our MAC draws nothing");
  // Control: the same query to R's own address is answered (RFC 3810 section 5.1.15).
  await a.call({ op: 'send', frames: [query('2001:db8::aa', R_MAC, 100)] });
  await waitFor(() => fullStateFrames(captured(a)).length === 2 * framesPerFull, {
    timeoutMs: 3000,
    what: 'the answer to a query for our address',
  });
  t.pass("the same query to R's own address draws one full-state report");
  await sleep(500);
  t.equal(fullStateFrames(captured(a)).length, 2 * framesPerFull, 'and only one');
});

t.test('an MLDv1 querier (a Linux bridge with mcast_mld_version 1): MLDv1 reports, and the bridge learns the groups', async (t) => {
  const lab = await Lab.create(t, 'nmv');
  const r = await lab.netns('r');
  const s = await lab.netns('s');
  // Snooping off while the responder starts, so the MLDv2 joins it sends at start teach the
  // bridge nothing: the groups can only be learned from the answers to the MLDv1 queries.
  await s.ip([
    'link',
    'add',
    'br0',
    'type',
    'bridge',
    'mcast_snooping',
    '0',
    'mcast_mld_version',
    '1',
    'mcast_query_interval',
    '1000',
    'mcast_query_response_interval',
    '50',
    'mcast_startup_query_interval',
    '100',
  ]);
  await s.up('br0');
  await lab.veth(r, 'eth0', s, 'pr', { aMac: R_MAC });
  await s.ip(['link', 'set', 'pr', 'master', 'br0']);
  await r.addr('eth0', '2001:db8::aa/64');

  const a = s.spawnJsonLines('node', ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT });
  t.teardown(() => a.end().then(() => undefined));
  await a.waitFor((x) => x['ev'] === 'ready', 15_000);
  await a.call({ op: 'open', ifname: 'pr', filter: 'all' });
  await a.call({ op: 'start', mode: 'frames' });

  const three = ADDRESSES.slice(0, 3);
  const groups = three.map((x) => `${OUR_GROUP_PREFIX}00${parseInt(x.split(':').pop()!, 16).toString(16).padStart(2, '0')}`);
  const file = join(tmp, 'three.txt');
  writeFileSync(file, three.join('\n') + '\n');
  const d = await startResponder(r, ['--address-file', file]);
  t.teardown(() => d.stop());
  await waitFor(() => captured(a).filter((x) => x.type === 143).length >= 2, { timeoutMs: 5000, what: 'the MLDv2 joins' });
  const mdb = async (): Promise<string> => s.execOk('bridge', ['mdb', 'show', 'dev', 'br0']);
  t.notMatch(await mdb(), /ff02::1:ff01:1/, 'snooping off: nothing learned from the joins');

  // The bridge becomes an MLDv1 querier: its general queries are 24-byte MLDv1 queries.
  await s.ip(['link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '1', 'mcast_querier', '1']);
  await waitFor(() => captured(a).some((x) => x.type === 131 && ours(x.records[0]![1])), {
    timeoutMs: 10_000,
    what: 'MLDv1 reports from R',
  });
  await sleep(300);
  // R's kernel heard the same queries: it reports its own groups in MLDv1 too, which only an
  // MLDv1 query makes it do (the bridge's queries leave on pr, which our capture does not show).
  t.ok(
    captured(a).some((x) => x.type === 131 && !ours(x.records[0]![1])),
    "R's kernel also answers in MLDv1: the querier is MLDv1",
  );
  const v1 = captured(a).filter((x) => x.type === 131);
  const v1Groups = new Set(v1.map((x) => x.records[0]![1]).filter(ours));
  t.same([...v1Groups].sort(), [...groups].sort(), 'one MLDv1 report per group');
  t.ok(
    v1.filter((x) => ours(x.records[0]![1])).every((x) => x.dst === x.records[0]![1]),
    'each sent to its group',
  );
  const firstV1 = captured(a).findIndex((x) => x.type === 131 && ours(x.records[0]![1]));
  t.notOk(
    captured(a)
      .slice(firstV1)
      .some((x) => x.type === 143 && x.records.some(([, g]) => ours(g))),
    'no MLDv2 report for our groups once the MLDv1 querier is heard',
  );
  await waitFor(async () => (await mdb()).includes('ff02::1:ff01:3'), {
    timeoutMs: 5000,
    what: 'the bridge to learn the groups',
  });
  const learned = await mdb();
  for (const g of ['ff02::1:ff01:1', 'ff02::1:ff01:2', 'ff02::1:ff01:3']) {
    t.ok(
      learned.split('\n').some((l) => l.includes('port pr') && l.includes(`grp ${g} `)),
      `bridge mdb: ${g} on R's port`,
    );
  }

  // Leaving in MLDv1 mode: an MLDv1 done per group, to ff02::2.
  await d.stop();
  await waitFor(() => captured(a).filter((x) => x.type === 132 && ours(x.records[0]![1])).length === 3, {
    timeoutMs: 3000,
    what: 'MLDv1 dones',
  });
  const dones = captured(a).filter((x) => x.type === 132 && ours(x.records[0]![1]));
  t.ok(
    dones.every((x) => x.dst === 'ff020000000000000000000000000002'),
    'three dones, to ff02::2',
  );
});
