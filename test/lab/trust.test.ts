/**
 * Claim only what is ours, with real kernels: a LAN (a bridge) with a router R (2001:db8:a::1),
 * the host H (2001:db8:a::2, its container range 2001:db8:a:0:8000::/66 routed to a veth
 * "docker0" whose peer stays in H) and LAN nodes L and M. H runs `ndp-responder run --prefix
 * 2001:db8:a::/64`, the whole on-link prefix, as ndppd users commonly configure it.
 *
 *  - route check (default): a container-range address is answered; a new LAN node's DAD for
 *    2001:db8:a::3 succeeds; NS for that live node's address are answered by it alone;
 *  - --no-route-check: the conflict guard alone still lets a new node's DAD succeed, and never
 *    answers for the address afterwards; a node already using an address (seen as an NS source)
 *    is never answered for either;
 *  - answers that come only from the prefix rule carry O=0, an exact --address O=1.
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { Lab, type Netns } from '../../src/lab/netns.js';
import { stopProcess, waitFor, waitForLine } from '../../src/lab/process.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const H_MAC = '02:00:00:00:0a:02';
const L_MAC = '02:00:00:00:0a:03';

const lab = await Lab.create(t, 'tr');
const sw = await lab.netns('sw');
const r = await lab.netns('r');
const h = await lab.netns('h');
const l = await lab.netns('l');
const m = await lab.netns('m');
await lab.bridge(sw, 'br0');
for (const [ns, mac] of [
  [r, '02:00:00:00:0a:01'],
  [h, H_MAC],
  [l, L_MAC],
  [m, '02:00:00:00:0a:04'],
] as [Netns, string][]) {
  const port = `p${ns.name.slice(-1)}`;
  await lab.veth(sw, port, ns, 'eth0', { bMac: mac });
  await sw.ip(['link', 'set', port, 'master', 'br0']);
}
await r.addr('eth0', '2001:db8:a::1/64');
await h.addr('eth0', '2001:db8:a::2/64');
await m.addr('eth0', '2001:db8:a::4/64');
// The container range behind H: routed to a veth, as Docker routes its range to docker0.
await lab.veth(h, 'docker0', h, 'c0');
await h.ip(['route', 'add', '2001:db8:a:0:8000::/66', 'dev', 'docker0']);
await h.sysctl('net.ipv6.conf.all.forwarding', 1);

/** ndisc6 from `ns`: every MAC that answered for `addr` (ndisc6 -m prints them all). */
async function answers(ns: Netns, addr: string): Promise<string[]> {
  const out = await ns.exec('ndisc6', ['-m', '-r', '1', '-w', '700', addr, 'eth0'], { timeoutMs: 10_000 });
  return [...out.stdout.matchAll(/Target link-layer address:\s*([0-9A-Fa-f:]{17})/g)].map((x) => x[1]!.toLowerCase());
}

async function addrState(ns: Netns, addr: string): Promise<string> {
  const out = await ns.ip(['-6', '-o', 'addr', 'show', 'dev', 'eth0']);
  return out.split('\n').find((x) => x.includes(` ${addr}/64 `)) ?? '';
}

async function start(args: string[]): Promise<{ child: ChildProcess; log: string[] }> {
  const child = h.spawn(process.execPath, [CLI, 'run', '--interface', 'eth0', '--log-level', 'info', ...args]);
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  await waitForLine(child, /"msg":"ready"/, 20_000);
  return { child, log };
}

/** DAD on: the LAN node probes before it uses a new address. */
await l.sysctl('net.ipv6.conf.eth0.accept_dad', 1);
await l.sysctl('net.ipv6.conf.eth0.dad_transmits', 1);

