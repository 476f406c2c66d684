/**
 * `run --config` against real kernels: two uplinks in one process (each answers only its own
 * rules, with its own MAC), SIGHUP reload without a gap, a broken file refused, `status` and
 * `explain` over the control socket, `--wait-interface`, and zero configuration (the default
 * route's interface, chosen with no flags).
 *
 * Topology: namespace H (the responder) with eth0 and eth1, each a veth to its own peer
 * namespace (P1, P2) where ndisc6 asks. The container ranges are routed inside H to one end of a
 * veth pair whose both ends stay in H, so the route check passes as it would on a Docker host.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { nsExec, nsSpawn, nsTry, uniqueTag } from '../../src/lab/netns.js';
import { waitFor } from '../../src/lab/process.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build'`);

const MAC0 = '02:00:00:00:0a:01';
const MAC1 = '02:00:00:00:0b:01';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function ndisc6(ns: string, addr: string): string | null {
  const r = nsTry(ns, ['ndisc6', '-1', '-r', '2', '-w', '300', addr, 'eth0'], 10_000);
  const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.out);
  return r.status === 0 && m ? m[1]!.toLowerCase() : null;
}

/** A peer namespace joined to `host` by a veth: `hostIf` in host, eth0 in the peer. */
function peer(host: string, name: string, hostIf: string, mac: string, net: string): void {
  ip('netns', 'add', name);
  ip('link', 'add', `${name}h`, 'type', 'veth', 'peer', 'name', `${name}p`);
  ip('link', 'set', `${name}p`, 'netns', name);
  ip('link', 'set', `${name}h`, 'netns', host);
  nsExec(host, ['ip', 'link', 'set', `${name}h`, 'name', hostIf]);
  nsExec(host, ['ip', 'link', 'set', hostIf, 'address', mac]);
  nsExec(name, ['ip', 'link', 'set', `${name}p`, 'name', 'eth0']);
  nsExec(host, ['ip', '-6', 'addr', 'add', `${net}::1/64`, 'dev', hostIf, 'nodad']);
  nsExec(name, ['ip', '-6', 'addr', 'add', `${net}::2/64`, 'dev', 'eth0', 'nodad']);
  nsExec(host, ['ip', 'link', 'set', hostIf, 'up']);
  nsExec(name, ['ip', 'link', 'set', 'eth0', 'up']);
  nsExec(name, ['ip', 'link', 'set', 'lo', 'up']);
}

interface Proc {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  text(): string;
}

function spawnRun(ns: string, args: string[], env: Record<string, string> = {}): Proc {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const child = nsSpawn(ns, ['env', ...envArgs, process.execPath, CLI, 'run', ...args]);
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  let raw = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    raw += d;
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (raw += d));
  return { child, lines, text: () => raw };
}

async function stop(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  const exited = new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  p.child.kill('SIGTERM');
  const c = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 8000))]);
  if (c === 'timeout') {
    p.child.kill('SIGKILL');
    return -1;
  }
  return c;
}

function cli(args: string[]): { status: number; out: string } {
  try {
    return {
      status: 0,
      out: execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }),
    };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

