/**
 * (c) Burst: N containers started at once on d1 (one Engine API `start` call each, all in
 * flight together, as `docker compose up` does), R rounds. Per container, how long after its
 * own start the responder answered a peer that keeps soliciting its address.
 *
 * The reference is the container's own Docker `start` event (`TimeNano`, dockerd's clock):
 * dockerd emits it once the container's network is set up and its process runs, which is the
 * earliest moment anyone can expect an answer, and it is the event the responder itself waits
 * for. The moment the API call returns is recorded as well, but in a burst it lags the event by
 * however long dockerd takes to get back to that request, which would flatter the responder.
 *
 * How the peer solicits (docker-peer.c): every address is watched from before the burst at a
 * slow period (`--burst-slow-us`, default 20 ms: 200 addresses make 10k NS/s, a few percent of
 * what the responder handles), and when the benchmark sees a
 * container's start event it switches that address to a 1 ms period. Had the responder been
 * ready before the switch, the first 1 ms NS is answered at once and the lower bound below (the
 * slow NS before it) shows how much earlier the answer could have come. The peer reports, with the first NA for the address,
 * the send times of the NS before it: the answer became possible between `prevNs` and `na`, so
 * `answered` is an upper bound and `answered - (na - prevNs)` a lower one. An address answered
 * before its start event is a wrong answer (a stopped container) and is counted as such.
 */
import type { DockerLab } from '../../src/lab/docker-lab.js';
import { IMAGE } from '../../src/lab/docker-lab.js';
import { sleep } from '../../src/lab/process.js';
import type { Peer } from './docker-peer.js';
import { pinoTime, type Responder } from './docker-responder.js';
import { macFor } from './docker-start.js';
import { canon, dockerApi, loadavg, monoNs, SLEEPER, stats, type Stats } from './docker-util.js';

export interface BurstOptions {
  containers: number;
  rounds: number;
  /** Period of the slow solicitation before a container's start event, us. */
  slowUs: number;
  /** Containers created (not started) at a time before the first round. */
  parallel: number;
}

/** A responder build under test: rounds go to the variants in turn. */
export interface BurstVariant {
  label: string;
  /** Start it and wait until it is ready. */
  start: (round: number) => Promise<Responder>;
}

export interface BurstSample {
  round: number;
  variant: string;
  name: string;
  address: string;
  /** ms relative to the container's Docker `start` event (dockerd clock, realtime). */
  answeredMs: number | null;
  /** The answer became possible after this (the NS before the answered one), ms rel. event. */
  answeredLowMs: number | null;
  /** NA receive time - send time of the NS it answered (the last one sent), ms. */
  rttMs: number | null;
  announcedMs: number | null;
  /** The API call was made / returned, ms rel. event. */
  apiCallMs: number | null;
  apiReturnMs: number | null;
  /** When the benchmark switched the peer to 1 ms for this address, ms rel. event. */
  fastWatchMs: number | null;
  /**
   * The responder's own log: the line that put the address in its table (pino time, 1 ms
   * resolution), ms rel. event, and that batch's read-and-swap time (its `ms` field).
   */
  tableMs: number | null;
  batchMs: number | null;
  /** Answered relative to the API call returning. */
  answeredAfterApiMs: number | null;
  nsSent: number | null;
  note?: string;
}

export interface BurstRound {
  round: number;
  variant: string;
  responderRssKb: number | null;
  loadavgBefore: string;
  loadavgAfter: string;
  /** First API call to the last start event / the last answer, ms. */
  spreadEventsMs: number | null;
  spreadAnsweredMs: number | null;
  apiFailures: number;
  unanswered: number;
  /** Answers seen before the container's own start event: wrong answers. */
  early: number;
}

