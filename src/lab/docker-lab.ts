/**
 * The Docker lab: Docker hosts as network namespaces on one Linux bridge, a real dockerd in each
 * (dockerd.ts), the project's acceptance scenario.
 *
 *   ndplab-ID-br   bridge br0, one port vdN per host
 *   ndplab-ID-d1   eth0 2003:ab11::1/64, forwarding=1, dockerd --fixed-cidr-v6 2003:ab11:0:0:8000::/66, web1
 *   ndplab-ID-d2   eth0 2003:ab11::2/64, forwarding=1, dockerd --fixed-cidr-v6 2003:ab11:0:0:c000::/66, web2
 *
 *   const lab = await DockerLab.up({ hosts: 1 });
 *   t.teardown(() => lab.down());
 *   await lab.docker('d1', ['run', '-d', '--name', 'x', IMAGE, 'sleep', '3600']);
 *
 * Everything of lab ID lives under $NDPLAB_ROOT/ndplab-ID (default /tmp) and in namespaces and
 * cgroups named ndplab-ID-*: nothing touches the machine's own interfaces. `down` removes its
 * containers, engines, mounts, cgroups, namespaces and files; it also runs by itself when the
 * process exits or is killed by a signal (the lab sweep), unless the lab was released
 * (the command-line tool, docker-lab-cli.ts, keeps a lab between invocations).
 */
import { execFileSync, type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  alive,
  buildBusyboxRootfs,
  dockerdPid,
  dockerdRunning,
  type EngineSpec,
  engineProcesses,
  engineSock,
  importBusyboxImage,
  removeCgroups,
  startDockerd,
  stopDockerd,
  thaw,
  waitDockerd,
  waitGoneSync,
} from './dockerd.js';
import { run, runOk, type RunOptions, type RunResult } from './process.js';
import { deleteNamespaceSync, onSweep, trackChild } from './sweep.js';

/** The image every engine of the lab gets (env NDPLAB_IMAGE overrides). */
export const IMAGE = process.env['NDPLAB_IMAGE'] ?? 'ndplab/busybox:latest';
const ROOT = process.env['NDPLAB_ROOT'] ?? '/tmp';

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

const PLAN: Record<HostName, { cidr: string; addr: string; web: string }> = {
  d1: { cidr: '2003:ab11:0:0:8000::/66', addr: '2003:ab11::1/64', web: 'web1' },
  d2: { cidr: '2003:ab11:0:0:c000::/66', addr: '2003:ab11::2/64', web: 'web2' },
};

/** Defaults of every command the Docker lab runs: 60 s, and a spawn error is a result, not a rejection. */
const DK: RunOptions = { timeoutMs: 60_000, spawnErrorAsResult: true };

export interface UpOptions {
  /** 1: d1 only (cheap); 2: d1 and d2 (the acceptance scenario). Default 2. */
  readonly hosts?: 1 | 2;
  /** Run web1 (d1) and web2 (d2); default true. */
  readonly containers?: boolean;
  /** Lab id, 1..8 of [a-z0-9]; default random. */
  readonly id?: string;
  /** Extra arguments for every dockerd of the lab (e.g. TLS flags and a tcp:// listener); kept across restarts. */
  readonly dockerdArgs?: readonly string[];
}

export class DockerLab {
  /** How long `up` took, in ms. */
  upMs = 0;
  /** `up`'s phases in ms: namespaces + engines, then image + containers. */
  upPhasesMs = { engines: 0, images: 0 };
  #unhook: (() => void) | undefined;

  private constructor(
    readonly id: string,
    readonly dir: string,
    /** The bridge namespace (br0 and one veth per host). */
    readonly brNs: string,
    readonly hosts: Readonly<Partial<Record<HostName, DockerHost>>>,
  ) {}

  static dirOf(id: string): string {
    return path.join(ROOT, `ndplab-${id}`);
  }

  /** Labs that exist on this machine (their directories). */
  static list(): string[] {
    try {
      return fs
        .readdirSync(ROOT)
        .filter((n) => n.startsWith('ndplab-') && fs.statSync(path.join(ROOT, n)).isDirectory())
        .map((n) => n.slice('ndplab-'.length));
    } catch {
      return [];
    }
  }

  /** The lab with this id, made earlier (possibly by another process). @throws when there is none. */
  static open(id: string): DockerLab {
    const dir = DockerLab.dirOf(id);
    if (!fs.existsSync(dir)) throw new Error(`no lab ${id}`);
    return DockerLab.#make(id, hostsOf(dir));
  }

