/**
 * The daemon's lifecycle: build the scope, open the link, start the engine's parts (responder,
 * announcer, membership), follow Docker, serve HTTP; stop them in reverse order. Which addresses
 * are ours is the scope's business (scope.ts), the socket's the link's (link.ts).
 */
import { getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import { formatMac } from '../addr/index.js';
import { DockerWatcher } from '../docker/watcher.js';
import { Announcer } from '../engine/announcer.js';
import { MembershipManager } from '../engine/membership.js';
import { Responder } from '../engine/responder.js';
import type { AnswerSettings, HostFacts } from '../engine/types.js';
import { warmUp } from '../engine/warm-up.js';
import { dropPrivileges } from '../io/capabilities.js';
import { setRealtime } from '../io/scheduler.js';
import { toSenderFacts } from '../io/interface.js';
import type { Rule } from '../table/rule.js';
import { explainAddress, httpExplain, type Explanation } from './explain.js';
import { startHttpServer, type HttpServerHandle } from './http-server.js';
import { DaemonMetrics, type MetricsSnapshot } from './metrics.js';
import { Link, type BackendKind } from './link.js';
import { Prober } from './probe.js';
import { openRoutes, type RouteMonitor } from './routes.js';
import { GROUP, Scope, routeOracle, ruleWarnings } from './scope.js';
import { describeServed } from './served.js';
import { defaultRouter } from '../table/default-router.js';

export { DaemonError } from './errors.js';

export interface DockerOptions {
  readonly url?: string | undefined;
  readonly networks: readonly string[];
  readonly labelOptIn: boolean;
}

export interface DaemonOptions {
  ifname: string;
  backend: BackendKind;
  rules: readonly Rule[];
  settings: AnswerSettings;
  docker?: DockerOptions | undefined;
  maxGroups: number;
  mld: boolean;
  promiscuous: boolean;
  announce: boolean;
  metrics?: string | undefined;
  logger: Logger;
  /** Nice value for the answering thread (`--nice`); 0 leaves the priority alone. */
  nice: number;
  /** SCHED_FIFO priority for the answering thread (`--realtime`, 1..99); 0 or absent: none. */
  realtime?: number;
  /** How often the interface is re-read (flaps, address and MAC changes). */
  pollMs?: number;
  /** Answer only targets the host routes away from the uplink (default true; `--no-route-check`). */
  routeCheck?: boolean;
  /** Log `ready` at the end of start (default true); the uplinks' service logs it once all is up. */
  logReady?: boolean;
  /** A route monitor shared by several uplinks (not closed by this daemon); else it opens its own. */
  routes?: RouteMonitor | undefined;
  /** Start even when the interface does not exist yet, and open it when it appears. */
  waitInterface?: boolean;
  /** The HTTP listen address served by someone else (the uplinks' service): keep the capability to bind it. */
  privilegeMetrics?: string | undefined;
  /** Docker's state when a shared watcher (the uplinks' service) follows Docker for this daemon. */
  dockerStatus?: (() => ReturnType<DockerWatcher['status']> | undefined) | undefined;
}

/** The Docker watcher wired to a scope: the one way run and explain follow Docker. */
export function watchDocker(scope: Scope, docker: DockerOptions, logger: Logger, once = false): DockerWatcher {
  const w = new DockerWatcher({
    url: docker.url,
    networks: [...docker.networks],
    labelOptIn: docker.labelOptIn,
    logger,
    scope: (addr) => scope.dockerVerdict(addr),
    sink: scope,
    group: GROUP.docker,
    once,
  });
  scope.onRescope(() => w.rescope());
  return w;
}

export class Daemon {
  readonly scope: Scope;
  private host!: HostFacts;
  private readonly link: Link;
  private responder!: Responder;
  private membership: MembershipManager | undefined;
  private announcer: Announcer | undefined;
  private prober: Prober | undefined;
  private routes: RouteMonitor | undefined;
  private watcher: DockerWatcher | undefined;
  private http: HttpServerHandle | undefined;
  private catalogue: DaemonMetrics | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
    this.scope = new Scope(this.log.child({ component: 'scope' }));
    this.link = new Link(
      { ifname: opts.ifname, backend: opts.backend, promiscuous: opts.promiscuous, logger: this.log, pollMs: opts.pollMs },
      {
        onBatch: (batch) => this.responder.handleBatch(batch),
        onOpen: () => this.openMembership(),
        onClose: () => this.closeMembership(),
        onSender: (s) => {
          this.host = s;
          this.responder?.setHost(s);
          this.membership?.setHost(s);
        },
        onAddresses: (f) => {
          if (this.scope.setUplink(f) !== undefined) {
            this.log.info(
              { interface: f.ifname, addresses: this.scope.table.groupRules(GROUP.host).map((r) => r.text) },
              'interface addresses changed',
            );
          }
        },
      },
    );
  }

  /** The live table (tests, benchmarks). */
  get table(): Scope['table'] {
    return this.scope.table;
  }

  /** The uplink's name. */
  get ifname(): string {
    return this.opts.ifname;
  }

  /** True while the packet socket is open. */
  get linkUp(): boolean {
    return this.link.up;
  }

  /** The responder's counters. */
  get counters(): Responder['counters'] {
    return this.responder.counters;
  }

  /** The MAC and link-local address answers use now. */
  hostFacts(): HostFacts | undefined {
    return this.host;
  }

  /** Multicast membership right now (undefined while the link is down). */
  membershipStats(): ReturnType<MembershipManager['stats']> | undefined {
    return this.membership?.stats();
  }

  /**
   * Replace the static rules (reload): one atomic table swap, so no target present before and
   * after goes unanswered in between. @throws Error when the table refuses a rule (then unchanged).
   */
  setRules(rules: readonly Rule[]): void {
    const change = this.scope.setStatic(rules);
    for (const w of ruleWarnings(rules, this.scope.onLinkPrefixes())) this.log.warn({ reason: 'rule-warning' }, w);
    this.log.info(
      { interface: this.opts.ifname, added: change.added.length, removed: change.removed.length, rules: this.scope.table.size },
      'rules replaced',
    );
  }

  /** @throws DaemonError for a missing interface or missing privileges. */
  async start(): Promise<void> {
    const facts = this.link.readFacts(this.opts.waitInterface === true);
    // Waiting for the interface: placeholder sender facts until it appears (nothing is sent before).
    this.host =
      facts !== undefined ? toSenderFacts(facts) : { ifname: this.opts.ifname, mac: new Uint8Array(6), linkLocal: new Uint8Array(16) };
    this.scope.setStatic(this.opts.rules);
    if (facts !== undefined) this.scope.setUplink(facts);
    else
      this.log.warn(
        { interface: this.opts.ifname, reason: 'interface-missing' },
        'interface does not exist yet; waiting for it (--wait-interface)',
      );
    for (const w of ruleWarnings(this.opts.rules, this.scope.onLinkPrefixes())) this.log.warn({ reason: 'rule-warning' }, w);
    this.responder = new Responder({
      sink: this.link,
      table: this.scope,
      host: this.host,
      settings: this.opts.settings,
      logger: this.log,
      onMldQuery: (q) => this.membership?.handleMldQuery(q),
    });
    if (this.opts.announce) {
      this.announcer = new Announcer({
        sink: this.link,
        host: () => this.host,
        settings: this.opts.settings,
        counters: this.responder.counters,
        logger: this.log,
      });
    }
    // New container addresses are probed first and announced once no other owner answered
    // (probe.ts); other new exact addresses (static rules) are announced at once.
    this.prober = new Prober({
      sink: this.link,
      scope: this.scope,
      host: () => this.host,
      confirmed: (rules) => this.announcer?.added(rules),
      logger: this.log,
      router: () => (this.routes !== undefined ? defaultRouter(this.routes.table, this.link.interfaceFacts()?.ifindex ?? 0) : undefined),
    });
    this.unsubscribe = this.scope.table.onChange((c) => {
      if (c.removed.length > 0) {
        this.prober?.removed(c.removed);
        this.announcer?.removed(c.removed);
      }
      if (c.added.length > 0) {
        const docker = c.added.filter((r) => r.source.kind === 'docker');
        const other = docker.length === c.added.length ? [] : c.added.filter((r) => r.source.kind !== 'docker');
        if (docker.length > 0) this.prober?.added(docker);
        if (other.length > 0) this.announcer?.added(other);
      }
    });
    if (this.opts.routeCheck !== false) {
      this.routes = this.opts.routes ?? (await openRoutes(this.log.child({ component: 'routes' })));
      this.scope.setRoutes(routeOracle(this.routes.table, () => this.link.interfaceFacts()?.ifindex ?? 0));
    }
    const warmMs = warmUp(this.host, this.opts.settings);
    this.log.debug({ ms: Math.round(warmMs) }, 'engine warmed up');
    this.raisePriority();
    if (facts !== undefined) this.link.start();
    else this.link.startWaiting();
    // Sockets open: keep only the capabilities still needed (logs what is kept and why).
    dropPrivileges(
      { nice: this.opts.nice, realtime: this.opts.realtime ?? 0, metrics: this.opts.metrics ?? this.opts.privilegeMetrics },
      this.log,
    );

    if (this.opts.docker !== undefined) {
      this.watcher = watchDocker(this.scope, this.opts.docker, this.log.child({ component: 'docker' }));
      await this.watcher.start();
    }
    if (this.opts.metrics !== undefined) {
      const catalogue = new DaemonMetrics({
        snapshot: () => this.metricsSnapshot(),
        docker: this.watcher !== undefined,
        startedAt: this.startedAt,
      });
      this.catalogue = catalogue;
      this.http = await startHttpServer(
        this.opts.metrics,
        {
          metrics: () => catalogue.metrics(),
          metricsContentType: catalogue.contentType,
          explain: httpExplain((a) => this.explain(a)),
          healthy: () => !this.stopped,
          ready: () => this.readiness(),
        },
        this.log.child({ component: 'http' }),
      );
    }
    if (this.opts.logReady !== false) this.log.info(this.readyFields(), 'ready');
  }

  /** What the `ready` log line says about this uplink. */
  readyFields(): Record<string, unknown> {
    return {
      interface: this.opts.ifname,
      backend: this.opts.backend,
      mac: formatMac(this.host.mac),
      rules: this.scope.table.size,
      sourcePolicy: this.opts.settings.sourcePolicy,
      override: this.opts.settings.overrideMode ?? (this.opts.settings.override ? 'always' : 'never'),
      routeCheck: this.routes !== undefined,
      docker: this.opts.docker !== undefined || this.opts.dockerStatus !== undefined,
      serves: describeServed(
        this.opts.rules,
        this.opts.docker ?? (this.opts.dockerStatus !== undefined ? { networks: [], labelOptIn: false } : undefined),
      ),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.announcer?.close();
    this.prober?.close();
    await this.watcher?.stop();
    this.link.stop();
    if (this.opts.routes === undefined) this.routes?.close();
    await this.http?.close();
    this.log.info({ counters: this.responder?.counters.snapshot() }, 'stopped');
  }

  /** Use this catalogue for the link's retired counts (the uplinks' service serves the metrics). */
  attachMetrics(catalogue: DaemonMetrics): void {
    this.catalogue = catalogue;
  }

  /** Why `address` is or isn't answered right now. @throws BadAddressError for bad text. */
  explain(address: string): Explanation {
    return explainAddress({ table: this.scope, scope: this.scope, host: this.host, settings: this.opts.settings }, address);
  }

  private openMembership(): void {
    this.membership = new MembershipManager({
      backend: this.link,
      host: this.host,
      table: this.scope.table,
      maxGroups: this.opts.maxGroups,
      mld: this.opts.mld,
      // Queries addressed to one of these (not only ff02::1 or our groups) are ours too.
      servedVlans: new Set(this.opts.settings.vlans?.ids ?? []),
      ownAddresses: () => (this.link.interfaceFacts()?.addresses ?? []).map((a) => a.addr),
      logger: this.log.child({ component: 'membership' }),
    });
  }

  private closeMembership(): void {
    const m = this.membership;
    if (m === undefined) return;
    this.membership = undefined;
    m.close();
    if (this.catalogue !== undefined) {
      const s = m.stats();
      this.catalogue.retireLink(undefined, { source: m, reportsSent: s.reportsSent });
    }
  }

  /**
   * SCHED_FIFO (`--realtime`, default 1) and nice -10 (`--nice`) for this, the answering, thread:
   * it shares its CPU with the kernel's receive softirq, and under an NS flood winning that
   * contest makes the kernel drop the excess early, in the receive backlog, instead of after
   * copying it into our ring (src/io/scheduler.ts, bench/README.md "packet loop"). A priority
   * the operator set higher is kept; without CAP_SYS_NICE either is a no-op (dropPrivileges
   * warns).
   */
  private raisePriority(): void {
    const realtime = this.opts.realtime ?? 0;
    if (realtime > 0) {
      try {
        if (setRealtime(realtime)) this.log.info({ realtime }, 'answering thread runs SCHED_FIFO');
      } catch (e) {
        this.log.debug({ err: (e as Error).message }, 'cannot make the answering thread real-time');
      }
    }
    try {
      if (this.opts.nice < 0 && getPriority() > this.opts.nice) setPriority(this.opts.nice);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'cannot raise the scheduling priority');
    }
  }

  /** What /metrics reads at each scrape (see metrics.ts). Back-end counters are the link's, summed across reopens. */
  metricsSnapshot(): MetricsSnapshot {
    const b = this.link.stats();
    const m = this.membership?.stats();
    const d = this.watcher?.status() ?? this.opts.dockerStatus?.();
    return {
      counters: this.responder.counters,
      tableRules: this.scope.table.size,
      guard: {
        inUse: this.scope.inUseCount(),
        conflicts: this.scope.conflicts,
        probes: this.prober?.sent ?? 0,
        routeCheck: this.scope.routeCheck,
      },
      linkUp: this.link.up,
      backend: { source: this.link, received: b.received, kernelDrops: b.kernelDrops },
      membership:
        this.membership && m ? { source: this.membership, groups: m.groups, allmulti: m.allmulti, reportsSent: m.reportsSent } : undefined,
      docker: d ? { connected: d.connected, addresses: d.addresses, reconnects: d.reconnects, synced: d.lastSync !== null } : undefined,
    };
  }

  /** /readyz: the packet socket is open and, with --docker, the first Docker sync is done. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.stopped) reasons.push('stopping');
    if (!this.link.up) reasons.push(`packet socket on ${this.opts.ifname} is not open`);
    if (this.watcher !== undefined && this.watcher.status().lastSync === null) reasons.push('first Docker sync not done');
    return { ready: reasons.length === 0, reasons };
  }
}
