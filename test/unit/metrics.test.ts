/**
 * The metric catalogue (prom-client): one well-formed exposition document, counters that stay
 * counters and never go backwards across a back end being closed and reopened, every series
 * present while the link is down, the build info and Node's process metrics.
 */
import t from 'tap';
import { CarriedCounter, DaemonMetrics, packageVersion, type MetricsSnapshot } from '../../src/service/metrics.js';
import { ANSWER_KIND_NAMES, DROP_REASON_COUNT, DROP_REASON_NAMES } from '../../src/engine/verdict.js';

/** Parse an exposition document strictly: families with one HELP and one TYPE, samples after them. */
function parseExposition(text: string): Map<string, { type: string; help: string; samples: Map<string, number> }> {
  const fams = new Map<string, { type: string; help: string; samples: Map<string, number> }>();
  const seenHelp = new Set<string>();
  const seenType = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('document must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line))) {
      if (seenHelp.has(m[1]!)) throw new Error(`two HELP lines for ${m[1]}`);
      seenHelp.add(m[1]!);
      fams.set(m[1]!, { type: '', help: m[2]!, samples: new Map() });
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      if (seenType.has(m[1]!)) throw new Error(`two TYPE lines for ${m[1]}`);
      seenType.add(m[1]!);
      const f = fams.get(m[1]!);
      if (!f) throw new Error(`TYPE before HELP for ${m[1]}`);
      f.type = m[2]!;
    } else if ((m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]?[Ii]nf)$/.exec(line))) {
      const name = m[1]!;
      const fam = fams.get(name) ?? fams.get(name.replace(/_(bucket|sum|count|created)$/, ''));
      if (!fam) throw new Error(`sample ${name} outside its family`);
      fam.samples.set(name + (m[2] ?? ''), Number(m[3]));
    } else if (line !== '') {
      throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    }
  }
  return fams;
}

function snapshot(): MetricsSnapshot & { set(o: Partial<MetricsSnapshot>): void } {
  const answered = new Float64Array(ANSWER_KIND_NAMES.length);
  const drops = new Float64Array(DROP_REASON_COUNT);
  const s = {
    counters: { frames: 0, answered, drops, sent: 0, sendFailed: 0, announced: 0, mldQueries: 0 },
    tableRules: 2,
    linkUp: true,
    backend: undefined,
    membership: undefined,
    docker: undefined,
    set(o: Partial<MetricsSnapshot>) {
      Object.assign(this, o);
    },
  } as MetricsSnapshot & { set(o: Partial<MetricsSnapshot>): void };
  return s;
}

t.test('one well-formed document: daemon series, build info, process metrics', async (t) => {
  const s = snapshot();
  s.counters.frames = 10;
  (s.counters.answered as Float64Array)[1] = 7;
  (s.counters.drops as Float64Array)[[...DROP_REASON_NAMES].find(([, n]) => n === 'no-rule')![0]] = 3;
  s.backend = { source: {}, received: 12, kernelDrops: 1 };
  s.membership = { source: {}, groups: 4, allmulti: false, reportsSent: 9 };
  const m = new DaemonMetrics({ snapshot: () => s, docker: false, version: '9.9.9' });
  const fams = parseExposition(await m.metrics());
  t.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  t.equal(fams.get('ndp_frames_total')?.type, 'counter');
  t.equal(fams.get('ndp_frames_total')?.samples.get('ndp_frames_total'), 10);
  t.equal(fams.get('ndp_answers_total')?.samples.get('ndp_answers_total{kind="answer"}'), 7);
  t.equal(fams.get('ndp_answers_total')?.samples.get('ndp_answers_total{kind="dad-defence"}'), 0, 'zero series present');
  t.equal(fams.get('ndp_drops_total')?.samples.get('ndp_drops_total{reason="no-rule"}'), 3);
  t.equal(fams.get('ndp_drops_total')?.samples.size, DROP_REASON_NAMES.size, 'every drop reason, none "none"');
  t.equal(fams.get('ndp_table_rules')?.type, 'gauge');
  t.equal(fams.get('ndp_link_up')?.samples.get('ndp_link_up'), 1);
  t.equal(fams.get('ndp_backend_received_total')?.samples.get('ndp_backend_received_total'), 12);
  t.equal(fams.get('ndp_multicast_groups')?.samples.get('ndp_multicast_groups'), 4);
  t.equal(fams.get('ndp_mld_reports_total')?.samples.get('ndp_mld_reports_total'), 9);
  t.equal(fams.get('ndp_build_info')?.samples.get(`ndp_build_info{version="9.9.9",node="${process.version}"}`), 1);
  t.ok(fams.has('process_cpu_user_seconds_total'), 'process CPU');
  t.ok(fams.has('process_resident_memory_bytes'), 'process memory');
  t.ok(fams.has('nodejs_eventloop_lag_seconds'), 'event loop lag');
  t.notOk(fams.has('ndp_docker_connected'), 'no Docker series without --docker');
  for (const [name, f] of fams) if (name.startsWith('ndp_') && name.endsWith('_total')) t.equal(f.type, 'counter', `${name} is a counter`);
});

