/**
 * The seed's scenario with ndp-responder as a sidecar container: two Docker hosts d1 and d2 (real
 * dockerd engines in namespaces), the image built by scripts/build-image.sh into both engines,
 * then on each host exactly
 *
 *   docker run -d --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN
 *     -v SOCK:/var/run/docker.sock:ro ndp-responder:latest run --interface eth0 --docker
 *
 * and no kernel proxy entries: web2 reaches web1, a new container answers at once, a stopped
 * one is no longer answered.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DockerLab, IMAGE, type HostName } from '../../src/lab/docker-lab.js';
import { run, runOk, waitFor } from '../../src/lab/process.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SIDECAR = 'ndp-responder:latest';
for (const f of ['dist/src/cli.js', 'build/Release/ndp_native.node']) {
  if (!existsSync(ROOT + f)) throw new Error(`${ROOT}${f} is missing: run 'npm run build' (scripts/test.sh does)`);
}

const lab = await DockerLab.up({ hosts: 2 });
t.teardown(() => lab.down());
t.comment(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms`);

const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const HOSTS = ['d1', 'd2'] as const;

const macOf = (h: HostName): Promise<string> => lab.mac(h);
const ndisc6 = (addr: string): Promise<string | null> => lab.ndisc6('d2', addr);

/** The sidecar's log (stdout and stderr of the container). */
async function sidecarLog(h: HostName): Promise<string> {
  const r = await lab.docker(h, ['logs', 'ndp-responder']);
  return r.stdout + r.stderr;
}

t.test('the image builds without a registry, into both engines', async (t) => {
  const t0 = performance.now();
  // prettier-ignore
  const out = await runOk('bash', [ROOT + 'scripts/build-image.sh', '-H', lab.host('d1').url, '-H', lab.host('d2').url, SIDECAR],
    { timeoutMs: 240_000 });
  t.comment(`image build into two engines: ${Math.round(performance.now() - t0)} ms`);
  t.match(out.trim(), /^sha256:[0-9a-f]{64}\nsha256:[0-9a-f]{64}$/, 'build-image.sh prints one image ID per engine');
  for (const h of HOSTS) {
    const cfg = JSON.parse(await lab.dockerOk(h, ['image', 'inspect', '-f', '{{json .Config}}', SIDECAR])) as {
      Entrypoint: string[];
      Cmd: string[];
    };
    t.same(cfg.Entrypoint, ['node', '/app/dist/src/cli.js'], `${h}: entry point`);
    t.same(cfg.Cmd, ['run'], `${h}: default command`);
  }
});

t.test('the sidecar on both hosts, no proxy entries: web2 reaches web1 on the first ping', async (t) => {
  for (const h of HOSTS) {
    await lab.flushNeigh(h);
    t.equal((await lab.exec(h, ['ip', '-6', 'neigh', 'show', 'proxy'])).stdout.trim(), '', `${h}: no kernel proxy entries`);
  }
  const [web1] = await lab.containerAddresses('d1', 'web1');
  const [web2] = await lab.containerAddresses('d2', 'web2');
  t.ok((await lab.ping6('d2', 'web2', web1!, 1, 2)).ok === false, 'without the sidecar web2 cannot reach web1');
  for (const h of HOSTS) {
    const { sock } = lab.host(h);
    // prettier-ignore
    await lab.dockerOk(h, ['run', '-d', '--name', 'ndp-responder', '--network', 'host',
      '--cap-drop', 'ALL', '--cap-add', 'NET_RAW', '--cap-add', 'NET_ADMIN',
      '-v', `${sock}:/var/run/docker.sock:ro`, SIDECAR, 'run', '--interface', 'eth0', '--docker'], { timeoutMs: 120_000 });
  }
  for (const h of HOSTS) {
    await waitFor(async () => /"msg":"ready"/.test(await sidecarLog(h)), { timeoutMs: 20_000, what: `the sidecar on ${h} ready` });
  }
  await lab.flushNeigh('d1');
  await lab.flushNeigh('d2');
  const r = await lab.ping6('d2', 'web2', web1!, 1, 2);
  t.ok(r.ok, 'first ping from web2 to web1 answered');
  const d1mac = await macOf('d1');
  const d2mac = await macOf('d2');
  t.match(await lab.neigh('d2'), new RegExp(`${formatAddress(parseAddress(web1!))} lladdr ${d1mac}`), "d2 maps web1 to d1's MAC");
  t.match(await lab.neigh('d1'), new RegExp(`${formatAddress(parseAddress(web2!))} lladdr ${d2mac}`), "d1 maps web2 to d2's MAC");

  for (const h of HOSTS) {
    // The container's capabilities: nothing beyond NET_RAW (13) and NET_ADMIN (12).
    const status = await lab.dockerOk(h, [
      'exec',
      'ndp-responder',
      'node',
      '-e',
      "process.stdout.write(require('fs').readFileSync('/proc/1/status','utf8'))",
    ]);
    const eff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? 'ffffffffffffffff'));
    const bnd = BigInt('0x' + (/^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? 'ffffffffffffffff'));
    t.equal(bnd & ~0x3000n, 0n, `${h}: bounding set within NET_RAW+NET_ADMIN (${bnd.toString(16)})`);
    t.equal(eff & ~0x3000n, 0n, `${h}: effective set within NET_RAW+NET_ADMIN (${eff.toString(16)})`);
    const log = await sidecarLog(h);
    t.notMatch(log, /"level":(50|60)/, `${h}: no error in the sidecar's log`);
  }
});

t.test('a new container is answered at once; a stopped one no longer', async (t) => {
  const d1mac = await macOf('d1');
  await lab.dockerOk('d1', ['run', '-d', '--name', 'web3', IMAGE, ...SLEEPER]);
  const [web3] = await lab.containerAddresses('d1', 'web3');
  const r = await lab.ping6('d2', 'web2', web3!, 1, 2);
  t.ok(r.ok, `ping from web2 to the new web3 (${web3}) works on the first try`);
  t.equal(await ndisc6(web3!), d1mac, 'web3 answered with d1 MAC');
  await lab.dockerOk('d1', ['stop', '-t', '2', 'web3']);
  t.equal(await ndisc6(web3!), null, 'web3 not answered after docker stop');
  const [web1] = await lab.containerAddresses('d1', 'web1');
  t.equal(await ndisc6(web1!), d1mac, 'web1 (still running) is still answered');
});

t.test('the sidecar stops cleanly on docker stop', async (t) => {
  for (const h of HOSTS) {
    await lab.dockerOk(h, ['stop', '-t', '10', 'ndp-responder'], { timeoutMs: 60_000 });
    const code = await lab.dockerOk(h, ['inspect', '-f', '{{.State.ExitCode}}', 'ndp-responder']);
    t.equal(code, '0', `${h}: exit code 0 after SIGTERM`);
    t.match(await sidecarLog(h), /"msg":"stopped"/, `${h}: logged 'stopped'`);
  }
  const r = await run('docker', ['-H', lab.host('d1').url, 'rm', 'ndp-responder'], { timeoutMs: 60_000 });
  t.equal(r.code, 0, 'container removed');
});