t.test('route check (default): only what the host routes away from the uplink', async (t) => {
  const d = await start(['--prefix', '2001:db8:a::/64', '--address', '2001:db8:a::99']);
  t.teardown(() => stopProcess(d.child));
  t.match(d.log.find((x) => x.includes('"msg":"ready"')) ?? '', /"routeCheck":true/, 'route check on by default');
  t.same(await answers(r, '2001:db8:a:0:8000::5'), [H_MAC], 'a container-range address is answered by the host');
  t.same(await answers(r, '2001:db8:a::77'), [], 'an on-link address nobody uses is not answered (the host would route it back out eth0)');
  t.same(await answers(r, '2001:db8:a::99'), [H_MAC], 'an exact --address is answered regardless');
  await l.ip(['-6', 'addr', 'add', '2001:db8:a::3/64', 'dev', 'eth0']);
  await waitFor(
    async () => {
      const s = await addrState(l, '2001:db8:a::3');
      return s !== '' && !/tentative|dadfailed/.test(s);
    },
    { timeoutMs: 8000, what: "L's DAD for 2001:db8:a::3 to finish" },
  );
  t.notMatch(await addrState(l, '2001:db8:a::3'), /dadfailed/, "a new LAN node's DAD under the /64 rule succeeds");
  t.same(await answers(r, '2001:db8:a::3'), [L_MAC], "NS for the live node's address: only the node answers");
});

t.test("--no-route-check: the conflict guard alone keeps us off other nodes' addresses", async (t) => {
  const d = await start(['--prefix', '2001:db8:a::/64', '--no-route-check', '--metrics', '[::1]:9464']);
  t.teardown(() => stopProcess(d.child));
  // M uses 2001:db8:a::4 already: its NS (from that address) show it, then we never answer for it.
  await m.exec('ndisc6', ['-1', '-r', '1', '-w', '300', '-s', '2001:db8:a::4', '2001:db8:a:0:8000::6', 'eth0']);
  t.same(await answers(r, '2001:db8:a::4'), ['02:00:00:00:0a:04'], 'a live node seen as an NS source: only it answers');
  // A new node's DAD is not defended (the address is only covered by a prefix rule) ...
  await l.ip(['-6', 'addr', 'add', '2001:db8:a::5/64', 'dev', 'eth0']);
  await waitFor(
    async () => {
      const s = await addrState(l, '2001:db8:a::5');
      return s !== '' && !/tentative|dadfailed/.test(s);
    },
    { timeoutMs: 8000, what: "L's DAD for 2001:db8:a::5 to finish" },
  );
  t.notMatch(await addrState(l, '2001:db8:a::5'), /dadfailed/, "the new node's DAD succeeds");
  // ... and the address is never answered afterwards.
  t.same(await answers(r, '2001:db8:a::5'), [L_MAC], 'only the node answers for it');
  const warned = d.log.filter((x) => x.includes('"reason":"in-use-on-link"'));
  t.ok(
    warned.some((x) => x.includes('2001:db8:a::5')) && warned.some((x) => x.includes('2001:db8:a::4')),
    'each conflict logged at warn with the other MAC',
  );
  const ex = JSON.parse(
    (await h.execOk(process.execPath, [CLI, 'explain', '--json', '--daemon', 'http://[::1]:9464', '2001:db8:a::5'])).trim(),
  ) as { verdict: string; inUse?: { mac: string } }[];
  t.equal(ex[0]!.verdict, 'in-use-on-link', 'explain says why');
  t.equal(ex[0]!.inUse?.mac, L_MAC, 'and who uses it');
  // O flag: a prefix-only answer carries O=0.
  const cap = r.spawn('tcpdump', ['-i', 'eth0', '-nn', '-l', '-v', 'icmp6 and ip6[40] == 136']);
  let seen = '';
  cap.stdout!.setEncoding('utf8').on('data', (x: string) => (seen += x));
  t.teardown(() => stopProcess(cap));
  await new Promise((res) => setTimeout(res, 300));
  t.same(await answers(r, '2001:db8:a::6'), [H_MAC], 'an unused on-link address is answered without the route check');
  await waitFor(() => seen.includes('tgt is 2001:db8:a::6'), { timeoutMs: 3000, what: 'the NA on the wire' });
  t.match(seen, /tgt is 2001:db8:a::6, Flags \[solicited\]/, 'prefix-only answer: S=1, O=0');
});
