/**
 * The daemon's metric catalogue, through prom-client: Node's default process metrics, an
 * `ndp_build_info` gauge, and the daemon's own counters and gauges. The daemon keeps its
 * counters where they are counted (the responder, the back end, the membership manager, the
 * Docker watcher); each prom-client metric here reads them from one snapshot at scrape time
 * (`collect()`), so nothing is counted twice.
 *
 * Every series is present from the first scrape on, also while the link is down: the back end
 * and the membership manager are closed then, so their counters keep their last known value
 * (and a reopened back end's counts add to it, so a counter never goes backwards) and their
 * gauges show the last known value while `ndp_link_up` is 0.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import { ANSWER_KIND_NAMES, DROP_REASON_NAMES } from '../engine/verdict.js';

/** prom-client, loaded by the first catalogue: a daemon without `--metrics` never needs it. */
let promClient: typeof PromClient | undefined;
const prom = (): typeof PromClient => (promClient ??= createRequire(import.meta.url)('prom-client') as typeof PromClient);

/** Answer kinds by code (index 0 is "none", never a real outcome). */
const ANSWER_KINDS: ReadonlyMap<number, string> = new Map(ANSWER_KIND_NAMES.map((n, i) => [i, n] as const).slice(1));

/** What the daemon reports at scrape time. Plain numbers; the catalogue holds no counts of its own. */
export interface MetricsSnapshot {
  /** The responder's counters (they live as long as the daemon). */
  counters: {
    frames: number;
    /** By answer kind index (1 = solicited answer, 2 = DAD defence). */
    answered: ArrayLike<number>;
    /** By drop reason index. */
    drops: ArrayLike<number>;
    sent: number;
    sendFailed: number;
    announced: number;
    mldQueries: number;
    /** Router and Neighbor Advertisements of other nodes read by the conflict guard (absent: 0). */
    adverts?: number;
  };
  tableRules: number;
  /** The guards that keep us off other nodes' addresses (absent in older callers). */
  guard?: {
    /** Addresses seen in use by other nodes, now. */
    inUse: number;
    /** Conflicts found, by how they were seen (`ns-source`, `na-target`, ...). */
    conflicts: ReadonlyMap<string, number>;
    /** DAD probes sent for new container addresses. */
    probes: number;
    /** 1 while the route check is on. */
    routeCheck: boolean;
  };
  linkUp: boolean;
  /** The open back end's counts (they restart with each back end), or undefined while the link is down. */
  backend: { source: object; received: number; kernelDrops: number } | undefined;
  /** The open membership manager's state (it restarts with each back end), or undefined while down. */
  membership: { source: object; groups: number; allmulti: boolean; reportsSent: number } | undefined;
  /** Only when the daemon watches Docker. */
  docker: { connected: boolean; addresses: number; reconnects: number; synced: boolean } | undefined;
}

/**
 * A counter read from a source that restarts at zero (a back end reopened after a link flap):
 * the totals of retired sources are carried, so the exposed value never decreases.
 */
export class CarriedCounter {
  #base = 0;
  #source: object | undefined;
  #last = 0;

  /** The running total given the current source (undefined while there is none) and its count. */
  read(source: object | undefined, count: number | undefined): number {
    if (source !== this.#source) {
      this.#base += this.#last;
      this.#source = source;
      this.#last = 0;
    }
    if (source !== undefined && count !== undefined && count >= this.#last) this.#last = count;
    return this.#base + this.#last;
  }

  /** The final count of a source being closed (counts since the last read are not lost). */
  retire(source: object, finalCount: number): void {
    if (source !== this.#source) {
      this.#base += this.#last;
      this.#source = source;
      this.#last = 0;
    }
    if (finalCount > this.#last) this.#last = finalCount;
  }
}

/** This package's version (package.json next to dist/ or the source tree); 'unknown' if unreadable. */
export function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ndp-responder' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      /* try the next layout */
    }
  }
  return 'unknown';
}

export interface DaemonMetricsOptions {
  /** Read at every scrape (once per scrape, shared by every metric). */
  snapshot: () => MetricsSnapshot;
  /** Whether the Docker series exist (the daemon runs with --docker). */
  docker: boolean;
  /** Default: {@link packageVersion}. */
  version?: string;
  /** When the daemon started (ms since the epoch), for `ndp_uptime_seconds`; default: now. */
  startedAt?: number;
  /** Node's process metrics (CPU, memory, event loop lag, handles ...); default true. */
  processMetrics?: boolean;
}

/** The catalogue: one Registry, one exposition document per scrape. */
export class DaemonMetrics {
  readonly registry: PromClient.Registry;
  readonly startedAt: number;
  #snap: MetricsSnapshot | undefined;
  readonly #received = new CarriedCounter();
  readonly #kernelDrops = new CarriedCounter();
  readonly #reports = new CarriedCounter();
  #lastMembership: { groups: number; allmulti: boolean } = { groups: 0, allmulti: false };

