/**
 * The live daemon: wires interface facts, the target table, a packet back end, the responder,
 * multicast membership, unsolicited announcements, the Docker watcher and metrics together,
 * and keeps them right when the interface flaps or Docker restarts.
 */
import type { Server } from 'node:http';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import type { PacketBackend } from './io/backend.js';
import { AfPacketBackend } from './io/afpacket.js';
import { PcapBackend } from './io/pcap-backend.js';
import { readInterfaceFacts, onLinkPrefixes, type InterfaceFacts } from './io/interface.js';
import { Responder } from './engine/responder.js';
import { Announcer } from './engine/announcer.js';
import { MembershipManager } from './engine/membership.js';
import { warmUp } from './engine/warm-up.js';
import type { AnswerSettings, HostFacts } from './engine/types.js';
import { TargetTable, makeRule } from './table/target-table.js';
import { formatAddress, formatCidr } from './table/cidr.js';
import { Action, type Rule } from './table/rule.js';
import { DockerWatcher } from './docker/watcher.js';
import { explainAddress } from './commands/explain-address.js';
import { serveMetrics, type Metric } from './metrics.js';
import { DROP_REASON_NAMES, ANSWER_KIND_NAMES } from './ndp/drop-reason.js';
import { linkLocalFromMac } from './config.js';

