/**
 * Follows a Docker engine and keeps the table's `docker` group equal to the IPv6 addresses of
 * its running containers.
 *
 * How (after yoursunny/ndpresponder's docker.go, with the gaps closed):
 * - subscribe to `/events` first, filtered on the server side (see EVENT_FILTERS), then list the
 *   running containers once (`GET /containers/json` carries labels and per-network addresses)
 *   and swap in the whole set: no window in which an event can be missed;
 * - each burst of events is coalesced for `coalesceMs` (1 ms), the containers it touches are
 *   re-read with inspect (which waits for dockerd's per-container lock, so it sees the finished
 *   change) and the rebuilt set is swapped in with one `replaceGroup` call: readers never see a
 *   half-applied change;
 * - `die` removes the container at once, without asking Docker: dockerd sends `die` before it
 *   tears the network down and before its list stops showing the container, so a died
 *   container is also kept out of any list that is still in flight (a tombstone until `start`);
 * - a broken stream or an unreachable engine never touches the table: the last known set stays,
 *   a warning is logged, the watcher reconnects with capped exponential backoff and does a full
 *   resync (containers that vanished meanwhile drop out); a periodic resync is a safety net.
 */
import Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Rule } from '../table/rule.js';
import {
  addedRules,
  fromInspect,
  fromListEntry,
  removedRules,
  sameRules,
  selectRules,
  type ContainerInfo,
  type Skipped,
} from './addresses.js';
import { eventEffect, eventFiltersParam, JsonLineDecoder } from './events.js';
import { parseDockerUrl, type DockerEndpoint } from './url.js';

/** Where the watcher puts its rules: the TargetTable, or anything with the same method. */
export interface DockerSink {
  /** Replace every rule of `group` with `rules` in one step. */
  replaceGroup(group: string, rules: readonly Rule[]): unknown;
}

export interface DockerWatcherOptions {
  /** `unix:///path`, `tcp://host:port`, `http://`, `https://`; default DOCKER_HOST, then unix:///var/run/docker.sock. */
  readonly url?: string;
  readonly sink: DockerSink;
  readonly logger: Logger;
  /** Which addresses are ours (service/scope.ts): undefined admits, a string says why not. */
  readonly scope?: (addr: Uint8Array) => string | undefined;
  /** --docker-network: only these networks (names or IDs). */
  readonly networks?: readonly string[];
  /** --docker-label-opt-in: only containers labelled ndp-responder.enable=true. */
  readonly labelOptIn?: boolean;
  /** Table group name; default 'docker'. */
  readonly group?: string;
  /** How long a burst of events is gathered before it is applied; default 1 ms. */
  readonly coalesceMs?: number;
  /** Reconnect backoff: first delay and cap; default 100 ms and 5000 ms. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** Timeout of each API request (list, inspect, opening the event stream); default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** Full resync this often while connected, in case an event was lost; 0 = never; default 60 s. */
  readonly resyncIntervalMs?: number;
  /** Most inspects in flight at once for one burst; default 8. */
  readonly inspectConcurrency?: number;
  /** Sync once and stop: no event stream, no retries (`explain --docker`). */
  readonly once?: boolean;
}

export interface DockerWatcherStatus {
  /** Event stream open and the last sync succeeded. */
  readonly connected: boolean;
  /** When the last full sync from Docker succeeded. */
  readonly lastSync: Date | null;
  /** Containers with at least one admitted address. */
  readonly containers: number;
  /** Addresses (rules) in the group now. */
  readonly addresses: number;
  /** Successful reconnections after a lost or failed connection. */
  readonly reconnects: number;
  /** Last connection or API error, null once connected again. */
  readonly lastError: string | null;
  readonly url: string;
}

function errText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { statusCode?: unknown }).statusCode === 404;
}

/**
 * dockerode constructor options for a Docker URL (see {@link parseDockerUrl}).
 * @throws Error on a URL we do not speak.
 */
export function dockerOptions(url?: string): Docker.DockerOptions {
  return endpointOptions(parseDockerUrl(url));
}