export interface BurstSummary {
  answered: Stats;
  answeredLow: Stats;
  answeredAfterApi: Stats;
  apiReturn: Stats;
  /** The benchmark's own `docker events` saw the start event (delivery through dockerd). */
  eventSeen: Stats;
  /** NA - the NS it answered. */
  rtt: Stats;
  table: Stats;
  batch: Stats;
  announced: Stats;
  unanswered: number;
  early: number;
  mismatched: number;
}

export interface BurstResult {
  options: BurstOptions;
  createMs: number;
  rounds: BurstRound[];
  samples: BurstSample[];
  /** By variant label, in the order of the variants. */
  summary: Record<string, BurstSummary>;
}

/** Start events as they arrive: `docker events` lines are fed to {@link StartEvents.push}. */
export class StartEvents {
  private readonly hooks = new Set<(name: string, rtNs: bigint) => void>();
  readonly last = new Map<string, bigint>();
  push(name: string, rtNs: bigint): void {
    this.last.set(name, rtNs);
    for (const h of this.hooks) h(name, rtNs);
  }
  on(h: (name: string, rtNs: bigint) => void): () => void {
    this.hooks.add(h);
    return () => this.hooks.delete(h);
  }
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Containers `burst0..`, MACs 02:42:bb:00:1x:yy (clear of (a)'s), created and not started. */
async function createAll(lab: DockerLab, o: BurstOptions): Promise<{ name: string; addr: string }[]> {
  const d1 = lab.host('d1');
  const base = d1.cidr.split('/')[0]!;
  const out = Array.from({ length: o.containers }, (_, i) => ({ name: `burst${i}`, ...macFor(0x1000 + i, base) }));
  await pool(out, o.parallel, async (c) => {
    const r = await dockerApi(d1.sock, 'POST', `/v1.41/containers/create?name=${c.name}`, {
      Image: IMAGE,
      Cmd: SLEEPER,
      MacAddress: c.mac,
    });
    if (r.status !== 201) throw new Error(`create ${c.name}: ${r.status} ${JSON.stringify(r.json)}`);
  });
  return out.map(({ name, addr }) => ({ name, addr }));
}

/** The running burst containers' global IPv6 addresses by name, one list call. */
async function listAddresses(lab: DockerLab): Promise<Map<string, string>> {
  const r = await dockerApi(lab.host('d1').sock, 'GET', `/v1.41/containers/json?filters=${encodeURIComponent('{"name":["^/burst"]}')}`);
  const out = new Map<string, string>();
  if (!Array.isArray(r.json)) return out;
  for (const c of r.json as { Names?: string[]; NetworkSettings?: { Networks?: Record<string, { GlobalIPv6Address?: string }> } }[]) {
    const name = c.Names?.[0]?.replace(/^\//, '');
    const a = Object.values(c.NetworkSettings?.Networks ?? {})[0]?.GlobalIPv6Address;
    if (name && a) out.set(name, canon(a));
  }
  return out;
}

export async function burstLatency(
  lab: DockerLab,
  peer: Peer,
  events: StartEvents,
  o: BurstOptions,
  variants: readonly BurstVariant[],
): Promise<BurstResult> {
  const sock = lab.host('d1').sock;
  const t0 = Date.now();
  const cs = await createAll(lab, o);
  const createMs = Date.now() - t0;
  console.log(`  created ${cs.length} containers in ${(createMs / 1000).toFixed(1)} s (${o.parallel} at a time)`);
  const samples: BurstSample[] = [];
  const rounds: BurstRound[] = [];
  const mismatched = new Map<string, number>();
  // Starting 200 containers at once took over a minute on a loaded 2-core machine.
  const watchMs = 300_000;
  for (let round = 1; round <= o.rounds; round++) {
    const variant = variants[(round - 1) % variants.length]!;
    const resp = await variant.start(round);
    await sleep(500);
    const loadavgBefore = loadavg();
    const offset = await peer.clockOffset();
    const rt = (mono: bigint): bigint => mono + offset;
    const byName = new Map(cs.map((c) => [c.name, c]));
    const eventRt = new Map<string, bigint>();
    const fastRt = new Map<string, bigint>();
    const answeredLine = new Map<string, string>();
    const answeredAt = new Map<string, bigint>();
    const apiCall = new Map<string, bigint>();
    const apiRet = new Map<string, bigint>();
    let apiFailures = 0;
    // Slow solicitation of every address, from before the burst.
    const verdicts = cs.map((c) =>
      peer.expect(new RegExp(`^(answered|timeout) ${c.addr} `), watchMs + 5000).then((l) => {
        if (l !== undefined) {
          answeredLine.set(c.name, l);
          answeredAt.set(c.name, rt(monoNs()));
        }
      }),
    );
    const acks = cs.map((c) => peer.expect(new RegExp(`^watching ${c.addr}$`), 5000));
    for (const c of cs) peer.send(`watch ${c.addr} ${watchMs} ${o.slowUs}`);
    if ((await Promise.all(acks)).some((a) => a === undefined)) throw new Error('docker-peer did not take every watch');
    const off = events.on((name, ns) => {
      const c = byName.get(name);
      if (!c || eventRt.has(name) || !apiCall.has(name)) return;
      eventRt.set(name, ns);
      peer.send(`watch ${c.addr} ${watchMs} 1000`);
      fastRt.set(name, rt(monoNs()));
    });
    // Let the slow watch run one period (an answer now would be a stale address), then fire.
    await sleep(Math.max(50, (2 * o.slowUs) / 1000));
    const fireRt = rt(monoNs());
    await Promise.all(
      cs.map(async (c) => {
        apiCall.set(c.name, rt(monoNs()));
        try {
          const r = await dockerApi(sock, 'POST', `/v1.41/containers/${c.name}/start`, undefined, watchMs);
          if (r.status !== 204) throw new Error(`${r.status} ${JSON.stringify(r.json)}`);
          apiRet.set(c.name, rt(monoNs()));
        } catch (e) {
          apiFailures++;
          console.log(`  ! start ${c.name}: ${(e as Error).message}`);
        }
      }),
    );
    // Every answer (or the peer's timeout), bounded by the watch.
    await Promise.all(verdicts);
    off();
    // The first unsolicited NAs follow the 1 s probe.
    await sleep(1500);
    const actual = await listAddresses(lab);
    let early = 0;
    let unanswered = 0;
    let lastEvent: bigint | null = null;
    let lastAnswer: bigint | null = null;
    for (const c of cs) {
      const ev = eventRt.get(c.name);
      const rel = (x: bigint | null | undefined): number | null =>
        x === undefined || x === null || ev === undefined ? null : Math.round(Number(x - ev) / 1e3) / 1e3;
      const line = answeredLine.get(c.name);
      let na: bigint | null = null;
      let prev: bigint | null = null;
      let last: bigint | null = null;
      let nsSent: number | null = null;
      let note: string | undefined;
      if (line?.startsWith('answered ')) {
        const f = line.split(' ');
        na = BigInt(f[4]!);
        last = BigInt(f[3]!);
        prev = f[6] !== undefined && f[6] !== '0' ? BigInt(f[6]) : null;
        nsSent = Number(f[5]);
      } else {
        unanswered++;
        note = line === undefined ? 'peer gave no verdict' : `not answered within ${watchMs} ms`;
      }
      if (ev === undefined) note = (note ? note + '; ' : '') + 'no start event seen';
      if (na !== null && ev !== undefined && na < ev) {
        early++;
        note = (note ? note + '; ' : '') + 'answered before its start event';
      }
      if (actual.get(c.name) !== canon(c.addr)) {
        mismatched.set(variant.label, (mismatched.get(variant.label) ?? 0) + 1);
        note = (note ? note + '; ' : '') + `predicted ${c.addr} but docker says ${actual.get(c.name) ?? 'none'}`;
      }
      if (ev !== undefined && (lastEvent === null || ev > lastEvent)) lastEvent = ev;
      if (na !== null && (lastAnswer === null || na > lastAnswer)) lastAnswer = na;
      const una = peer.firstUnsolicited(c.addr, fireRt);
      const added = resp.addedLine(c.addr);
      const tableAt = added ? pinoTime(added.rec) : undefined;
      const batchMs = added && typeof added.rec['ms'] === 'number' ? added.rec['ms'] : null;
      const ret = apiRet.get(c.name);
      samples.push({
        round,
        variant: variant.label,
        name: c.name,
        address: c.addr,
        answeredMs: rel(na),
        answeredLowMs: rel(prev),
        rttMs: na === null || last === null ? null : Math.round(Number(na - last) / 1e3) / 1e3,
        announcedMs: rel(una?.rtNs),
        apiCallMs: rel(apiCall.get(c.name)),
        apiReturnMs: rel(ret),
        fastWatchMs: rel(fastRt.get(c.name)),
        tableMs: tableAt === undefined || ev === undefined ? null : Math.round((tableAt - Number(ev) / 1e6) * 1000) / 1000,
        batchMs,
        answeredAfterApiMs: na === null || ret === undefined ? null : Math.round(Number(na - ret) / 1e3) / 1e3,
        nsSent,
        ...(note ? { note } : {}),
      });
    }
    const spread = (x: bigint | null): number | null => (x === null ? null : Math.round(Number(x - fireRt) / 1e5) / 10);
    const rss = resp.rss();
    if (resp.exited)
      throw new Error(`the responder exited during burst round ${round} (code ${resp.exited.code}, signal ${resp.exited.signal})`);
    const r: BurstRound = {
      round,
      variant: variant.label,
      responderRssKb: rss?.rssKb ?? null,
      loadavgBefore,
      loadavgAfter: loadavg(),
      spreadEventsMs: spread(lastEvent),
      spreadAnsweredMs: spread(lastAnswer),
      apiFailures,
      unanswered,
      early,
    };
    rounds.push(r);
    const st = stats(samples.filter((s) => s.round === round).map((s) => s.answeredMs));
    console.log(
      `  round ${round} (${variant.label}): last start event ${r.spreadEventsMs} ms after the first call, last answer ${r.spreadAnsweredMs} ms; answered after own start event: median ${st.median} p90 ${st.p90} p99 ${st.p99} max ${st.max} ms (n=${st.n}); unanswered ${unanswered}, early ${early}, API failures ${apiFailures}; load ${r.loadavgBefore} -> ${r.loadavgAfter}`,
    );
    // Stop them all (the sleeper exits on TERM) and let the responder see every `die`.
    await pool(cs, 32, async (c) => {
      await dockerApi(sock, 'POST', `/v1.41/containers/${c.name}/stop?t=5`, undefined, watchMs);
    });
    await sleep(1000);
    await resp.stop();
  }
  const summary: Record<string, BurstSummary> = {};
  for (const v of variants) {
    const mine = samples.filter((s) => s.variant === v.label);
    const rs = rounds.filter((r) => r.variant === v.label);
    if (rs.length === 0) continue;
    const all = (f: (s: BurstSample) => number | null): Stats => stats(mine.map(f));
    summary[v.label] = {
      answered: all((s) => s.answeredMs),
      answeredLow: all((s) => s.answeredLowMs),
      answeredAfterApi: all((s) => s.answeredAfterApiMs),
      apiReturn: all((s) => s.apiReturnMs),
      eventSeen: all((s) => s.fastWatchMs),
      rtt: all((s) => s.rttMs),
      table: all((s) => s.tableMs),
      batch: all((s) => s.batchMs),
      announced: all((s) => s.announcedMs),
      unanswered: rs.reduce((a, r) => a + r.unanswered, 0),
      early: rs.reduce((a, r) => a + r.early, 0),
      mismatched: mismatched.get(v.label) ?? 0,
    };
  }
  return { options: o, createMs, rounds, samples, summary };
}
