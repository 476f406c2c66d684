/**
 * Follows a Docker engine and keeps the table's `docker` group equal to the IPv6 addresses of
 * its running containers.
 *
 * How (after yoursunny/ndpresponder's docker.go, with the gaps closed):
 * - subscribe to `/events` first, filtered on the server side (see EVENT_FILTERS), then list the
 *   running containers once (`GET /containers/json` carries labels and per-network addresses)
 *   and swap in the whole set: no window in which an event can be missed;
 * - the events that arrive together (one read of the stream, or `coalesceMs`) make a batch: the
 *   containers it touches are re-read and the rebuilt set is swapped in with one `replaceGroup`
 *   call: readers never see a half-applied change. Up to 4 batches read at the same time, so
 *   one slow answer from a busy dockerd does not hold up the containers that started after it;
 *   the swaps are made one at a time, and a read overtaken by a newer event of the same
 *   container is dropped for the newer one. Containers touched only by `start` are re-read with one filtered list
 *   for the whole burst: dockerd records a started container (state, networks, addresses) in
 *   the store the list reads before it emits `start`, and the list takes no per-container lock.
 *   Anything else (connect, disconnect, rename) is re-read with inspect, which waits for
 *   dockerd's per-container lock and so sees the finished change;
 * - `network connect` / `disconnect` of a container that is not known to run is ignored: a
 *   starting container connects its networks before it runs, and inspecting it then waits for
 *   its whole start (seconds when many start at once), holding up every event behind it; its
 *   `start` event brings the finished state;
 * - `die` removes the container at once, without asking Docker: dockerd sends `die` before it
 *   tears the network down and before its list stops showing the container, so a died
 *   container is also kept out of any list that is still in flight (a tombstone until `start`);
 * - a broken stream or an unreachable engine never touches the table: the last known set stays,
 *   a warning is logged, the watcher reconnects with capped exponential backoff and does a full
 *   resync (containers that vanished meanwhile drop out); a periodic resync is a safety net.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Rule } from '../table/rule.js';
import {
  addedRules,
  fromInspect,
  fromListEntry,
  networkKey,
  ON_LINK_DRIVERS,
  removedRules,
  sameRules,
  selectRules,
  type ContainerInfo,
  type Skipped,
  type SkipReason,
} from './addresses.js';
import { eventEffect, eventFiltersParam, JsonLineDecoder } from './events.js';
import { parseDockerUrl, readTlsMaterial, type DockerEndpoint, type DockerEnv, type FileReader } from './url.js';

/**
 * dockerode, loaded at the first watcher: it pulls in ssh2, gRPC and protobufjs (a third of a
 * second and tens of MB), which a daemon without `--docker` never needs.
 */
let dockerode: typeof Docker | undefined;
const loadDockerode = (): typeof Docker => (dockerode ??= createRequire(import.meta.url)('dockerode') as typeof Docker);

/** Where the watcher puts its rules: the TargetTable, or anything with the same method. */
export interface DockerSink {
  /** Replace every rule of `group` with `rules` in one step. */
  replaceGroup(group: string, rules: readonly Rule[]): unknown;
}

export interface DockerWatcherOptions {
  /** `unix:///path`, `/path`, `tcp://host:port`, `http://`, `https://`; default DOCKER_HOST, then unix:///var/run/docker.sock. */
  readonly url?: string;
  /** DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH...; default `process.env`. */
  readonly env?: DockerEnv;
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
  /** How long a burst of events is gathered before it is applied; default 0: the events of one read of the stream. */
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
  /** Container addresses not answered at the last sync, by reason (e.g. `on-link-driver`). */
  readonly skipped: Readonly<Partial<Record<SkipReason, number>>>;
}

function errText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { statusCode?: unknown }).statusCode === 404;
}

/**
 * dockerode constructor options for a Docker URL (see {@link parseDockerUrl}); TLS files are
 * read here. `env` defaults to `process.env` (with HOME from the OS when unset).
 * @throws Error on a URL we do not speak or a TLS file that cannot be read.
 */
export function dockerOptions(url?: string, env: DockerEnv = processEnv()): Docker.DockerOptions {
  return endpointOptions(parseDockerUrl(url, env));
}

