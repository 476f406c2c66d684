import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackend } from '../../src/io/file-backend.js';
import type { FrameBatch } from '../../src/io/backend.js';
import { encodePcap, pcapGlobalHeader, pcapRecordHeader, PcapFileWriter } from '../../src/io/pcap-writer.js';
import { makeNS } from '../support/frames.js';

const dir = mkdtempSync(join(tmpdir(), 'file-backend-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Distinct frames: a real NS per index, padded to a length that varies with the index. */
function frameN(i: number): Uint8Array {
  const ns = makeNS({ target: `2001:db8::${(i + 1).toString(16)}` });
  const f = new Uint8Array(ns.length + (i % 7));
  f.set(ns);
  f.fill(i & 0xff, ns.length);
  return f;
}

/** Read back a classic pcap (written by encodePcap/PcapFileWriter) without node_pcap. */
function readPcap(path: string): { data: Buffer; tsSec: number; tsUsec: number }[] {
  const b = readFileSync(path);
  const out: { data: Buffer; tsSec: number; tsUsec: number }[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const len = b.readUInt32LE(o + 8);
    out.push({ data: b.subarray(o + 16, o + 16 + len), tsSec: b.readUInt32LE(o), tsUsec: b.readUInt32LE(o + 4) });
    o += 16 + len;
  }
  return out;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function collect(b: FrameBatch, into: Buffer[]): void {
  for (let i = 0; i < b.count; i++) into.push(Buffer.from(b.buf.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!)));
}

t.test('delivers every frame, in order, in batches of at most batchSize', async (t) => {
  const frames = Array.from({ length: 150 }, (_, i) => frameN(i));
  const path = join(dir, 'in.pcap');
  writeFileSync(path, encodePcap(frames.map((data, i) => ({ data, tsSec: 1000 + i, tsUsec: i }))));
  const fb = new FileBackend({ path });
  const got: Buffer[] = [];
  const sizes: number[] = [];
  fb.start((b) => {
    sizes.push(b.count);
    collect(b, got);
  });
  const r = await fb.done;
  t.same(r, { completed: true, frames: 150, batches: 3 });
  t.same(sizes, [64, 64, 22]);
  t.equal(got.length, 150);
  for (let i = 0; i < 150; i++) t.ok(got[i]!.equals(frames[i]!), `frame ${i} byte-identical`);
  t.equal(fb.stats().received, 150);
  t.throws(() => fb.start(() => {}), { code: 'ERR_ALREADY_STARTED' });
  fb.close();
});

t.test('batchSize 1 and a frame longer than the initial buffer', async (t) => {
  const big = new Uint8Array(200_000).fill(7);
  big.set(makeNS({}));
  const path = join(dir, 'big.pcap');
  writeFileSync(path, encodePcap([{ data: frameN(0) }, { data: big }, { data: frameN(2) }]));
  const fb = new FileBackend({ path, batchSize: 1 });
  const got: Buffer[] = [];
  fb.start((b) => {
    t.equal(b.count, 1);
    collect(b, got);
  });
  await fb.done;
  t.equal(got.length, 3);
  // node_pcap's offline read buffer is 65535 bytes: longer records arrive cut to that.
  t.equal(got[1]!.length, 65535);
  t.ok(got[1]!.equals(Buffer.from(big.subarray(0, 65535))));
  t.ok(got[2]!.equals(frameN(2)));
});

t.test('send collects output frames in order into an array or a pcap writer, stamped with input time', async (t) => {
  const frames = Array.from({ length: 70 }, (_, i) => frameN(i));
  const path = join(dir, 'echo.pcap');
  writeFileSync(path, encodePcap(frames.map((data, i) => ({ data, tsSec: 2000 + i, tsUsec: 10 * i }))));

  const arr: Uint8Array[] = [];
  const a = new FileBackend({ path, sink: arr });
  a.start((b) => t.equal(a.send(b.buf, b.offsets, b.lengths, b.count), b.count));
  await a.done;
  t.equal(arr.length, 70);
  t.ok(
    arr.every((f, i) => Buffer.from(f).equals(frames[i]!)),
    'array sink holds copies in order',
  );
  t.equal(a.stats().sent, 70);

  const outPath = join(dir, 'out.pcap');
  const w = new PcapFileWriter(outPath);
  const p = new FileBackend({ path, sink: w });
  p.start((b) => p.send(b.buf, b.offsets, b.lengths, b.count));
  await p.done;
  w.close();
  const back = readPcap(outPath);
  t.equal(back.length, 70);
  t.ok(back.every((r, i) => r.data.equals(frames[i]!)));
  // Stamp = newest frame read when send() ran: the last frame of each batch (64th and 70th).
  t.same([...new Set(back.map((r) => `${r.tsSec}.${r.tsUsec}`))], ['2063.630', '2069.690']);

  t.throws(() => p.send(new Uint8Array(10), Uint32Array.of(5), Uint32Array.of(10), 1), { code: 'ERR_OUT_OF_RANGE' });
});

t.test('close() inside onBatch stops delivery and settles done', async (t) => {
  const path = join(dir, 'stop.pcap');
  writeFileSync(path, encodePcap(Array.from({ length: 200 }, (_, i) => ({ data: frameN(i) }))));
  const fb = new FileBackend({ path });
  let batches = 0;
  fb.start(() => {
    batches++;
    fb.close();
    fb.close();
  });
  const r = await fb.done;
  t.equal(batches, 1);
  t.same(r, { completed: false, frames: 64, batches: 1 });
  t.equal(fb.send(new Uint8Array(60), Uint32Array.of(0), Uint32Array.of(60), 1), 0, 'send after close sends nothing');
  t.throws(() => fb.start(() => {}), { code: 'EBADF' });
});

t.test('close() before the read runs: nothing delivered', async (t) => {
  const path = join(dir, 'early.pcap');
  writeFileSync(path, encodePcap([{ data: frameN(0) }]));
  const fb = new FileBackend({ path });
  let n = 0;
  fb.start(() => n++);
  fb.close();
  t.same(await fb.done, { completed: false, frames: 0, batches: 0 });
  await new Promise((r) => setImmediate(r));
  t.equal(n, 0);
});

t.test('an empty capture completes with no batch', async (t) => {
  const path = join(dir, 'empty-ok.pcap');
  writeFileSync(path, pcapGlobalHeader());
  const fb = new FileBackend({ path });
  let n = 0;
  fb.start(() => n++);
  t.same(await fb.done, { completed: true, frames: 0, batches: 0 });
  t.equal(n, 0);
});

t.test('a filter expression is applied while reading', async (t) => {
  const path = join(dir, 'mixed.pcap');
  const ns = makeNS({ target: '2001:db8::1' });
  const other = new Uint8Array(60).fill(0xab); // not IPv6
  writeFileSync(path, encodePcap([{ data: other }, { data: ns }, { data: other }]));
  const fb = new FileBackend({ path, filter: 'ip6' });
  const got: Buffer[] = [];
  fb.start((b) => collect(b, got));
  await fb.done;
  t.equal(got.length, 1);
  t.ok(got[0]!.equals(ns));
});

t.test('bad inputs fail at construction with a code', async (t) => {
  t.throws(() => new FileBackend({ path: join(dir, 'missing.pcap') }), { code: 'ENOENT' });
  t.throws(() => new FileBackend({ path: dir }), { code: 'EISDIR' });

  const garbage = join(dir, 'garbage.pcap');
  writeFileSync(garbage, Buffer.from('this is not a capture file at all, just text\n'.repeat(4)));
  t.throws(() => new FileBackend({ path: garbage }), { code: 'EBADPCAP', message: /not a readable pcap file/ });

  const empty = join(dir, 'zero.pcap');
  writeFileSync(empty, '');
  t.throws(() => new FileBackend({ path: empty }), { code: 'EBADPCAP' });

  // LINKTYPE_RAW (101): IPv6 packets without Ethernet headers.
  const raw = join(dir, 'raw.pcap');
  const ip = makeNS({}).subarray(14);
  writeFileSync(raw, Buffer.concat([pcapGlobalHeader(101), pcapRecordHeader(ip.length, 0, 0), Buffer.from(ip)]));
  t.throws(() => new FileBackend({ path: raw }), { code: 'EBADPCAP', message: /LINKTYPE_RAW.*only Ethernet/ });

  // A link type node_pcap has no name for (LINKTYPE_USB_LINUX_MMAPPED, 220).
  const usb = join(dir, 'usb.pcap');
  writeFileSync(usb, pcapGlobalHeader(220));
  t.throws(() => new FileBackend({ path: usb }), { code: 'EBADPCAP', message: /220/ });

  t.throws(() => new FileBackend({ path: garbage, batchSize: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  const ok = join(dir, 'ok.pcap');
  writeFileSync(ok, pcapGlobalHeader());
  t.throws(() => new FileBackend({ path: ok, filter: 'this is not a filter' }), { code: 'EBADPCAP' });
});

t.test('memberships are recorded and reference counted', async (t) => {
  const path = join(dir, 'm.pcap');
  writeFileSync(path, pcapGlobalHeader());
  const fb = new FileBackend({ path });
  const m = Uint8Array.of(0x33, 0x33, 0xff, 0, 0, 1);
  fb.addMulticast(m);
  fb.addMulticast(m);
  fb.setAllMulticast(true);
  t.same([...fb.membership().macs], [['33:33:ff:00:00:01', 2]]);
  t.equal(fb.membership().allMulticast, true);
  fb.removeMulticast(m);
  fb.removeMulticast(m);
  t.equal(fb.membership().macs.size, 0);
  t.throws(() => fb.removeMulticast(m), { code: 'EADDRNOTAVAIL' });
  fb.close();
  t.equal(fb.membership().allMulticast, false);
});

t.test('no file descriptor is leaked by probes, replays and early closes', async (t) => {
  const path = join(dir, 'fd.pcap');
  writeFileSync(path, encodePcap(Array.from({ length: 100 }, (_, i) => ({ data: frameN(i) }))));
  await new Promise((r) => setImmediate(r));
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    const a = new FileBackend({ path });
    a.start(() => {});
    await a.done;
    const b = new FileBackend({ path });
    b.start(() => b.close());
    await b.done;
    const c = new FileBackend({ path });
    c.start(() => {});
    c.close();
    try {
      new FileBackend({ path: join(dir, 'garbage.pcap') });
    } catch {
      /* expected */
    }
  }
  // Probes and early closes free their handle on node_pcap's next (immediate) read.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 10));
  t.ok(openFds() <= before, `fds before ${before}, after ${openFds()}`);
});
