/**
 * `doctor` on a misconfigured host, with real kernels: a namespace H whose uplink eth0 has
 * 2001:db8:a::2/64, a container range 2001:db8:a:0:8000::/66 that is not routed anywhere (a veth
 * "docker0" exists, without the route), IPv6 forwarding off, proxy_ndp on with a kernel proxy
 * entry, the ip6tables FORWARD policy DROP, and ndppd running in H. Doctor must name each
 * finding with its exact fix and print nothing on stderr; then the printed fixes are applied
 * as printed, and a second run finds each of those checks ok.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Lab } from '../../src/lab/netns.js';
import { pollUntil, stopProcess } from '../../src/lab/process.js';
import type { Finding } from '../../src/cli/doctor-checks.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const RANGE = '2001:db8:a:0:8000::/66';
const PROXIED = '2001:db8:a::5';

const lab = await Lab.create(t, 'dr');
const sw = await lab.netns('sw');
const h = await lab.netns('h');
await lab.veth(sw, 'ph', h, 'eth0');
await sw.up('ph');
await h.addr('eth0', '2001:db8:a::2/64');
await lab.veth(h, 'docker0', h, 'c0');
await h.sysctl('net.ipv6.conf.all.forwarding', 0);
await h.sysctl('net.ipv6.conf.eth0.proxy_ndp', 1);
await h.ip(['-6', 'neigh', 'add', 'proxy', PROXIED, 'dev', 'eth0']);
await h.execOk('ip6tables', ['-P', 'FORWARD', 'DROP']);

const dir = mkdtempSync(join(tmpdir(), 'ndp-doctor-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const conf = join(dir, 'ndppd.conf');
writeFileSync(conf, `proxy eth0 {\n  rule ${PROXIED}/128 {\n    static\n  }\n}\n`);
const ndppd = h.spawn('ndppd', ['-c', conf]);
t.teardown(() => stopProcess(ndppd));
// ndppd is running once its comm shows up under its pid (ip netns exec execs into it).
const seen = await pollUntil(async () => (await h.exec('cat', [`/proc/${ndppd.pid}/comm`])).stdout.trim() === 'ndppd' || undefined, 5000);
if (!seen) throw new Error('ndppd did not start');

async function doctor(): Promise<{ code: number; stderr: string; text: string; findings: Finding[] }> {
  const args = [CLI, 'doctor', '--interface', 'eth0', '--prefix', RANGE];
  const text = await h.exec(process.execPath, args, { timeoutMs: 30_000 });
  const json = await h.exec(process.execPath, [...args, '--json'], { timeoutMs: 30_000 });
  return { code: text.code, stderr: text.stderr + json.stderr, text: text.stdout, findings: JSON.parse(json.stdout) as Finding[] };
}

const find = (fs: Finding[], check: string) => fs.filter((f) => f.check === check);

const before = await doctor();
t.test('each misconfiguration is a finding with its exact fix, and stderr is empty', async (t) => {
  t.equal(before.stderr, '', 'nothing on stderr');
  t.equal(before.code, 1, 'exit 1: something failed');
  const fwd = find(before.findings, 'forwarding')[0];
  t.equal(fwd?.level, 'fail');
  t.match(fwd?.fix, /^sysctl -w net\.ipv6\.conf\.all\.forwarding=1 /);
  const route = find(before.findings, `route to ${RANGE}`)[0];
  t.equal(route?.level, 'fail', 'no route to the container range');
  t.match(route?.detail, /routes it out of eth0/, 'the on-link route sends it back out of the uplink');
  t.equal(route?.fix, `ip -6 route add ${RANGE} dev <the bridge the containers are on>`);
  const proxy = find(before.findings, 'kernel proxy_ndp')[0];
  t.equal(proxy?.level, 'warn');
  t.match(proxy?.detail, /1 proxy entry \(2001:db8:a::5\)/);
  t.equal(proxy?.fix, `ip -6 neigh del proxy ${PROXIED} dev eth0 && sysctl -w net.ipv6.conf.eth0.proxy_ndp=0`);
  const fw = find(before.findings, 'ip6tables FORWARD')[0];
  t.equal(fw?.level, 'warn');
  t.match(fw?.detail, /^policy DROP/);
  t.equal(fw?.fix, `ip6tables -I FORWARD -d ${RANGE} -j ACCEPT && ip6tables -I FORWARD -s ${RANGE} -j ACCEPT`);
  const other = find(before.findings, 'other answerer');
  t.equal(other.length, 1, 'one other answerer');
  t.equal(other[0]?.level, 'warn');
  t.match(other[0]?.detail, new RegExp(`^ndppd \\(pid ${ndppd.pid}\\)`));
  t.equal(other[0]?.fix, `systemctl disable --now ndppd (or: kill ${ndppd.pid})`);
  const caps = find(before.findings, 'capabilities')[0];
  t.equal(caps?.level, 'ok');
  t.match(caps?.detail, /^effective: /, 'the capabilities held are listed');
  // The text form: one line per finding, the fix on the same line.
  const lines = before.text.trimEnd().split('\n');
  t.equal(lines.length, before.findings.length, 'one line per finding');
  t.ok(lines.includes(`FAIL route to ${RANGE}: ${route!.detail}; fix: ${route!.fix}`), 'text line carries detail and fix');
  for (const f of before.findings) if (f.level === 'warn' || f.level === 'fail') t.ok(f.fix, `${f.check} has a fix`);
});

t.test('the printed fixes, applied as printed, clear each finding', async (t) => {
  const sh = async (cmd: string) => {
    const r = await h.exec('sh', ['-c', cmd]);
    t.equal(r.code, 0, `ran: ${cmd}${r.stderr ? ` (${r.stderr.trim()})` : ''}`);
  };
  const fixOf = (check: string) => find(before.findings, check)[0]!.fix!;
  // The sysctl fix's first command (the rest says how to keep it over a reboot).
  await sh(fixOf('forwarding').split(' (')[0]!);
  await sh(fixOf(`route to ${RANGE}`).replace('<the bridge the containers are on>', 'docker0'));
  await sh(fixOf('kernel proxy_ndp'));
  await sh(fixOf('ip6tables FORWARD'));
  await stopProcess(ndppd);
  const after = await doctor();
  t.equal(after.stderr, '', 'nothing on stderr');
  t.equal(find(after.findings, 'forwarding')[0]?.level, 'ok');
  t.equal(find(after.findings, `route to ${RANGE}`)[0]?.level, 'ok');
  t.match(find(after.findings, `route to ${RANGE}`)[0]?.detail, /routed to docker0/);
  t.equal(find(after.findings, 'kernel proxy_ndp')[0]?.level, 'ok');
  t.equal(find(after.findings, 'other answerer')[0]?.level, 'ok');
  // DROP stays, with ACCEPT rules for the range both ways now.
  t.equal(find(after.findings, 'ip6tables FORWARD')[0]?.level, 'ok');
  t.match(find(after.findings, 'ip6tables FORWARD')[0]?.detail, /^policy DROP, and rules accept the container range both ways/);
  t.equal(after.code, 0, 'exit 0: nothing failed');
});
