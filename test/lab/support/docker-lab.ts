/**
 * The Docker lab for tests: drives scripts/docker-lab.sh (namespaces, bridge, a real dockerd per
 * Docker host) and runs docker, nsenter, ping and ip inside it.
 *
 *   const lab = await DockerLab.up({ hosts: 1 });
 *   t.teardown(() => lab.down());
 *   await lab.docker('d1', ['run', '-d', '--name', 'x', IMAGE, 'sleep', '3600']);
 *
 * Every lab has a unique id; `down` removes its containers, engines, mounts, cgroups,
 * namespaces and files, and runs by itself when the process exits or is killed by a signal.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const LAB_SCRIPT = fileURLToPath(new URL('../../../scripts/docker-lab.sh', import.meta.url));
export const IMAGE = 'ndplab/busybox:latest';

export type HostName = 'd1' | 'd2';

export interface DockerHost {
  readonly name: HostName;
  /** Network namespace name (`/var/run/netns/NS`). */
  readonly ns: string;
  /** dockerd's socket path. */
  readonly sock: string;
  /** `unix://` + sock, for `--docker` and the watcher. */
  readonly url: string;
  /** `--fixed-cidr-v6` of its dockerd. */
  readonly cidr: string;
  /** eth0's address with length, e.g. 2003:ab11::1/64. */
  readonly addr: string;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Kill the command after this long; default 60 s. */
  readonly timeoutMs?: number;
  readonly input?: string;
}

/** Run a program; never rejects for a non-zero exit (see `code`). */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args as string[],
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === 1 && !stderr ? err.message : '') });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a program and return its stdout. @throws Error with stderr when it fails. */
export async function runOk(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const live = new Set<string>();
let hooked = false;

function downSync(id: string): void {
  try {
    execFileSync('bash', [LAB_SCRIPT, 'down', id], { stdio: 'ignore', timeout: 120_000 });
  } catch {
    /* best effort at exit */
  }
  live.delete(id);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const id of [...live]) downSync(id);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const id of [...live]) downSync(id);
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export interface UpOptions {
  /** 1: d1 only (cheap); 2: d1 and d2 (the acceptance scenario). Default 2. */
  readonly hosts?: 1 | 2;
  /** Run web1 (d1) and web2 (d2); default true. */
  readonly containers?: boolean;
  /** Lab id, 1..8 of [a-z0-9]; default random. */
  readonly id?: string;
  /** Extra arguments for every dockerd of the lab (e.g. TLS flags and a tcp:// listener). */
  readonly dockerdArgs?: readonly string[];
}

export class DockerLab {
  /** How long `up` took, in ms. */
  upMs = 0;

  private constructor(
    readonly id: string,
    readonly dir: string,
    /** The bridge namespace (br0 and one veth per host). */
    readonly brNs: string,
    readonly hosts: Readonly<Partial<Record<HostName, DockerHost>>>,
  ) {}

  /** Build a lab. @throws Error (after tearing down what was made) when it cannot. */
  static async up(opts: UpOptions = {}): Promise<DockerLab> {
    const id = opts.id ?? randomBytes(3).toString('hex');
    hookExit();
    live.add(id);
    const args = [LAB_SCRIPT, 'up', '--id', id, '--hosts', String(opts.hosts ?? 2)];
    if (opts.containers === false) args.push('--no-containers');
    for (const a of opts.dockerdArgs ?? []) args.push(`--dockerd-arg=${a}`);
    const t0 = performance.now();
    const r = await run('bash', args, { timeoutMs: 300_000 });
    const upMs = performance.now() - t0;
    if (r.code !== 0) {
      downSync(id);
      throw new Error(`docker-lab up failed (${r.code}): ${r.stderr.trim()}`);
    }
    const env = parseEnv(r.stdout);
    const hosts: Partial<Record<HostName, DockerHost>> = {};
    for (const h of ['d1', 'd2'] as const) {
      const H = h.toUpperCase();
      const sock = env[`${H}_SOCK`];
      if (sock === undefined) continue;
      hosts[h] = { name: h, ns: env[`${H}_NS`]!, sock, url: `unix://${sock}`, cidr: env[`${H}_CIDR`]!, addr: env[`${H}_ADDR`]! };
    }
    const lab = new DockerLab(id, env['LAB_DIR']!, env['BR_NS']!, hosts);
    lab.upMs = upMs;
    return lab;
  }

  host(name: HostName): DockerHost {
    const h = this.hosts[name];
    if (!h) throw new Error(`lab ${this.id} has no host ${name}`);
    return h;
  }

