/**
 * The two-host Docker lab itself, and the project's acceptance scenario without ndp-responder:
 * web2 (on Docker host d2) cannot reach web1 (on d1) because nobody answers NS for container
 * addresses; kernel proxy_ndp entries on both hosts fix it. ndp-responder must do the same
 * (the lead's end-to-end test swaps the proxy entries for `ndp-responder run --docker`).
 */
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { DockerLab } from '../../src/lab/docker-lab.js';
import { run } from '../../src/lab/process.js';

const lab = await DockerLab.up({ hosts: 2 });
t.teardown(() => lab.down());
t.comment(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms`);

t.test('lab layout', async (t) => {
  for (const h of ['d1', 'd2'] as const) {
    const host = lab.host(h);
    t.ok(existsSync(`/var/run/netns/${host.ns}`), `${h}: namespace`);
    const addr = await lab.exec(h, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    t.match(addr.stdout, host.addr, `${h}: eth0 has ${host.addr}`);
    const fwd = await lab.exec(h, ['cat', '/proc/sys/net/ipv6/conf/all/forwarding']);
    t.equal(fwd.stdout.trim(), '1', `${h}: forwarding=1`);
    const version = await lab.dockerOk(h, ['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}']);
    t.match(version, /^20\.10\.\S+ 1\.41$/, `${h}: dockerd ${version}`);
    const driver = await lab.dockerOk(h, ['info', '--format', '{{.Driver}}']);
    t.equal(driver, 'vfs');
  }
  const [a1] = await lab.containerAddresses('d1', 'web1');
  const [a2] = await lab.containerAddresses('d2', 'web2');
  t.match(a1, /^2003:ab11::8[0-9a-f]{3}:/, `web1 ${a1} in d1's fixed-cidr-v6`);
  t.match(a2, /^2003:ab11::c[0-9a-f]{3}:/, `web2 ${a2} in d2's fixed-cidr-v6`);
  const ports = await lab.exec('br', ['ip', '-o', 'link', 'show', 'master', 'br0']);
  t.equal(ports.stdout.trim().split('\n').length, 2, 'two ports on br0');
  // Nothing of the lab in the machine's own namespace.
  const own = await run('ip', ['-o', 'link', 'show']);
  t.notMatch(own.stdout, /\bvd[12]@|\bbr0\b.*ndplab/, 'no lab link in the root namespace');
});

t.test('acceptance scenario: lost without NDP help, works with proxy entries', async (t) => {
  const [a1] = await lab.containerAddresses('d1', 'web1');
  const [a2] = await lab.containerAddresses('d2', 'web2');
  await lab.flushNeigh('d1');
  await lab.flushNeigh('d2');
  const before = await lab.ping6('d2', 'web2', a1!, 2, 1);
  t.notOk(before.ok, `no answer without help: ${before.stdout.trim().split('\n').at(-2) ?? ''}`);
  // The reason: d2 never learns a link-layer address for web1 (its entry, if the kernel still
  // keeps it, is FAILED or INCOMPLETE; failed entries may already be garbage-collected).
  const neigh = await lab.neigh('d2');
  t.notMatch(neigh, new RegExp(`${a1} lladdr `), `d2 has no link-layer address for ${a1}: ${neigh.trim()}`);

  await lab.kernelProxy('d1', a1!, true);
  await lab.kernelProxy('d2', a2!, true);
  try {
    const t0 = performance.now();
    const after = await lab.ping6('d2', 'web2', a1!, 2, 3);
    t.ok(after.ok, `answered with kernel proxy_ndp in ${Math.round(performance.now() - t0)} ms: ${after.stdout.trim().split('\n').at(-1)}`);
    t.match(await lab.neigh('d2'), new RegExp(`${a1} lladdr `), 'd2 learned a link-layer address for web1');
  } finally {
    await lab.kernelProxy('d1', a1!, false);
    await lab.kernelProxy('d2', a2!, false);
  }
});

t.test('spawnIn runs a process inside a Docker host namespace', async (t) => {
  const child = lab.spawnIn('d1', 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0']);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.equal(code, 0);
  t.match(out, '2003:ab11::1/64');
});

t.test('down removes everything', async (t) => {
  const { id, dir } = lab;
  const ns = [lab.brNs, lab.host('d1').ns, lab.host('d2').ns];
  const t0 = performance.now();
  await lab.down();
  t.comment(`lab down in ${Math.round(performance.now() - t0)} ms`);
  for (const n of ns) t.notOk(existsSync(`/var/run/netns/${n}`), `namespace ${n} gone`);
  t.notOk(existsSync(dir), `${dir} gone`);
  t.notOk(readFileSync('/proc/self/mounts', 'utf8').includes(dir), 'no mounts left');
  const procs = await run('pgrep', ['-f', `ndplab-${id}/`]);
  t.equal(procs.stdout.trim(), '', 'no dockerd/containerd/shim left');
  await lab.down();
  t.pass('down twice is fine');
});
