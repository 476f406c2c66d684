/**
 * A real Docker engine inside a network namespace, for the Docker lab (docker-lab.ts).
 *
 * dockerd is started with `nsenter --net=/var/run/netns/NS` (not `ip netns exec`, which
 * remounts /sys and makes dockerd fail with "Devices cgroup isn't mounted"), with the vfs
 * storage driver and its own data root, exec root, pid file, socket and cgroup parent, so
 * several engines run side by side and everything of one engine can be found and removed:
 * its processes by the engine directory in their command line (dockerd, containerd, shims),
 * the containers by their cgroup.
 *
 * There is no registry to pull from: the image the lab runs is the machine's busybox-static,
 * `docker import`ed from a tarball ({@link importBusyboxImage}).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { pollUntil, run, runOk, sleepSync } from './process.js';

/** The dockerd binary (env DOCKERD overrides). */
export const DOCKERD = process.env['DOCKERD'] ?? '/usr/sbin/dockerd';

/** One engine: where it runs and where its files live. */
export interface EngineSpec {
  /** Network namespace name (`/var/run/netns/NS`). */
  readonly ns: string;
  /** The engine's own directory: data/, exec/, docker.sock, dockerd.pid, dockerd.log. */
  readonly dir: string;
  /** `--fixed-cidr-v6`. */
  readonly cidr: string;
  /** Cgroup parent of its containers (a top-level name, unique to this engine). */
  readonly cgroup: string;
  /** Extra dockerd arguments (e.g. TLS flags and a tcp:// listener). */
  readonly extraArgs?: readonly string[];
}

export const engineSock = (dir: string): string => path.join(dir, 'docker.sock');

function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when the process exists and is not a zombie. An engine started by this process stays a
 * zombie until the event loop reaps it, which the synchronous teardown would wait for in vain.
 */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** dockerd's pid (its pid file, else the launcher's: nsenter execs dockerd in place). */
export function dockerdPid(dir: string): number | undefined {
  return readPid(path.join(dir, 'dockerd.pid')) ?? readPid(path.join(dir, 'dockerd.launcher.pid'));
}

export function dockerdRunning(dir: string): boolean {
  const pid = readPid(path.join(dir, 'dockerd.pid'));
  return pid !== undefined && alive(pid);
}