export interface DaemonOptions {
  ifname: string;
  backend: 'afpacket' | 'pcap';
  rules: readonly Rule[];
  settings: AnswerSettings;
  docker?: { url?: string | undefined; networks: string[]; labelOptIn: boolean } | undefined;
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

/** An error the CLI prints as one line (missing interface, no privileges ...). */
export class DaemonError extends Error {
  override readonly name = 'DaemonError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}


function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class Daemon {
  readonly table = new TargetTable();
  /** Static and host rules only: decides Docker scope and exclusions. */
  private readonly policy = new TargetTable();
  private facts!: InterfaceFacts;
  private host!: HostFacts;
  private backend: PacketBackend | undefined;
  private responder!: Responder;
  private membership: MembershipManager | undefined;
  private announcer: Announcer | undefined;
  private watcher: DockerWatcher | undefined;
  private server: Server | undefined;
  private poll: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private linkUp = false;
  /** Set when the socket reported an error: the next interface check reopens it. */
  private reopen = false;
  private readonly log: Logger;
  private readonly startedAt = Date.now();

  constructor(private readonly opts: DaemonOptions) {
    this.log = opts.logger;
  }

  /** @throws DaemonError for a missing interface or missing privileges. */
  async start(): Promise<void> {
    this.facts = this.readFacts();
    this.host = this.hostFacts(this.facts);
    this.loadStatic();
    this.responder = new Responder({
      sink: this,
      table: this.table,
      host: this.host,
      settings: this.opts.settings,
      logger: this.log,
      onMldQuery: (q) => this.membership?.handleMldQuery(q),
    });
    if (this.opts.announce) {
      this.announcer = new Announcer({
        sink: this,
        host: () => this.host,
        settings: this.opts.settings,
        counters: this.responder.counters,
        logger: this.log,
      });
      this.unsubscribe = this.table.onChange((c) => {
        if (c.removed.length > 0) this.announcer?.removed(c.removed);
        if (c.added.length > 0) this.announcer?.added(c.added);
      });
    }
    const warmMs = warmUp(this.host, this.opts.settings);
    this.log.debug({ ms: Math.round(warmMs) }, 'engine warmed up');
    this.raisePriority();
    this.openLink();

    if (this.opts.docker !== undefined) {
      this.watcher = new DockerWatcher({
        url: this.opts.docker.url,
        networks: this.opts.docker.networks,
        labelOptIn: this.opts.docker.labelOptIn,
        logger: this.log.child({ component: 'docker' }),
        scope: (addr: Uint8Array) => this.inDockerScope(addr),
        sink: this.table,
      });
      await this.watcher.start();
    }
    if (this.opts.metrics !== undefined) {
      this.server = await serveMetrics(
        this.opts.metrics,
        { metrics: () => this.metrics(), explain: (a) => explainAddress(this.table, a), healthy: () => this.linkUp },
        this.log,
      );
    }
    this.poll = setInterval(() => this.checkInterface(), this.opts.pollMs ?? 1000);
    this.log.info(
      {
        interface: this.opts.ifname,
        backend: this.opts.backend,
        mac: this.facts.mac ? [...this.facts.mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : null,
        rules: this.table.size,
        sourcePolicy: this.opts.settings.sourcePolicy,
        docker: this.opts.docker !== undefined,
      },
      'ready',
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.poll !== undefined) clearInterval(this.poll);
    this.unsubscribe?.();
    this.announcer?.close();
    await this.watcher?.stop();
    this.closeLink();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.log.info({ counters: this.responder?.counters.snapshot() }, 'stopped');
  }

  private readFacts(): InterfaceFacts {
    try {
      return readInterfaceFacts(this.opts.ifname);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENODEV') throw new DaemonError(`interface '${this.opts.ifname}' does not exist`, code);
      throw new DaemonError(`interface '${this.opts.ifname}': ${(e as Error).message}`, code);
    }
  }

  private hostFacts(f: InterfaceFacts): HostFacts {
    return { ifname: f.ifname, mac: f.mac, linkLocal: f.linkLocal ?? linkLocalFromMac(f.mac) };
  }

  /** Static rules plus the interface's own addresses (never answered: the kernel does). */
  private loadStatic(): void {
    const host = this.facts.addresses.map((a) =>
      makeRule(formatAddress(a.addr, 0), Action.Exclude, { kind: 'host', ifname: this.opts.ifname }),
    );
    this.policy.replaceGroup('static', this.opts.rules);
    this.policy.replaceGroup('host', host);
    this.table.replaceGroup('static', this.opts.rules);
    this.table.replaceGroup('host', host);
  }

  /**
   * Docker addresses are answered when inside a --prefix/--address rule (when any answer rule
   * is given) or else inside the uplink's on-link prefixes, and never inside an exclusion or
   * on the interface itself.
   */
  private inDockerScope(addr: Uint8Array): boolean {
    const r = this.policy.match(addr, 0);
    if (r !== undefined) return r.action === Action.Answer;
    if (this.opts.rules.some((x) => x.action === Action.Answer)) return false;
    for (const p of onLinkPrefixes(this.facts)) {
      if (prefixCovers(p.addr, p.prefixLength, addr)) return true;
    }
    return false;
  }

  /**
   * Nice -10 for this (the answering) thread. It shares its CPU with the kernel's receive
   * softirq; at equal weight an NS flood gives ksoftirqd half the CPU and the kernel processes
   * NS we then have no time to answer (answers fell from ~150k to ~60-90k NA/s in the lab).
   * Winning that contest makes the kernel drop the excess early, in its backlog. A priority the
   * operator set higher is kept; without CAP_SYS_NICE this is a no-op.
   */
  private raisePriority(): void {
    try {
      if (this.opts.nice < 0 && getPriority() > this.opts.nice) setPriority(this.opts.nice);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'cannot raise the scheduling priority');
    }
  }

  private openLink(): void {
    let backend: PacketBackend;
    try {
      backend =
        this.opts.backend === 'pcap'
          ? PcapBackend.open({ ifname: this.opts.ifname, host: this.host })
          : AfPacketBackend.open({ ifname: this.opts.ifname, ifindex: this.facts.ifindex, onError: (e) => this.linkError(e) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'EPERM' || code === 'EACCES') {
        throw new DaemonError(`cannot open a packet socket on '${this.opts.ifname}': needs CAP_NET_RAW (run as root)`, code);
      }
      if (code === 'ENODEV' || code === 'ENXIO') throw new DaemonError(`interface '${this.opts.ifname}' does not exist`, code);
      throw new DaemonError(`cannot open '${this.opts.ifname}' (${this.opts.backend}): ${(e as Error).message}`, code);
    }
    this.backend = backend;
    if (this.opts.promiscuous) backend.setPromiscuous(true);
    this.membership = new MembershipManager({
      backend,
      host: this.host,
      table: this.table,
      maxGroups: this.opts.maxGroups,
      mld: this.opts.mld,
      // Queries addressed to one of these (not only ff02::1 or our groups) are ours too.
      ownAddresses: () => this.facts.addresses.map((a) => a.addr),
      logger: this.log.child({ component: 'membership' }),
    });
    backend.start((batch) => this.responder.handleBatch(batch));
    this.linkUp = true;
  }

  private closeLink(): void {
    this.linkUp = false;
    try {
      this.membership?.close();
    } catch (e) {
      this.log.warn({ err: e }, 'leaving multicast groups failed');
    }
    this.membership = undefined;
    this.backend?.close();
    this.backend = undefined;
  }

  /** FrameSink: answers go to whichever back end is open now (none while the link is down). */
  send(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.backend === undefined) return 0;
    return this.backend.send(buf, offsets, lengths, count);
  }

  /** The socket reported an error (e.g. ENETDOWN when the link went down): reopen on the next check. */
  private linkError(e: Error): void {
    this.log.warn({ err: e.message, code: (e as NodeJS.ErrnoException).code }, 'packet socket error; reopening');
    this.reopen = true;
  }

  /** Follow the interface: gone, back (new ifindex), MAC or addresses changed, down and up again. */
  private checkInterface(): void {
    let f: InterfaceFacts | undefined;
    try {
      f = readInterfaceFacts(this.opts.ifname);
    } catch {
      f = undefined;
    }
    if (f === undefined) {
      if (this.linkUp) {
        this.log.warn({ interface: this.opts.ifname }, 'interface gone; waiting for it to come back');
        this.closeLink();
      }
      return;
    }
    // A link that went down and came up again gets a fresh socket: the kernel unhooks a packet
    // socket when its device goes down and flags it with ENETDOWN.
    const cameUp = f.up && !this.facts.up;
    const changed =
      cameUp ||
      this.reopen ||
      f.ifindex !== this.facts.ifindex ||
      !sameBytes(f.mac, this.facts.mac) ||
      !sameBytes(f.linkLocal, this.facts.linkLocal);
    const addrsChanged =
      f.addresses.length !== this.facts.addresses.length ||
      f.addresses.some((a, i) => !sameBytes(a.addr, this.facts.addresses[i]?.addr ?? null));
    if (!f.up && this.facts.up) this.log.warn({ interface: f.ifname }, 'interface down');
    this.facts = f;
    if (addrsChanged) {
      this.loadStatic();
      this.log.info({ addresses: f.addresses.map((a) => formatCidr(a.addr, a.prefixLength)) }, 'interface addresses changed');
    }
    if (changed || !this.linkUp) {
      this.reopen = false;
      this.host = this.hostFacts(f);
      this.responder.setHost(this.host);
      if (this.linkUp) this.closeLink();
      try {
        this.openLink();
        this.log.info({ interface: f.ifname, ifindex: f.ifindex }, 'interface (re)opened');
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'cannot reopen interface; will retry');
      }
    }
  }

