/**
 * The seed's scenario end to end, with real dockerd engines: two Docker hosts d1 and d2 on one
 * /64, containers in each host's --fixed-cidr-v6 range, NO kernel proxy entries, and
 * `ndp-responder run --interface eth0 --docker unix://...` on both hosts instead.
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { DockerLab, IMAGE } from '../../src/lab/docker-lab.js';
import { stopProcess, waitFor, waitForLine } from '../../src/lab/process.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const lab = await DockerLab.up({ hosts: 2 });
t.teardown(() => lab.down());
t.comment(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms`);
const responders = new Map<string, ChildProcess>();
/** Each responder's log lines (JSON). */
const logs = new Map<string, string[]>();
t.teardown(async () => {
  for (const c of responders.values()) await stopProcess(c);
});

const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

async function startResponder(h: 'd1' | 'd2'): Promise<ChildProcess> {
  const child = lab.spawnIn(h, process.execPath, [CLI, 'run', '--interface', 'eth0', '--docker', lab.host(h).url, '--log-level', 'info']);
  responders.set(h, child);
  const log: string[] = [];
  logs.set(h, log);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  await waitForLine(child, /"msg":"ready"/, 20_000);
  return child;
}

const macOf = (h: 'd1' | 'd2'): Promise<string> => lab.mac(h);
const ndisc6 = (addr: string): Promise<string | null> => lab.ndisc6('d2', addr);

const [web1] = await lab.containerAddresses('d1', 'web1');
const [web2] = await lab.containerAddresses('d2', 'web2');
const d1mac = await macOf('d1');
const d2mac = await macOf('d2');

t.test('without ndp-responder: web2 cannot reach web1', async (t) => {
  const r = await lab.ping6('d2', 'web2', web1!, 1, 2);
  t.notOk(r.ok, 'every packet lost');
});

t.test('with ndp-responder --docker on both hosts, no proxy entries: web2 reaches web1', async (t) => {
  await lab.flushNeigh('d1');
  await lab.flushNeigh('d2');
  for (const h of ['d1', 'd2'] as const) {
    const proxy = (await lab.exec(h, ['ip', '-6', 'neigh', 'show', 'proxy'])).stdout.trim();
    t.equal(proxy, '', `${h}: no kernel proxy entries`);
  }
  await startResponder('d1');
  await startResponder('d2');
  const r = await lab.ping6('d2', 'web2', web1!, 1, 2);
  t.ok(r.ok, 'first ping answered');
  const canon1 = formatAddress(parseAddress(web1!));
  const canon2 = formatAddress(parseAddress(web2!));
  t.match(await lab.neigh('d2'), new RegExp(`${canon1} lladdr ${d1mac}`), "d2 maps web1 to d1's eth0 MAC");
  t.match(await lab.neigh('d1'), new RegExp(`${canon2} lladdr ${d2mac}`), "d1 maps web2 to d2's eth0 MAC");
});

t.test('a new container answers on its first packet, announced by unsolicited NAs', async (t) => {
  const capture = lab.spawnIn('d2', 'tcpdump', ['-i', 'eth0', '-nn', '-l', 'icmp6 and ip6[40] == 136 and ip6 dst ff02::1']);
  let seen = '';
  capture.stdout!.setEncoding('utf8').on('data', (d: string) => (seen += d));
  t.teardown(() => stopProcess(capture));
  await new Promise((r) => setTimeout(r, 300));
  await lab.dockerOk('d1', ['run', '-d', '--name', 'web3', IMAGE, ...SLEEPER]);
  const [web3] = await lab.containerAddresses('d1', 'web3');
  const r = await lab.ping6('d2', 'web2', web3!, 1, 2);
  t.ok(r.ok, `ping from web2 to the new web3 (${web3}) works on the first try`);
  const canon3 = formatAddress(parseAddress(web3!));
  await waitFor(() => seen.includes(`tgt is ${canon3}`), { timeoutMs: 3000, what: 'an unsolicited NA for web3' });
  t.pass(`unsolicited NA for ${canon3} seen on the wire`);
});

t.test('a stopped container is no longer answered', async (t) => {
  t.equal(await ndisc6(web1!), d1mac, 'web1 answered while it runs');
  await lab.dockerOk('d1', ['stop', '-t', '2', 'web1']);
  t.equal(await ndisc6(web1!), null, 'web1 not answered after docker stop');
  await lab.dockerOk('d1', ['rm', 'web1']);
});

t.test("d1's dockerd restarts: answers resume for containers that run afterwards, none for others", async (t) => {
  await lab.dockerOk('d1', ['run', '-d', '--restart', 'always', '--name', 'web4', IMAGE, ...SLEEPER]);
  const [web4] = await lab.containerAddresses('d1', 'web4');
  const [web3] = await lab.containerAddresses('d1', 'web3');
  await waitFor(async () => (await ndisc6(web4!)) === d1mac, { timeoutMs: 5000, what: 'web4 answered' });
  await lab.stopDockerd('d1', 'term');
  t.equal(responders.get('d1')!.exitCode, null, 'ndp-responder still running while Docker is down');
  await lab.startDockerd('d1');
  const addr4 = await waitFor(async () => (await lab.containerAddresses('d1', 'web4').catch(() => []))[0], {
    timeoutMs: 30_000,
    what: 'web4 restarted by Docker',
  });
  await waitFor(async () => (await ndisc6(addr4)) === d1mac, { timeoutMs: 15_000, what: 'web4 answered after the restart' });
  t.pass(`web4 (restart=always, now ${addr4}) is answered again`);
  if (addr4 !== web4) t.equal(await ndisc6(web4!), null, "web4's old address is not answered");
  t.equal(await ndisc6(web3!), null, 'web3 (no restart policy, gone) is not answered');
});