/** Start dockerd in the namespace, detached (its own session: a caller's Ctrl-C does not reach it); no wait. */
export function startDockerd(e: EngineSpec): void {
  if (dockerdRunning(e.dir)) return;
  fs.mkdirSync(path.join(e.dir, 'data'), { recursive: true });
  fs.mkdirSync(path.join(e.dir, 'exec'), { recursive: true });
  const conf = path.join(e.dir, 'daemon.json');
  if (!fs.existsSync(conf)) fs.writeFileSync(conf, '{}\n');
  fs.rmSync(engineSock(e.dir), { force: true });
  // After a crash the old containerd may linger as a zombie (when init does not reap orphans);
  // dockerd takes a pid file naming any existing process as "containerd is running" and then
  // times out connecting to it. A pid file whose process is gone or a zombie is stale.
  const containerdPid = path.join(e.dir, 'exec', 'containerd', 'containerd.pid');
  const old = readPid(containerdPid);
  if (old !== undefined && !alive(old)) fs.rmSync(containerdPid, { force: true });
  const log = fs.openSync(path.join(e.dir, 'dockerd.log'), 'a');
  try {
    const child = spawn(
      'nsenter',
      [
        `--net=/var/run/netns/${e.ns}`,
        '--',
        DOCKERD,
        '--config-file',
        conf,
        '--storage-driver',
        'vfs',
        '--data-root',
        path.join(e.dir, 'data'),
        '--exec-root',
        path.join(e.dir, 'exec'),
        '--pidfile',
        path.join(e.dir, 'dockerd.pid'),
        '-H',
        `unix://${engineSock(e.dir)}`,
        '--cgroup-parent',
        `/${e.cgroup}`,
        '--ipv6',
        '--fixed-cidr-v6',
        e.cidr,
        '--iptables=false',
        '--ip-masq=false',
        '--userland-proxy=false',
        '--shutdown-timeout',
        '2',
        '--log-level',
        'info',
        ...(e.extraArgs ?? []),
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    child.on('error', () => {}); // reported by waitDockerd (the launcher is not alive)
    child.unref();
    fs.writeFileSync(path.join(e.dir, 'dockerd.launcher.pid'), `${child.pid ?? 0}\n`);
  } finally {
    fs.closeSync(log);
  }
}

function logTail(dir: string, lines = 20): string {
  try {
    return fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Wait until the engine answers `docker version` on its socket.
 * @throws Error (with the end of dockerd's log) when it exits first or after `timeoutS`.
 */
export async function waitDockerd(e: EngineSpec, timeoutS = Number(process.env['NDPLAB_READY_TIMEOUT'] ?? 90)): Promise<void> {
  const sock = engineSock(e.dir);
  const ready = await pollUntil(
    async () => {
      const launcher = readPid(path.join(e.dir, 'dockerd.launcher.pid'));
      if (launcher === undefined || !alive(launcher)) throw new Error(`dockerd in ${e.ns} exited during start:\n${logTail(e.dir)}`);
      if (!fs.existsSync(sock)) return false;
      const r = await run('docker', ['-H', `unix://${sock}`, 'version', '--format', '{{.Server.Version}}'], {
        timeoutMs: 10_000,
        spawnErrorAsResult: true,
      });
      return r.code === 0;
    },
    timeoutS * 1000,
    200,
  );
  if (!ready) throw new Error(`dockerd in ${e.ns} not ready after ${timeoutS} s:\n${logTail(e.dir)}`);
}

/** Pids in the engine's cgroup parent (its containers), under any controller. */
function cgroupPids(cgroup: string): number[] {
  const pids = new Set<number>();
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const ent of entries) {
      if (ent.isDirectory()) walk(path.join(d, ent.name));
      else if (ent.name === 'cgroup.procs') {
        try {
          for (const p of fs.readFileSync(path.join(d, ent.name), 'utf8').split('\n')) if (/^\d+$/.test(p)) pids.add(Number(p));
        } catch {
          /* cgroup gone */
        }
      }
    }
  };
  for (const d of cgroupDirs(cgroup)) walk(d);
  return [...pids];
}

/** The engine's cgroup directories (cgroup v2, and each v1 controller). */
function cgroupDirs(cgroup: string): string[] {
  const dirs = [path.join('/sys/fs/cgroup', cgroup)];
  try {
    for (const c of fs.readdirSync('/sys/fs/cgroup')) dirs.push(path.join('/sys/fs/cgroup', c, cgroup));
  } catch {
    /* no cgroup fs */
  }
  return dirs.filter((d) => fs.existsSync(d));
}

/**
 * The engine's own processes (dockerd, containerd, shims): an argument starts with the engine's
 * directory (--data-root, --exec-root, containerd's --config, a shim's -address). A client that
 * only names the engine's socket (`docker -H unix://DIR/docker.sock`, `ndp-responder run
 * --docker DIR/docker.sock`) is not the engine: a crash of the engine must not take it along.
 */
function dirPids(dir: string): number[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const sock = engineSock(dir);
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const args = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a.startsWith(prefix) && a !== sock)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Every process of an engine: dockerd, containerd and shims, and the containers. */
export function engineProcesses(e: EngineSpec): number[] {
  return [...new Set([...dirPids(e.dir), ...cgroupPids(e.cgroup)])];
}

/** Thaw paused (frozen) containers: they cannot die until thawed. */
export function thaw(cgroup: string): void {
  for (const d of cgroupDirs(cgroup)) {
    let subs: string[];
    try {
      subs = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const s of subs) {
      for (const [f, v] of [
        ['freezer.state', 'THAWED'],
        ['cgroup.freeze', '0'],
      ] as const) {
        try {
          fs.writeFileSync(path.join(d, s, f), v);
        } catch {
          /* not this controller */
        }
      }
    }
  }
}

/** Remove the engine's (empty) cgroup directories, deepest first. */
export function removeCgroups(cgroup: string): void {
  const rm = (d: string): void => {
    try {
      for (const ent of fs.readdirSync(d, { withFileTypes: true })) if (ent.isDirectory()) rm(path.join(d, ent.name));
      fs.rmdirSync(d);
    } catch {
      /* busy or gone */
    }
  };
  for (const d of cgroupDirs(cgroup)) rm(d);
}

/** Wait until none of `pids` is alive, at most `ms`; true when they all went. */
export async function waitGone(pids: readonly number[], ms: number): Promise<boolean> {
  return (await pollUntil(() => pids.every((p) => !alive(p)), ms, 100)) === true;
}

/** {@link waitGone} for the synchronous teardown. */
export function waitGoneSync(pids: readonly number[], ms: number): boolean {
  const end = Date.now() + ms;
  for (;;) {
    if (pids.every((p) => !alive(p))) return true;
    if (Date.now() >= end) return false;
    sleepSync(100);
  }
}

/**
 * Stop an engine. `term`: a clean shutdown (TERM, up to 30 s, then KILL). `kill`: a crash, the
 * daemon, its containerd and shims and the containers all die at once.
 */
export async function stopDockerd(e: EngineSpec, how: 'term' | 'kill' = 'term'): Promise<void> {
  const pid = dockerdPid(e.dir);
  if (how === 'kill') {
    thaw(e.cgroup);
    const pids = [...new Set([...(pid !== undefined ? [pid] : []), ...engineProcesses(e)])];
    for (const p of pids) kill(p, 'SIGKILL');
    if (!(await waitGone(pids, 10_000))) process.stderr.write(`docker-lab: some processes of ${e.ns} survived SIGKILL\n`);
  } else if (pid !== undefined && alive(pid)) {
    kill(pid, 'SIGTERM');
    if (!(await waitGone([pid], 30_000))) {
      kill(pid, 'SIGKILL');
      await waitGone([pid], 5000);
    }
  }
  fs.rmSync(path.join(e.dir, 'dockerd.pid'), { force: true });
}

/** Start an engine again and wait until it answers. */
export async function restartDockerd(e: EngineSpec): Promise<void> {
  startDockerd(e);
  await waitDockerd(e);
}

/** Busybox applets linked in the image. */
const APPLETS =
  'sh ash ip ifconfig route sleep ping ping6 httpd cat echo ls ps kill wget nc hostname true false env id mkdir rm sed grep awk head tail wc date uname netstat arping'.split(
    ' ',
  );

/**
 * Build a tarball of a tiny root file system from the machine's busybox-static (bin/busybox,
 * applet symlinks, /etc/passwd, a web root). Returns its path; remove its directory when done.
 * @throws Error when busybox is missing or not static.
 */
export function buildBusyboxRootfs(): { tar: string; tmp: string } {
  let busybox: string;
  try {
    busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('busybox not found (apt-get install -y busybox-static)');
  }
  try {
    execFileSync('ldd', [busybox], { stdio: 'ignore' });
    throw new Error(`${busybox} is dynamically linked; the image needs busybox-static`);
  } catch (e) {
    if ((e as Error).message.includes('dynamically linked')) throw e;
    // ldd fails on a static binary: what we want
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ndplab-image.'));
  const root = path.join(tmp, 'rootfs');
  for (const d of ['bin', 'sbin', 'tmp', 'etc', 'proc', 'sys', 'dev', 'var/www']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
  fs.writeFileSync(path.join(root, 'var', 'www', 'index.html'), 'ndplab\n');
  const tar = path.join(tmp, 'rootfs.tar');
  execFileSync('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.'], { stdio: 'ignore', timeout: 60_000 });
  return { tar, tmp };
}

/**
 * Import the busybox image into an engine as `image` (no registry involved). Idempotent: an
 * engine that already has the image is left alone. `rootfsTar` comes from
 * {@link buildBusyboxRootfs} (one tarball can serve several engines).
 */
export async function importBusyboxImage(sock: string, image: string, rootfsTar: string): Promise<void> {
  const host = `unix://${sock}`;
  const opts = { timeoutMs: 120_000, spawnErrorAsResult: true };
  if ((await run('docker', ['-H', host, 'image', 'inspect', image], opts)).code === 0) return;
  await runOk('docker', ['-H', host, 'import', '--change', 'CMD ["/bin/sh"]', '--change', 'ENV PATH=/bin:/sbin', rootfsTar, image], opts);
  await runOk('docker', ['-H', host, 'image', 'inspect', image], opts);
}
