/**
 * The responder survives interface flaps: link down/up, and the interface deleted and created
 * again (a new ifindex and a new MAC, as when a VM's NIC is re-plugged or a veth re-created).
 * Real kernels in namespaces (src/lab/topology.ts); h2's ndisc6 is the soliciting peer.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { nsExec, nsSpawn, nsTry } from '../../src/lab/netns.js';
import { waitFor, waitForLine } from '../../src/lab/process.js';
import { createLab } from '../../src/lab/topology.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

function ndisc6(ns: string, addr: string): string | null {
  const r = nsTry(ns, ['ndisc6', '-1', '-r', '2', '-w', '400', addr, 'eth0'], 10_000);
  const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.out);
  return r.status === 0 && m ? m[1]!.toLowerCase() : null;
}

t.test('link down/up and delete/re-create: answers resume, the daemon never exits', async (t) => {
  const lab = createLab({ tag: `fl${process.pid % 1000}` });
  t.teardown(() => lab.destroy());
  const child = nsSpawn(lab.h1.ns, [process.execPath, CLI, 'run', '--interface', 'eth0', '--prefix', lab.h1.range, '--log-level', 'info']);
  t.teardown(() => void child.kill('SIGKILL'));
  const log: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => log.push(d));
  await waitForLine(child, /"msg":"ready"/, 20_000);
  const target = '2003:ab11:0:0:8000::42';
  t.equal(ndisc6(lab.h2.ns, target), '02:00:00:00:01:01', 'answered at start');

  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'down']);
  t.equal(ndisc6(lab.h2.ns, target), null, 'link down: nothing answers');
  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'up']);
  await waitFor(() => ndisc6(lab.h2.ns, target) === '02:00:00:00:01:01', { timeoutMs: 8000, what: 'answers after link up' });
  t.pass('link up again: answered');

  // Delete the uplink and create a new one with another MAC: new ifindex, new host facts.
  nsExec(lab.h1.ns, ['ip', 'link', 'del', 'eth0']);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(child.exitCode, null, 'still running with its interface gone');
  nsExec(lab.switchNs, ['ip', 'link', 'add', 'p1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.h1.ns]);
  nsExec(lab.switchNs, ['ip', 'link', 'set', 'p1', 'master', 'br0', 'up']);
  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:01:99']);
  nsExec(lab.h1.ns, ['ip', '-6', 'addr', 'add', `${lab.h1.addr}/64`, 'dev', 'eth0', 'nodad']);
  nsExec(lab.h1.ns, ['ip', 'link', 'set', 'eth0', 'up']);
  nsExec(lab.h2.ns, ['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  await waitFor(() => ndisc6(lab.h2.ns, target) === '02:00:00:00:01:99', { timeoutMs: 8000, what: 'answers with the new MAC' });
  t.pass('re-created interface: answered with its new MAC');
  t.ok(ping(lab), 'the container behind h1 is reachable from h2 again');
  t.match(log.join(''), /interface gone/, 'the loss was logged');
  t.match(log.join(''), /interface \(re\)opened/, 'the reopen was logged');
  t.equal(child.exitCode, null, 'never exited');
});

function ping(lab: ReturnType<typeof createLab>): boolean {
  return nsTry(lab.h2.ns, ['ping', '-6', '-c', '1', '-W', '2', lab.h1.container], 10_000).status === 0;
}