  metrics(): Metric[] {
    const c = this.responder.counters;
    const b = this.backend?.stats();
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
        samples: DROP_REASON_NAMES.slice(1).map((k, i) => ({ labels: { reason: k }, value: c.drops[i + 1]! })),
      },
      { name: 'ndp_sent_total', help: 'Frames the kernel accepted to send', type: 'counter', samples: [{ value: c.sent }] },
      { name: 'ndp_send_failed_total', help: 'Frames the kernel refused', type: 'counter', samples: [{ value: c.sendFailed }] },
      { name: 'ndp_announced_total', help: 'Unsolicited NAs sent', type: 'counter', samples: [{ value: c.announced }] },
      { name: 'ndp_mld_queries_total', help: 'MLD queries received', type: 'counter', samples: [{ value: c.mldQueries }] },
      { name: 'ndp_table_rules', help: 'Rules in the target table', type: 'gauge', samples: [{ value: this.table.size }] },
      { name: 'ndp_link_up', help: '1 when the packet socket is open', type: 'gauge', samples: [{ value: this.linkUp ? 1 : 0 }] },
      { name: 'ndp_uptime_seconds', help: 'Seconds since start', type: 'gauge', samples: [{ value: (Date.now() - this.startedAt) / 1000 }] },
    ];
    if (b !== undefined) {
      out.push(
        { name: 'ndp_backend_received_total', help: 'Frames received by the back end', type: 'counter', samples: [{ value: b.received }] },
        { name: 'ndp_backend_kernel_drops_total', help: 'Frames the kernel dropped before we read them', type: 'counter', samples: [{ value: b.kernelDrops }] },
      );
    }
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

/** True when `addr` lies inside `prefix`/`len`. */
export function prefixCovers(prefix: Uint8Array, len: number, addr: Uint8Array): boolean {
  const full = len >> 3;
  for (let i = 0; i < full; i++) if (prefix[i] !== addr[i]) return false;
  const rem = len & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((prefix[full]! ^ addr[full]!) & mask) === 0;
}