t.test('a user-defined IPv6 network is followed', async (t) => {
  await lab.dockerOk('d1', ['network', 'create', '--ipv6', '--subnet', '2003:ab11:0:0:4000::/68', 'v6net']);
  await lab.dockerOk('d1', ['run', '-d', '--name', 'web5', '--network', 'v6net', IMAGE, ...SLEEPER]);
  const [web5] = await lab.containerAddresses('d1', 'web5');
  t.match(web5, /^2003:ab11::4/, `web5 has ${web5} on v6net`);
  await waitFor(async () => (await ndisc6(web5!)) === d1mac, { timeoutMs: 3000, what: 'web5 answered by d1' });
  t.pass("web5's address is answered with d1's MAC");
  // Two tries: a fresh network's container may still be running DAD on its own address.
  const r = await lab.ping6('d2', 'web2', web5!, 2, 2);
  t.ok(r.ok, 'web2 reaches web5 on the user-defined network');
});

t.test('explain --docker and run agree: a container outside the Docker scope is answered by neither', async (t) => {
  // A network outside d1's on-link /64: its containers are not reachable through d1's uplink.
  await lab.dockerOk('d1', ['network', 'create', '--ipv6', '--subnet', '2001:db8:99::/64', 'outside']);
  await lab.dockerOk('d1', ['run', '-d', '--name', 'web6', '--network', 'outside', IMAGE, ...SLEEPER]);
  const [web6] = await lab.containerAddresses('d1', 'web6');
  const [web5] = await lab.containerAddresses('d1', 'web5');
  const explain = async (addr: string): Promise<{ answered: boolean; verdict: string }> => {
    const r = await lab.exec('d1', [
      process.execPath,
      CLI,
      'explain',
      '--json',
      '--interface',
      'eth0',
      '--docker',
      lab.host('d1').url,
      addr,
    ]);
    t.equal(r.code, 0, `explain ${addr} exits 0 (${r.stderr.trim()})`);
    return (JSON.parse(r.stdout) as { answered: boolean; verdict: string }[])[0]!;
  };
  const out = await explain(web6!);
  t.equal(out.answered, false, `explain --docker: ${web6} (outside the on-link prefix) is not answered`);
  t.equal(out.verdict, 'no-rule', 'no rule admits it');
  t.equal(await ndisc6(web6!), null, 'run --docker does not answer it either');
  const inside = await explain(web5!);
  t.equal(inside.answered, true, `explain --docker: ${web5} (inside) is answered`);
  t.equal(await ndisc6(web5!), d1mac, 'and so does run');
});

t.test("a container given another node's address is not claimed, and a warning names it", async (t) => {
  // d2 owns 2003:ab11::2. A network on d1 whose subnet holds it (routed to its bridge, so the
  // route check passes) and a container given exactly that address: d1's probe for it is
  // answered by d2's kernel, so d1 must never answer or announce it.
  await lab.dockerOk('d1', ['network', 'create', '--ipv6', '--subnet', '2003:ab11::/112', '--gateway', '2003:ab11::fffe', 'clash']);
  t.teardown(async () => {
    await lab.docker('d1', ['rm', '-f', 'thief']);
    await lab.docker('d1', ['network', 'rm', 'clash']);
  });
  const capture = lab.spawnIn('d2', 'tcpdump', ['-i', 'eth0', '-nn', '-e', '-l', 'icmp6 and ip6[40] == 136']);
  let seen = '';
  capture.stdout!.setEncoding('utf8').on('data', (d: string) => (seen += d));
  t.teardown(() => stopProcess(capture));
  await new Promise((r) => setTimeout(r, 300));
  await lab.dockerOk('d1', ['run', '-d', '--name', 'thief', '--network', 'clash', '--ip6', '2003:ab11::2', IMAGE, ...SLEEPER]);
  const log = logs.get('d1')!;
  await waitFor(() => log.some((l) => l.includes('"reason":"in-use-on-link"') && l.includes('"container":"thief"')), {
    timeoutMs: 5000,
    what: "a warning naming the container 'thief'",
  });
  t.pass('warned: container thief uses an address another node owns');
  // Past the probe time: no answer and no announcement for ::2 from d1's MAC ever went out.
  await new Promise((r) => setTimeout(r, 2500));
  const fromD1 = seen.split('\n').filter((l) => l.startsWith(d1mac) && l.includes('tgt is 2003:ab11::2,'));
  t.same(fromD1, [], "d1 sent no NA for d2's address");
});
