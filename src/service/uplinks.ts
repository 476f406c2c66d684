/**
 * One process, several uplinks. Each uplink is a {@link Daemon} unit with its own scope (rules,
 * host addresses, route check against its own ifindex, conflicts), link, responder, announcer,
 * prober and multicast membership, answering only its own rules with its own MAC. Shared by all
 * units: one route monitor, one Docker watcher, one HTTP server and the control socket.
 *
 * Docker: a container address is offered to the units in configuration order and admitted by
 * the first whose scope admits it (service/scope.ts `dockerVerdict`). When two uplinks' scopes
 * both admit an address, only the first listed answers it: two MACs answering for one address
 * would make it flap between links.
 *
 * Reload ({@link UplinkService.apply}): units present before and after get their new static rules
 * in one atomic table swap (no gap); units whose other settings changed are restarted; added
 * uplinks are started, removed ones stopped.
 */
import type { Logger } from 'pino';
import { formatMac } from '../addr/index.js';
import { DockerWatcher } from '../docker/watcher.js';
import type { AnswerSettings } from '../engine/types.js';
import { Action, type Rule } from '../table/rule.js';
import { Daemon, type DockerOptions } from './daemon.js';
import { httpExplain, type Explanation } from './explain.js';
import { startHttpServer, type HttpServerHandle } from './http-server.js';
import type { BackendKind } from './link.js';
import { DaemonMetrics } from './metrics.js';
import { openRoutes, type RouteMonitor } from './routes.js';
import { GROUP } from './scope.js';

/** One uplink's settings. */
export interface UplinkUnitSpec {
  readonly ifname: string;
  readonly backend: BackendKind;
  readonly rules: readonly Rule[];
  readonly settings: AnswerSettings;
  readonly maxGroups: number;
  readonly mld: boolean;
  readonly promiscuous: boolean;
  readonly announce: boolean;
  readonly routeCheck: boolean;
  readonly waitInterface: boolean;
}

export interface UplinkServiceOptions {
  uplinks: readonly UplinkUnitSpec[];
  docker?: DockerOptions | undefined;
  metrics?: string | undefined;
  nice: number;
  /** SCHED_FIFO priority of the answering thread (`--realtime`); 0 or absent: none. */
  realtime?: number;
  logger: Logger;
  /** Label every series with `interface` (several uplinks, or a config file that may add some). */
  labelMetrics: boolean;
  pollMs?: number;
}

interface Unit {
  spec: UplinkUnitSpec;
  daemon: Daemon;
  catalogue: DaemonMetrics | undefined;
}

/** Settings other than rules: a change restarts the unit. */
function unitKey(s: UplinkUnitSpec): string {
  return JSON.stringify({ ...s, rules: undefined });
}

export class UplinkService {
  private readonly units = new Map<string, Unit>();
  private routes: RouteMonitor | undefined;
  private watcher: DockerWatcher | undefined;
  private http: HttpServerHandle | undefined;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private stopped = false;
  private started = false;
  /** Reloads done and failed (status). */
  readonly reloads = { ok: 0, failed: 0, last: undefined as string | undefined };

  constructor(private readonly opts: UplinkServiceOptions) {
    this.log = opts.logger;
  }

  /** The units, in configuration order. */
  daemons(): Daemon[] {
    return [...this.units.values()].map((u) => u.daemon);
  }

  /** @throws DaemonError when an uplink cannot be opened. */
  async start(): Promise<void> {
    if (this.opts.uplinks.some((u) => u.routeCheck)) this.routes = await openRoutes(this.log.child({ component: 'routes' }));
    for (const spec of this.opts.uplinks) await this.startUnit(spec);
    if (this.opts.docker !== undefined) {
      const d = this.opts.docker;
      this.watcher = new DockerWatcher({
        url: d.url,
        networks: [...d.networks],
        labelOptIn: d.labelOptIn,
        logger: this.log.child({ component: 'docker' }),
        scope: (addr) => this.dockerVerdict(addr),
        sink: { replaceGroup: (_group, rules) => this.distributeDocker(rules) },
        group: GROUP.docker,
      });
      await this.watcher.start();
    }
    if (this.opts.metrics !== undefined) {
      this.http = await startHttpServer(
        this.opts.metrics,
        {
          metrics: () => this.metrics(),
          metricsContentType: 'text/plain; version=0.0.4; charset=utf-8',
          explain: httpExplain((a) => this.explain(a)),
          healthy: () => !this.stopped,
          ready: () => this.readiness(),
        },
        this.log.child({ component: 'http' }),
      );
    }
    for (const u of this.units.values()) this.logReady(u.daemon);
    this.started = true;
  }

