import t from 'tap';
import { dockerOptions, endpointOptions } from '../../src/docker/watcher.js';
import { DEFAULT_DOCKER_URL, parseDockerUrl, readTlsMaterial, type DockerEndpoint, type DockerTls } from '../../src/docker/url.js';
import { normaliseOptionalDocker } from '../../src/cli/flags.js';

const HOME = { HOME: '/home/u' };

t.test('parseDockerUrl: the forms', async (t) => {
  const env = {};
  t.same(parseDockerUrl('unix:///tmp/x/docker.sock', env), {
    kind: 'unix',
    socketPath: '/tmp/x/docker.sock',
    url: 'unix:///tmp/x/docker.sock',
  });
  t.same(
    parseDockerUrl('/run/docker.sock', env),
    { kind: 'unix', socketPath: '/run/docker.sock', url: 'unix:///run/docker.sock' },
    'a bare absolute path',
  );
  t.same(parseDockerUrl('tcp://10.0.0.1:2375', env), {
    kind: 'tcp',
    protocol: 'http',
    host: '10.0.0.1',
    port: 2375,
    url: 'tcp://10.0.0.1:2375',
  });
  t.same(parseDockerUrl('tcp://dockerhost', env), {
    kind: 'tcp',
    protocol: 'http',
    host: 'dockerhost',
    port: 2375,
    url: 'tcp://dockerhost',
  });
  t.same(parseDockerUrl('tcp://[2003:ab11::1]:2375', env), {
    kind: 'tcp',
    protocol: 'http',
    host: '2003:ab11::1',
    port: 2375,
    url: 'tcp://[2003:ab11::1]:2375',
  });
  t.same(parseDockerUrl('http://[::ffff:10.0.0.1]:80/', env), {
    kind: 'tcp',
    protocol: 'http',
    host: '::ffff:10.0.0.1',
    port: 80,
    url: 'http://[::ffff:10.0.0.1]:80/',
  });
  t.same(parseDockerUrl(undefined, env), { kind: 'unix', socketPath: '/var/run/docker.sock', url: DEFAULT_DOCKER_URL });
  t.same(parseDockerUrl('  ', env).url, DEFAULT_DOCKER_URL);
  t.same(parseDockerUrl('', { DOCKER_HOST: 'unix:///srv/d.sock' }), { kind: 'unix', socketPath: '/srv/d.sock', url: 'unix:///srv/d.sock' });
  t.same(parseDockerUrl(undefined, { DOCKER_HOST: '/srv/e.sock' }).url, 'unix:///srv/e.sock');
  t.same(parseDockerUrl('unix:///a.sock', { DOCKER_HOST: 'tcp://x:1' }).url, 'unix:///a.sock', 'the flag beats DOCKER_HOST');
  t.equal(parseDockerUrl('TCP://h:1', env).kind, 'tcp', 'schemes are case-insensitive');
});

t.test('parseDockerUrl: clear errors', async (t) => {
  const env = {};
  t.throws(() => parseDockerUrl('ssh://me@host', env), {
    message: 'ssh:// Docker endpoints are not supported; use unix://, tcp:// or https:// (see --help)',
  });
  t.throws(() => parseDockerUrl(undefined, { DOCKER_HOST: 'ssh://me@host' }), {
    message: /^ssh:\/\/ Docker endpoints are not supported.*DOCKER_HOST=ssh:\/\/me@host/,
  });
  const cases: [string, RegExp][] = [
    ['npipe:////./pipe/docker_engine', /Windows named pipe/],
    ['fd://', /fd:\/\/ is not supported/],
    ['unix://relative.sock', /absolute path/],
    ['tcp://host:99999', /port 99999 out of range/],
    ['tcp://host:0', /port 0 out of range/],
    ['tcp://host:', /empty port/],
    ['tcp://', /no host/],
    ['tcp://:2375', /no host/],
    ['docker.sock', /expected unix:\/\/\/path, \/path, tcp:/],
    ['host:2375', /expected/],
    ['tcp://2003:ab11::1:2375', /brackets/],
    ['tcp://[2003:ab11::1', /expected tcp:\/\/host:port/],
    ['tcp://[not-v6]:1', /'not-v6' is not an IPv6 address/],
    ['tcp://[1.2.3.4]:1', /is not an IPv6 address/],
    ['tcp://[fe80::1%eth0]:2375', /zone ids/],
    ['tcp://host:2375/v1.41', /paths are not supported/],
    ['tcp://me@host:2375', /not a host name/],
    ['tcp://-bad-:1', /not a host name/],
  ];
  for (const [bad, msg] of cases) t.throws(() => parseDockerUrl(bad, env), { message: msg }, bad);
  t.throws(() => parseDockerUrl(undefined, { DOCKER_HOST: 'tcp://' }), { message: /\(from DOCKER_HOST\)/ }, 'says where the URL came from');
});