  /** Remove everything of this lab. Safe to call twice. @throws Error when something stayed. */
  async down(): Promise<void> {
    if (!live.has(this.id)) return;
    const r = await run('bash', [LAB_SCRIPT, 'down', this.id], { timeoutMs: 180_000 });
    live.delete(this.id);
    if (r.code !== 0) throw new Error(`docker-lab down ${this.id} failed: ${r.stderr.trim()}`);
  }

  /** The docker CLI against a host's engine (the 28.x client negotiates down to API 1.41). */
  docker(host: HostName, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run('docker', ['-H', this.host(host).url, ...args], opts);
  }

  /** Like {@link docker}, returning trimmed stdout. @throws Error when docker fails. */
  async dockerOk(host: HostName, args: readonly string[], opts?: RunOptions): Promise<string> {
    return (await runOk('docker', ['-H', this.host(host).url, ...args], opts)).trim();
  }

  private nsOf(where: HostName | 'br'): string {
    return where === 'br' ? this.brNs : this.host(where).ns;
  }

  /** Run a command inside a namespace (`nsenter --net`, which keeps /sys as it is). */
  exec(where: HostName | 'br', cmd: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run('nsenter', [`--net=/var/run/netns/${this.nsOf(where)}`, '--', ...cmd], opts);
  }

  /**
   * Start a long-running process inside a host's namespace (e.g. `ndp-responder run --interface
   * eth0 --docker URL`). The caller stops it; {@link stopProcess} does so with a bounded wait.
   */
  spawnIn(where: HostName | 'br', cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('nsenter', [`--net=/var/run/netns/${this.nsOf(where)}`, '--', cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
  }

  /** Global IPv6 addresses of a container, as Docker reports them. */
  async containerAddresses(host: HostName, container: string): Promise<string[]> {
    const out = await this.dockerOk(host, [
      'inspect',
      '-f',
      '{{range .NetworkSettings.Networks}}{{if .GlobalIPv6Address}}{{.GlobalIPv6Address}} {{end}}{{end}}',
      container,
    ]);
    return out.split(/\s+/).filter((s) => s !== '');
  }

  /** Full container ID. */
  async containerId(host: HostName, container: string): Promise<string> {
    return this.dockerOk(host, ['inspect', '-f', '{{.Id}}', container]);
  }

  /** `docker exec CONTAINER ping6 -c COUNT -W WAIT ADDR`; ok when any reply came. */
  async ping6(host: HostName, container: string, addr: string, count = 1, waitS = 2): Promise<RunResult & { ok: boolean }> {
    const r = await this.docker(host, ['exec', container, 'ping6', '-c', String(count), '-W', String(waitS), addr], {
      timeoutMs: (count * waitS + 10) * 1000,
    });
    const received = Number(/(\d+) packets received/.exec(r.stdout)?.[1] ?? '0');
    return { ...r, ok: r.code === 0 && received > 0 };
  }

  /** `ip -6 neigh show` in a host (or bridge) namespace, as text. */
  async neigh(where: HostName | 'br', dev = 'eth0'): Promise<string> {
    const r = await this.exec(where, ['ip', '-6', 'neigh', 'show', 'dev', dev]);
    return r.stdout;
  }

  /** Kernel proxy_ndp entry for ADDR on eth0 of a host (the thing ndp-responder replaces). */
  async kernelProxy(host: HostName, addr: string, on: boolean): Promise<void> {
    if (on) {
      await runOk('nsenter', [`--net=/var/run/netns/${this.host(host).ns}`, '--', 'sysctl', '-qw', 'net.ipv6.conf.eth0.proxy_ndp=1']);
      await runOk('ip', ['-n', this.host(host).ns, '-6', 'neigh', 'replace', 'proxy', addr, 'dev', 'eth0']);
    } else {
      await run('ip', ['-n', this.host(host).ns, '-6', 'neigh', 'del', 'proxy', addr, 'dev', 'eth0']);
    }
  }

  /** Flush the neighbour cache of a host (so the next packet needs a fresh NS). */
  async flushNeigh(host: HostName, dev = 'eth0'): Promise<void> {
    await run('ip', ['-n', this.host(host).ns, '-6', 'neigh', 'flush', 'dev', dev]);
  }

  /** Stop a host's dockerd: TERM (clean shutdown) or KILL (a crash: containers die with it). */
  async stopDockerd(host: HostName, how: 'term' | 'kill' = 'term'): Promise<void> {
    const args = [LAB_SCRIPT, 'dockerd-stop', this.id, host];
    if (how === 'kill') args.push('--kill');
    await runOk('bash', args, { timeoutMs: 60_000 });
  }

  /** Start a host's dockerd again; resolves when it answers. */
  async startDockerd(host: HostName): Promise<void> {
    await runOk('bash', [LAB_SCRIPT, 'dockerd-start', this.id, host], { timeoutMs: 120_000 });
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves when the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
