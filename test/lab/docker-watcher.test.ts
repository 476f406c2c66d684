/**
 * DockerWatcher against a real dockerd 20.10 in a network namespace (scripts/docker-lab.sh,
 * one Docker host). Needs root, dockerd, nsenter and busybox-static.
 */
import { pino, type Logger } from 'pino';
import t from 'tap';
import Docker from 'dockerode';
import { JsonLineDecoder } from '../../src/docker/events.js';
import { DockerWatcher, dockerOptions, type DockerSink } from '../../src/docker/watcher.js';
import type { Rule } from '../../src/table/rule.js';
import { DockerLab, IMAGE } from '../../src/lab/docker-lab.js';
import { runOk } from '../../src/lab/process.js';

// A container that exits at once on SIGTERM (sleep as PID 1 would ignore it for 10 s).
const STOPPABLE = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const V6NET = 'v6net';
// Not 2003:ab11:0:0:a000::/68: that lies inside the default bridge's 8000::/66.
const V6NET_SUBNET = '2003:ab11:0:0:4000::/68';
const LAB_PREFIX = [0x20, 0x03, 0xab, 0x11, 0, 0, 0, 0];
const inLabPrefix = (a: Uint8Array): string | undefined => (LAB_PREFIX.every((b, i) => a[i] === b) ? undefined : 'out-of-scope');

interface Call {
  readonly at: number;
  readonly group: string;
  readonly rules: readonly Rule[];
}

/** Records every swap with the time it happened. */
class RecordingSink implements DockerSink {
  readonly calls: Call[] = [];
  current: readonly Rule[] = [];
  private waiters: (() => void)[] = [];

  replaceGroup(group: string, rules: readonly Rule[]): void {
    this.calls.push({ at: performance.now(), group, rules });
    this.current = rules;
    for (const w of this.waiters.splice(0)) w();
  }

  addresses(): string[] {
    return this.current.map((r) => r.text.replace(/\/128$/, '')).sort();
  }

  has(addr: string): boolean {
    return this.current.some((r) => r.text === `${addr}/128`);
  }

  rule(addr: string): Rule | undefined {
    return this.current.find((r) => r.text === `${addr}/128`);
  }

  /** Wait (at most `ms`) until `pred` holds; the time of the swap that made it true, or now. */
  async waitFor(pred: () => boolean, ms: number): Promise<number | null> {
    const deadline = performance.now() + ms;
    while (!pred()) {
      const left = deadline - performance.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.calls.at(-1)?.at ?? performance.now();
  }

  /** Time of the first swap at or after `since` whose rules satisfy `pred`. */
  firstSwap(since: number, pred: (rules: readonly Rule[]) => boolean): number | null {
    return this.calls.find((c) => c.at >= since && pred(c.rules))?.at ?? null;
  }
}

interface LogRecord {
  level: number;
  msg: string;
  reason?: string;
  [k: string]: unknown;
}

function captureLogger(): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(s: string): void {
        for (const line of s.split('\n')) if (line.trim() !== '') records.push(JSON.parse(line) as LogRecord);
      },
    },
  );
  return { logger, records };
}

async function until(pred: () => boolean | Promise<boolean>, ms: number, stepMs = 20): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;

const lab = await DockerLab.up({ hosts: 1 });
t.teardown(() => lab.down());
t.comment(`lab ${lab.id} up in ${Math.round(lab.upMs)} ms`);

const dk = (args: string[]): Promise<string> => lab.dockerOk('d1', args);
const addrsOf = async (name: string): Promise<string[]> => lab.containerAddresses('d1', name);

// Containers that exist before the watcher starts.
await dk(['network', 'create', '--ipv6', '--subnet', V6NET_SUBNET, V6NET]);
await dk(['run', '-d', '--name', 'keep', '--restart', 'always', IMAGE, ...STOPPABLE]);
await dk(['run', '-d', '--name', 'plain', IMAGE, ...STOPPABLE]);
await dk(['run', '-d', '--name', 'optout', '--label', 'ndp-responder.enable=false', IMAGE, ...STOPPABLE]);
await dk(['run', '-d', '--name', 'optin', '--label', 'ndp-responder.enable=true', '--network', V6NET, IMAGE, ...STOPPABLE]);

