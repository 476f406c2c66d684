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
import { execFileSync } from 'node:child_process';

import { nsExec, nsTry } from './netns.js';
import { deleteNamespaceSync, trackNamespace, untrackNamespace } from './sweep.js';

export interface LabHost {
  ns: string;
  /** The host's uplink address. */
  addr: string;
  /** The container range routed behind the host, and the container's address in it. */
  range: string;
  container: string;
  containerNs: string;
}

export interface TwoHostLab {
  tag: string;
  switchNs: string;
  h1: LabHost;
  h2: LabHost;
  /** Delete every namespace of the lab (by name). Idempotent. */
  destroy(): void;
  /** Leave the namespaces in place after this process exits (the demo's --keep). */
  keep(): void;
}

export interface TwoHostLabOptions {
  /** Unique, short (<= 6 chars) tag for names. */
  tag?: string;
  /** Build the bridge as a strict MLD-snooping switch (querier on, no flooding of unknown groups). */
  snooping?: boolean;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function sysctl(ns: string, key: string, value: string): void {
  nsExec(ns, ['sysctl', '-q', '-w', `${key}=${value}`]);
}

/**
 * Build the two-host lab (synchronously). Its namespaces are registered with the sweep, so they
 * are deleted at exit even when `destroy()` is never reached.
 * @throws Error (after deleting what was made) when a step fails.
 */
export function createLab(opts: TwoHostLabOptions = {}): TwoHostLab {
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
      deleteNamespaceSync(n);
      untrackNamespace(n);
    }
  };
  destroy();
  try {
    for (const n of all) {
      trackNamespace(n);
      ip(['netns', 'add', n]);
    }
    nsExec(sw, ['ip', 'link', 'set', 'lo', 'up']);
    // A snooping bridge forwards multicast by its MLD table only while a querier exists, and its
    // own querier only counts once it has queried from a usable IPv6 address; until then, with
    // mcast_flood off, it delivers no multicast at all. br0 gets a non-tentative address so its
    // queries work; callers wait with waitForSnooping() (docs/lab-notes.md: how long that takes).
    nsExec(sw, [
      'ip',
      'link',
      'add',
      'br0',
      'type',
      'bridge',
      ...(opts.snooping ? ['mcast_snooping', '1', 'mcast_querier', '1', 'mcast_startup_query_interval', '100'] : ['mcast_snooping', '0']),
    ]);
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
  const keep = () => {
    for (const n of all) untrackNamespace(n);
  };
  return { tag, switchNs: sw, h1, h2, destroy, keep };
}

/**
 * Wait until a snooping switch forwards by its MLD table: h2 solicits h1's own address (which
 * h1's kernel reported) until h1's kernel answers. Resolves with the wait in ms.
 * @throws after `timeoutMs`.
 */
export async function waitForSnooping(lab: TwoHostLab, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (nsTry(lab.h2.ns, ['ndisc6', '-1', '-r', '1', '-w', '300', lab.h1.addr, 'eth0']).status === 0) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the snooping switch did not start forwarding within ${timeoutMs} ms`);
}