t.test('parseDockerUrl: TLS (docker CLI rules)', async (t) => {
  const tls = (reason: DockerTls['reason'], dir: string): DockerTls => ({
    reason,
    certDir: dir,
    caFile: `${dir}/ca.pem`,
    certFile: `${dir}/cert.pem`,
    keyFile: `${dir}/key.pem`,
    caRequired: reason === 'DOCKER_TLS_VERIFY',
  });
  t.same(parseDockerUrl('https://[2001:db8::1]', HOME), {
    kind: 'tcp',
    protocol: 'https',
    host: '2001:db8::1',
    port: 2376,
    url: 'https://[2001:db8::1]',
    tls: tls('https-url', '/home/u/.docker'),
  });
  // DOCKER_TLS_VERIFY makes tcp:// TLS with verification, default port 2376; any non-empty value counts.
  for (const v of ['1', 'true', '0']) {
    const ep = parseDockerUrl('tcp://[2003:ab11::1]', { ...HOME, DOCKER_TLS_VERIFY: v, DOCKER_CERT_PATH: '/certs' });
    t.same(
      ep,
      {
        kind: 'tcp',
        protocol: 'https',
        host: '2003:ab11::1',
        port: 2376,
        url: 'tcp://[2003:ab11::1]',
        tls: tls('DOCKER_TLS_VERIFY', '/certs'),
      },
      `DOCKER_TLS_VERIFY=${v}`,
    );
  }
  t.same(
    parseDockerUrl('tcp://h:1', { ...HOME, DOCKER_TLS_VERIFY: '' }),
    { kind: 'tcp', protocol: 'http', host: 'h', port: 1, url: 'tcp://h:1' },
    'empty = unset',
  );
  t.same(
    (parseDockerUrl('tcp://h:1', { ...HOME, DOCKER_TLS: '1' }) as { tls?: DockerTls }).tls,
    tls('DOCKER_TLS', '/home/u/.docker'),
    'DOCKER_TLS: TLS, ca.pem optional',
  );
  t.equal(
    (parseDockerUrl('https://h', { ...HOME, DOCKER_TLS_VERIFY: '1' }) as { tls?: DockerTls }).tls?.caRequired,
    true,
    'https + DOCKER_TLS_VERIFY: CA required',
  );
  t.equal(
    (parseDockerUrl('https://h', { DOCKER_CONFIG: '/cfg' }) as { tls?: DockerTls }).tls?.certDir,
    '/cfg',
    'DOCKER_CONFIG before ~/.docker',
  );
  t.equal((parseDockerUrl('https://h', { DOCKER_CONFIG: '/cfg', DOCKER_CERT_PATH: '/c' }) as { tls?: DockerTls }).tls?.certDir, '/c');
  t.throws(() => parseDockerUrl('https://h', {}), { message: /set DOCKER_CERT_PATH/ }, 'no HOME, no cert path');
  t.same(
    parseDockerUrl('unix:///x.sock', { DOCKER_TLS_VERIFY: '1' }),
    { kind: 'unix', socketPath: '/x.sock', url: 'unix:///x.sock' },
    'unix ignores TLS variables',
  );

  t.throws(() => parseDockerUrl('http://h:2375', { ...HOME, DOCKER_TLS_VERIFY: '1' }), {
    message: /plain HTTP refused because DOCKER_TLS_VERIFY is set/,
  });
  t.throws(() => parseDockerUrl('http://h:2375', { ...HOME, DOCKER_TLS: '1', DOCKER_CERT_PATH: '/c' }), {
    message: /DOCKER_TLS and DOCKER_CERT_PATH are set/,
  });
  t.throws(() => parseDockerUrl(undefined, { ...HOME, DOCKER_HOST: 'http://h', DOCKER_CERT_PATH: '/c' }), {
    message: /plain HTTP refused/,
  });
  t.throws(() => parseDockerUrl('tcp://h:2375', { ...HOME, DOCKER_CERT_PATH: '/c' }), {
    message: /DOCKER_CERT_PATH is set but neither DOCKER_TLS_VERIFY nor DOCKER_TLS/,
  });
  t.equal(parseDockerUrl('http://h', HOME).kind, 'tcp', 'http:// alone is fine');
});