const sink = new RecordingSink();
const { logger, records } = captureLogger();
// Backoff cap 1 s (default 5 s) keeps the restart tests short; the cap itself is not what they test.
const w = new DockerWatcher({ url: lab.host('d1').url, sink, logger, scope: inLabPrefix, backoffMaxMs: 1000 });
t.teardown(() => w.stop());

t.test('initial sync: every running container, in one swap', async (t) => {
  const expected = [
    ...(await addrsOf('web1')),
    ...(await addrsOf('keep')),
    ...(await addrsOf('plain')),
    ...(await addrsOf('optin')),
  ].sort();
  t.equal(expected.length, 4, 'four containers with one address each');
  const optout = await addrsOf('optout');
  const t0 = performance.now();
  await w.start();
  t.comment(`start() resolved in ${r1(performance.now() - t0)} ms`);
  t.equal(sink.calls.length, 1, 'one replaceGroup with the full set');
  t.equal(sink.calls[0]?.group, 'docker');
  t.same(sink.addresses(), expected);
  t.notOk(sink.has(optout[0]!), 'opted-out container not answered');
  const optinRule = sink.rule((await addrsOf('optin'))[0]!);
  t.same(optinRule?.source, { kind: 'docker', containerId: await lab.containerId('d1', 'optin'), containerName: 'optin', network: V6NET });
  const st = w.status();
  t.equal(st.connected, true);
  t.ok(st.lastSync instanceof Date);
  t.equal(st.containers, 4);
  t.equal(st.addresses, 4);
  t.equal(st.reconnects, 0);
});

/** Engine-side time (ms since the epoch) of container events, from a second event stream. */
async function eventClock(url: string): Promise<{ times: Map<string, number>; close: () => void }> {
  const times = new Map<string, number>();
  const ac = new AbortController();
  const stream = (await new Docker(dockerOptions(url)).getEvents({
    filters: JSON.stringify({ type: ['container'], event: ['start', 'die'] }),
    abortSignal: ac.signal,
  } as Docker.GetEventsOptions)) as NodeJS.ReadableStream;
  const dec = new JsonLineDecoder();
  stream.on('data', (b: Buffer) => {
    for (const e of dec.push(b) as { Action: string; Actor: { ID: string }; timeNano: number }[]) {
      times.set(`${e.Action} ${e.Actor.ID}`, e.timeNano / 1e6);
    }
  });
  stream.on('error', () => {});
  return { times, close: () => ac.abort() };
}

