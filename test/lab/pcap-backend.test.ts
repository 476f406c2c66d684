/**
 * PcapBackend against a real kernel: namespace R runs the back end (this file, started again
 * with `--agent` inside R, driven over JSON lines), namespace P is the peer: its kernel sends
 * NS (ping -6), ndisc6 sends one, tcpdump captures what R sends. One veth between them, and a
 * VLAN 100 subinterface on P for tagged traffic.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveJsonLines } from '../../src/lab/json-lines.js';

if (process.argv[2] === '--agent') await agent();
else await main();

// ---------------------------------------------------------------------------------------------
// Agent: inside R. One JSON request per line on stdin, `{id, ...}` (or `{id, error}`) out;
// received batches as unsolicited `{ev: 'batch', h, frames: [hex]}` lines.

async function agent(): Promise<void> {
  const { PcapBackend } = await import('../../src/io/pcap-backend.js');
  type B = import('../../src/io/pcap-backend.js').PcapBackend;
  const backends = new Map<string, B>();
  const out = (rec: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(rec) + '\n');
  const get = (h: string): B => {
    const b = backends.get(h);
    if (!b) throw new Error(`no back end '${h}'`);
    return b;
  };
  const macBytes = (s: string): Uint8Array => Uint8Array.from(s.split(':').map((x) => parseInt(x, 16)));
  const packetSockets = (): number =>
    readFileSync('/proc/net/packet', 'utf8')
      .split('\n')
      .slice(1)
      .filter((l) => l.trim() !== '').length;

  const handle = (req: Record<string, unknown>): Record<string, unknown> => {
    const h = typeof req['h'] === 'string' ? req['h'] : 'main';
    switch (req['op']) {
      case 'open': {
        const b = PcapBackend.open({ ifname: req['ifname'] as string, ...(req['opts'] as object | undefined) });
        backends.set(h, b);
        return { ifindex: b.ifindex, raw: b.hasRawSocket, linkLocal: b.linkLocalText };
      }
      case 'start': {
        const b = get(h);
        const closeInCallback = req['closeInCallback'] === true;
        b.start((batch) => {
          const frames: string[] = [];
          for (let i = 0; i < batch.count; i++) {
            frames.push(Buffer.from(batch.buf.buffer, batch.buf.byteOffset + batch.offsets[i]!, batch.lengths[i]!).toString('hex'));
          }
          out({ ev: 'batch', h, frames });
          if (closeInCallback) {
            b.close();
            out({ ev: 'closed-in-callback', h });
          }
        });
        return {};
      }
      case 'send': {
        const frames = (req['frames'] as string[]).map((x) => Buffer.from(x, 'hex'));
        const buf = Buffer.concat(frames);
        const offsets = new Uint32Array(frames.length);
        const lengths = new Uint32Array(frames.length);
        let o = 0;
        frames.forEach((f, i) => {
          offsets[i] = o;
          lengths[i] = f.length;
          o += f.length;
        });
        return { sent: get(h).send(buf, offsets, lengths, frames.length), stats: get(h).stats() };
      }
      case 'addMulticast':
        get(h).addMulticast(macBytes(req['mac'] as string));
        return { memberships: [...get(h).multicastMemberships()] };
      case 'removeMulticast':
        get(h).removeMulticast(macBytes(req['mac'] as string));
        return { memberships: [...get(h).multicastMemberships()] };
      case 'addMany': {
        // Solicited-node MACs 33:33:ff:01:00:00 + i.
        const b = get(h);
        for (let i = 0; i < (req['n'] as number); i++) b.addMulticast(Uint8Array.of(0x33, 0x33, 0xff, 1, i >> 8, i & 0xff));
        return { stats: b.stats() };
      }
      case 'setAllMulticast':
        get(h).setAllMulticast(req['on'] as boolean);
        return {};
      case 'setPromiscuous':
        get(h).setPromiscuous(req['on'] as boolean);
        return {};
      case 'stats':
        return { stats: get(h).stats() };
      case 'close':
        get(h).close();
        get(h).close();
        return { stats: get(h).stats() };
      case 'packetSockets':
        return { count: packetSockets() };
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
  type JsonLinesProcess = import('../../src/lab/json-lines.js').JsonLinesProcess;
  type Netns = import('../../src/lab/netns.js').Netns;
  const { makeNA, makeNS, makeIcmp6Frame, referenceIcmp6Checksum, ip6 } = await import('../support/frames.js');

  const SELF = fileURLToPath(import.meta.url);
  const ROOT = join(SELF, '..', '..', '..');
  const R_MAC = '02:00:00:00:aa:01';
  const P_MAC = '02:00:00:00:bb:02';
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  async function startAgent(ns: Netns, wrapper: string[] = []): Promise<JsonLinesProcess> {
    const argv = [...wrapper, 'node', '--import', 'tsx', SELF, '--agent'];
    const a = ns.spawnJsonLines(argv[0]!, argv.slice(1), { cwd: ROOT });
    await a.waitFor((r) => r['ev'] === 'ready', 15_000);
    return a;
  }

  /** Frames of all 'batch' records of back end h so far (removed from the queue). */
  function drain(a: JsonLinesProcess, h = 'main'): Buffer[] {
    const got: Buffer[] = [];
    for (let i = 0; i < a.records.length;) {
      const r = a.records[i]!;
      if (r['ev'] === 'batch' && r['h'] === h) {
        got.push(...(r['frames'] as string[]).map((x) => Buffer.from(x, 'hex')));
        a.records.splice(i, 1);
      } else i++;
    }
    return got;
  }

  /** ICMPv6 type, the VLAN TCI (or -1) and the IPv6 offset of a frame. */
  function parse(f: Buffer): { type: number; vlan: number; ip: number } {
    let ip = 14;
    let vlan = -1;
    if (f.readUInt16BE(12) === 0x8100) {
      vlan = f.readUInt16BE(14);
      ip = 18;
    }
    if (f.readUInt16BE(ip - 2) !== 0x86dd) return { type: -1, vlan, ip };
    const nh = f[ip + 6];
    const type = nh === 58 ? f[ip + 40]! : nh === 0 && f[ip + 40] === 58 ? f[ip + 48]! : -1;
    return { type, vlan, ip };
  }

  /** Read a classic pcap file (as tcpdump -w writes it) without any library. */
  function readPcap(path: string): Buffer[] {
    const b = readFileSync(path);
    if (b.length < 24) return [];
    const le = b.readUInt32LE(0) === 0xa1b2c3d4;
    const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const frames: Buffer[] = [];
    for (let o = 24; o + 16 <= b.length;) {
      const len = u32(o + 8);
      if (o + 16 + len > b.length) break;
      frames.push(b.subarray(o + 16, o + 16 + len));
      o += 16 + len;
    }
    return frames;
  }

  /** tcpdump in `ns` writing to a file; stop() ends it (SIGINT) and returns the frames. */
  async function capture(ns: Netns, file: string, filter: string): Promise<{ stop: () => Promise<Buffer[]> }> {
    // --immediate-mode: frames still in an unfinished TPACKET_V3 block would be lost at SIGINT.
    const c = ns.spawn('tcpdump', ['-i', 'eth0', '--immediate-mode', '-U', '-n', '-w', file, filter]);
    let err = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<void>((r) => c.on('exit', () => r()));
    await waitFor(() => err.includes('listening on'), { timeoutMs: 5000, what: 'tcpdump to listen' });
    return {
      stop: async () => {
        await new Promise((r) => setTimeout(r, 200)); // let the last frames be written
        c.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        return readPcap(file);
      },
    };
  }

  const tmp = mkdtempSync(join(tmpdir(), 'pcap-lab-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

  const lab = await Lab.create(t, 'npc');
  const r = await lab.netns('r');
  const p = await lab.netns('p');
  await lab.veth(r, 'eth0', p, 'eth0', { aMac: R_MAC, bMac: P_MAC });
  await r.addr('eth0', '2001:db8::1/64');
  await p.addr('eth0', '2001:db8::2/64');
  // Not every lab kernel has 802.1Q support (no `type vlan`, docs/lab-notes.md): tagged frames are written to P's eth0
  // with a plain AF_PACKET socket from Python.
  const sendRaw = async (ns: Netns, frame: Uint8Array): Promise<void> => {
    await ns.execOk('python3', [
      '-c',
      'import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0)); s.send(bytes.fromhex(sys.argv[1]))',
      hex(frame),
    ]);
  };
  const linkLocal = async (ns: Netns): Promise<string> => {
    const j = JSON.parse(await ns.ip(['-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])) as {
      addr_info: { local?: string }[];
    }[];
    // iproute2 prints `{}` for the addresses its scope filter skipped.
    const a = j[0]?.addr_info.find((x) => x.local !== undefined)?.local;
    if (a === undefined) throw new Error(`no link-local address on ${ns.name} eth0`);
    return a;
  };
  const rLL = await linkLocal(r);
  const pLL = await linkLocal(p);

  const ra = await startAgent(r);
  t.teardown(async () => {
    await ra.end();
  });

  t.test('open errors carry codes', async (t) => {
    const e1 = (await ra.request({ op: 'open', h: 'x', ifname: 'nope0' }))['error'] as Record<string, unknown>;
    t.equal(e1['code'], 'ENODEV');
    t.match(e1['message'], /'nope0' does not exist/);
    const e2 = (await ra.request({ op: 'open', h: 'x', ifname: 'eth0', opts: { filter: 'this is not a filter' } }))['error'] as Record<
      string,
      unknown
    >;
    t.equal(e2['code'], 'EINVAL');
    t.match(e2['message'], /bad capture filter: .*'this'/);
    const e3 = (await ra.request({ op: 'open', h: 'x', ifname: 'eth0', opts: { batchSize: 0 } }))['error'] as Record<string, unknown>;
    t.equal(e3['code'], 'ERR_OUT_OF_RANGE');
    const unpriv = await startAgent(r, ['setpriv', '--bounding-set=-net_raw']);
    try {
      const e4 = (await unpriv.request({ op: 'open', ifname: 'eth0' }))['error'] as Record<string, unknown>;
      t.equal(e4['code'], 'EPERM');
      t.match(e4['message'], /needs CAP_NET_RAW/);
    } finally {
      await unpriv.end();
    }
  });

  t.test('receives the NS the kernel and ndisc6 send, a VLAN 100 NS, and nothing else', async (t) => {
    const opened = await ra.call({ op: 'open', ifname: 'eth0' });
    t.equal(opened['raw'], true, 'raw ICMPv6 socket open');
    t.equal(opened['linkLocal'], rLL, 'the link-local address was read from the OS');
    await ra.call({ op: 'start' });

    // The very first frame after open: one NS, sent once (libpcap filters frames already in its
    // ring in user space; a filter it cannot evaluate there would lose this one).
    const nd = await p.exec('ndisc6', ['-1', '-r', '1', '-w', '300', '2001:db8::77', 'eth0']);
    t.not(nd.code, 0, 'nobody answers for ::77');
    const first = await ra.waitFor((x) => x['ev'] === 'batch', 3000);
    t.equal((first['frames'] as string[]).length, 1);
    t.equal((first['frames'] as string[])[0]!.slice(62 * 2, 78 * 2), hex(ip6('2001:db8::77')), 'the first NS is delivered');

    // Traffic that must not be delivered: echo requests to R's own address (they get replies:
    // the traffic really reached R), and the replies and NAs R sends.
    const ping = await p.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '1', '2001:db8::1']);
    t.equal(ping.code, 0, 'R answers pings: traffic reaches R');
    // Real NS: the kernel resolving an unknown neighbour, and ndisc6; plus a VLAN 100 NS
    // written by hand (see sendRaw).
    await p.exec('ping', ['-6', '-c', '1', '-W', '1', '2001:db8::99']);
    await sendRaw(p, makeNS({ target: '2001:db8:100::99', src: pLL, ethSrc: P_MAC, vlan: 100 }));
    await p.exec('ndisc6', ['-1', '-r', '1', '-w', '300', '2001:db8::76', 'eth0']);

    const frames: Buffer[] = [];
    const target = (f: Buffer): string => {
      const { ip } = parse(f);
      return f.subarray(ip + 48, ip + 64).toString('hex');
    };
    await waitFor(
      () => {
        frames.push(...drain(ra));
        const ts = new Set(frames.map(target));
        return ts.has(hex(ip6('2001:db8::99'))) && ts.has(hex(ip6('2001:db8:100::99'))) && ts.has(hex(ip6('2001:db8::76')));
      },
      { timeoutMs: 5000, what: 'the three NS' },
    );
    t.ok(frames.length >= 3);
    t.same([...new Set(frames.map((f) => parse(f).type))], [135], 'only NS were delivered (no echo, no NA)');
    const tagged = frames.filter((f) => parse(f).vlan >= 0);
    t.ok(tagged.length >= 1, 'the VLAN NS arrived');
    t.ok(
      tagged.every((f) => (parse(f).vlan & 0xfff) === 100 && target(f) === hex(ip6('2001:db8:100::99'))),
      'with its tag in the data',
    );
    const untaggedNs = frames.find((f) => target(f) === hex(ip6('2001:db8::99')))!;
    t.equal(untaggedNs.subarray(6, 12).toString('hex'), P_MAC.replaceAll(':', ''), 'from the peer');
    const st = (await ra.call({ op: 'stats' }))['stats'] as Record<string, number>;
    t.equal(st['received'], 1 + frames.length + drain(ra).length);
    t.equal(st['kernelDrops'], 0);
  });

  t.test('sends: raw socket for link-local ND to link-scoped destinations, injection otherwise', async (t) => {
    const cap = await capture(p, join(tmp, 'send.pcap'), 'icmp6 or (vlan and icmp6)');
    const before = (await ra.call({ op: 'stats' }))['stats'] as Record<string, number>;

    // 1. From the target address (source policy `target`): injected as is.
    const injected = makeNA({ target: '2001:db8::77', ethSrc: R_MAC, dst: 'ff02::1', solicited: false });
    // 2. Tagged: injected as is (the raw socket would lose the tag).
    const tagged = makeNA({ target: '2001:db8::78', ethSrc: R_MAC, dst: 'ff02::1', vlan: 100 });
    // 3. From R's link-local to ff02::1: raw socket. Checksum deliberately wrong: the kernel
    //    computes it, so the peer must see a valid one.
    const viaRawMcast = makeNA({ target: '2001:db8::79', src: rLL, ethSrc: R_MAC, dst: 'ff02::1', checksum: 0 });
    // 4. From R's link-local to P's link-local: raw socket, the kernel resolves P's MAC.
    const viaRawUnicast = makeNA({ target: '2001:db8::7a', src: rLL, ethSrc: R_MAC, ethDst: P_MAC, dst: pLL, solicited: true });
    // 5. From R's link-local to a global destination: injected (a raw socket cannot pin the source).
    const llToGlobal = makeNA({ target: '2001:db8::7b', src: rLL, ethSrc: R_MAC, ethDst: P_MAC, dst: '2001:db8::2', solicited: true });
    // 6. Link-local source but hop limit 1 (not ND-valid): injected untouched.
    const hop1 = makeIcmp6Frame({
      src: rLL,
      dst: 'ff02::1',
      ethSrc: R_MAC,
      hopLimit: 1,
      icmp: [136, 0, 0, 0, 0x20, 0, 0, 0, ...ip6('2001:db8::7c')],
    });

    const res = await ra.call({ op: 'send', frames: [injected, tagged, viaRawMcast, viaRawUnicast, llToGlobal, hop1].map(hex) });
    t.equal(res['sent'], 6);
    const st = res['stats'] as Record<string, number>;
    t.equal(st['rawSent']! - before['rawSent']!, 2, 'two frames by the raw socket');
    t.equal(st['injected']! - before['injected']!, 4, 'four injected');
    t.equal(st['sendErrors'], 0);

    const seen = await cap.stop();
    const byTarget = (a: string): Buffer | undefined =>
      seen.find((f) => {
        const { ip, type } = parse(f);
        return type === 136 && f.subarray(ip + 48, ip + 64).equals(Buffer.from(ip6(a)));
      });
    for (const [name, frame, target] of [
      ['injected', injected, '2001:db8::77'],
      ['tagged', tagged, '2001:db8::78'],
      ['link-local to global', llToGlobal, '2001:db8::7b'],
      ['hop limit 1', hop1, '2001:db8::7c'],
    ] as const) {
      const got = byTarget(target);
      t.ok(got, `${name}: the peer saw it`);
      t.equal(got && hex(got), hex(frame), `${name}: byte for byte`);
    }
    for (const [name, frame, target, dst] of [
      ['raw multicast', viaRawMcast, '2001:db8::79', 'ff02::1'],
      ['raw unicast', viaRawUnicast, '2001:db8::7a', pLL],
    ] as const) {
      const got = byTarget(target);
      t.ok(got, `${name}: the peer saw it`);
      if (!got) continue;
      t.equal(got.subarray(6, 12).toString('hex'), R_MAC.replaceAll(':', ''), `${name}: from R's MAC`);
      t.equal(got[14 + 7], 255, `${name}: hop limit 255`);
      t.same([...got.subarray(22, 38)], [...ip6(rLL)], `${name}: from R's link-local (kernel's choice)`);
      t.same([...got.subarray(38, 54)], [...ip6(dst)], `${name}: to ${dst}`);
      const icmp = got.subarray(54);
      t.equal(icmp.readUInt16BE(2), referenceIcmp6Checksum(got.subarray(22, 38), got.subarray(38, 54), icmp), `${name}: valid checksum`);
      t.equal(hex(icmp.subarray(4)), hex(frame.subarray(54 + 4)), `${name}: ICMPv6 body unchanged`);
    }
    t.equal(byTarget('2001:db8::7a')?.subarray(0, 6).toString('hex'), P_MAC.replaceAll(':', ''), 'raw unicast: the kernel resolved P');
  });

  t.test('multicast: group joins, ip maddr, all-multicast; close undoes only our own', async (t) => {
    const maddr = async (): Promise<string> => r.ip(['maddr', 'show', 'dev', 'eth0']);
    const hasLink = async (m: string): Promise<boolean> => (await r.linkMulticast('eth0')).includes(m);
    t.notOk(await hasLink('33:33:ff:00:00:42'));
    await ra.call({ op: 'addMulticast', mac: '33:33:ff:00:00:42' });
    await ra.call({ op: 'addMulticast', mac: '33:33:ff:00:00:42' });
    const m = await maddr();
    t.match(m, /link\s+33:33:ff:00:00:42\n/, '`ip maddr` lists the MAC at once');
    t.match(m, /inet6 ff02::1:ff00:42\n/, 'through a join of its solicited-node group');
    await ra.call({ op: 'removeMulticast', mac: '33:33:ff:00:00:42' });
    t.ok(await hasLink('33:33:ff:00:00:42'), 'one reference left');
    await ra.call({ op: 'removeMulticast', mac: '33:33:ff:00:00:42' });
    t.notOk(await hasLink('33:33:ff:00:00:42'), 'gone with the last');
    t.notMatch(await maddr(), /ff02::1:ff00:42/);
    const e = (await ra.request({ op: 'removeMulticast', mac: '33:33:ff:00:00:42' }))['error'] as Record<string, unknown>;
    t.equal(e['code'], 'EADDRNOTAVAIL');
    const e1 = (await ra.request({ op: 'addMulticast', mac: '02:00:00:00:00:01' }))['error'] as Record<string, unknown>;
    t.equal(e1['code'], 'ERR_OUT_OF_RANGE', 'a unicast MAC is refused');

    // A non-IPv6 multicast MAC goes through `ip maddr add` (a static entry).
    await ra.call({ op: 'addMulticast', mac: '01:00:5e:00:00:fb' });
    t.match(await maddr(), /link\s+01:00:5e:00:00:fb static/);

    // More joins than one socket holds (optmem_max): a second socket takes the rest.
    const optmem = Number((await r.execOk('cat', ['/proc/sys/net/core/optmem_max'])).trim());
    const many = Math.min(6000, Math.ceil(optmem / 48) + 200);
    const added = (await ra.call({ op: 'addMany', n: many }, 30_000))['stats'] as Record<string, number>;
    t.ok(added['joinSockets']! >= 2, `${many} joins took ${added['joinSockets']} sockets (optmem_max ${optmem})`);
    t.equal(added['linkErrors'], 0);
    const links = await r.linkMulticast('eth0');
    t.equal(links.filter((x) => x.startsWith('33:33:ff:01:')).length, many, 'every MAC is on the interface');

    // Entries and modes that were there before us stay after close; ours go.
    await r.ip(['maddr', 'add', '33:33:ff:00:00:43', 'dev', 'eth0']);
    await r.ip(['link', 'set', 'eth0', 'promisc', 'on']);
    await ra.call({ op: 'addMulticast', mac: '33:33:ff:00:00:43' });
    await ra.call({ op: 'addMulticast', mac: '33:33:ff:00:00:44' });
    await ra.call({ op: 'setAllMulticast', on: true });
    await ra.call({ op: 'setPromiscuous', on: true });
    t.ok(await hasLink('33:33:ff:00:00:44'));
    t.ok((await r.linkFlags('eth0')).includes('ALLMULTI'), 'ALLMULTI on');

    const before = (await ra.call({ op: 'packetSockets' }))['count'] as number;
    const closed = await ra.call({ op: 'close' });
    t.equal((closed['stats'] as Record<string, number>)['linkErrors'], 0);
    const after = await r.linkMulticast('eth0');
    t.notOk(after.includes('33:33:ff:00:00:44'), 'our join is gone with its socket');
    t.equal(after.filter((x) => x.startsWith('33:33:ff:01:')).length, 0, 'all the many joins are gone');
    t.notOk(after.includes('01:00:5e:00:00:fb'), 'our static entry removed');
    t.ok(after.includes('33:33:ff:00:00:43'), 'the pre-existing entry stays');
    const flags = await r.linkFlags('eth0');
    t.notOk(flags.includes('ALLMULTI'), 'all-multicast off again');
    t.ok(flags.includes('PROMISC'), 'promiscuous mode set by someone else stays');
    await r.ip(['maddr', 'del', '33:33:ff:00:00:43', 'dev', 'eth0']);
    await r.ip(['link', 'set', 'eth0', 'promisc', 'off']);

    // The capture socket is released (node_pcap frees it on the wake-up read after close).
    await waitFor(async () => ((await ra.call({ op: 'packetSockets' }))['count'] as number) < before, {
      timeoutMs: 2000,
      what: 'the packet socket to close',
    });
    t.pass('packet socket gone');
    const e2 = (await ra.request({ op: 'addMulticast', mac: '33:33:ff:00:00:45' }))['error'] as Record<string, unknown>;
    t.equal(e2['code'], 'EBADF', 'closed');
    const s = await ra.call({ op: 'send', frames: [hex(makeNA({}))] });
    t.equal(s['sent'], 0, 'send after close sends nothing');
  });

  t.test('group joins do not outlive a killed process', async (t) => {
    const k = await startAgent(r);
    await k.call({ op: 'open', ifname: 'eth0' });
    await k.call({ op: 'addMulticast', mac: '33:33:ff:00:00:46' });
    t.ok((await r.linkMulticast('eth0')).includes('33:33:ff:00:00:46'));
    k.child.kill('SIGKILL');
    await k.end();
    await waitFor(async () => !(await r.linkMulticast('eth0')).includes('33:33:ff:00:00:46'), {
      timeoutMs: 2000,
      what: 'the kernel to drop the join',
    });
    t.pass('the MAC left with the process');
  });

  t.test('close() inside onBatch, and a closed back end lets the process exit', async (t) => {
    const a = await startAgent(r);
    let exited = false;
    try {
      const base = (await a.call({ op: 'packetSockets' }))['count'] as number;
      await a.call({ op: 'open', ifname: 'eth0' });
      await a.call({ op: 'start', closeInCallback: true });
      t.equal((await a.call({ op: 'packetSockets' }))['count'], base + 1);
      await p.exec('ping', ['-6', '-c', '1', '-W', '1', '2001:db8::98']);
      await a.waitFor((x) => x['ev'] === 'closed-in-callback', 5000);
      await waitFor(async () => ((await a.call({ op: 'packetSockets' }))['count'] as number) === base, {
        timeoutMs: 2000,
        what: 'the socket to close',
      });
      t.pass('socket released after close() inside onBatch');
      // Nothing of the back end keeps Node alive: closing stdin ends the agent by itself.
      const t0 = Date.now();
      const code = await a.end(4000);
      exited = true;
      t.equal(code, 0, 'agent exited on its own');
      t.ok(Date.now() - t0 < 3000, `within ${Date.now() - t0} ms`);
    } finally {
      if (!exited) await a.end();
    }

    // Same after an ordinary close() with no traffic at all afterwards.
    const b = await startAgent(r);
    await b.call({ op: 'open', ifname: 'eth0' });
    await b.call({ op: 'start' });
    await b.call({ op: 'close' });
    const t1 = Date.now();
    t.equal(await b.end(4000), 0, 'agent exited on its own after close() with an idle link');
    t.ok(Date.now() - t1 < 3000);
  });
}