function endpointOptions(ep: DockerEndpoint): Docker.DockerOptions {
  // Every field is given explicitly: docker-modem would otherwise fill gaps from DOCKER_HOST,
  // DOCKER_CERT_PATH and DOCKER_CLIENT_TIMEOUT (a client timeout would cut the event stream).
  if (ep.kind === 'unix') {
    return {
      socketPath: ep.socketPath,
      host: undefined,
      port: undefined,
      protocol: 'http',
      timeout: 0,
      ca: undefined,
      cert: undefined,
      key: undefined,
    } as Docker.DockerOptions;
  }
  return {
    host: ep.host,
    port: ep.port,
    protocol: ep.protocol,
    socketPath: undefined,
    timeout: 0,
  } as Docker.DockerOptions;
}

/** Wait `ms`, or less when `signal` fires. Never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class DockerWatcher {
  private readonly docker: Docker;
  private readonly endpoint: DockerEndpoint;
  private readonly log: Logger;
  private readonly group: string;
  private readonly coalesceMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly requestTimeoutMs: number;
  private readonly resyncIntervalMs: number;
  private readonly inspectConcurrency: number;

  /** Running containers as last read from Docker. */
  private containers = new Map<string, ContainerInfo>();
  /** Containers that died (event) and have not started again: kept out of stale lists. */
  private readonly dead = new Set<string>();
  /** Containers touched by events not yet applied, in arrival order. */
  private readonly pending = new Set<string>();
  /** What the sink holds now. */
  private rules: Rule[] = [];
  private admittedContainers = 0;

  /** Every sync and event batch runs on this chain, one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private batchTimer: NodeJS.Timeout | null = null;
  private session: AbortController | null = null;
  private readonly stopSignal = new AbortController();
  private loop: Promise<void> | null = null;
  private stopped = false;

  private connected = false;
  private lastSync: Date | null = null;
  private reconnects = 0;
  private lastError: string | null = null;
  private everSynced = false;
  private resolveFirst: (() => void) | null = null;
  private readonly first: Promise<void>;

  constructor(private readonly opts: DockerWatcherOptions) {
    this.endpoint = parseDockerUrl(opts.url);
    this.docker = new Docker(endpointOptions(this.endpoint));
    this.log = opts.logger.child({ module: 'docker' });
    this.group = opts.group ?? 'docker';
    this.coalesceMs = opts.coalesceMs ?? 1;
    this.backoffMinMs = opts.backoffMinMs ?? 100;
    this.backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 60_000;
    this.inspectConcurrency = Math.max(1, opts.inspectConcurrency ?? 8);
    this.first = new Promise((resolve) => {
      this.resolveFirst = resolve;
    });
  }

  /**
   * Start following Docker. Resolves after the first successful sync, or as soon as the first
   * attempt has failed and been logged (the daemon must serve its static rules without Docker;
   * the watcher keeps retrying in the background). Never rejects.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.loop) this.loop = this.opts.once ? this.runOnce() : this.runLoop();
    return this.first;
  }

  /** Stop following; the table keeps the last rules (the caller decides what to do with them). */
  async stop(): Promise<void> {
    if (this.stopped) {
      await this.loop;
      return;
    }
    this.stopped = true;
    this.stopSignal.abort();
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    this.session?.abort(new Error('watcher stopped'));
    this.settleFirst();
    await this.loop;
    await this.chain;
    this.connected = false;
  }

  status(): DockerWatcherStatus {
    return {
      connected: this.connected,
      lastSync: this.lastSync,
      containers: this.admittedContainers,
      addresses: this.rules.length,
      reconnects: this.reconnects,
      lastError: this.lastError,
      url: this.endpoint.url,
    };
  }

  /**
   * Re-admit the known containers (the scope changed: static rules reloaded, the uplink's
   * addresses changed). Runs on the sync chain, after whatever is in flight.
   */
  rescope(): void {
    if (this.stopped) return;
    void this.enqueue(async () => this.publish('rescope', 0)).catch(() => undefined);
  }

  private settleFirst(): void {
    const r = this.resolveFirst;
    this.resolveFirst = null;
    r?.();
  }

  private async runOnce(): Promise<void> {
    const ac = new AbortController();
    this.session = ac;
    try {
      await this.enqueue(() => this.fullSync(ac, 'connect'));
      this.everSynced = true;
    } catch (err) {
      this.lastError = errText(err);
      this.log.warn({ reason: 'docker-unavailable', err: this.lastError, url: this.endpoint.url }, 'docker not reachable');
    } finally {
      this.session = null;
      this.settleFirst();
    }
  }

  private async runLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let reason: string;
      const wasSynced = this.everSynced;
      try {
        reason = await this.runSession(() => {
          if (wasSynced) this.reconnects++;
          failures = 0;
        });
      } catch (err) {
        reason = errText(err);
      }
      this.connected = false;
      if (this.stopped) break;
      this.lastError = reason;
      const delay = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(failures, 30));
      failures++;
      this.log.warn(
        {
          reason: 'docker-unavailable',
          err: reason,
          retryInMs: delay,
          url: this.endpoint.url,
          keptAddresses: this.rules.length,
          everSynced: this.everSynced,
        },
        this.everSynced
          ? 'docker connection lost; keeping the last known containers and reconnecting'
          : 'docker not reachable; serving static rules and retrying',
      );
      this.settleFirst();
      await sleep(delay, this.stopSignal.signal);
    }
  }

  /**
   * One connection: open the event stream, full sync, apply events until the stream ends.
   * Returns why it ended; throws when it could not get going.
   */
  private async runSession(onSynced: () => void): Promise<string> {
    const ac = new AbortController();
    this.session = ac;
    let stream: NodeJS.ReadableStream | null = null;
    let resync: NodeJS.Timeout | null = null;
    try {
      const openTimer = setTimeout(() => ac.abort(new Error(`event stream did not open within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
      try {
        stream = (await this.docker.getEvents({
          filters: eventFiltersParam(),
          abortSignal: ac.signal,
        } as Docker.GetEventsOptions)) as NodeJS.ReadableStream;
      } finally {
        clearTimeout(openTimer);
      }
      const s = stream;
      const decoder = new JsonLineDecoder((line, err) => this.log.warn({ line, err: err.message }, 'docker: bad event line'));
      const ended = new Promise<string>((resolve) => {
        s.on('data', (chunk: Buffer) => {
          if (ac.signal.aborted) return;
          for (const ev of decoder.push(chunk)) this.onEvent(ev);
        });
        s.on('end', () => resolve('event stream ended'));
        s.on('close', () => resolve('event stream closed'));
        s.on('error', (err: Error) => resolve(`event stream error: ${errText(err)}`));
        if (ac.signal.aborted) resolve(errText(ac.signal.reason));
        ac.signal.addEventListener('abort', () => resolve(errText(ac.signal.reason)), { once: true });
      });
      // Event continuity was lost: tombstones and half-gathered bursts no longer mean anything.
      this.dead.clear();
      this.pending.clear();
      if (this.batchTimer) clearTimeout(this.batchTimer);
      this.batchTimer = null;
      await this.enqueue(() => this.fullSync(ac, 'connect'));
      this.connected = true;
      this.lastError = null;
      onSynced();
      this.everSynced = true;
      this.settleFirst();
      if (this.resyncIntervalMs > 0) {
        resync = setInterval(() => {
          this.enqueue(() => this.fullSync(ac, 'periodic')).catch((err: unknown) => ac.abort(err));
        }, this.resyncIntervalMs);
        resync.unref();
      }
      return await ended;
    } finally {
      if (resync) clearInterval(resync);
      if (!ac.signal.aborted) ac.abort(new Error('session over'));
      if (this.session === ac) this.session = null;
      const destroyable = stream as unknown as { destroy?: () => void } | null;
      destroyable?.destroy?.();
    }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const p = this.chain.then(task);
    this.chain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  private requestSignal(ac: AbortController): AbortSignal {
    return AbortSignal.any([ac.signal, AbortSignal.timeout(this.requestTimeoutMs)]);
  }

  private onEvent(ev: unknown): void {
    const eff = eventEffect(ev);
    if (eff.kind === 'ignore') {
      this.log.debug({ action: eff.action }, 'docker event ignored');
      return;
    }
    const id = eff.containerId;
    this.log.debug({ action: eff.action, containerId: id.slice(0, 12) }, 'docker event');
    // Tombstones change on arrival, so a list already in flight cannot bring a dead one back.
    if (eff.action === 'die' || eff.action === 'destroy') this.dead.add(id);
    else if (eff.action === 'start') this.dead.delete(id);
    this.pending.delete(id);
    this.pending.add(id);
    if (this.batchTimer === null) {
      this.batchTimer = setTimeout(() => {
        this.batchTimer = null;
        // Applied by whichever session is current then; a new session clears `pending` and
        // does a full sync instead.
        const cur = this.session;
        if (!cur || cur.signal.aborted) return;
        this.enqueue(() => this.applyBatch(cur)).catch((err: unknown) => {
          if (cur.signal.aborted) return;
          this.log.warn({ err: errText(err) }, 'docker: applying events failed; reconnecting');
          cur.abort(err);
        });
      }, this.coalesceMs);
    }
  }

  /** Re-read every container a burst touched, then swap once. */
  private async applyBatch(ac: AbortController): Promise<void> {
    if (ac.signal.aborted) return;
    const ids = [...this.pending];
    this.pending.clear();
    if (ids.length === 0) return;
    const t0 = performance.now();
    const next = new Map(this.containers);
    const toInspect: string[] = [];
    for (const id of ids) {
      if (this.dead.has(id)) next.delete(id);
      else toInspect.push(id);
    }
    const results = new Map<string, ContainerInfo | null>();
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < toInspect.length) {
        const id = toInspect[i++]!;
        try {
          const json: unknown = await this.docker.getContainer(id).inspect({ abortSignal: this.requestSignal(ac) } as never);
          results.set(id, fromInspect(json) ?? null);
        } catch (err) {
          if (isNotFound(err)) results.set(id, null);
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.inspectConcurrency, toInspect.length) }, worker));
    if (ac.signal.aborted) return;
    for (const [id, info] of results) {
      // A `die` may have arrived while the inspect was in flight.
      if (info && info.running && !this.dead.has(id)) next.set(id, info);
      else next.delete(id);
    }
    this.containers = next;
    this.publish('events', performance.now() - t0);
  }

  private async fullSync(ac: AbortController, why: 'connect' | 'periodic'): Promise<void> {
    if (ac.signal.aborted) throw new Error(errText(ac.signal.reason));
    const t0 = performance.now();
    const list = (await this.docker.listContainers({ all: false, abortSignal: this.requestSignal(ac) } as never)) as unknown;
    if (!Array.isArray(list)) throw new Error('docker: container list is not an array');
    if (ac.signal.aborted) throw new Error(errText(ac.signal.reason));
    const next = new Map<string, ContainerInfo>();
    const listed = new Set<string>();
    for (const entry of list) {
      const info = fromListEntry(entry);
      if (!info) continue;
      listed.add(info.id);
      if (info.running && !this.dead.has(info.id)) next.set(info.id, info);
    }
    // Tombstones of containers the engine no longer lists have done their job.
    for (const id of this.dead) if (!listed.has(id)) this.dead.delete(id);
    this.containers = next;
    this.lastSync = new Date();
    this.publish(why === 'connect' ? 'sync' : 'resync', performance.now() - t0);
  }

  /** Build the full set from `this.containers` and swap it in if it changed. */
  private publish(trigger: 'sync' | 'resync' | 'events' | 'rescope', ms: number): void {
    const sel = selectRules(this.containers.values(), {
      scope: this.opts.scope,
      networks: this.opts.networks,
      labelOptIn: this.opts.labelOptIn,
    });
    this.logSkipped(sel.skipped);
    const prev = this.rules;
    this.admittedContainers = sel.containers;
    if (sameRules(prev, sel.rules)) {
      if (trigger !== 'events') {
        this.log.debug({ trigger, containers: sel.containers, addresses: sel.rules.length, ms: Math.round(ms) }, 'docker sync: no change');
      }
      return;
    }
    try {
      this.opts.sink.replaceGroup(this.group, sel.rules);
    } catch (err) {
      // The sink refused: keep believing the old set so that the next change retries it.
      this.log.error({ err: errText(err), trigger }, 'docker: table refused the new rule set');
      return;
    }
    this.rules = sel.rules;
    const added = addedRules(prev, sel.rules);
    const removed = removedRules(prev, sel.rules);
    const line = (r: Rule): Record<string, string> =>
      r.source.kind === 'docker'
        ? { address: r.text, container: r.source.containerName, network: r.source.network }
        : { address: r.text };
    const detail = added.length + removed.length <= 32;
    this.log.info(
      {
        trigger,
        containers: sel.containers,
        addresses: sel.rules.length,
        added: detail ? added.map(line) : added.length,
        removed: detail ? removed.map(line) : removed.length,
        ms: Math.round(ms * 10) / 10,
      },
      'docker addresses updated',
    );
  }

  private logSkipped(skipped: readonly Skipped[]): void {
    if (!this.log.isLevelEnabled('debug')) return;
    for (const s of skipped) {
      this.log.debug(
        { reason: s.reason, container: s.containerName, network: s.network || undefined, address: s.address || undefined },
        'docker address not answered',
      );
    }
  }
}
