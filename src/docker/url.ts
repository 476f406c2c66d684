/**
 * Where the Docker Engine API is and how to speak to it: `--docker URL`, else DOCKER_HOST, else
 * the usual socket; TLS from DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH (docker CLI rules).
 * Pure: the environment is passed in, files are read through a reader passed in.
 */
import { isIPv6 } from 'node:net';
import { join } from 'node:path';

export const DEFAULT_DOCKER_URL = 'unix:///var/run/docker.sock';

/** The environment variables this module reads (a subset of `process.env`). */
export type DockerEnv = Readonly<Record<string, string | undefined>>;

/** Why an endpoint speaks TLS. */
export type TlsReason = 'https-url' | 'DOCKER_TLS_VERIFY' | 'DOCKER_TLS';

/** TLS client settings: where the PEM files are and which of them must exist. */
export interface DockerTls {
  readonly reason: TlsReason;
  /** DOCKER_CERT_PATH, else $DOCKER_CONFIG, else ~/.docker. */
  readonly certDir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /**
   * DOCKER_TLS_VERIFY: ca.pem must be readable (the engine is verified against it). Otherwise
   * ca.pem is used when present and the system's CAs when not; the server is always verified.
   */
  readonly caRequired: boolean;
}

export type DockerEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string; readonly url: string }
  | {
      readonly kind: 'tcp';
      readonly protocol: 'http' | 'https';
      /** Host name or IP address, IPv6 without brackets. */
      readonly host: string;
      readonly port: number;
      readonly url: string;
      /** Present exactly when protocol is 'https'. */
      readonly tls?: DockerTls;
    };

/** Docker's rule for boolean environment variables: set and non-empty means on (even "0"). */
function envOn(env: DockerEnv, name: string): boolean {
  const v = env[name];
  return v !== undefined && v !== '';
}

const FORMS = 'unix:///path, /path, tcp://host:port, https://host:port or http://host:port';

/** The TLS-related variables that are set, for messages. */
function tlsVarsSet(env: DockerEnv): string[] {
  return ['DOCKER_TLS_VERIFY', 'DOCKER_TLS', 'DOCKER_CERT_PATH'].filter((n) => envOn(env, n));
}

function tlsSettings(env: DockerEnv, reason: TlsReason): DockerTls {
  let certDir = env['DOCKER_CERT_PATH'] || env['DOCKER_CONFIG'] || '';
  if (certDir === '') {
    const home = env['HOME'] || '';
    if (home === '')
      throw new Error('TLS to Docker needs its certificates: set DOCKER_CERT_PATH (HOME is not set, so ~/.docker is unknown)');
    certDir = join(home, '.docker');
  }
  return {
    reason,
    certDir,
    caFile: join(certDir, 'ca.pem'),
    certFile: join(certDir, 'cert.pem'),
    keyFile: join(certDir, 'key.pem'),
    caRequired: reason === 'DOCKER_TLS_VERIFY',
  };
}

/**
 * Parse a Docker endpoint. `url` undefined or '' falls back to `env.DOCKER_HOST`, then
 * {@link DEFAULT_DOCKER_URL}. Forms:
 * - `unix:///path` or a bare absolute `/path`: a Unix socket (TLS variables do not apply, as
 *   with the docker CLI);
 * - `tcp://host:port`: TLS when DOCKER_TLS_VERIFY or DOCKER_TLS is set (non-empty, as the docker
 *   CLI reads them), plain HTTP otherwise; refused when only DOCKER_CERT_PATH is set;
 * - `https://host:port`: always TLS; `http://host:port`: plain, refused when a TLS variable is set.
 * `host` may be a name, an IPv4 address or a bracketed IPv6 literal (`[2001:db8::1]`; zone ids
 * are refused). Without a port: 2376 with TLS, 2375 without (the docker CLI's defaults).
 * @param env the environment (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH,
 *   DOCKER_CONFIG, HOME); the caller passes `process.env`.
 * @throws Error with a message for the user on a scheme we do not speak (ssh://, npipe://), a
 *   malformed URL or plaintext asked for while TLS variables are set.
 */