t.test('docker run: address in the table by the time docker run returns; stop/kill: gone at once', async (t) => {
  const clock = await eventClock(lab.host('d1').url);
  t.teardown(clock.close);
  const wall = (at: number): number => performance.timeOrigin + at;
  const fromStartEvent: number[] = [];
  const fromDieEvent: number[] = [];
  const appear: number[] = [];
  const appearFromStart: number[] = [];
  const gone: number[] = [];
  const N = 5;
  for (let i = 0; i < N; i++) {
    const name = `lat${i}`;
    const tStart = performance.now();
    const id = await dk(['run', '-d', '--name', name, IMAGE, ...STOPPABLE]);
    const tRet = performance.now();
    const [addr] = await addrsOf(name);
    t.ok(addr, `${name} has an address`);
    const seen = await sink.waitFor(() => sink.has(addr!), 2000);
    t.not(seen, null, `${name}: address ${addr} appeared`);
    const at = sink.firstSwap(tStart, (rules) => rules.some((r) => r.text === `${addr}/128`));
    t.not(at, null);
    appear.push(at! - tRet);
    appearFromStart.push(at! - tStart);
    t.ok(at! - tRet < 1000, `${name}: ${r1(at! - tRet)} ms after docker run returned (< 1 s)`);
    const tEvent = clock.times.get(`start ${id}`);
    t.ok(tEvent, 'start event seen by the reference stream');
    if (tEvent !== undefined) fromStartEvent.push(wall(at!) - tEvent);
    const rule = sink.rule(addr!);
    t.same(rule?.source, { kind: 'docker', containerId: id, containerName: name, network: 'bridge' });

    // Alternate a clean stop and a kill: both must take the address out at once.
    const how = i % 2 === 0 ? ['stop', '-t', '5', name] : ['kill', name];
    const tStop = performance.now();
    await dk(how);
    const tStopRet = performance.now();
    const removed = await sink.waitFor(() => !sink.has(addr!), 2000);
    t.not(removed, null, `${name}: removed after ${how[0]}`);
    const rat = sink.firstSwap(tStop, (rules) => !rules.some((r) => r.text === `${addr}/128`));
    gone.push(rat! - tStopRet);
    const tDie = clock.times.get(`die ${id}`);
    t.ok(tDie, 'die event seen by the reference stream');
    if (tDie !== undefined) fromDieEvent.push(wall(rat!) - tDie);
    t.ok(rat! - tStopRet < 1000, `${name}: removed ${r1(rat! - tStopRet)} ms after docker ${how[0]} returned`);
    await dk(['rm', name]);
  }
  t.comment(
    `run -> in table: median ${r1(median(appear))} ms after 'docker run' returned (all: ${appear.map(r1).join(', ')}); ` +
      `median ${r1(median(appearFromStart))} ms after it was started`,
  );
  t.comment(`stop/kill -> out of table: median ${r1(median(gone))} ms after the command returned (all: ${gone.map(r1).join(', ')})`);
  t.comment(
    `engine event -> table swap: start ${r1(median(fromStartEvent))} ms median (all: ${fromStartEvent.map(r1).join(', ')}); ` +
      `die ${r1(median(fromDieEvent))} ms median (all: ${fromDieEvent.map(r1).join(', ')})`,
  );
  t.ok(median(fromStartEvent) < 100, 'start event to table: well under 100 ms');
  t.ok(median(fromDieEvent) < 100, 'die event to table: well under 100 ms');
  t.ok(median(appear) < 1000);
  // The start event precedes docker run's own exit, so the table is normally ahead of the CLI.
  t.ok(median(appear) < 250, `median ${r1(median(appear))} ms: the event path, not a poll`);
});

t.test('network connect / disconnect on a user-defined IPv6 network', async (t) => {
  const [bridgeAddr] = await addrsOf('plain');
  const fixed = '2003:ab11::4000:0:0:77';
  await dk(['network', 'connect', '--ip6', fixed, V6NET, 'plain']);
  t.not(await sink.waitFor(() => sink.has(fixed), 2000), null, 'fixed --ip6 address appears');
  const src = sink.rule(fixed)?.source;
  t.equal(src?.kind === 'docker' ? src.network : undefined, V6NET, 'credited to v6net');
  t.ok(sink.has(bridgeAddr!), 'bridge address still there');
  await dk(['network', 'disconnect', V6NET, 'plain']);
  t.not(await sink.waitFor(() => !sink.has(fixed), 2000), null, 'gone after disconnect');
  t.ok(sink.has(bridgeAddr!), 'bridge address still there');

  await dk(['network', 'connect', V6NET, 'plain']);
  const dynamic = (await addrsOf('plain')).find((a) => a !== bridgeAddr);
  t.ok(dynamic, 'an address on v6net');
  t.not(await sink.waitFor(() => sink.has(dynamic!), 2000), null, `dynamic ${dynamic} appears`);
  await dk(['network', 'disconnect', V6NET, 'plain']);
  t.not(await sink.waitFor(() => !sink.has(dynamic!), 2000), null, 'and goes');
});

