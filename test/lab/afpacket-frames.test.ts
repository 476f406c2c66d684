/**
 * AfPacketBackend and the daemon on a jumbo-frame link, and a consumer that transfers the
 * receive buffer away. Namespaces R (back end, responder) and P (peer) joined by a veth with
 * MTU 9000; the back ends run in test/lab/support/afpacket-agent.ts, the responder is the CLI.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import t from 'tap';

import { makeNS, type NdOption } from '../support/frames.js';
import { type JsonLinesProcess, type JsonRecord } from '../../src/lab/json-lines.js';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';
import { collectUntil } from './support/agent-frames.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = join(ROOT, 'test', 'lab', 'support', 'afpacket-agent.ts');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const R_MAC = '02:00:00:00:aa:01';
const P_MAC = '02:00:00:00:bb:02';
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function startAgent(ns: Netns): Promise<JsonLinesProcess> {
  const p = ns.spawnJsonLines('node', ['--import', 'tsx', AGENT, '--agent'], { cwd: ROOT });
  await p.waitFor((r) => r['ev'] === 'ready', 15_000);
  return p;
}

/**
 * A valid NS of exactly `size` bytes (untagged): SLLAO, a Nonce option, then options of an
 * unassigned type (RFC 4861 section 4.6: a receiver ignores them) up to the size.
 */
function paddedNS(size: number, target: string): Uint8Array {
  let pad = size - (14 + 40 + 24 + 8 + 8);
  if (pad < 0 || pad % 8 !== 0) throw new Error(`no NS of ${size} bytes: options come in 8-byte units`);
  const options: NdOption[] = [{ type: 14, value: [1, 2, 3, 4, 5, 6] }];
  while (pad > 0) {
    const n = Math.min(pad, 255 * 8);
    options.push({ type: 200, value: new Array<number>(n - 2).fill(0xa5) });
    pad -= n;
  }
  const f = makeNS({ ethSrc: P_MAC, src: 'fe80::2', target, options });
  if (f.length !== size) throw new Error(`built ${f.length} bytes, wanted ${size}`);
  return f;
}

const stats = async (p: JsonLinesProcess, h: string): Promise<Record<string, number>> =>
  (await p.call({ op: 'stats', h }))['stats'] as Record<string, number>;

const lab = await Lab.create(t, 'nfr');
const r = await lab.netns('r');
const p = await lab.netns('p');
await lab.veth(r, 'eth0', p, 'eth0', { aMac: R_MAC, bMac: P_MAC });
await r.ip(['link', 'set', 'eth0', 'mtu', '9000']);
await p.ip(['link', 'set', 'eth0', 'mtu', '9000']);
await r.addr('eth0', '2001:db8::1/64');
await p.addr('eth0', '2001:db8::2/64');

const [ra, pa] = await Promise.all([startAgent(r), startAgent(p)]);
t.teardown(async () => {
  await Promise.all([ra.end(), pa.end()]);
});
await pa.call({ op: 'open', h: 'tx', ifname: 'eth0', filter: 'all' });

const SIZES = [2070, 4014, 8990];

t.test('MTU 9000: NS of 2,070, 4,014 and 8,990 bytes reach JS whole, through the ring and recvmmsg', async (t) => {
  await ra.call({ op: 'open', h: 'ring', ifname: 'eth0' });
  await ra.call({ op: 'open', h: 'mmsg', ifname: 'eth0', opts: { rxRing: false } });
  await ra.call({ op: 'start', h: 'ring', mode: 'frames' });
  await ra.call({ op: 'start', h: 'mmsg', mode: 'frames' });
  t.ok((await stats(ra, 'ring'))['ringFrames']! >= 2048, 'the ring holds at least 2048 jumbo frames');
  const frames = SIZES.map((n, i) => paddedNS(n, `2001:db8::a${i}`));
  t.equal((await pa.call({ op: 'send', h: 'tx', frames: frames.map(hexOf) }))['sent'], frames.length, 'the peer sent them');
  for (const h of ['ring', 'mmsg']) {
    const seen: Buffer[] = [];
    for (const f of frames) await collectUntil(ra, h, (x) => x.length === f.length, seen);
    for (const f of frames)
      t.ok(
        seen.some((x) => x.equals(Buffer.from(f))),
        `${h}: ${f.length}-byte NS byte for byte`,
      );
    const s = await stats(ra, h);
    t.equal(s['truncated'], 0, `${h}: nothing truncated`);
    t.equal(s['kernelDrops'], 0, `${h}: no kernel drops`);
  }
  await ra.call({ op: 'close', h: 'ring' });
  await ra.call({ op: 'close', h: 'mmsg' });
});

