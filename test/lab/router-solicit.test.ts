/**
 * When a container starts, besides the unsolicited NAs, one NS goes from its address to the
 * default router, so a router that ignores unsolicited NAs (Linux does, without an entry) learns
 * the address. Real dockerd host d1 on a bridge, a "router" namespace R on the same bridge
 * (fe80::1, d1's default route points at it), `ndp-responder run --docker` on d1: a new
 * container's address must appear in R's neighbour table with d1's MAC, and R's capture must
 * show exactly one NS from that address, for fe80::1. On the same engine, `doctor --docker`
 * reads Docker's IPv6 settings and checks the route to its range, printing nothing on stderr.
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { DockerLab, IMAGE } from '../../src/lab/docker-lab.js';
import { Lab, Netns } from '../../src/lab/netns.js';
import { pollUntil, sleep, stopProcess, waitForLine } from '../../src/lab/process.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const dl = await DockerLab.up({ hosts: 1, containers: false });
t.teardown(() => dl.down());
const lab = await Lab.create(t, 'rs');
const r = await lab.netns('r');
const br = new Netns(dl.brNs);
await lab.veth(br, `r${lab.tag}`.slice(0, 15), r, 'eth0', { bMac: '02:00:00:00:0f:01' });
await br.ip(['link', 'set', `r${lab.tag}`.slice(0, 15), 'master', 'br0', 'up']);
await r.ip(['-6', 'addr', 'add', 'fe80::1/64', 'dev', 'eth0', 'nodad']);
await r.ip(['-6', 'addr', 'add', '2003:ab11::fe/64', 'dev', 'eth0', 'nodad']);
await r.up('eth0');
const route = await dl.exec('d1', ['ip', '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0']);
if (route.code !== 0) throw new Error(`default route: ${route.stderr}`);
const d1Mac = /link\/ether ([0-9a-f:]{17})/.exec((await dl.exec('d1', ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).stdout)?.[1];
if (d1Mac === undefined) throw new Error('no MAC for d1 eth0');

// R's capture: every NS, one line each.
const cap = r.spawn('tcpdump', ['-i', 'eth0', '-n', '-l', 'icmp6 and ip6[40] == 135']);
t.teardown(() => stopProcess(cap));
const capLines: string[] = [];
cap.stdout!.setEncoding('utf8').on('data', (d: string) => capLines.push(...d.split('\n').filter(Boolean)));
await waitForLine(cap, /listening on/, 10_000).catch(() => undefined);
await sleep(200);

let responder: ChildProcess | undefined;
t.teardown(async () => {
  if (responder) await stopProcess(responder);
});

t.test('doctor against this real engine: its IPv6 settings and the route to its range, nothing on stderr', async (t) => {
  const r = await dl.exec('d1', [process.execPath, CLI, 'doctor', '--interface', 'eth0', '--docker', dl.host('d1').url, '--json'], {
    timeoutMs: 30_000,
  });
  t.equal(r.stderr, '', 'nothing on stderr');
  const findings = JSON.parse(r.stdout) as { level: string; check: string; detail: string; fix?: string }[];
  t.comment(findings.map((f) => `${f.level} ${f.check}: ${f.detail}${f.fix ? `; fix: ${f.fix}` : ''}`).join('\n'));
  const one = (check: string) => findings.find((f) => f.check === check);
  t.equal(one('docker')?.level, 'ok');
  t.equal(one('docker ipv6')?.level, 'ok');
  t.match(one('docker ipv6')?.detail, dl.host('d1').cidr.split('/')[0]!, 'names fixed-cidr-v6');
  const route = one(`route to ${dl.host('d1').cidr}`);
  t.equal(route?.level, 'ok', 'the range is routed to the bridge');
  t.match(route?.detail, /docker network bridge: routed to docker0/);
});

t.test('a new container asks the default router from its own address, once', async (t) => {
  responder = dl.spawnIn('d1', process.execPath, [
    CLI,
    'run',
    '--interface',
    'eth0',
    '--docker',
    dl.host('d1').url,
    '--log-level',
    'debug',
    '--log-format',
    'json',
  ]);
  const log: string[] = [];
  responder.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(...d.split('\n').filter(Boolean)));
  await waitForLine(responder, /"msg":"ready"/, 20_000);
  const ready = JSON.parse(log.find((l) => l.includes('"msg":"ready"'))!) as { serves?: string };
  t.match(ready.serves, /Docker containers \(networks: all\)/, 'the ready line says what is served');

  await dl.dockerOk('d1', ['run', '-d', '--name', 'c1', IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']);
  const [addr] = await dl.containerAddresses('d1', 'c1');
  t.ok(addr, `container address ${addr}`);
  const entry = await pollUntil(async () => {
    const out = (await r.ip(['-6', 'neigh', 'show', 'dev', 'eth0'])).split('\n');
    return out.find((l) => l.startsWith(`${addr} `));
  }, 8000);
  t.ok(entry, `R learnt the container address: ${entry}`);
  t.match(entry, new RegExp(`lladdr ${d1Mac}`), "with d1's MAC");
  await sleep(300);
  const fromContainer = capLines.filter((l) => l.includes(`IP6 ${addr} > `));
  t.equal(fromContainer.length, 1, `one NS from ${addr}: ${fromContainer.join(' | ')}`);
  t.match(
    fromContainer[0],
    /> ff02::1:ff00:1: ICMP6, neighbor solicitation, who has fe80::1/,
    'for the router, to its solicited-node group',
  );
  t.ok(
    log.some((l) => l.includes('asked the default router from new addresses')),
    'logged at debug',
  );
  await dl.dockerOk('d1', ['rm', '-f', 'c1']);
});