  constructor(opts: DaemonMetricsOptions) {
    const { Counter, Gauge, Registry, collectDefaultMetrics } = prom();
    this.registry = new Registry();
    this.startedAt = opts.startedAt ?? Date.now();
    const r = this.registry;
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: r });
    new Gauge({ name: 'ndp_build_info', help: 'Build information; always 1', labelNames: ['version', 'node'], registers: [r] }).set(
      { version: opts.version ?? packageVersion(), node: process.version },
      1,
    );
    const snap = (): MetricsSnapshot => (this.#snap ??= opts.snapshot());

    const counter = (name: string, help: string, value: (s: MetricsSnapshot) => number): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(value(snap()));
        },
      });
    };
    const gauge = (name: string, help: string, value: (s: MetricsSnapshot) => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(value(snap()));
        },
      });
    };
    const byCode = (
      name: string,
      help: string,
      label: string,
      names: ReadonlyMap<number, string>,
      values: (s: MetricsSnapshot) => ArrayLike<number>,
    ): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [r],
        collect() {
          this.reset();
          const v = values(snap());
          for (const [code, n] of names) this.inc({ [label]: n }, v[code] ?? 0);
        },
      });
    };

    counter('ndp_frames_total', 'Frames handed to the engine', (s) => s.counters.frames);
    byCode('ndp_answers_total', 'Neighbor Advertisements built, by kind', 'kind', ANSWER_KINDS, (s) => s.counters.answered);
    byCode('ndp_drops_total', 'Frames not answered, by reason', 'reason', DROP_REASON_NAMES, (s) => s.counters.drops);
    counter('ndp_sent_total', 'Frames the kernel accepted to send', (s) => s.counters.sent);
    counter('ndp_send_failed_total', 'Frames the kernel refused', (s) => s.counters.sendFailed);
    counter('ndp_announced_total', 'Unsolicited NAs sent', (s) => s.counters.announced);
    counter('ndp_mld_queries_total', 'MLD queries received', (s) => s.counters.mldQueries);
    counter(
      'ndp_adverts_total',
      'Router and Neighbor Advertisements of other nodes read by the conflict guard',
      (s) => s.counters.adverts ?? 0,
    );
    gauge('ndp_table_rules', 'Rules in the target table', (s) => s.tableRules);
    gauge('ndp_addresses_in_use', 'Addresses seen in use by other nodes on the link (never claimed)', (s) => s.guard?.inUse ?? 0);
    counter('ndp_probes_total', 'DAD probes sent for new container addresses', (s) => s.guard?.probes ?? 0);
    gauge('ndp_route_check', '1 while answers are checked against the host routes', (s) => (s.guard?.routeCheck ? 1 : 0));
    new Counter({
      name: 'ndp_conflicts_total',
      help: 'Addresses found in use by another node, by how they were seen',
      labelNames: ['how'],
      registers: [r],
      collect() {
        this.reset();
        const c = snap().guard?.conflicts;
        if (c !== undefined) for (const [how, n] of c) this.inc({ how }, n);
      },
    });
    gauge('ndp_link_up', '1 when the packet socket is open', (s) => (s.linkUp ? 1 : 0));
    gauge('ndp_uptime_seconds', 'Seconds since start', () => (Date.now() - this.startedAt) / 1000);
    counter('ndp_backend_received_total', 'Frames received by the back end', (s) =>
      this.#received.read(s.backend?.source, s.backend?.received),
    );
    counter('ndp_backend_kernel_drops_total', 'Frames the kernel dropped before we read them', (s) =>
      this.#kernelDrops.read(s.backend?.source, s.backend?.kernelDrops),
    );
    gauge('ndp_multicast_groups', 'Solicited-node groups served (last known while the link is down)', (s) => this.#membership(s).groups);
    gauge('ndp_allmulti', '1 when receiving all multicast (last known while the link is down)', (s) =>
      this.#membership(s).allmulti ? 1 : 0,
    );
    counter('ndp_mld_reports_total', 'MLD reports sent', (s) => this.#reports.read(s.membership?.source, s.membership?.reportsSent));
    if (opts.docker) {
      gauge('ndp_docker_connected', '1 while the Docker event stream is up', (s) => (s.docker?.connected ? 1 : 0));
      gauge('ndp_docker_synced', '1 once the first full sync from Docker is done', (s) => (s.docker?.synced ? 1 : 0));
      gauge('ndp_docker_addresses', 'Container addresses answered', (s) => s.docker?.addresses ?? 0);
      counter('ndp_docker_reconnects_total', 'Docker reconnects', (s) => s.docker?.reconnects ?? 0);
    }
  }

  #membership(s: MetricsSnapshot): { groups: number; allmulti: boolean } {
    if (s.membership !== undefined) this.#lastMembership = { groups: s.membership.groups, allmulti: s.membership.allmulti };
    return this.#lastMembership;
  }

  /**
   * Record the final counts of a back end and membership manager being closed, so increments
   * since the last scrape are kept. Call before dropping them.
   */
  retireLink(
    backend: { source: object; received: number; kernelDrops: number } | undefined,
    membership: { source: object; reportsSent: number } | undefined,
  ): void {
    if (backend !== undefined) {
      this.#received.retire(backend.source, backend.received);
      this.#kernelDrops.retire(backend.source, backend.kernelDrops);
    }
    if (membership !== undefined) this.#reports.retire(membership.source, membership.reportsSent);
  }

  /** Content-Type of {@link metrics}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition document (one snapshot for the whole scrape). */
  async metrics(): Promise<string> {
    this.#snap = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.#snap = undefined;
    }
  }
}