  private async startUnit(spec: UplinkUnitSpec): Promise<void> {
    const multi = this.opts.labelMetrics;
    const daemon = new Daemon({
      ifname: spec.ifname,
      backend: spec.backend,
      rules: spec.rules,
      settings: spec.settings,
      maxGroups: spec.maxGroups,
      mld: spec.mld,
      promiscuous: spec.promiscuous,
      announce: spec.announce,
      routeCheck: spec.routeCheck,
      routes: spec.routeCheck ? this.routes : undefined,
      waitInterface: spec.waitInterface,
      privilegeMetrics: this.opts.metrics,
      dockerStatus: this.opts.docker !== undefined ? () => this.watcher?.status() : undefined,
      nice: this.opts.nice,
      realtime: this.opts.realtime ?? 0,
      logReady: false,
      logger: multi ? this.log.child({ interface: spec.ifname }) : this.log,
      ...(this.opts.pollMs !== undefined ? { pollMs: this.opts.pollMs } : {}),
    });
    await daemon.start();
    daemon.scope.onRescope(() => this.watcher?.rescope());
    let catalogue: DaemonMetrics | undefined;
    if (this.opts.metrics !== undefined) {
      catalogue = new DaemonMetrics({
        snapshot: () => daemon.metricsSnapshot(),
        docker: this.opts.docker !== undefined,
        startedAt: this.startedAt,
        processMetrics: this.units.size === 0,
      });
      if (multi) catalogue.registry.setDefaultLabels({ interface: spec.ifname });
      daemon.attachMetrics(catalogue);
    }
    this.units.set(spec.ifname, { spec, daemon, catalogue });
    this.watcher?.rescope();
    if (this.started) this.logReady(daemon);
  }

  private logReady(d: Daemon): void {
    this.log.info({ ...d.readyFields(), ...(this.opts.labelMetrics ? { uplinks: this.units.size } : {}) }, 'ready');
  }

  /** A container address goes to the first unit (configuration order) whose scope admits it. */
  private dockerVerdict(addr: Uint8Array): string | undefined {
    let first: string | undefined;
    for (const u of this.units.values()) {
      const v = u.daemon.scope.dockerVerdict(addr);
      if (v === undefined) return undefined;
      first ??= v;
    }
    return first ?? 'no-uplink';
  }

  private distributeDocker(rules: readonly Rule[]): void {
    const per = new Map<Unit, Rule[]>();
    for (const u of this.units.values()) per.set(u, []);
    for (const r of rules) {
      for (const u of this.units.values()) {
        if (u.daemon.scope.dockerVerdict(r.prefix) === undefined) {
          per.get(u)!.push(r);
          break;
        }
      }
    }
    for (const [u, rs] of per) u.daemon.scope.replaceGroup(GROUP.docker, rs);
  }

  /**
   * Serve a new set of uplinks (reload). Rules of kept uplinks are swapped atomically.
   * @throws Error when a unit cannot be started (the others keep running).
   */
  async apply(uplinks: readonly UplinkUnitSpec[]): Promise<{ added: string[]; removed: string[]; restarted: string[]; updated: string[] }> {
    const want = new Map(uplinks.map((u) => [u.ifname, u] as const));
    const out = { added: [] as string[], removed: [] as string[], restarted: [] as string[], updated: [] as string[] };
    for (const [name, u] of [...this.units]) {
      const spec = want.get(name);
      if (spec === undefined) {
        await this.stopUnit(name);
        out.removed.push(name);
      } else if (unitKey(spec) !== unitKey(u.spec)) {
        await this.stopUnit(name);
        out.restarted.push(name);
      } else {
        u.daemon.setRules(spec.rules);
        u.spec = spec;
        out.updated.push(name);
      }
    }
    const errors: string[] = [];
    for (const spec of uplinks) {
      if (this.units.has(spec.ifname)) continue;
      try {
        await this.startUnit(spec);
        if (!out.restarted.includes(spec.ifname)) out.added.push(spec.ifname);
      } catch (e) {
        errors.push(`${spec.ifname}: ${(e as Error).message}`);
      }
    }
    // Keep configuration order for the Docker hand-out.
    const ordered = uplinks
      .map((s) => [s.ifname, this.units.get(s.ifname)] as const)
      .filter((e): e is [string, Unit] => e[1] !== undefined);
    this.units.clear();
    for (const [k, v] of ordered) this.units.set(k, v);
    this.watcher?.rescope();
    if (errors.length > 0) throw new Error(errors.join('; '));
    return out;
  }