  static #make(id: string, names: HostName[]): DockerLab {
    const dir = DockerLab.dirOf(id);
    const hosts: Partial<Record<HostName, DockerHost>> = {};
    for (const h of names) {
      const sock = engineSock(path.join(dir, h));
      hosts[h] = { name: h, ns: `ndplab-${id}-${h}`, sock, url: `unix://${sock}`, cidr: PLAN[h].cidr, addr: PLAN[h].addr };
    }
    return new DockerLab(id, dir, `ndplab-${id}-br`, hosts);
  }

  /** Build a lab. @throws Error (after tearing down what was made) when it cannot. */
  static async up(opts: UpOptions = {}): Promise<DockerLab> {
    const id = opts.id ?? randomBytes(3).toString('hex');
    if (!/^[a-z0-9]{1,8}$/.test(id)) throw new Error('lab id must be 1..8 of [a-z0-9]');
    const names: HostName[] = (opts.hosts ?? 2) === 2 ? ['d1', 'd2'] : ['d1'];
    const dir = DockerLab.dirOf(id);
    if (fs.existsSync(dir)) throw new Error(`lab ${id} exists (${dir})`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'hosts'), `${names.join(' ')}\n`);
    fs.writeFileSync(path.join(dir, 'dockerd-args.json'), JSON.stringify(opts.dockerdArgs ?? []));
    const lab = DockerLab.#make(id, names);
    lab.#unhook = onSweep(() => teardownSync(id));
    const t0 = performance.now();
    try {
      const br = lab.brNs;
      fs.appendFileSync(path.join(dir, 'namespaces'), `${br}\n`);
      await runOk('ip', ['netns', 'add', br]);
      await runOk('ip', ['-n', br, 'link', 'set', 'lo', 'up']);
      await runOk('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
      await runOk('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
      for (const h of names) {
        const { ns, addr } = lab.host(h);
        fs.appendFileSync(path.join(dir, 'namespaces'), `${ns}\n`);
        await runOk('ip', ['netns', 'add', ns]);
        await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        // The veth pair is made inside the bridge namespace, one end moved straight into the
        // host: nothing appears in the machine's own namespace, not even for a moment.
        await runOk('ip', ['-n', br, 'link', 'add', `v${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        await runOk('ip', ['-n', br, 'link', 'set', `v${h}`, 'master', 'br0', 'up']);
        await runOk('nsenter', [
          `--net=/var/run/netns/${ns}`,
          '--',
          'sysctl',
          '-qw',
          'net.ipv6.conf.all.forwarding=1',
          'net.ipv6.conf.default.forwarding=1',
        ]);
        await runOk('ip', ['-n', ns, 'addr', 'add', addr, 'dev', 'eth0', 'nodad']);
        await runOk('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      }
      for (const h of names) startDockerd(lab.engine(h));
      await Promise.all(names.map((h) => waitDockerd(lab.engine(h))));
      const t1 = performance.now();
      const { tar, tmp } = buildBusyboxRootfs();
      try {
        await Promise.all(names.map((h) => importBusyboxImage(lab.host(h).sock, IMAGE, tar)));
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      if (opts.containers !== false) {
        await Promise.all(
          names.map((h) =>
            // httpd under a shell that exits on TERM: as PID 1 httpd would ignore it for 10 s.
            lab.dockerOk(h, [
              'run',
              '-d',
              '--name',
              PLAN[h].web,
              IMAGE,
              'sh',
              '-c',
              'trap "exit 0" TERM; httpd -f -p 80 -h /var/www & wait',
            ]),
          ),
        );
      }
      const t2 = performance.now();
      lab.upPhasesMs = { engines: Math.round(t1 - t0), images: Math.round(t2 - t1) };
    } catch (e) {
      lab.#unhook?.();
      teardownSync(id);
      throw new Error(`docker-lab up failed: ${(e as Error).message}`, { cause: e });
    }
    lab.upMs = performance.now() - t0;
    return lab;
  }

  /** Keep the lab after this process exits (no teardown by the exit sweep). */
  release(): void {
    this.#unhook?.();
    this.#unhook = undefined;
  }

  host(name: HostName): DockerHost {
    const h = this.hosts[name];
    if (!h) throw new Error(`lab ${this.id} has no host ${name}`);
    return h;
  }

  /** The engine of a host, for dockerd.ts. */
  engine(name: HostName): EngineSpec {
    const h = this.host(name);
    return { ns: h.ns, dir: path.join(this.dir, name), cidr: h.cidr, cgroup: h.ns, extraArgs: dockerdArgsOf(this.dir) };
  }

  /** `KEY=VALUE` lines describing the lab (LAB_ID, LAB_DIR, BR_NS, D1_NS, D1_SOCK, ...). */
  env(): string {
    const lines = [`LAB_ID=${this.id}`, `LAB_DIR=${this.dir}`, `BR_NS=${this.brNs}`];
    for (const h of Object.values(this.hosts)) {
      const H = h.name.toUpperCase();
      lines.push(`${H}_NS=${h.ns}`, `${H}_SOCK=${h.sock}`, `${H}_CIDR=${h.cidr}`, `${H}_ADDR=${h.addr}`);
    }
    return lines.join('\n') + '\n';
  }

  /**
   * Remove everything of this lab (blocking while it does). Safe to call twice.
   * @throws Error when something stayed.
   */
  async down(): Promise<void> {
    this.release();
    teardownSync(this.id);
  }

  /** The docker CLI against a host's engine (the 28.x client negotiates down to API 1.41). */
  docker(host: HostName, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run('docker', ['-H', this.host(host).url, ...args], { ...DK, ...opts });
  }

  /** Like {@link docker}, returning trimmed stdout. @throws Error when docker fails. */
  async dockerOk(host: HostName, args: readonly string[], opts?: RunOptions): Promise<string> {
    return (await runOk('docker', ['-H', this.host(host).url, ...args], { ...DK, ...opts })).trim();
  }

  private nsOf(where: HostName | 'br'): string {
    return where === 'br' ? this.brNs : this.host(where).ns;
  }

  /** Run a command inside a namespace (`nsenter --net`, which keeps /sys as it is). */
  exec(where: HostName | 'br', cmd: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run('nsenter', [`--net=/var/run/netns/${this.nsOf(where)}`, '--', ...cmd], { ...DK, ...opts });
  }

  /**
   * Start a long-running process inside a host's namespace (e.g. `ndp-responder run --interface
   * eth0 --docker URL`). The caller stops it (stopProcess in process.ts); the exit sweep kills it.
   */
  spawnIn(where: HostName | 'br', cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return trackChild(
      spawn('nsenter', [`--net=/var/run/netns/${this.nsOf(where)}`, '--', cmd, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...opts,
      }),
    );
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

  /** An interface's MAC in a host namespace (`ip`, not /sys: nsenter keeps the machine's /sys). */
  async mac(host: HostName, dev = 'eth0'): Promise<string> {
    const out = (await this.exec(host, ['ip', '-o', 'link', 'show', 'dev', dev])).stdout;
    const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
    if (!m) throw new Error(`no MAC for ${host} ${dev} in: ${out}`);
    return m[1]!;
  }

  /** ndisc6 from a host's eth0 for ADDR: the MAC that answered, or null. */
  async ndisc6(from: HostName, addr: string): Promise<string | null> {
    const r = await this.exec(from, ['ndisc6', '-1', '-r', '2', '-w', '400', addr, 'eth0'], { timeoutMs: 10_000 });
    const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.stdout);
    return r.code === 0 && m ? m[1]!.toLowerCase() : null;
  }

  /** Kernel proxy_ndp entry for ADDR on eth0 of a host (the thing ndp-responder replaces). */
  async kernelProxy(host: HostName, addr: string, on: boolean): Promise<void> {
    const ns = this.host(host).ns;
    if (on) {
      await runOk('nsenter', [`--net=/var/run/netns/${ns}`, '--', 'sysctl', '-qw', 'net.ipv6.conf.eth0.proxy_ndp=1'], DK);
      await runOk('ip', ['-n', ns, '-6', 'neigh', 'replace', 'proxy', addr, 'dev', 'eth0'], DK);
    } else {
      await run('ip', ['-n', ns, '-6', 'neigh', 'del', 'proxy', addr, 'dev', 'eth0'], DK);
    }
  }

  /** Flush the neighbour cache of a host (so the next packet needs a fresh NS). */
  async flushNeigh(host: HostName, dev = 'eth0'): Promise<void> {
    await run('ip', ['-n', this.host(host).ns, '-6', 'neigh', 'flush', 'dev', dev], DK);
  }

  /** Stop a host's dockerd: TERM (clean shutdown) or KILL (a crash: containers die with it). */
  async stopDockerd(host: HostName, how: 'term' | 'kill' = 'term'): Promise<void> {
    await stopDockerd(this.engine(host), how);
  }

  /** Start a host's dockerd again; resolves when it answers. */
  async startDockerd(host: HostName): Promise<void> {
    startDockerd(this.engine(host));
    await waitDockerd(this.engine(host));
  }
}

function hostsOf(dir: string): HostName[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'hosts'), 'utf8')
      .split(/\s+/)
      .filter((h): h is HostName => h === 'd1' || h === 'd2');
  } catch {
    return [];
  }
}

/** The extra dockerd arguments a lab was made with (none for a lab made before they existed). */
function dockerdArgsOf(dir: string): string[] {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(dir, 'dockerd-args.json'), 'utf8')) as unknown;
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

/**
 * Remove everything of lab `id`, synchronously (it also runs from the exit sweep): containers,
 * engines, leftover processes, cgroups, mounts, namespaces, files. Safe to repeat.
 * @throws Error when the lab's directory could not be removed.
 */
export function teardownSync(id: string): void {
  const dir = DockerLab.dirOf(id);
  const names = hostsOf(dir);
  const engines: EngineSpec[] = (names.length ? names : (['d1', 'd2'] as HostName[])).map((h) => ({
    ns: `ndplab-${id}-${h}`,
    dir: path.join(dir, h),
    cidr: PLAN[h].cidr,
    cgroup: `ndplab-${id}-${h}`,
  }));
  const sh = (cmd: string, args: string[], timeoutMs: number): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs });
    } catch {
      return '';
    }
  };
  // 1. Containers, politely, while their engine still answers (bounded by the client timeout).
  for (const e of engines) {
    if (!dockerdRunning(e.dir) || !fs.existsSync(engineSock(e.dir))) continue;
    const host = `unix://${engineSock(e.dir)}`;
    const ids = sh('docker', ['-H', host, 'ps', '-aq'], 10_000)
      .split(/\s+/)
      .filter((s) => s !== '');
    if (ids.length) sh('docker', ['-H', host, 'rm', '-f', ...ids], 30_000);
  }
  // 2. Engines: TERM all at once (each takes seconds to shut down), bounded wait, then KILL.
  const dpids = engines.map((e) => dockerdPid(e.dir)).filter((p): p is number => p !== undefined && alive(p));
  for (const p of dpids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  if (dpids.length && !waitGoneSync(dpids, 30_000)) {
    process.stderr.write('docker-lab: dockerd ignored TERM, killing\n');
    for (const p of dpids) killQuiet(p);
  }
  // 3. Anything left: containerd, shims and container processes, killed by pid; then cgroups.
  for (const e of engines) {
    thaw(e.cgroup);
    const left = engineProcesses(e);
    for (const p of left) killQuiet(p);
    if (!waitGoneSync(left, 10_000)) process.stderr.write(`docker-lab: processes of ${e.ns} survived: ${left.join(' ')}\n`);
    removeCgroups(e.cgroup);
  }
  // 4. Mounts under the lab dir (netns bind mounts, shm, overlay leftovers), deepest first.
  for (let pass = 0; pass < 5; pass++) {
    const mounts = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`))
      .sort()
      .reverse();
    if (!mounts.length) break;
    for (const m of mounts) if (sh('umount', [m], 10_000) === '' && isMounted(m)) sh('umount', ['-l', m], 10_000);
  }
  // 5. Namespaces, by name.
  let listed: string[] = [];
  try {
    listed = fs
      .readFileSync(path.join(dir, 'namespaces'), 'utf8')
      .split('\n')
      .filter((s) => s !== '');
  } catch {
    /* none recorded */
  }
  for (const ns of new Set([...listed, `ndplab-${id}-br`, `ndplab-${id}-d1`, `ndplab-${id}-d2`])) {
    if (fs.existsSync(`/var/run/netns/${ns}`)) deleteNamespaceSync(ns);
  }
  // 6. Files (vfs layers are plain directories), unless something is still mounted there.
  const stillMounted = fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${dir}/`);
  if (!stillMounted) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  if (fs.existsSync(dir)) throw new Error(`docker-lab down ${id}: could not remove ${dir} entirely`);
}

function isMounted(m: string): boolean {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === m);
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