t.test('counters carry across a closed and reopened back end; series stay while down', async (t) => {
  const s = snapshot();
  const b1 = {};
  const m1 = {};
  s.backend = { source: b1, received: 100, kernelDrops: 5 };
  s.membership = { source: m1, groups: 3, allmulti: true, reportsSent: 6 };
  let scrapes = 0;
  const m = new DaemonMetrics({ snapshot: () => (scrapes++, s), docker: true, processMetrics: false });
  const value = async (name: string) =>
    parseExposition(await m.metrics())
      .get(name)
      ?.samples.get(name);
  t.equal(await value('ndp_backend_received_total'), 100);
  t.equal(scrapes, 1, 'one snapshot per scrape');

  // More frames arrive, then the link goes down before the next scrape: retireLink keeps them.
  m.retireLink({ source: b1, received: 120, kernelDrops: 6 }, { source: m1, reportsSent: 8 });
  s.set({ backend: undefined, membership: undefined, linkUp: false });
  const down = parseExposition(await m.metrics());
  t.equal(down.get('ndp_backend_received_total')?.samples.get('ndp_backend_received_total'), 120, 'received kept while down');
  t.equal(down.get('ndp_backend_kernel_drops_total')?.samples.get('ndp_backend_kernel_drops_total'), 6);
  t.equal(down.get('ndp_mld_reports_total')?.samples.get('ndp_mld_reports_total'), 8);
  t.equal(down.get('ndp_multicast_groups')?.samples.get('ndp_multicast_groups'), 3, 'gauge: last known');
  t.equal(down.get('ndp_allmulti')?.samples.get('ndp_allmulti'), 1);
  t.equal(down.get('ndp_link_up')?.samples.get('ndp_link_up'), 0, 'link gauge 0');
  t.equal(down.get('ndp_docker_connected')?.samples.get('ndp_docker_connected'), 0, 'Docker series present with --docker');
  t.equal(down.get('ndp_docker_synced')?.samples.get('ndp_docker_synced'), 0);

  // A new back end starts from zero: the exposed counter continues from 120.
  s.set({
    backend: { source: {}, received: 7, kernelDrops: 0 },
    membership: { source: {}, groups: 2, allmulti: false, reportsSent: 1 },
    linkUp: true,
  });
  const up = parseExposition(await m.metrics());
  t.equal(up.get('ndp_backend_received_total')?.samples.get('ndp_backend_received_total'), 127);
  t.equal(up.get('ndp_backend_kernel_drops_total')?.samples.get('ndp_backend_kernel_drops_total'), 6);
  t.equal(up.get('ndp_mld_reports_total')?.samples.get('ndp_mld_reports_total'), 9);
  t.equal(up.get('ndp_multicast_groups')?.samples.get('ndp_multicast_groups'), 2);
});

t.test('CarriedCounter: monotonic, never above the truth, exact when sources are retired', async (t) => {
  let seed = 0x5eed1234;
  const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  for (const alwaysRetire of [true, false]) {
    const c = new CarriedCounter();
    let truth = 0; // every increment made by any source
    let src: object | undefined;
    let count = 0;
    let last = 0;
    const bad: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const op = rnd(10);
      if (op < 6 && src) {
        const d = rnd(5);
        count += d;
        truth += d;
      } else if (op < 8 && src) {
        if (alwaysRetire || rnd(2)) c.retire(src, count);
        src = undefined;
      } else if (!src) {
        src = {};
        count = 0;
      }
      if (rnd(3) === 0) {
        const v = c.read(src, src ? count : undefined);
        if (v < last || v > truth) bad.push(`step ${i}: ${v} (last ${last}, truth ${truth})`);
        last = v;
      }
    }
    t.same(bad.slice(0, 5), [], `${alwaysRetire ? 'retired' : 'sometimes retired'}: monotonic and bounded`);
    if (alwaysRetire) t.equal(c.read(src, src ? count : undefined), truth, 'exact when every source is retired');
  }
});

t.test('packageVersion reads package.json', async (t) => {
  t.match(packageVersion(), /^\d+\.\d+\.\d+/);
});