t.test('a burst of starts: every container followed, networks connected before the start included', async (t) => {
  const names = Array.from({ length: 12 }, (_, i) => `burst${i}`);
  const ids = new Map<string, string>();
  for (const n of names) ids.set(n, await dk(['create', '--name', n, IMAGE, ...STOPPABLE]));
  // Connected while not running: the watcher ignores the event, and the start brings it in.
  await dk(['network', 'connect', V6NET, 'burst0']);
  const since = records.length;
  await Promise.all(names.map((n) => dk(['start', n])));
  const want = new Set<string>();
  for (const n of names) for (const a of await addrsOf(n)) want.add(a);
  t.equal(want.size, names.length + 1, 'one address each, two for burst0 (bridge and v6net)');
  const all = await sink.waitFor(() => [...want].every((a) => sink.has(a)), 20_000);
  t.not(all, null, 'every address of every container in the table');
  for (const n of names) {
    const s = (await addrsOf(n)).map((a) => sink.rule(a)?.source);
    t.ok(
      s.every((x) => x?.kind === 'docker' && x.containerName === n && x.containerId === ids.get(n)),
      `${n}: rules credited to it`,
    );
  }
  const ignored = records
    .slice(since)
    .filter((r) => r.msg === 'docker event ignored: container not running' && r['action'] === 'network connect');
  t.ok(ignored.length >= 1, `network connect events of not yet running containers ignored (${ignored.length})`);
  await Promise.all(names.map((n) => dk(['stop', '-t', '5', n])));
  t.not(await sink.waitFor(() => [...want].every((a) => !sink.has(a)), 10_000), null, 'all gone after stop');
  await dk(['rm', ...names]);
});

t.test('rename changes the name in the rules', async (t) => {
  const [addr] = await addrsOf('plain');
  await dk(['rename', 'plain', 'plain2']);
  const ok = await sink.waitFor(() => {
    const s = sink.rule(addr!)?.source;
    return s?.kind === 'docker' && s.containerName === 'plain2';
  }, 2000);
  t.not(ok, null);
});

t.test('opt-out label on a new container; opt-in mode; network filter', async (t) => {
  await dk(['run', '-d', '--name', 'nope', '--label', 'ndp-responder.enable=false', IMAGE, ...STOPPABLE]);
  await dk(['run', '-d', '--name', 'marker', IMAGE, ...STOPPABLE]);
  const [nope] = await addrsOf('nope');
  const [marker] = await addrsOf('marker');
  // Events are applied in order: once the later container is in, the earlier one was judged.
  t.not(await sink.waitFor(() => sink.has(marker!), 2000), null, 'marker appears');
  t.notOk(sink.has(nope!), 'opted-out container never appears');
  t.ok(
    records.some((r) => r.msg === 'docker address not answered' && r.reason === 'label' && r['container'] === 'nope'),
    'the skip is logged with reason=label',
  );

  const optInSink = new RecordingSink();
  const wIn = new DockerWatcher({ url: lab.host('d1').url, sink: optInSink, logger: captureLogger().logger, labelOptIn: true });
  await wIn.start();
  t.same(optInSink.addresses(), await addrsOf('optin'), 'opt-in mode: only the container labelled true');
  await wIn.stop();

  const netSink = new RecordingSink();
  const wNet = new DockerWatcher({ url: lab.host('d1').url, sink: netSink, logger: captureLogger().logger, networks: [V6NET] });
  await wNet.start();
  await dk(['network', 'connect', V6NET, 'marker']);
  const markerV6 = (await addrsOf('marker')).find((a) => a !== marker);
  t.not(await netSink.waitFor(() => netSink.has(markerV6!), 2000), null, 'network filter follows connects');
  t.same(netSink.addresses(), [...(await addrsOf('optin')), markerV6!].sort(), 'only v6net addresses');
  await wNet.stop();

  const onceSink = new RecordingSink();
  const wOnce = new DockerWatcher({ url: lab.host('d1').url, sink: onceSink, logger: captureLogger().logger, once: true });
  await wOnce.start();
  t.same(onceSink.addresses(), sink.addresses(), 'once: same set as the live watcher');
  t.equal(onceSink.calls.length, 1);
  t.ok(wOnce.status().lastSync instanceof Date);
  await wOnce.stop();

  const outSink = new RecordingSink();
  const wOut = new DockerWatcher({ url: lab.host('d1').url, sink: outSink, logger: captureLogger().logger, scope: () => 'out-of-scope' });
  await wOut.start();
  t.same(outSink.calls, [], 'scope admits nothing: nothing swapped in');
  t.equal(wOut.status().connected, true);
  await wOut.stop();

  await dk(['rm', '-f', 'nope', 'marker']);
  t.not(await sink.waitFor(() => !sink.has(marker!), 2000), null);
});

