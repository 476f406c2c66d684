/**
 * The built-in lab: the seed's two-host topology in network namespaces, without Docker.
 *
 *   [c1] --veth-- [h1] eth0 --\                /-- eth0 [h2] --veth-- [c2]
 *                               [sw: bridge br0]
 *   c1: 2003:ab11:0:0:8000::10   h1: 2003:ab11::1/64   h2: 2003:ab11::2/64   c2: 2003:ab11:0:0:c000::10
 *
 * Each host routes its container range (/66) to its "container" namespace and has forwarding
 * on; nothing answers NS for container addresses on the shared /64 unless a responder does.
 * Used by `ndp-responder demo` and by the lab tests. Every name carries a per-run tag so runs
 * don't clash, and `destroy()` removes everything by name.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface LabHost {
  ns: string;
  /** The host's uplink address. */
  addr: string;
  /** The container range routed behind the host, and the container's address in it. */
  range: string;
  container: string;
  containerNs: string;
}

export interface Lab {
  tag: string;
  switchNs: string;
  h1: LabHost;
  h2: LabHost;
  destroy(): void;
}

export interface LabOptions {
  /** Unique, short (<= 6 chars) tag for names. */
  tag?: string;
  /** Build the bridge as a strict MLD-snooping switch (querier on, no flooding of unknown groups). */
  snooping?: boolean;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run a command inside a namespace; returns stdout. @throws on non-zero exit. */
export function nsExec(ns: string, cmd: string[], timeoutMs = 10_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run a command inside a namespace; returns exit status and output, never throws. */
export function nsTry(ns: string, cmd: string[], timeoutMs = 10_000): { status: number; out: string } {
  try {
    return { status: 0, out: nsExec(ns, cmd, timeoutMs) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

function sysctl(ns: string, key: string, value: string): void {
  nsExec(ns, ['sysctl', '-q', '-w', `${key}=${value}`]);
}

/** Start a long-running process inside a namespace. */
export function nsSpawn(ns: string, cmd: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function createLab(opts: LabOptions = {}): Lab {
  const tag = opts.tag ?? `l${process.pid % 100000}`;
  const sw = `${tag}sw`;
  const mk = (n: number, addr: string, range: string, container: string): LabHost => ({
    ns: `${tag}h${n}`,
    addr,
    range,
    container,
    containerNs: `${tag}c${n}`,
  });
  const h1 = mk(1, '2003:ab11::1', '2003:ab11:0:0:8000::/66', '2003:ab11:0:0:8000::10');
  const h2 = mk(2, '2003:ab11::2', '2003:ab11:0:0:c000::/66', '2003:ab11:0:0:c000::10');
  const all = [sw, h1.ns, h2.ns, h1.containerNs, h2.containerNs];
  const destroy = () => {
    for (const n of all) {
      try {
        ip(['netns', 'del', n]);
      } catch {
        /* already gone */
      }
    }
  };
  destroy();
  try {
    for (const n of all) ip(['netns', 'add', n]);
    nsExec(sw, ['ip', 'link', 'set', 'lo', 'up']);
    // A snooping bridge forwards multicast by its MLD table only while a querier exists, and its
    // own querier only counts once it has queried from a usable IPv6 address; until then, with
    // mcast_flood off, it delivers no multicast at all. br0 gets a non-tentative address so its
    // queries work; callers wait with waitForSnooping() (measured here: ~10 s after creation).
    nsExec(sw, ['ip', 'link', 'add', 'br0', 'type', 'bridge', ...(opts.snooping ? ['mcast_snooping', '1', 'mcast_querier', '1', 'mcast_startup_query_interval', '100'] : ['mcast_snooping', '0'])]);
    if (opts.snooping) {
      nsExec(sw, ['sysctl', '-q', '-w', 'net.ipv6.conf.br0.accept_dad=0']);
      nsExec(sw, ['ip', '-6', 'addr', 'add', 'fe80::ff/64', 'dev', 'br0', 'nodad']);
    }
    nsExec(sw, ['ip', 'link', 'set', 'br0', 'up']);
    for (const [i, h] of [h1, h2].entries()) {
      const port = `p${i + 1}`;
      ip(['link', 'add', port, 'netns', sw, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      nsExec(sw, ['ip', 'link', 'set', port, 'master', 'br0', 'up']);
      if (opts.snooping) nsExec(sw, ['bridge', 'link', 'set', 'dev', port, 'mcast_flood', 'off']);
      sysctl(h.ns, 'net.ipv6.conf.all.forwarding', '1');
      sysctl(h.ns, 'net.ipv6.conf.default.accept_dad', '0');
      sysctl(h.ns, 'net.ipv6.conf.eth0.accept_dad', '0');
      nsExec(h.ns, ['ip', 'link', 'set', 'lo', 'up']);
      nsExec(h.ns, ['ip', 'link', 'set', 'eth0', 'address', `02:00:00:00:0${i + 1}:01`]);
      nsExec(h.ns, ['ip', '-6', 'addr', 'add', `${h.addr}/64`, 'dev', 'eth0', 'nodad']);
      nsExec(h.ns, ['ip', 'link', 'set', 'eth0', 'up']);
      // The "container": a namespace behind a veth, with the range routed to it.
      ip(['link', 'add', 'ctr0', 'netns', h.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.containerNs]);
      nsExec(h.ns, ['ip', '-6', 'addr', 'add', 'fe80::1/64', 'dev', 'ctr0', 'nodad']);
      nsExec(h.ns, ['ip', 'link', 'set', 'ctr0', 'up']);
      nsExec(h.ns, ['ip', '-6', 'route', 'add', h.range, 'dev', 'ctr0']);
      sysctl(h.containerNs, 'net.ipv6.conf.all.accept_dad', '0');
      nsExec(h.containerNs, ['ip', 'link', 'set', 'lo', 'up']);
      nsExec(h.containerNs, ['ip', 'link', 'set', 'eth0', 'up']);
      nsExec(h.containerNs, ['ip', '-6', 'addr', 'add', `${h.container}/66`, 'dev', 'eth0', 'nodad']);
      nsExec(h.containerNs, ['ip', '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0']);
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return { tag, switchNs: sw, h1, h2, destroy };
}

/** Wait for a line matching `re` on a child's stdout (e.g. the responder's "ready"). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; stdout: ${buf.slice(-500)} stderr: ${err.slice(-500)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (re.test(line)) {
          cleanup();
          resolve(line);
          return;
        }
      }
    };
    const onErr = (d: Buffer) => {
      err += d.toString();
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`exited with ${code} before ${re}; stdout: ${buf.slice(-500)} stderr: ${err.slice(-500)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/**
 * Wait until a snooping switch forwards by its MLD table: h2 solicits h1's own address (which
 * h1's kernel reported) until h1's kernel answers. Resolves with the wait in ms.
 * @throws after `timeoutMs`.
 */
export async function waitForSnooping(lab: Lab, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (nsTry(lab.h2.ns, ['ndisc6', '-1', '-r', '1', '-w', '300', lab.h1.addr, 'eth0']).status === 0) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the snooping switch did not start forwarding within ${timeoutMs} ms`);
}

