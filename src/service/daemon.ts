/**
 * The daemon's lifecycle: build the scope, open the link, start the engine's parts (responder,
 * announcer, membership), follow Docker, serve HTTP; stop them in reverse order. Which addresses
 * are ours is the scope's business (scope.ts), the socket's the link's (link.ts).
 */
import type { Server } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import { formatMac } from '../addr/index.js';
import { DockerWatcher } from '../docker/watcher.js';
import { Announcer } from '../engine/announcer.js';
import { MembershipManager } from '../engine/membership.js';
import { Responder } from '../engine/responder.js';
import type { AnswerSettings, HostFacts } from '../engine/types.js';
import { ANSWER_KIND_NAMES, DROP_REASON_NAMES } from '../engine/verdict.js';
import { warmUp } from '../engine/warm-up.js';
import { toSenderFacts } from '../io/interface.js';
import type { Rule } from '../table/rule.js';
import { serveMetrics, type Metric } from '../metrics.js';
import { explainAddress, type Explanation } from './explain.js';
import { Link, type BackendKind } from './link.js';
import { GROUP, Scope, ruleWarnings } from './scope.js';

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
  /** How often the interface is re-read (flaps, address and MAC changes). */
  pollMs?: number;
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
  private watcher: DockerWatcher | undefined;
  private server: Server | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
    this.scope = new Scope(this.log);
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
            this.log.info({ interface: f.ifname, addresses: this.scope.table.groupRules(GROUP.host).map((r) => r.text) }, 'interface addresses changed');
          }
        },
      },
    );
  }

  /** The live table (tests, benchmarks). */
  get table(): Scope['table'] {
    return this.scope.table;
  }

  /** @throws DaemonError for a missing interface or missing privileges. */
  async start(): Promise<void> {
    const facts = this.link.readFacts()!;
    this.host = toSenderFacts(facts);
    this.scope.setStatic(this.opts.rules);
    this.scope.setUplink(facts);
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
      this.unsubscribe = this.scope.table.onChange((c) => {
        if (c.removed.length > 0) this.announcer?.removed(c.removed);
        if (c.added.length > 0) this.announcer?.added(c.added);
      });
    }
    const warmMs = warmUp(this.host, this.opts.settings);
    this.log.debug({ ms: Math.round(warmMs) }, 'engine warmed up');
    this.raisePriority();
    this.link.start();

    if (this.opts.docker !== undefined) {
      this.watcher = watchDocker(this.scope, this.opts.docker, this.log.child({ component: 'docker' }));
      await this.watcher.start();
    }
    if (this.opts.metrics !== undefined) {
      this.server = await serveMetrics(
        this.opts.metrics,
        { metrics: () => this.metrics(), explain: (a) => this.explain(a), healthy: () => this.link.up },
        this.log,
      );
    }
    this.log.info(
      {
        interface: this.opts.ifname,
        backend: this.opts.backend,
        mac: formatMac(this.host.mac),
        rules: this.scope.table.size,
        sourcePolicy: this.opts.settings.sourcePolicy,
        docker: this.opts.docker !== undefined,
      },
      'ready',
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.announcer?.close();
    await this.watcher?.stop();
    this.link.stop();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.log.info({ counters: this.responder?.counters.snapshot() }, 'stopped');
  }

  /** Why `address` is or isn't answered right now. @throws BadAddressError for bad text. */
  explain(address: string): Explanation {
    return explainAddress({ table: this.scope.table, host: this.host, settings: this.opts.settings }, address);
  }

  private openMembership(): void {
    this.membership = new MembershipManager({
      backend: this.link,
      host: this.host,
      table: this.scope.table,
      maxGroups: this.opts.maxGroups,
      mld: this.opts.mld,
      // Queries addressed to one of these (not only ff02::1 or our groups) are ours too.
      ownAddresses: () => (this.link.interfaceFacts()?.addresses ?? []).map((a) => a.addr),
      logger: this.log.child({ component: 'membership' }),
    });
  }

  private closeMembership(): void {
    const m = this.membership;
    this.membership = undefined;
    m?.close();
  }

  /**
   * Nice -10 for this (the answering) thread: it shares its CPU with the kernel's receive
   * softirq, and under an NS flood winning that contest makes the kernel drop the excess early
   * (see docs/performance.md). A priority the operator set higher is kept; without CAP_SYS_NICE
   * this is a no-op.
   */
  private raisePriority(): void {
    try {
      if (this.opts.nice < 0 && getPriority() > this.opts.nice) setPriority(this.opts.nice);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'cannot raise the scheduling priority');
    }
  }

  metrics(): Metric[] {
    const c = this.responder.counters;
    const b = this.link.stats();
    const m = this.membership?.stats();
    const d = this.watcher?.status();
    const out: Metric[] = [
      { name: 'ndp_frames_total', help: 'Frames handed to the engine', type: 'counter', samples: [{ value: c.frames }] },
      {
        name: 'ndp_answers_total',
        help: 'Neighbor Advertisements built, by kind',
        type: 'counter',
        samples: ANSWER_KIND_NAMES.slice(1).map((k, i) => ({ labels: { kind: k }, value: c.answered[i + 1]! })),
      },
      {
        name: 'ndp_drops_total',
        help: 'Frames not answered, by reason',
        type: 'counter',
        samples: [...DROP_REASON_NAMES].map(([code, k]) => ({ labels: { reason: k }, value: c.drops[code]! })),
      },
      { name: 'ndp_sent_total', help: 'Frames the kernel accepted to send', type: 'counter', samples: [{ value: c.sent }] },
      { name: 'ndp_send_failed_total', help: 'Frames the kernel refused', type: 'counter', samples: [{ value: c.sendFailed }] },
      { name: 'ndp_announced_total', help: 'Unsolicited NAs sent', type: 'counter', samples: [{ value: c.announced }] },
      { name: 'ndp_mld_queries_total', help: 'MLD queries received', type: 'counter', samples: [{ value: c.mldQueries }] },
      { name: 'ndp_table_rules', help: 'Rules in the target table', type: 'gauge', samples: [{ value: this.scope.table.size }] },
      { name: 'ndp_link_up', help: '1 when the packet socket is open', type: 'gauge', samples: [{ value: this.link.up ? 1 : 0 }] },
      { name: 'ndp_uptime_seconds', help: 'Seconds since start', type: 'gauge', samples: [{ value: (Date.now() - this.startedAt) / 1000 }] },
      { name: 'ndp_backend_received_total', help: 'Frames received by the back end', type: 'counter', samples: [{ value: b.received }] },
      { name: 'ndp_backend_kernel_drops_total', help: 'Frames the kernel dropped before we read them', type: 'counter', samples: [{ value: b.kernelDrops }] },
    ];
    if (m !== undefined) {
      out.push(
        { name: 'ndp_multicast_groups', help: 'Solicited-node groups served', type: 'gauge', samples: [{ value: m.groups }] },
        { name: 'ndp_allmulti', help: '1 when receiving all multicast', type: 'gauge', samples: [{ value: m.allmulti ? 1 : 0 }] },
        { name: 'ndp_mld_reports_total', help: 'MLD reports sent', type: 'counter', samples: [{ value: m.reportsSent }] },
      );
    }
    if (d !== undefined) {
      out.push(
        { name: 'ndp_docker_connected', help: '1 while the Docker event stream is up', type: 'gauge', samples: [{ value: d.connected ? 1 : 0 }] },
        { name: 'ndp_docker_addresses', help: 'Container addresses answered', type: 'gauge', samples: [{ value: d.addresses }] },
        { name: 'ndp_docker_reconnects_total', help: 'Docker reconnects', type: 'counter', samples: [{ value: d.reconnects }] },
      );
    }
    return out;
  }
}