t.test('macvlan network: its containers answer for themselves and are skipped; bridge ones are not', async (t) => {
  const ns = lab.host('d1').ns;
  // The macvlan parent: one end of a veth pair inside the engine's namespace; the other end is
  // where a neighbour on that link would sit. Made after the watcher started, so the watcher
  // meets the network through an event, not in its first network list.
  await runOk('ip', ['-n', ns, 'link', 'add', 'mvp0', 'type', 'veth', 'peer', 'name', 'mvp1']);
  t.teardown(() => runOk('ip', ['-n', ns, 'link', 'del', 'mvp0']).catch(() => undefined));
  await runOk('ip', ['-n', ns, 'link', 'set', 'mvp0', 'up']);
  await runOk('ip', ['-n', ns, 'link', 'set', 'mvp1', 'up']);
  await dk(['network', 'create', '-d', 'macvlan', '--ipv6', '--subnet', '2003:ab11:0:0:2000::/68', '-o', 'parent=mvp0', 'mvnet']);
  await dk(['run', '-d', '--name', 'mv1', '--network', 'mvnet', IMAGE, ...STOPPABLE]);
  await dk(['run', '-d', '--name', 'br1', IMAGE, ...STOPPABLE]);
  const [mvAddr] = await addrsOf('mv1');
  const [brAddr] = await addrsOf('br1');
  t.ok(mvAddr?.startsWith('2003:ab11::2'), `mv1 has a macvlan address in the lab prefix: ${mvAddr}`);
  // Events are applied in order: once br1 (started after mv1) is in, mv1 was judged.
  t.not(await sink.waitFor(() => sink.has(brAddr!), 2000), null, `bridge container br1 ${brAddr} answered`);
  t.notOk(sink.has(mvAddr!), `macvlan container mv1 ${mvAddr} not answered`);
  t.ok(
    records.some((r) => r.level === 30 && r.reason === 'on-link-driver' && r['container'] === 'mv1' && r['address'] === mvAddr),
    'the skip is logged at info with reason=on-link-driver',
  );
  t.equal(w.status().skipped['on-link-driver'], 1, 'counted in the status');

  // A bridge container connected to the macvlan network: its bridge address stays, the other does not.
  await dk(['network', 'connect', 'mvnet', 'br1']);
  const brMv = (await addrsOf('br1')).find((a) => a !== brAddr);
  t.ok(brMv, `br1 got a macvlan address too: ${brMv}`);
  await dk(['run', '-d', '--name', 'br2', IMAGE, ...STOPPABLE]);
  const [br2Addr] = await addrsOf('br2');
  t.not(await sink.waitFor(() => sink.has(br2Addr!), 2000), null, 'marker br2 answered');
  t.notOk(sink.has(brMv!), 'br1 on mvnet: not answered');
  t.ok(sink.has(brAddr!), 'br1 on the bridge: still answered');
  t.equal(w.status().skipped['on-link-driver'], 2);

  // A fresh sync (the network list path) agrees.
  const onceSink = new RecordingSink();
  const wOnce = new DockerWatcher({
    url: lab.host('d1').url,
    sink: onceSink,
    logger: captureLogger().logger,
    scope: inLabPrefix,
    once: true,
  });
  await wOnce.start();
  t.same(onceSink.addresses(), sink.addresses(), 'full sync: same set as the live watcher');
  t.notOk(onceSink.has(mvAddr!) || onceSink.has(brMv!), 'no macvlan address');
  await wOnce.stop();

  // The premise: the container itself answers an NS for its address on the parent's link.
  let answered = false;
  for (let i = 0; i < 5 && !answered; i++) {
    const r = await lab.exec('d1', ['ndisc6', '-1', '-r', '1', '-w', '1000', mvAddr!, 'mvp1'], { timeoutMs: 5000 });
    answered = r.code === 0 && /Target link-layer address/i.test(r.stdout);
    if (!answered) await new Promise((res) => setTimeout(res, 300));
  }
  t.ok(answered, `mv1 answers the NS for ${mvAddr} on the macvlan link by itself`);

  await dk(['rm', '-f', 'mv1', 'br1', 'br2']);
  await dk(['network', 'rm', 'mvnet']);
  t.not(await sink.waitFor(() => !sink.has(brAddr!) && !sink.has(br2Addr!), 2000), null, 'bridge containers gone');
  t.equal(w.status().skipped['on-link-driver'], undefined, 'nothing skipped for the driver any more');
});

