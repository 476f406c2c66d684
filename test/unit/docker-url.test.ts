import t from 'tap';
import { dockerOptions } from '../../src/docker/watcher.js';
import { DEFAULT_DOCKER_URL, parseDockerUrl } from '../../src/docker/url.js';

t.test('parseDockerUrl', async (t) => {
  const env = {};
  t.same(parseDockerUrl('unix:///tmp/x/docker.sock', env), { kind: 'unix', socketPath: '/tmp/x/docker.sock', url: 'unix:///tmp/x/docker.sock' });
  t.same(parseDockerUrl('/run/docker.sock', env), { kind: 'unix', socketPath: '/run/docker.sock', url: 'unix:///run/docker.sock' });
  t.same(parseDockerUrl('tcp://10.0.0.1:2375', env), { kind: 'tcp', protocol: 'http', host: '10.0.0.1', port: 2375, url: 'tcp://10.0.0.1:2375' });
  t.same(parseDockerUrl('tcp://dockerhost', env), { kind: 'tcp', protocol: 'http', host: 'dockerhost', port: 2375, url: 'tcp://dockerhost' });
  t.same(parseDockerUrl('https://[2001:db8::1]', env), { kind: 'tcp', protocol: 'https', host: '2001:db8::1', port: 2376, url: 'https://[2001:db8::1]' });
  t.same(parseDockerUrl(undefined, env), { kind: 'unix', socketPath: '/var/run/docker.sock', url: DEFAULT_DOCKER_URL });
  t.same(parseDockerUrl('', { DOCKER_HOST: 'unix:///srv/d.sock' }), { kind: 'unix', socketPath: '/srv/d.sock', url: 'unix:///srv/d.sock' });
  t.same(parseDockerUrl('unix:///a.sock', { DOCKER_HOST: 'tcp://x:1' }).url, 'unix:///a.sock', 'the flag beats DOCKER_HOST');
  for (const bad of ['ssh://me@host', 'npipe:////./pipe/docker_engine', 'unix://relative.sock', 'tcp://host:99999', 'tcp://', 'docker.sock']) {
    t.throws(() => parseDockerUrl(bad, env), bad);
  }
});

t.test('dockerOptions ignores DOCKER_* fallbacks for an explicit unix URL', async (t) => {
  const o = dockerOptions('unix:///tmp/x.sock') as Record<string, unknown>;
  t.equal(o['socketPath'], '/tmp/x.sock');
  t.equal(o['host'], undefined);
  t.equal(o['protocol'], 'http');
  t.equal(o['timeout'], 0, 'no client timeout: it would cut the event stream');
  const tcp = dockerOptions('tcp://127.0.0.1:2375') as Record<string, unknown>;
  t.same([tcp['host'], tcp['port'], tcp['protocol'], tcp['socketPath']], ['127.0.0.1', 2375, 'http', undefined]);
});