t.test('two uplinks in one process, reload without a gap, control socket', async (t) => {
  const tag = uniqueTag('cu');
  const H = `${tag}h`;
  const P1 = `${tag}a`;
  const P2 = `${tag}b`;
  const dir = mkdtempSync(join(tmpdir(), 'ndp-config-'));
  const procs: Proc[] = [];
  t.teardown(() => {
    for (const p of procs) p.child.kill('SIGKILL');
    for (const n of [H, P1, P2]) execFileSync('sh', ['-c', `ip netns del ${n} 2>/dev/null || true`]);
    rmSync(dir, { recursive: true, force: true });
  });
  ip('netns', 'add', H);
  nsExec(H, ['ip', 'link', 'set', 'lo', 'up']);
  peer(H, P1, 'eth0', MAC0, '2001:db8:a:0');
  peer(H, P2, 'eth1', MAC1, '2001:db8:b:0');
  // The container ranges live behind a veth inside H (as behind docker0 on a real host).
  nsExec(H, ['ip', 'link', 'add', 'ca', 'type', 'veth', 'peer', 'name', 'cb']);
  nsExec(H, ['ip', 'link', 'set', 'ca', 'up']);
  nsExec(H, ['ip', 'link', 'set', 'cb', 'up']);
  for (const r of ['2001:db8:a:0:8000::/66', '2001:db8:b:0:8000::/66', '2001:db8:a:0:c000::/66'])
    nsExec(H, ['ip', '-6', 'route', 'add', r, 'dev', 'ca']);

  const config = join(dir, 'ndp.yaml');
  const control = join(dir, 'control.sock');
  // The shape of the issue, exactly.
  const v1 = `metrics: "[::1]:19464"
uplinks:
  - interface: eth0
    prefix: [2001:db8:a:0:8000::/66]
  - interface: eth1
    prefix: [2001:db8:b:0:8000::/66]
    address: [2001:db8:b::99]
`;
  writeFileSync(config, v1);
  const d = spawnRun(H, ['--config', config, '--control', control]);
  procs.push(d);
  await waitFor(() => d.lines.filter((l) => l.msg === 'ready').length === 2 || d.child.exitCode !== null, {
    timeoutMs: 20_000,
    what: 'two ready lines',
  });
  t.equal(d.lines[0]?.msg, 'configuration', 'the first log line is the configuration');

  t.equal(ndisc6(P1, '2001:db8:a:0:8000::5'), MAC0, 'eth0 answers its prefix with its own MAC');
  t.equal(ndisc6(P2, '2001:db8:b:0:8000::5'), MAC1, 'eth1 answers its prefix with its own MAC');
  t.equal(ndisc6(P2, '2001:db8:b::99'), MAC1, 'eth1 answers its exact address');
  t.equal(ndisc6(P1, '2001:db8:b:0:8000::5'), null, "eth0 never answers eth1's rules");
  t.equal(ndisc6(P1, '2001:db8:b::99'), null, "eth0 never answers eth1's address");
  t.equal(ndisc6(P2, '2001:db8:a:0:8000::5'), null, "eth1 never answers eth0's rules");

  // One /metrics for the process, every series labelled with its uplink.
  const metrics = nsExec(H, [
    process.execPath,
    '-e',
    "fetch('http://[::1]:19464/metrics').then(r=>r.text()).then(x=>process.stdout.write(x))",
  ]);
  t.match(metrics, /ndp_answers_total\{kind="answer",interface="eth0"\} [1-9]/, 'eth0 counts its answers under its label');
  t.match(metrics, /ndp_answers_total\{kind="answer",interface="eth1"\} [1-9]/, 'eth1 counts its answers under its label');
  t.equal(metrics.match(/^# TYPE ndp_frames_total /gm)?.length, 1, 'one TYPE line per family');

  // status and explain over the control socket.
  const st = cli(['status', '--control', control, '--json']);
  t.equal(st.status, 0, `status exits 0 (${st.out.slice(0, 200)})`);
  const s = JSON.parse(st.out) as {
    uplinks: { interface: string; mac: string; linkUp: boolean; rules: { bySource: Record<string, number> } }[];
  };
  t.same(
    s.uplinks.map((u) => [u.interface, u.mac, u.linkUp, u.rules.bySource.static]),
    [
      ['eth0', MAC0, true, 1],
      ['eth1', MAC1, true, 2],
    ],
    'status lists both uplinks, their MACs, links up, static rules per uplink',
  );
  const human = cli(['status', '--control', control]);
  t.match(human.out, /uplink eth1 \(afpacket, 02:00:00:00:0b:01\): link up/, 'status prints a human view');
  const ex = cli(['explain', '2001:db8:b::99', '--control', control, '--json']);
  t.equal(ex.status, 0, 'explain over the control socket exits 0');
  const e = JSON.parse(ex.out) as { answered: boolean; interface: string }[];
  t.same([e[0]?.answered, e[0]?.interface], [true, 'eth1'], 'explain asks the daemon: answered, on eth1');
  const ex2 = cli(['explain', '2001:db8:ffff::1', '--control', control, '--json']);
  t.equal((JSON.parse(ex2.out) as { answered: boolean }[])[0]?.answered, false, 'an address of no uplink: not answered');

  // Reload: eth1 gains 2001:db8:b::98, eth0 swaps its prefix for 2001:db8:a:0:c000::/66. An NS
  // every 20 ms to 2001:db8:b::99 (present before and after) runs throughout.
  const v2 = `metrics: "[::1]:19464"
uplinks:
  - interface: eth0
    prefix: [2001:db8:a:0:c000::/66]
  - interface: eth1
    prefix: [2001:db8:b:0:8000::/66]
    address: [2001:db8:b::99, 2001:db8:b::98]
`;
  const loop = nsSpawn(P2, [
    'sh',
    '-c',
    'i=0; while [ $i -lt 60 ]; do if ndisc6 -1 -r 1 -w 250 2001:db8:b::99 eth0 >/dev/null 2>&1; then echo ok; else echo miss; fi; sleep 0.02; i=$((i+1)); done',
  ]);
  let loopOut = '';
  loop.stdout!.setEncoding('utf8').on('data', (x: string) => (loopOut += x));
  const loopDone = new Promise<void>((r) => loop.once('exit', () => r()));
  await waitFor(() => (loopOut.match(/\n/g) ?? []).length >= 10, { timeoutMs: 10_000, what: 'the NS loop to run' });
  writeFileSync(config, v2);
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.some((l) => l.msg === 'reloaded'), { timeoutMs: 5000, what: 'reloaded' });
  writeFileSync(config, v1);
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.filter((l) => l.msg === 'reloaded').length === 2, { timeoutMs: 5000, what: 'second reload' });
  writeFileSync(config, v2);
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.filter((l) => l.msg === 'reloaded').length === 3, { timeoutMs: 5000, what: 'third reload' });
  await loopDone;
  const answers = loopOut.split('\n').filter(Boolean);
  t.ok(answers.length >= 40, `the loop asked ${answers.length} times`);
  t.equal(
    answers.filter((a) => a === 'miss').length,
    0,
    `no NS to an address present throughout went unanswered across three reloads (${answers.length} asked)`,
  );
  t.equal(d.child.exitCode, null, 'SIGHUP did not stop the process');

  t.equal(ndisc6(P2, '2001:db8:b::98'), MAC1, 'an added rule is answered by the same process');
  t.equal(ndisc6(P1, '2001:db8:a:0:c000::5'), MAC0, "eth0's new prefix is answered");
  t.equal(ndisc6(P1, '2001:db8:a:0:8000::5'), null, "eth0's removed prefix is no longer answered");

  // A broken file is refused; the old rules keep running.
  writeFileSync(config, 'uplinks:\n  - interface: eth0\n    prefix: [2001:db8:a:0:c000::/66\n');
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('reload failed')), {
    timeoutMs: 5000,
    what: 'reload failed',
  });
  const failed = d.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('reload failed'))!;
  t.match(String(failed.err), /ndp\.yaml:\d+: /, `the failure names the file and line (${String(failed.err)})`);
  writeFileSync(config, 'uplinks:\n  - interface: eth0\n    prefix: [2001:db8:a:0:c000::/65]\n');
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reload failed')).length === 2, {
    timeoutMs: 5000,
    what: 'second reload failed',
  });
  t.match(
    String(d.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reload failed'))[1]!.err),
    /:3: prefix: .*host bits/,
    'a bad prefix: file:line: key: reason',
  );
  t.equal(ndisc6(P2, '2001:db8:b::98'), MAC1, 'after a failed reload the old rules still answer (eth1)');
  t.equal(ndisc6(P1, '2001:db8:a:0:c000::5'), MAC0, 'after a failed reload the old rules still answer (eth0)');
  // An uplink removed by a reload stops answering; added back, it answers again.
  writeFileSync(config, 'metrics: "[::1]:19464"\nuplinks:\n  - interface: eth1\n    address: [2001:db8:b::98]\n');
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.filter((l) => l.msg === 'reloaded').length === 4, { timeoutMs: 5000, what: 'reload removing eth0' });
  t.equal(ndisc6(P1, '2001:db8:a:0:c000::5'), null, 'the removed uplink no longer answers');
  t.equal(ndisc6(P2, '2001:db8:b::98'), MAC1, 'the kept uplink still answers');
  t.equal(ndisc6(P2, '2001:db8:b::99'), null, "the kept uplink's removed address is not answered");
  writeFileSync(config, v2);
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.filter((l) => l.msg === 'reloaded').length === 5, { timeoutMs: 5000, what: 'reload adding eth0' });
  await waitFor(() => ndisc6(P1, '2001:db8:a:0:c000::5') === MAC0, { timeoutMs: 5000, what: 'the uplink added back to answer' });
  t.pass('an uplink added by a reload answers');
  const st2 = JSON.parse(cli(['status', '--control', control, '--json']).out) as {
    reloads: { ok: number; failed: number };
    uplinks: unknown[];
  };
  t.same([st2.reloads.ok, st2.reloads.failed, st2.uplinks.length], [5, 2, 2], 'status counts the reloads and lists both uplinks again');

  t.equal(await stop(d), 0, 'exits 0 on SIGTERM');
  t.notOk(existsSync(control), 'the control socket is removed at exit');
});