export function parseDockerUrl(url: string | undefined, env: DockerEnv): DockerEndpoint {
  const fromFlag = url !== undefined && url.trim() !== '';
  const text = fromFlag ? url.trim() : env['DOCKER_HOST']?.trim() || DEFAULT_DOCKER_URL;
  const where = fromFlag ? '' : env['DOCKER_HOST']?.trim() ? ' (from DOCKER_HOST)' : '';
  const bad = (why: string): Error => new Error(`invalid Docker URL '${text}'${where}: ${why}`);

  if (text.startsWith('/')) return { kind: 'unix', socketPath: text, url: `unix://${text}` };
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) throw bad(`expected ${FORMS}`);
  if (scheme === 'unix') {
    const p = text.slice('unix://'.length);
    if (!p.startsWith('/')) throw bad('unix:// needs an absolute path (unix:///var/run/docker.sock)');
    return { kind: 'unix', socketPath: p, url: text };
  }
  if (scheme === 'ssh') {
    throw new Error(
      `ssh:// Docker endpoints are not supported; use unix://, tcp:// or https:// (see --help)${where ? ` [DOCKER_HOST=${text}]` : ''}`,
    );
  }
  if (scheme === 'npipe') throw bad('npipe:// is a Windows named pipe; use unix://, tcp:// or https://');
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') throw bad(`the scheme ${scheme}:// is not supported; use ${FORMS}`);

  const rest = text.slice(scheme.length + 3);
  const m = /^(\[[^\]]*\]|[^:/[\]]*)(?::(\d*))?\/?$/.exec(rest);
  if (!m) throw bad(`expected ${scheme}://host:port (IPv6 in brackets: ${scheme}://[2001:db8::1]:2376); paths are not supported`);
  let host = m[1]!;
  if (host === '') throw bad('no host');
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (host.includes('%')) throw bad('IPv6 zone ids (%IF) are not supported; use a global or unique-local address');
    if (!isIPv6(host)) throw bad(`'${host}' is not an IPv6 address`);
  } else if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw bad(`'${host}' is not a host name or address${host.includes(':') ? ' (put an IPv6 address in brackets)' : ''}`);
  }

  let tls: DockerTls | undefined;
  if (scheme === 'https') {
    tls = tlsSettings(env, envOn(env, 'DOCKER_TLS_VERIFY') ? 'DOCKER_TLS_VERIFY' : 'https-url');
  } else {
    const vars = tlsVarsSet(env);
    if (scheme === 'http' && vars.length > 0) {
      throw bad(
        `plain HTTP refused because ${vars.join(' and ')} ${vars.length > 1 ? 'are' : 'is'} set; use https:// or tcp:// (TLS), or unset ${vars.length > 1 ? 'them' : 'it'}`,
      );
    }
    if (envOn(env, 'DOCKER_TLS_VERIFY')) tls = tlsSettings(env, 'DOCKER_TLS_VERIFY');
    else if (envOn(env, 'DOCKER_TLS')) tls = tlsSettings(env, 'DOCKER_TLS');
    else if (vars.length > 0) {
      throw bad(
        'DOCKER_CERT_PATH is set but neither DOCKER_TLS_VERIFY nor DOCKER_TLS: set DOCKER_TLS_VERIFY=1 for TLS (or use https://), or unset DOCKER_CERT_PATH for plain tcp://',
      );
    }
  }
  const protocol = tls ? 'https' : 'http';
  const portText = m[2];
  if (portText === '') throw bad('empty port');
  const port = portText !== undefined ? Number(portText) : tls ? 2376 : 2375;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${portText} out of range`);
  return tls ? { kind: 'tcp', protocol, host, port, url: text, tls } : { kind: 'tcp', protocol, host, port, url: text };
}

/** PEM contents for a TLS endpoint, as the https client takes them. */
export interface TlsMaterial {
  /** Undefined: the system's CAs. */
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** Reads one file; the default is `fs.readFileSync`. Throws like it (an `code` of ENOENT...). */
export type FileReader = (path: string) => Buffer;

function isMissing(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  return typeof e?.code === 'string' ? e.code : typeof e?.message === 'string' ? e.message : String(err);
}

/**
 * Read ca.pem, cert.pem and key.pem of `tls` (docker CLI rules: a missing client cert and key
 * mean no client certificate; ca.pem is required under DOCKER_TLS_VERIFY, else optional).
 * @throws Error naming the file and the variable that asked for it when a needed file cannot be
 *   read, or when only one of cert.pem and key.pem exists.
 */
export function readTlsMaterial(tls: DockerTls, read: FileReader): TlsMaterial {
  const why = tls.reason === 'https-url' ? 'an https:// Docker URL' : `${tls.reason} (TLS to Docker)`;
  const opt = (path: string, required: boolean): Buffer | undefined => {
    try {
      return read(path);
    } catch (err) {
      if (!required && isMissing(err)) return undefined;
      throw new Error(
        `${why} needs ${path}: cannot read it (${reason(err)}); set DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem`,
        { cause: err },
      );
    }
  };
  const ca = opt(tls.caFile, tls.caRequired);
  const cert = opt(tls.certFile, false);
  const key = opt(tls.keyFile, false);
  if ((cert === undefined) !== (key === undefined)) {
    const [have, lack] = cert === undefined ? [tls.keyFile, tls.certFile] : [tls.certFile, tls.keyFile];
    throw new Error(`${why}: ${have} is there but ${lack} is not; a client certificate needs both`);
  }
  return { ca, cert, key };
}
