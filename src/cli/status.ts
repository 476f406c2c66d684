/** `ndp-responder status`: ask the running daemon over its control socket. */
import { controlRequest } from '../service/control.js';
import { COMMON_OPTIONS, UsageError, parseFlags } from './flags.js';
import { STATUS_HELP } from './help.js';
import { DEFAULT_CONTROL } from './run-plan.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  control: { type: 'string' },
  json: { type: 'boolean' },
  reload: { type: 'boolean' },
} as const;

/** Ask the daemon; a missing daemon is a one-line error naming the socket. */
export async function askDaemon(path: string, req: object): Promise<unknown> {
  let res: Awaited<ReturnType<typeof controlRequest>>;
  try {
    res = await controlRequest(path, req);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED')
      throw new UsageError(`no daemon listens on ${path} (is 'ndp-responder run' running? --control PATH names another socket)`);
    if (code === 'EACCES') throw new UsageError(`${path}: permission denied (the control socket is mode 0600: run as the daemon's user)`);
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new UsageError(`the daemon says: ${res.error ?? 'error'}`);
  return res.result;
}

export async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('status', args, OPTIONS, false);
  if (values.help) {
    process.stdout.write(STATUS_HELP);
    return 0;
  }
  const path = values.control ?? process.env.NDP_RESPONDER_CONTROL ?? DEFAULT_CONTROL;
  if (values.reload) {
    const r = await askDaemon(path, { cmd: 'reload' });
    process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : `reloaded: ${JSON.stringify(r)}\n`);
    return 0;
  }
  const s = (await askDaemon(path, { cmd: 'status' })) as StatusView;
  process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
  return 0;
}

interface StatusView {
  pid?: number;
  uptimeSeconds?: number;
  config?: string;
  ready?: { ready: boolean; reasons: string[] };
  reloads?: { ok: number; failed: number; last?: string };
  docker?: { connected: boolean; addresses: number; reconnects: number; lastSync: string | null };
  uplinks?: {
    interface: string;
    backend: string;
    linkUp: boolean;
    mac?: string;
    rules: { total: number; bySource: Record<string, number> };
    routeCheck: boolean;
    counters: { frames: number; sent: number; answered?: unknown; drops?: unknown } & Record<string, unknown>;
    multicast?: { groups: number; allmulti: boolean; reportsSent: number };
    inUse: number;
  }[];
}

/** The human view of a status answer. */
export function formatStatus(s: StatusView): string {
  const lines: string[] = [];
  lines.push(
    `pid ${s.pid ?? '?'}, up ${s.uptimeSeconds ?? '?'} s, ${s.ready?.ready ? 'ready' : `not ready (${s.ready?.reasons.join('; ') ?? '?'})`}`,
  );
  if (s.config !== undefined) lines.push(`config ${s.config}, reloads ${s.reloads?.ok ?? 0} ok, ${s.reloads?.failed ?? 0} failed`);
  if (s.docker !== undefined) {
    lines.push(
      `docker: ${s.docker.connected ? 'connected' : 'not connected'}, ${s.docker.addresses} addresses, ${s.docker.reconnects} reconnects, last sync ${s.docker.lastSync ?? 'never'}`,
    );
  } else lines.push('docker: off');
  for (const u of s.uplinks ?? []) {
    lines.push(
      `uplink ${u.interface} (${u.backend}, ${u.mac ?? '?'}): link ${u.linkUp ? 'up' : 'DOWN'}, route check ${u.routeCheck ? 'on' : 'off'}`,
    );
    lines.push(
      `  rules ${u.rules.total}: ${Object.entries(u.rules.bySource)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    const c = u.counters;
    lines.push(`  frames ${c.frames}, answered ${String(c.answered)}, sent ${c.sent}, drops ${JSON.stringify(c.drops)}`);
    if (u.multicast !== undefined)
      lines.push(
        `  multicast groups ${u.multicast.groups}${u.multicast.allmulti ? ' (allmulti)' : ''}, MLD reports ${u.multicast.reportsSent}`,
      );
    if (u.inUse > 0) lines.push(`  addresses in use by other nodes: ${u.inUse}`);
  }
  return lines.join('\n') + '\n';
}