t.test('--wait-interface, SIGHUP without a config file, zero configuration', async (t) => {
  const tag = uniqueTag('cw');
  const H = `${tag}h`;
  const P = `${tag}a`;
  const dir = mkdtempSync(join(tmpdir(), 'ndp-wait-'));
  const procs: Proc[] = [];
  t.teardown(() => {
    for (const p of procs) p.child.kill('SIGKILL');
    for (const n of [H, P]) execFileSync('sh', ['-c', `ip netns del ${n} 2>/dev/null || true`]);
    rmSync(dir, { recursive: true, force: true });
  });
  ip('netns', 'add', H);
  nsExec(H, ['ip', 'link', 'set', 'lo', 'up']);
  const addrFile = join(dir, 'addresses');
  writeFileSync(addrFile, '2001:db8:c::5\n');
  const d = spawnRun(H, ['--interface', 'eth0', '--wait-interface', '--address-file', addrFile, '--control', join(dir, 'c.sock')]);
  procs.push(d);
  await waitFor(() => d.lines.some((l) => l.msg === 'ready') || d.child.exitCode !== null, {
    timeoutMs: 20_000,
    what: 'ready while eth0 is missing',
  });
  t.equal(d.child.exitCode, null, 'runs although eth0 does not exist');
  t.ok(
    d.lines.some((l) => l.reason === 'interface-missing'),
    'says it waits for the interface',
  );
  peer(H, P, 'eth0', MAC0, '2001:db8:c:0');
  await waitFor(() => d.lines.some((l) => l.msg === 'interface (re)opened'), { timeoutMs: 5000, what: 'the interface to be picked up' });
  t.equal(ndisc6(P, '2001:db8:c::5'), MAC0, 'the late interface is served');

  // SIGHUP without --config re-reads the address files.
  writeFileSync(addrFile, '2001:db8:c::5\n2001:db8:c::6\n');
  d.child.kill('SIGHUP');
  await waitFor(() => d.lines.some((l) => l.msg === 'reloaded'), { timeoutMs: 5000, what: 'reloaded' });
  t.equal(d.child.exitCode, null, 'SIGHUP without a config file does not stop the process');
  t.equal(ndisc6(P, '2001:db8:c::6'), MAC0, 'an address added to the file is answered after SIGHUP');
  t.equal(await stop(d), 0, 'exits 0');

  // Zero configuration: no flags; the default route says which interface (rules from the environment).
  nsExec(H, ['ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:c::2', 'dev', 'eth0']);
  const z = spawnRun(H, [], {
    NDP_RESPONDER_ADDRESS: '2001:db8:c::7',
    NDP_RESPONDER_CONTROL: join(dir, 'z.sock'),
    DOCKER_HOST: `unix://${dir}/no-docker.sock`,
  });
  procs.push(z);
  await waitFor(() => z.lines.some((l) => l.msg === 'ready') || z.child.exitCode !== null, {
    timeoutMs: 20_000,
    what: 'zero-config ready',
  });
  const first = z.lines[0] as { msg?: string; uplinks?: { interface: string }[]; why?: Record<string, string> };
  t.equal(first.msg, 'configuration', 'the first log line is the configuration');
  t.equal(first.uplinks?.[0]?.interface, 'eth0', 'the uplink is the default route interface');
  t.match(first.why?.uplinks ?? '', /default IPv6 route/, `it says why (${first.why?.uplinks})`);
  t.equal(ndisc6(P, '2001:db8:c::7'), MAC0, 'zero configuration answers');
  t.equal(await stop(z), 0, 'exits 0');

  // No default route and no --interface: one clear line, exit 2.
  nsExec(H, ['ip', '-6', 'route', 'del', 'default']);
  const r = nsTry(H, [process.execPath, CLI, 'run', '--address', '2001:db8:c::7', '--no-control']);
  t.equal(r.status, 2, 'refused with exit status 2');
  t.match(r.out, /no --interface given and there is no default IPv6 route/, 'the error says why');
});
