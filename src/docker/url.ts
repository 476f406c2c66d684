/** Where the Docker Engine API is: `--docker URL`, else DOCKER_HOST, else the usual socket. */

export const DEFAULT_DOCKER_URL = 'unix:///var/run/docker.sock';

export type DockerEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string; readonly url: string }
  | { readonly kind: 'tcp'; readonly protocol: 'http' | 'https'; readonly host: string; readonly port: number; readonly url: string };

/**
 * Parse `unix:///path`, a bare `/path`, `tcp://host:port` (http), `http://` or `https://`.
 * `url` undefined or '' falls back to `env.DOCKER_HOST`, then {@link DEFAULT_DOCKER_URL}.
 * tcp without a port means 2375 (2376 for https, as the docker CLI does).
 * @throws Error on a scheme we do not speak (ssh://, npipe://) or a malformed URL.
 */
export function parseDockerUrl(url?: string, env: Record<string, string | undefined> = process.env): DockerEndpoint {
  const text = (url && url.trim()) || (env['DOCKER_HOST'] && env['DOCKER_HOST'].trim()) || DEFAULT_DOCKER_URL;
  if (text.startsWith('/')) return { kind: 'unix', socketPath: text, url: `unix://${text}` };
  if (text.startsWith('unix://')) {
    const p = text.slice('unix://'.length);
    if (!p.startsWith('/')) throw new Error(`invalid Docker URL '${text}': unix:// needs an absolute path`);
    return { kind: 'unix', socketPath: p, url: text };
  }
  const m = /^(tcp|http|https):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(text);
  if (!m) throw new Error(`invalid Docker URL '${text}' (expected unix:///path, tcp://host:port, http:// or https://)`);
  const protocol = m[1] === 'https' ? 'https' : 'http';
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3] !== undefined ? Number(m[3]) : protocol === 'https' ? 2376 : 2375;
  if (port < 1 || port > 65535) throw new Error(`invalid Docker URL '${text}': port ${port} out of range`);
  return { kind: 'tcp', protocol, host, port, url: text };
}