t.test('dockerd stopped cleanly, then started: last table kept meanwhile, then resync', async (t) => {
  const [keepBefore] = await addrsOf('keep');
  const [plainAddr] = await addrsOf('plain2');
  const web1 = await addrsOf('web1');
  t.ok(sink.has(keepBefore!) && sink.has(plainAddr!) && sink.has(web1[0]!));
  const warnsBefore = records.filter((r) => r.level === 40).length;
  let t0 = performance.now();
  await lab.stopDockerd('d1', 'term');
  t.comment(`dockerd TERM stop: ${Math.round(performance.now() - t0)} ms`);
  t.ok(await until(() => !w.status().connected, 5000), 'status.connected false');
  // A clean shutdown stops the containers first: their die events take them out live.
  t.not(
    await sink.waitFor(() => !sink.has(plainAddr!) && !sink.has(keepBefore!), 2000),
    null,
    'containers stopped by the shutdown are gone',
  );
  const callsDown = sink.calls.length;
  const tableDown = sink.addresses();
  t.ok(records.slice(0).filter((r) => r.level === 40).length > warnsBefore, 'warned');
  t.ok(records.some((r) => r.level === 40 && r.reason === 'docker-unavailable'));
  await new Promise((r) => setTimeout(r, 500));
  t.equal(sink.calls.length, callsDown, 'no swap while Docker is away');

  t0 = performance.now();
  await lab.startDockerd('d1');
  const tUp = performance.now();
  t.ok(await until(() => w.status().connected, 15_000), 'reconnected');
  t.comment(`dockerd start: ${Math.round(tUp - t0)} ms; watcher resynced ${Math.round(performance.now() - tUp)} ms after it answered`);
  t.equal(w.status().reconnects, 1);
  const [keepAfter] = await addrsOf('keep');
  t.ok(keepAfter, 'keep (--restart always) is running again');
  t.not(await sink.waitFor(() => sink.has(keepAfter!), 5000), null, 'keep is back in the table');
  t.same(sink.addresses(), await addrsOf('keep'), 'only the restarted container');
  t.notOk(sink.has(plainAddr!), 'plain2 (no restart policy) stays out');
  t.equal(await dk(['inspect', '-f', '{{.State.Running}}', 'web1']), 'false', 'web1 (no restart policy) stays down');
  t.comment(`table while down: ${tableDown.length} addresses`);
});