/** The environment for {@link parseDockerUrl}: process.env, HOME filled in from the OS. */
export function processEnv(): DockerEnv {
  return { ...process.env, HOME: process.env['HOME'] || homedir() };
}

/**
 * Every field is given explicitly: docker-modem would otherwise fill gaps from DOCKER_HOST,
 * DOCKER_CERT_PATH and DOCKER_CLIENT_TIMEOUT (a client timeout would cut the event stream).
 * For tcp the host is handed over as a URL (`https://[2001:db8::1]`): docker-modem runs
 * `url.parse` on it, which takes a bare IPv6 literal's first group for a scheme and then
 * connects to localhost; as a URL, brackets and all, it comes out as the literal.
 */
export function endpointOptions(ep: DockerEndpoint, read: FileReader = readFileSync): Docker.DockerOptions {
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
  const tls = ep.tls ? readTlsMaterial(ep.tls, read) : {};
  const hostPart = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  return {
    host: `${ep.protocol}://${hostPart}`,
    port: ep.port,
    protocol: ep.protocol,
    socketPath: undefined,
    timeout: 0,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
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
  /** Pending containers touched by something other than `start`: re-read with inspect. */
  private readonly needInspect = new Set<string>();
  /**
   * Containers with an event not applied yet (pending, or its batch still reading), with the
   * number of their latest event: a batch applies a container only if no newer event came.
   */
  private readonly generation = new Map<string, number>();
  private generations = 0;
  /** Batches reading from Docker now, and how many may. */
  private reading = 0;
  private readonly maxReading = 4;
  /** What the sink holds now. */
  private rules: Rule[] = [];
  private admittedContainers = 0;
  private skippedCounts: Partial<Record<SkipReason, number>> = {};
  /** Addresses skipped as on-link at the last publish (each is logged at info once). */
  private onLinkSkipped = new Set<string>();
  /**
   * Network driver by {@link networkKey}; null for a network Docker no longer has. A network's
   * driver never changes and IDs are not reused, so an entry stays right; the map is rebuilt on
   * every full sync, and a network not in it yet is looked up before its containers count.
   */
  private drivers = new Map<string, string | null>();

  /** Every sync and event batch runs on this chain, one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private batchTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
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
    this.endpoint = parseDockerUrl(opts.url, opts.env ?? processEnv());
    this.docker = new (loadDockerode())(endpointOptions(this.endpoint));
    this.log = opts.logger.child({ module: 'docker' });
    this.group = opts.group ?? 'docker';
    this.coalesceMs = opts.coalesceMs ?? 0;
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
    this.clearBatchTimer();
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
      skipped: { ...this.skippedCounts },
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

  /**
   * A connection error as text; a TLS failure (untrusted engine certificate, name mismatch,
   * handshake refused) also says where the certificates were taken from.
   */
  private connectError(err: unknown): string {
    const text = errText(err);
    const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    const tls = this.endpoint.kind === 'tcp' ? this.endpoint.tls : undefined;
    if (!tls) return text;
    const tlsish = (typeof code === 'string' && /CERT|SIGNATURE|ERR_TLS|ERR_SSL|ISSUER/.test(code)) || /certificate|ssl|tls/i.test(text);
    if (!tlsish) return text;
    return `${text}${typeof code === 'string' && !text.includes(code) ? ` (${code})` : ''}; TLS to ${this.endpoint.url} with certificates from ${tls.certDir} (ca.pem, cert.pem, key.pem; DOCKER_CERT_PATH)`;
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
      this.lastError = this.connectError(err);
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
        reason = this.connectError(err);
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
      const openTimer = setTimeout(
        () => ac.abort(new Error(`event stream did not open within ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs,
      );
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
      this.needInspect.clear();
      this.generation.clear();
      this.clearBatchTimer();
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
    const network = eff.action === 'network connect' || eff.action === 'network disconnect';
    if (network && !this.containers.has(id) && !this.generation.has(id)) {
      this.log.debug({ action: eff.action, containerId: id.slice(0, 12) }, 'docker event ignored: container not running');
      return;
    }
    this.log.debug({ action: eff.action, containerId: id.slice(0, 12) }, 'docker event');
    // Tombstones change on arrival, so a list already in flight cannot bring a dead one back.
    if (eff.action === 'die' || eff.action === 'destroy') this.dead.add(id);
    else if (eff.action === 'start') this.dead.delete(id);
    this.generation.set(id, ++this.generations);
    this.pending.delete(id);
    this.pending.add(id);
    if (eff.action !== 'start') this.needInspect.add(id);
    this.scheduleBatch();
  }

  /** Start a batch after `coalesceMs` (0: once this turn's events are in), unless enough are reading. */
  private scheduleBatch(): void {
    if (this.batchTimer !== null || this.pending.size === 0) return;
    // A batch of removals only reads nothing: it never waits for a free reader.
    if (this.reading >= this.maxReading && [...this.pending].some((id) => !this.dead.has(id))) return;
    const go = (): void => {
      this.batchTimer = null;
      // Run by whichever session is current then; a new session clears `pending` and does a
      // full sync instead.
      const cur = this.session;
      if (!cur || cur.signal.aborted) return;
      this.runBatch(cur).catch((err: unknown) => {
        if (cur.signal.aborted) return;
        this.log.warn({ err: errText(err) }, 'docker: applying events failed; reconnecting');
        cur.abort(err);
      });
    };
    this.batchTimer = this.coalesceMs > 0 ? setTimeout(go, this.coalesceMs) : setImmediate(go);
  }

  private clearBatchTimer(): void {
    if (this.batchTimer === null) return;
    clearTimeout(this.batchTimer as NodeJS.Timeout);
    clearImmediate(this.batchTimer as NodeJS.Immediate);
    this.batchTimer = null;
  }

  /**
   * Re-read every container the pending events touched, then swap once. The reads of several
   * batches run at the same time (a read waits for dockerd, which is slowest exactly when many
   * containers start at once); the swaps go one at a time on the sync chain, and a container
   * whose read was overtaken by a newer event keeps what that event's batch brings.
   */
  private async runBatch(ac: AbortController): Promise<void> {
    const ids = [...this.pending];
    const inspectIds = new Set(this.needInspect);
    this.pending.clear();
    this.needInspect.clear();
    if (ids.length === 0) return;
    const asOf = new Map(ids.map((id) => [id, this.generation.get(id)]));
    const t0 = performance.now();
    let results: Map<string, ContainerInfo | null>;
    this.reading++;
    try {
      results = await this.readBatch(ac, ids, inspectIds);
    } finally {
      this.reading--;
      this.scheduleBatch();
    }
    await this.enqueue(async () => {
      if (ac.signal.aborted) return;
      const next = new Map(this.containers);
      for (const id of ids) {
        if (this.generation.get(id) !== asOf.get(id)) continue;
        this.generation.delete(id);
        const info = results.get(id);
        // A `die` may have arrived while the read was in flight.
        if (info && info.running && !this.dead.has(id)) next.set(id, info);
        else next.delete(id);
      }
      this.containers = next;
      this.publish('events', performance.now() - t0);
    });
  }

  /** The containers `ids` as Docker has them now (null: gone or not running); dead ones are not asked for. */
  private async readBatch(
    ac: AbortController,
    ids: readonly string[],
    inspectIds: ReadonlySet<string>,
  ): Promise<Map<string, ContainerInfo | null>> {
    const toInspect: string[] = [];
    const toList: string[] = [];
    const results = new Map<string, ContainerInfo | null>();
    for (const id of ids) {
      if (this.dead.has(id)) results.set(id, null);
      else if (inspectIds.has(id)) toInspect.push(id);
      else toList.push(id);
    }
    if (toList.length > 0) {
      // `all`: a container that died meanwhile is listed as not running rather than left out;
      // one that is not listed at all is gone. The id filter matches prefixes: keep exact ones.
      const list = (await this.docker.listContainers({
        all: true,
        filters: JSON.stringify({ id: toList }),
        abortSignal: this.requestSignal(ac),
      } as never)) as unknown;
      if (!Array.isArray(list)) throw new Error('docker: container list is not an array');
      for (const id of toList) results.set(id, null);
      for (const entry of list) {
        const info = fromListEntry(entry);
        if (info && results.has(info.id)) results.set(info.id, info);
      }
    }
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
    if (!ac.signal.aborted) {
      await this.learnDrivers(
        ac,
        [...results.values()].filter((x): x is ContainerInfo => x !== null),
      );
    }
    return results;
  }

  private async fullSync(ac: AbortController, why: 'connect' | 'periodic'): Promise<void> {
    if (ac.signal.aborted) throw new Error(errText(ac.signal.reason));
    const t0 = performance.now();
    // Networks first: a network created after this list is inspected when first met.
    const nets = (await this.docker.listNetworks({ abortSignal: this.requestSignal(ac) } as never)) as unknown;
    if (!Array.isArray(nets)) throw new Error('docker: network list is not an array');
    const drivers = new Map<string, string | null>();
    for (const n of nets) {
      const o = n as { Id?: unknown; Name?: unknown; Driver?: unknown };
      const driver = typeof o.Driver === 'string' ? o.Driver : '';
      if (typeof o.Id === 'string' && o.Id !== '') drivers.set(o.Id, driver);
      if (typeof o.Name === 'string' && o.Name !== '') drivers.set(networkKey({ network: o.Name, networkId: '' }), driver);
    }
    this.drivers = drivers;
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
    await this.learnDrivers(ac, next.values());
    if (ac.signal.aborted) throw new Error(errText(ac.signal.reason));
    this.containers = next;
    this.lastSync = new Date();
    this.publish(why === 'connect' ? 'sync' : 'resync', performance.now() - t0);
  }

  /**
   * Look up the networks of `containers` whose driver is not known yet (created after the last
   * full list). A network that is gone is remembered as null: its addresses are skipped, and
   * leave for good with the disconnect that follows.
   */
  private async learnDrivers(ac: AbortController, containers: Iterable<ContainerInfo>): Promise<void> {
    const missing = new Map<string, string>();
    for (const c of containers) {
      for (const a of c.addresses) {
        const key = networkKey(a);
        if (!this.drivers.has(key)) missing.set(key, a.networkId !== '' ? a.networkId : a.network);
      }
    }
    for (const [key, ref] of missing) {
      if (ac.signal.aborted) return;
      // A filtered list rather than network inspect: dockerode's inspect ignores abortSignal.
      // The id filter matches prefixes and the name filter substrings: keep the exact one.
      const byId = key === ref;
      const filters = JSON.stringify(byId ? { id: [ref] } : { name: [ref] });
      const nets = (await this.docker.listNetworks({ filters, abortSignal: this.requestSignal(ac) } as never)) as unknown;
      if (!Array.isArray(nets)) throw new Error('docker: network list is not an array');
      const hit = (nets as { Id?: unknown; Name?: unknown; Driver?: unknown }[]).find((n) => (byId ? n.Id === ref : n.Name === ref));
      const driver = hit === undefined ? null : typeof hit.Driver === 'string' ? hit.Driver : '';
      this.drivers.set(key, driver);
      this.log.debug({ network: ref.slice(0, 12), driver }, 'docker network driver learnt');
    }
  }

  /** Build the full set from `this.containers` and swap it in if it changed. */
  private publish(trigger: 'sync' | 'resync' | 'events' | 'rescope', ms: number): void {
    const sel = selectRules(this.containers.values(), {
      scope: this.opts.scope,
      networks: this.opts.networks,
      labelOptIn: this.opts.labelOptIn,
      networkDriver: (a) => this.drivers.get(networkKey(a)),
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
      r.source.kind === 'docker' ? { address: r.text, container: r.source.containerName, network: r.source.network } : { address: r.text };
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
    const counts: Partial<Record<SkipReason, number>> = {};
    const onLink = new Set<string>();
    for (const s of skipped) {
      counts[s.reason] = (counts[s.reason] ?? 0) + 1;
      if (s.reason !== 'on-link-driver') continue;
      const key = `${s.containerId} ${s.network} ${s.address}`;
      onLink.add(key);
      // Once per address at info: a container that answers for itself is worth knowing about.
      if (!this.onLinkSkipped.has(key)) {
        this.log.info(
          { reason: s.reason, container: s.containerName, network: s.network, address: s.address, drivers: [...ON_LINK_DRIVERS] },
          'docker address not answered: its network driver puts the container on the link itself',
        );
      }
    }
    this.skippedCounts = counts;
    this.onLinkSkipped = onLink;
    if (!this.log.isLevelEnabled('debug')) return;
    for (const s of skipped) {
      this.log.debug(
        { reason: s.reason, container: s.containerName, network: s.network || undefined, address: s.address || undefined },
        'docker address not answered',
      );
    }
  }
}
