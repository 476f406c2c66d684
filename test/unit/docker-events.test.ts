import { readFileSync } from 'node:fs';
import t from 'tap';
import { EVENT_FILTERS, eventEffect, eventFiltersParam, JsonLineDecoder } from '../../src/docker/events.js';

// The raw /events stream of dockerd 20.10.24 (see fixtures/docker/README.md).
const raw = readFileSync(new URL('../../fixtures/docker/events.ndjson', import.meta.url));
const EV1 = '041301e754fd415287156077db68bb23b469c73a938982b1022f7822b1bde08b';
const EV2 = '79ee75e31d6a21afa1bd9358af2702c65542336f4b0b9b0fc6fcc86ff93c073b';

t.test('captured stream: what each event does', async (t) => {
  const events = new JsonLineDecoder().push(raw);
  t.equal(events.length, 19);
  const effects = events
    .map(eventEffect)
    .map((e) => (e.kind === 'ignore' ? `ignore ${e.action}` : `${e.kind} ${e.containerId.slice(0, 6)} ${e.action}`));
  t.same(effects, [
    'refresh 041301 network connect',
    'refresh 041301 start',
    'refresh 041301 network connect',
    'refresh 041301 network disconnect',
    'refresh 041301 network disconnect',
    'refresh 041301 rename',
    'remove 041301 die',
    'refresh 041301 network disconnect',
    'remove 041301 destroy',
    'refresh 79ee75 network connect',
    'refresh 79ee75 start',
    'remove 79ee75 die',
    'refresh 79ee75 network disconnect',
    'refresh 79ee75 network connect',
    'refresh 79ee75 start',
    'remove 79ee75 die',
    'refresh 79ee75 network disconnect',
    'remove 79ee75 destroy',
    'ignore network destroy',
  ]);
  const ids = new Set(events.map(eventEffect).flatMap((e) => (e.kind === 'ignore' ? [] : [e.containerId])));
  t.same([...ids], [EV1, EV2], 'network events name the container by its full ID');
});

t.test('decoder: any chunking gives the same values', async (t) => {
  const whole = new JsonLineDecoder().push(raw);
  for (const size of [1, 7, 64, 333, 4096]) {
    const d = new JsonLineDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < raw.length; i += size) got.push(...d.push(raw.subarray(i, i + size)));
    t.same(got, whole, `chunks of ${size} bytes`);
  }
  // A multi-byte UTF-8 character split across chunks.
  const line = Buffer.from('{"Type":"container","Action":"rename","Actor":{"ID":"x","Attributes":{"name":"caf\u00e9"}}}\n');
  const d = new JsonLineDecoder();
  const cut = line.indexOf(0xc3) + 1;
  t.same([...d.push(line.subarray(0, cut)), ...d.push(line.subarray(cut))], [JSON.parse(line.toString())]);
});

t.test('decoder: bad lines are reported and skipped; runaway lines dropped', async (t) => {
  const bad: string[] = [];
  const d = new JsonLineDecoder((line) => bad.push(line), 64);
  t.same(d.push('{"a":1}\nnot json\n\n{"b":2}\n'), [{ a: 1 }, { b: 2 }]);
  t.same(bad, ['not json']);
  t.same(d.push('x'.repeat(100)), []);
  t.equal(bad.length, 2, 'over-long partial line reported');
  t.same(d.push('\n{"c":3}\n'), [{ c: 3 }], 'recovers after the dropped line');
});

t.test('eventEffect: odd shapes are ignored, never thrown on', async (t) => {
  for (const ev of [
    null,
    1,
    'x',
    [],
    {},
    { Type: 'container' },
    { Type: 'container', Action: 'start', Actor: {} },
    { Type: 'network', Action: 'connect', Actor: { Attributes: {} } },
  ]) {
    t.equal(eventEffect(ev).kind, 'ignore', JSON.stringify(ev));
  }
  t.same(eventEffect({ Type: 'container', Action: 'pause', Actor: { ID: 'a' } }), { kind: 'ignore', action: 'pause' });
  t.same(
    eventEffect({ Type: 'container', status: 'die', id: 'old' }),
    { kind: 'remove', containerId: 'old', action: 'die' },
    'pre-1.22 shape',
  );
});

t.test('server-side filter', async (t) => {
  t.same(JSON.parse(eventFiltersParam()), {
    type: ['container', 'network'],
    event: ['start', 'die', 'destroy', 'rename', 'connect', 'disconnect'],
  });
  t.same([...EVENT_FILTERS.type], ['container', 'network']);
});