t.test('MTU raised to 9000 while running: the responder re-opens and answers NS of 2,070, 4,014 and 8,990 bytes', async (t) => {
  await r.ip(['link', 'set', 'eth0', 'mtu', '1500']);
  const child = r.spawn(process.execPath, [
    CLI,
    'run',
    '--interface',
    'eth0',
    '--prefix',
    '2001:db8::/64',
    '--no-route-check',
    '--log-level',
    'info',
  ]);
  t.teardown(() => void child.kill('SIGKILL'));
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  await waitFor(() => log.join('').includes('"msg":"ready"'), { timeoutMs: 20_000, what: 'the responder to be ready' });
  await r.ip(['link', 'set', 'eth0', 'mtu', '9000']);
  await waitFor(() => log.join('').includes('"msg":"interface (re)opened"'), { timeoutMs: 5000, what: 'the re-open on the MTU change' });

  await pa.call({ op: 'open', h: 'na', ifname: 'eth0', filter: 'na' });
  await pa.call({ op: 'start', h: 'na', mode: 'frames' });
  const targets = SIZES.map((_, i) => `2001:db8::b${i}`);
  const frames = SIZES.map((n, i) => paddedNS(n, targets[i]!));
  await pa.call({ op: 'send', h: 'tx', frames: frames.map(hexOf) });
  const seen: Buffer[] = [];
  for (const target of targets) {
    const want = hexOf(makeNS({ target }).subarray(62, 78));
    await collectUntil(pa, 'na', (f) => f[54] === 136 && f.subarray(62, 78).toString('hex') === want, seen);
    t.pass(`NA for ${target}`);
  }
  for (const na of seen.filter((f) => f[54] === 136)) {
    t.equal(na.subarray(0, 6).toString('hex'), P_MAC.replaceAll(':', ''), 'to the NS sender');
  }
  t.equal(child.exitCode, null, 'still running');
  await pa.call({ op: 'close', h: 'na' });
});

t.test('a consumer that transfers the receive buffer: a clear error, no write into the moved memory', async (t) => {
  for (const rxRing of [true, false]) {
    const h = `xfer${rxRing ? 'ring' : 'mmsg'}`;
    await ra.call({ op: 'open', h, ifname: 'eth0', opts: { rxRing } });
    await ra.call({ op: 'start', h, mode: 'transfer' });
    await pa.call({ op: 'send', h: 'tx', frames: [hexOf(makeNS({ ethSrc: P_MAC, target: '2001:db8::c1' }))] });
    const first = await ra.waitFor((x) => x['ev'] === 'batch' && x['h'] === h);
    t.ok((first['transferred'] as number) > 0 && first['detached'] === true, `${h}: the first batch's buffer was transferred away`);

    // More frames, and big ones: before the check these were written into the moved memory.
    const more = [1, 2, 3].map((i) => hexOf(paddedNS(2070, `2001:db8::c${i + 1}`)));
    await pa.call({ op: 'send', h: 'tx', frames: more });
    const err = await ra.waitFor((x) => x['ev'] === 'error' && x['h'] === h);
    const e = err['error'] as JsonRecord;
    t.equal(e['code'], 'ERR_RX_BUFFER_DETACHED', `${h}: ${String(e['message'])}`);
    t.match(e['message'], /detached/);
    await pa.call({ op: 'send', h: 'tx', frames: more });
    await new Promise((res) => setTimeout(res, 300));
    const check = await ra.call({ op: 'checkTransferred', h });
    t.equal(check['same'], true, `${h}: the transferred memory is untouched`);
    t.notOk(
      ra.records.some((x) => x['ev'] === 'batch' && x['h'] === h),
      `${h}: no batch after the transfer`,
    );
    const s = await stats(ra, h);
    t.equal(s['lastRecvErrno'], 14, `${h}: stats name EFAULT`);
    await ra.call({ op: 'close', h });
  }

  // The process carries on: a new back end receives.
  await ra.call({ op: 'open', h: 'after', ifname: 'eth0' });
  await ra.call({ op: 'start', h: 'after', mode: 'frames' });
  const ns = makeNS({ ethSrc: P_MAC, target: '2001:db8::c9' });
  await pa.call({ op: 'send', h: 'tx', frames: [hexOf(ns)] });
  await collectUntil(ra, 'after', (f) => f.equals(Buffer.from(ns)), []);
  t.equal(ra.exitCode, null, 'agent alive and receiving on a new back end');
  await ra.call({ op: 'close', h: 'after' });
});
