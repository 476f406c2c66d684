/**
 * Docker endpoint forms against a real dockerd 20.10 in a namespace that listens on its unix
 * socket and, with `--tlsverify`, on tcp://[2003:ab11::1]:2376 with certificates this test makes
 * with openssl (a CA, a server certificate for IP 2003:ab11::1, a client certificate, and a second
 * CA that trusts nothing of these). One engine serves every case. The client is
 * `ndp-responder explain` run inside the engine's namespace with a clean environment.
 * Needs root, dockerd, nsenter, busybox-static and openssl.
 */
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { DockerLab } from '../../src/lab/docker-lab.js';
import { runOk, type RunResult } from '../../src/lab/process.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

const ENGINE = '2003:ab11::1';
const TLS_URL = `https://[${ENGINE}]:2376`;

// ---- certificates ----------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'ndp-docker-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const p = (...parts: string[]): string => join(dir, ...parts);
const ossl = (args: string[]): Promise<string> => runOk('openssl', args, { timeoutMs: 30_000 });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(name: string): Promise<void> {
  mkdirSync(p(name));
  await ossl([
    'req',
    '-x509',
    '-new',
    ...EC,
    '-keyout',
    p(name, 'ca-key.pem'),
    '-out',
    p(name, 'ca.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=ndplab ${name}`,
  ]);
}

async function issue(ca: string, name: string, ext: string): Promise<void> {
  mkdirSync(p(name));
  writeFileSync(p(name, 'ext.cnf'), ext);
  await ossl(['req', '-new', ...EC, '-keyout', p(name, 'key.pem'), '-out', p(name, 'req.csr'), '-subj', `/CN=ndplab ${name}`]);
  await ossl(
    ['x509', '-req', '-in', p(name, 'req.csr'), '-CA', p(ca, 'ca.pem'), '-CAkey', p(ca, 'ca-key.pem'), '-CAcreateserial'].concat([
      '-out',
      p(name, 'cert.pem'),
      '-days',
      '2',
      '-extfile',
      p(name, 'ext.cnf'),
    ]),
  );
}

const t0 = performance.now();
await makeCa('ca');
await makeCa('other-ca');
await issue('ca', 'server', `basicConstraints=CA:FALSE\nsubjectAltName=IP:${ENGINE}\nextendedKeyUsage=serverAuth\n`);
await issue('ca', 'client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
copyFileSync(p('ca', 'ca.pem'), p('client', 'ca.pem'));
// The right client certificate, the wrong CA.
mkdirSync(p('wrong-ca'));
for (const f of ['cert.pem', 'key.pem']) copyFileSync(p('client', f), p('wrong-ca', f));
copyFileSync(p('other-ca', 'ca.pem'), p('wrong-ca', 'ca.pem'));
// The right CA, no client certificate.
mkdirSync(p('ca-only'));
copyFileSync(p('ca', 'ca.pem'), p('ca-only', 'ca.pem'));
mkdirSync(p('empty'));
t.comment(`certificates made in ${Math.round(performance.now() - t0)} ms`);

const lab = await DockerLab.up({
  hosts: 1,
  dockerdArgs: [
    '--tlsverify',
    '--tlscacert',
    p('ca', 'ca.pem'),
    '--tlscert',
    p('server', 'cert.pem'),
    '--tlskey',
    p('server', 'key.pem'),
    '-H',
    `tcp://[${ENGINE}]:2376`,
  ],
});
t.teardown(() => lab.down());
t.comment(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms (dockerd with --tlsverify on tcp://[${ENGINE}]:2376)`);
const [web1] = await lab.containerAddresses('d1', 'web1');
if (web1 === undefined) throw new Error('web1 has no IPv6 address');

/** `ndp-responder ARGS` inside d1's namespace with only PATH, HOME and `env` set. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  const vars = Object.entries({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: p('home'), ...env }).map(([k, v]) => `${k}=${v}`);
  return lab.exec('d1', ['env', '-i', ...vars, process.execPath, CLI, ...args], { timeoutMs: 30_000 });
}

/** explain web1's address through `docker`; the parsed answer when it worked. */
async function explainWeb1(docker: string[], env: Record<string, string>): Promise<{ r: RunResult; answered: boolean; byWeb1: boolean }> {
  const r = await cli(['explain', web1!, '--interface', 'eth0', ...docker, '--json'], env);
  let answered = false;
  let byWeb1 = false;
  if (r.code === 0) {
    const [e] = JSON.parse(r.stdout) as { answered: boolean; verdict: string }[];
    answered = e?.answered === true && e.verdict === 'answer';
    byWeb1 = JSON.stringify(e).includes('container web1');
  }
  return { r, answered, byWeb1 };
}

const noStack = (tt: { notMatch: (found: string, re: RegExp, msg: string) => unknown }, r: RunResult): void => {
  tt.notMatch(r.stderr, /^\s+at /m, 'no stack trace: a clear error, not a crash');
};

t.test('https://[IPv6]:2376 with DOCKER_CERT_PATH: the container is synced over TLS', async (t) => {
  const { r, answered, byWeb1 } = await explainWeb1(['--docker', TLS_URL], { DOCKER_CERT_PATH: p('client') });
  t.equal(r.code, 0, r.stderr);
  t.ok(answered && byWeb1, `${web1} answered, from container web1`);
});

t.test('tcp:// with DOCKER_TLS_VERIFY set speaks TLS (docker CLI rule), default port 2376', async (t) => {
  const noPort = await explainWeb1(['--docker', `tcp://[${ENGINE}]`], { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: p('client') });
  t.equal(noPort.r.code, 0, noPort.r.stderr);
  t.ok(noPort.answered, `tcp://[${ENGINE}] (port 2376 implied by TLS): answered`);
  const fromEnv = await explainWeb1(['--docker'], {
    DOCKER_HOST: `tcp://[${ENGINE}]:2376`,
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: p('client'),
  });
  t.ok(fromEnv.answered, 'DOCKER_HOST + DOCKER_TLS_VERIFY: answered');
  // ~/.docker is the default certificate folder.
  mkdirSync(p('home'), { recursive: true });
  rmSync(p('home', '.docker'), { recursive: true, force: true });
  mkdirSync(p('home', '.docker'));
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) copyFileSync(p('client', f), p('home', '.docker', f));
  const home = await explainWeb1(['--docker', `tcp://[${ENGINE}]:2376`], { DOCKER_TLS_VERIFY: '1' });
  t.ok(home.answered, 'certificates from ~/.docker: answered');
  rmSync(p('home', '.docker'), { recursive: true, force: true });
});

t.test('plaintext is refused while TLS variables are set; plaintext to the TLS port fails', async (t) => {
  const refused = await cli(['explain', web1!, '--docker', `http://[${ENGINE}]:2376`], {
    DOCKER_TLS_VERIFY: '1',
    DOCKER_CERT_PATH: p('client'),
  });
  t.not(refused.code, 0);
  t.match(refused.stderr, /plain HTTP refused because DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are set/);
  noStack(t, refused);
  // `run` checks the endpoint before it opens anything.
  const run = await cli(['run', '--interface', 'eth0', '--docker', `http://[${ENGINE}]:2376`], { DOCKER_TLS: '1' });
  t.equal(run.code, 2, 'a usage error');
  t.match(run.stderr, /--docker: invalid Docker URL .*plain HTTP refused because DOCKER_TLS is set/);
  const certPathOnly = await cli(['run', '--interface', 'eth0', '--docker', `tcp://[${ENGINE}]:2376`], { DOCKER_CERT_PATH: p('client') });
  t.equal(certPathOnly.code, 2);
  t.match(certPathOnly.stderr, /DOCKER_CERT_PATH is set but neither DOCKER_TLS_VERIFY nor DOCKER_TLS/);
  // No TLS variables: tcp:// is plain HTTP, which the TLS listener rejects.
  const plain = await explainWeb1(['--docker', `tcp://[${ENGINE}]:2376`], {});
  t.not(plain.r.code, 0);
  t.notOk(plain.answered);
  t.match(plain.r.stderr, /cannot reach Docker/);
  t.match(plain.r.stdout, /HTTPS|400|bad request/i, 'the engine said why');
  noStack(t, plain.r);
});

t.test('wrong CA, no client certificate, missing files: clear errors, no crash', async (t) => {
  const wrong = await explainWeb1(['--docker', TLS_URL], { DOCKER_CERT_PATH: p('wrong-ca') });
  t.not(wrong.r.code, 0);
  t.notOk(wrong.answered);
  t.match(wrong.r.stderr, /--docker: cannot reach Docker/);
  t.match(
    wrong.r.stdout,
    new RegExp(`certificate.*TLS to https://\\[${ENGINE}\\]:2376 with certificates from ${p('wrong-ca')}`),
    'the log names the TLS failure and the folder',
  );
  noStack(t, wrong.r);
  t.comment(`wrong CA: ${/"err":"([^"]*)"/.exec(wrong.r.stdout)?.[1]}`);

  const noClient = await explainWeb1(['--docker', TLS_URL], { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: p('ca-only') });
  t.not(noClient.r.code, 0);
  t.notOk(noClient.answered);
  t.match(noClient.r.stderr, /--docker: cannot reach Docker/);
  noStack(t, noClient.r);
  t.comment(`no client certificate: ${/"err":"([^"]*)"/.exec(noClient.r.stdout)?.[1]}`);

  const missing = await cli(['explain', web1!, '--docker', TLS_URL], { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: p('empty') });
  t.not(missing.code, 0);
  t.match(missing.stderr, new RegExp(`DOCKER_TLS_VERIFY \\(TLS to Docker\\) needs ${p('empty', 'ca.pem')}: cannot read it \\(ENOENT\\)`));
  noStack(t, missing);
});

t.test('a bare socket path; ssh:// says it is not supported', async (t) => {
  const { r, answered } = await explainWeb1(['--docker', lab.host('d1').sock], {});
  t.equal(r.code, 0, r.stderr);
  t.ok(answered, `--docker ${lab.host('d1').sock}: answered`);
  const fromEnv = await explainWeb1(['--docker'], { DOCKER_HOST: lab.host('d1').sock, DOCKER_TLS_VERIFY: '1' });
  t.ok(fromEnv.answered, 'DOCKER_HOST=/path; TLS variables do not apply to a socket');
  const ssh = await cli(['run', '--interface', 'eth0', '--docker', 'ssh://me@dockerhost']);
  t.equal(ssh.code, 2);
  t.match(ssh.stderr, /ssh:\/\/ Docker endpoints are not supported; use unix:\/\/, tcp:\/\/ or https:\/\/ \(see --help\)/);
});