  private async stopUnit(name: string): Promise<void> {
    const u = this.units.get(name);
    if (u === undefined) return;
    this.units.delete(name);
    await u.daemon.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.watcher?.stop();
    for (const name of [...this.units.keys()].reverse()) await this.stopUnit(name);
    this.routes?.close();
    await this.http?.close();
  }

  /**
   * Why an address is or isn't answered: asked of the unit that has a rule for it (the one that
   * would answer, else the first that names it), else the first unit.
   * @throws BadAddressError for bad text.
   */
  explain(address: string): Explanation & { interface?: string } {
    let fallback: (Explanation & { interface?: string }) | undefined;
    for (const u of this.units.values()) {
      const e = u.daemon.explain(address);
      const ex = { ...e, interface: u.daemon.ifname };
      if (e.answered) return ex;
      if (fallback === undefined || (fallback.rule === undefined && e.rule !== undefined)) fallback = ex;
    }
    if (fallback === undefined) throw new Error('no uplink is served');
    return fallback;
  }

  /** /readyz: every uplink's socket open and, with Docker, the first sync done. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.stopped) reasons.push('stopping');
    for (const u of this.units.values()) if (!u.daemon.linkUp) reasons.push(`packet socket on ${u.daemon.ifname} is not open`);
    if (this.watcher !== undefined && this.watcher.status().lastSync === null) reasons.push('first Docker sync not done');
    return { ready: reasons.length === 0, reasons };
  }

  /** The exposition: every unit's catalogue, merged into one document (one HELP/TYPE per family). */
  async metrics(): Promise<string> {
    const texts: string[] = [];
    for (const u of this.units.values()) if (u.catalogue !== undefined) texts.push(await u.catalogue.metrics());
    return texts.length === 1 ? texts[0]! : mergeExpositions(texts);
  }

  /** What `ndp-responder status` shows. */
  status(): Record<string, unknown> {
    const d = this.watcher?.status();
    return {
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.readiness(),
      reloads: this.reloads,
      docker:
        d === undefined ? undefined : { connected: d.connected, addresses: d.addresses, reconnects: d.reconnects, lastSync: d.lastSync },
      routes: this.routes === undefined ? undefined : { routes: this.routes.table.size },
      uplinks: [...this.units.values()].map((u) => {
        const daemon = u.daemon;
        const bySource: Record<string, number> = {};
        for (const g of [GROUP.static, GROUP.host, GROUP.docker]) bySource[g] = daemon.scope.table.groupRules(g).length;
        const m = daemon.membershipStats();
        const host = daemon.hostFacts();
        return {
          interface: daemon.ifname,
          backend: u.spec.backend,
          linkUp: daemon.linkUp,
          mac: host ? formatMac(host.mac) : undefined,
          rules: { total: daemon.scope.table.size, bySource },
          staticRules: daemon.scope
            .staticRuleSet()
            .slice(0, 50)
            .map((r) => `${r.action === Action.Answer ? 'answer' : 'exclude'} ${r.text}`),
          routeCheck: daemon.scope.routeCheck,
          counters: daemon.counters.snapshot(),
          multicast: m === undefined ? undefined : { groups: m.groups, allmulti: m.allmulti, reportsSent: m.reportsSent },
          inUse: daemon.scope.inUseList().length,
        };
      }),
    };
  }
}

/** Merge Prometheus text documents: samples of a family gathered under one HELP/TYPE. */
export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  for (const t of texts) {
    let cur: { head: string[]; samples: string[] } | undefined;
    for (const line of t.split('\n')) {
      if (line === '') continue;
      const m = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (m !== null) {
        const name = m[2]!;
        let f = families.get(name);
        if (f === undefined) {
          f = { head: [], samples: [] };
          families.set(name, f);
        }
        if (f.head.length < 2 && !f.head.some((h) => h.startsWith(`# ${m[1]} `))) f.head.push(line);
        cur = f;
        continue;
      }
      if (line.startsWith('#')) continue;
      cur?.samples.push(line);
    }
  }
  let out = '';
  for (const f of families.values()) out += [...f.head, ...f.samples].join('\n') + '\n\n';
  return out;
}