t.test('dockerd crash (SIGKILL, containers die with it): table kept, resync drops the dead', async (t) => {
  await dk(['start', 'plain2', 'optin']);
  const [plainAddr] = await addrsOf('plain2');
  const [optinAddr] = await addrsOf('optin');
  t.not(await sink.waitFor(() => sink.has(plainAddr!) && sink.has(optinAddr!), 2000), null, 'plain2 and optin started again and are in');
  const before = sink.addresses();
  const callsBefore = sink.calls.length;
  const reconnectsBefore = w.status().reconnects;

  const tKill = performance.now();
  let noticed = 0;
  const watch = until(() => !w.status().connected, 10_000, 1).then((ok) => {
    noticed = performance.now() - tKill;
    return ok;
  });
  await lab.stopDockerd('d1', 'kill');
  const killMs = performance.now() - tKill;
  t.ok(await watch, 'status.connected false');
  t.comment(`crash noticed ${Math.round(noticed)} ms after the kill began (the kill script took ${Math.round(killMs)} ms)`);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(sink.calls.length, callsBefore, 'no swap after the crash');
  t.same(sink.addresses(), before, 'last known table kept');
  t.ok(w.status().lastError, `lastError: ${w.status().lastError}`);

  // A watcher started while Docker is down: start() must not wait for Docker.
  const lateSink = new RecordingSink();
  const late = captureLogger();
  const wLate = new DockerWatcher({ url: lab.host('d1').url, sink: lateSink, logger: late.logger, backoffMaxMs: 500 });
  const t0 = performance.now();
  await wLate.start();
  const startMs = performance.now() - t0;
  t.ok(startMs < 2000, `start() resolved in ${r1(startMs)} ms with Docker down`);
  t.equal(wLate.status().connected, false);
  t.equal(wLate.status().lastSync, null);
  t.same(lateSink.calls, []);
  t.ok(
    late.records.some((r) => r.level === 40 && r.reason === 'docker-unavailable'),
    'warned',
  );

  const t1 = performance.now();
  await lab.startDockerd('d1');
  const tUp = performance.now();
  t.ok(await until(() => w.status().connected && wLate.status().connected, 15_000), 'both reconnect');
  t.comment(
    `dockerd start after crash: ${Math.round(tUp - t1)} ms; both watchers resynced ${Math.round(performance.now() - tUp)} ms after it answered`,
  );
  t.equal(w.status().reconnects, reconnectsBefore + 1);
  t.ok(
    await until(async () => (await dk(['inspect', '-f', '{{.State.Running}}', 'keep'])) === 'true', 10_000),
    'keep restarted by dockerd',
  );
  const expected = await addrsOf('keep');
  t.equal(expected.length, 1);
  // No restart policy: they died in the crash and are not back.
  t.equal(await dk(['inspect', '-f', '{{.State.Running}}', 'optin']), 'false');
  t.equal(await dk(['inspect', '-f', '{{.State.Running}}', 'plain2']), 'false');
  t.not(
    await sink.waitFor(() => sink.addresses().join() === expected.join(), 5000),
    null,
    `table is exactly keep's address: ${sink.addresses().join()}`,
  );
  t.not(await lateSink.waitFor(() => lateSink.addresses().join() === expected.join(), 5000), null, 'the late watcher agrees');
  t.notOk(sink.has(plainAddr!), 'dead container dropped on resync');
  t.notOk(sink.has(optinAddr!), 'dead container dropped on resync');
  await wLate.stop();
});

t.test('stop() is prompt and final', async (t) => {
  const t0 = performance.now();
  await w.stop();
  t.ok(performance.now() - t0 < 2000, `stop() took ${r1(performance.now() - t0)} ms`);
  t.equal(w.status().connected, false);
  const calls = sink.calls.length;
  await dk(['run', '-d', '--name', 'after', IMAGE, ...STOPPABLE]);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(sink.calls.length, calls, 'no swaps after stop');
});