t.test('readTlsMaterial: which files are needed, errors name them', async (t) => {
  const files =
    (have: Record<string, string>) =>
    (p: string): Buffer => {
      const v = have[p];
      if (v === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: 'ENOENT' });
      return Buffer.from(v);
    };
  const verify = (parseDockerUrl('tcp://h', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' }) as { tls: DockerTls }).tls;
  const https = (parseDockerUrl('https://h', { DOCKER_CERT_PATH: '/c' }) as { tls: DockerTls }).tls;
  const all = { '/c/ca.pem': 'CA', '/c/cert.pem': 'CERT', '/c/key.pem': 'KEY' };
  const m = readTlsMaterial(verify, files(all));
  t.same([m.ca?.toString(), m.cert?.toString(), m.key?.toString()], ['CA', 'CERT', 'KEY']);
  t.throws(() => readTlsMaterial(verify, files({ '/c/cert.pem': 'C', '/c/key.pem': 'K' })), {
    message: /^DOCKER_TLS_VERIFY \(TLS to Docker\) needs \/c\/ca\.pem: cannot read it \(ENOENT\)/,
  });
  t.same(readTlsMaterial(https, files({})), { ca: undefined, cert: undefined, key: undefined }, 'https://: system CAs, no client cert');
  t.same(readTlsMaterial(verify, files({ '/c/ca.pem': 'CA' })).cert, undefined, 'no client cert is allowed');
  t.throws(() => readTlsMaterial(https, files({ '/c/cert.pem': 'C' })), { message: /\/c\/cert\.pem is there but \/c\/key\.pem is not/ });
  t.throws(() => readTlsMaterial(https, files({ '/c/key.pem': 'K' })), { message: /\/c\/key\.pem is there but \/c\/cert\.pem is not/ });
  const eacces = (): Buffer => {
    throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  };
  t.throws(
    () => readTlsMaterial(https, eacces),
    { message: /an https:\/\/ Docker URL needs \/c\/ca\.pem: cannot read it \(EACCES\)/ },
    'unreadable optional file is an error',
  );
});

t.test('endpointOptions / dockerOptions: what dockerode gets', async (t) => {
  const o = dockerOptions('unix:///tmp/x.sock', {}) as Record<string, unknown>;
  t.equal(o['socketPath'], '/tmp/x.sock');
  t.equal(o['host'], undefined);
  t.equal(o['protocol'], 'http');
  t.equal(o['timeout'], 0, 'no client timeout: it would cut the event stream');
  const tcp = dockerOptions('tcp://127.0.0.1:2375', {}) as Record<string, unknown>;
  t.same(
    [tcp['host'], tcp['port'], tcp['protocol'], tcp['socketPath'], tcp['ca']],
    ['http://127.0.0.1', 2375, 'http', undefined, undefined],
  );
  const v6 = dockerOptions('tcp://[2003:ab11::1]:2375', {}) as Record<string, unknown>;
  t.same([v6['host'], v6['port']], ['http://[2003:ab11::1]', 2375], 'an IPv6 literal goes to docker-modem as a bracketed URL');
  const ep = parseDockerUrl('tcp://[2003:ab11::1]', { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c' }) as DockerEndpoint;
  const read = (p: string): Buffer => Buffer.from(p);
  const tls = endpointOptions(ep, read) as Record<string, unknown>;
  t.same([tls['host'], tls['port'], tls['protocol']], ['https://[2003:ab11::1]', 2376, 'https']);
  t.same([String(tls['ca']), String(tls['cert']), String(tls['key'])], ['/c/ca.pem', '/c/cert.pem', '/c/key.pem']);
});

t.test('docker-modem turns the bracketed host into the IPv6 literal (the EAI_AGAIN localhost bug)', async (t) => {
  // The address docker-modem dials, computed by its own code: hostname must be the literal.
  const { default: Modem } = (await import('docker-modem')) as unknown as {
    default: new (o: object) => { dial: (o: object, cb: (e: unknown) => void) => void; buildRequest: (o: Record<string, unknown>) => void };
  };
  for (const [url, host, port] of [
    ['tcp://[2003:ab11::1]:2375', '2003:ab11::1', '2375'],
    ['tcp://10.1.2.3:2375', '10.1.2.3', '2375'],
    ['tcp://dockerhost:12', 'dockerhost', '12'],
  ] as const) {
    const m = new Modem(dockerOptions(url, {}));
    let seen: Record<string, unknown> = {};
    m.buildRequest = (o) => {
      seen = o;
    };
    m.dial({ path: '/containers/json?', method: 'GET', options: {} }, () => {});
    t.same([seen['hostname'], seen['port'], seen['path']], [host, port, '/containers/json'], url);
  }
});

t.test('normaliseOptionalDocker: which word after --docker is the URL', async (t) => {
  t.same(normaliseOptionalDocker(['--docker', '/path/to/docker.sock']), ['--docker', '/path/to/docker.sock']);
  t.same(normaliseOptionalDocker(['--docker', 'ssh://me@h']), ['--docker', 'ssh://me@h'], 'ssh:// reaches its clear error');
  t.same(normaliseOptionalDocker(['--docker', 'https://[2001:db8::1]:2376']), ['--docker', 'https://[2001:db8::1]:2376']);
  t.same(normaliseOptionalDocker(['--docker', '--interface', 'eth0']), ['--docker=', '--interface', 'eth0']);
  t.same(normaliseOptionalDocker(['--docker', '2001:db8::1']), ['--docker=', '2001:db8::1'], 'an address positional is not a URL');
  t.same(normaliseOptionalDocker(['--docker']), ['--docker=']);
});
