/**
 * Mutation fuzzing of the NS parser against the independent reference validator
 * (test/support/reference-ns.ts), plus fast-check properties.
 *
 *   NDP_FUZZ_ITERATIONS=1000000 npx tap test/unit/ndp-fuzz.test.ts   (default 5000)
 *   NDP_FUZZ_SEED=1234 ...                                          (default 0x5eed)
 *
 * The mutator keeps frames close to valid: after random edits it usually repairs the
 * checksum (and sometimes the payload length), so deep rules are exercised, not only the
 * checksum check.
 */
import fc from 'fast-check';
import t from 'tap';
import { buildNA, decodeNA } from '../../src/ndp/build.js';
import { NS_ERROR_NAMES } from '../../src/ndp/ns-error.js';
import { DROP_REASON_COUNT, dropReasonName, DropReason } from '../../src/engine/verdict.js';
import { NsView } from '../../src/ndp/ns-view.js';
import { parseNS } from '../../src/ndp/parse.js';
import type { HostFacts } from '../../src/engine/types.js';
import { ip6, mac } from '../support/frames.js';
import { BASES, concat, fixChecksum, mutatedFrame } from '../support/mutate.js';
import { Prng } from '../support/prng.js';
import { referenceDecodeNS } from '../support/reference-ns.js';

const ITERATIONS = Number(process.env.NDP_FUZZ_ITERATIONS ?? 5000);
const SEED = Number(process.env.NDP_FUZZ_SEED ?? 0x5eed);
const host: HostFacts = { ifname: 'fuzz0', mac: mac('02:42:ac:11:00:09'), linkLocal: ip6('fe80::1') };

t.test(`seeded mutation fuzz: parser agrees with the reference (${ITERATIONS} frames, seed ${SEED})`, async (t) => {
  const rng = new Prng(SEED);
  const view = new NsView();
  const out = new Uint8Array(128);
  const counts = new Array<number>(DROP_REASON_COUNT).fill(0);
  const disagreements: string[] = [];
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  for (let i = 0; i < ITERATIONS; i++) {
    const f = mutatedFrame(rng);

    // Sometimes parse it from inside a bigger buffer with junk around it.
    let buf: Uint8Array = f;
    let start = 0;
    if (rng.chance(0.3)) {
      start = rng.int(64);
      buf = concat(rng.bytes(start), f, rng.bytes(rng.int(64)));
    }
    let got: DropReason;
    try {
      got = parseNS(buf, start, f.length, view);
    } catch (e) {
      disagreements.push(`threw ${String(e)} on ${hex(f)}`);
      continue;
    }
    counts[got]!++;
    const ref = referenceDecodeNS(f);
    if ((got === DropReason.None) !== (ref.problem === null)) {
      disagreements.push(`parser ${dropReasonName(got)}, reference ${ref.problem ?? 'accepts'}: ${hex(f)}`);
      continue;
    }
    if (got !== DropReason.None) continue;
    // Accepted by both: the view must point where the reference found things.
    const rel = (o: number): number => (o < 0 ? -1 : o - start);
    const viewFacts = [view.vlanTci, rel(view.ipOff), rel(view.targetOff), view.unspecifiedSource, rel(view.sllaoOff), rel(view.nonceOff)];
    const refFacts = [ref.vlanTci, ref.ipOffset, ref.targetOffset, ref.unspecifiedSource, ref.sllaoMacOffset, ref.nonceOffset];
    if (JSON.stringify(viewFacts) !== JSON.stringify(refFacts)) {
      disagreements.push(`view ${JSON.stringify(viewFacts)} != reference ${JSON.stringify(refFacts)}: ${hex(f)}`);
      continue;
    }
    // And every accepted NS can be answered.
    const len = buildNA(view, host, { sourcePolicy: 'target', router: false, override: true }, out, 0);
    const na = decodeNA(out, 0, len);
    if (len === 0 || !na?.checksumOk || na.vlanTci !== ref.vlanTci) disagreements.push(`answer broken for ${hex(f)}`);
  }

  t.same(disagreements.slice(0, 10), [], `no disagreements (${disagreements.length} in total)`);
  const accepted = counts[DropReason.None]!;
  t.comment(
    'verdicts: ' +
      counts
        .map((c, r) => [dropReasonName(r), c ?? 0] as const)
        .filter(([, c]) => c > 0)
        .map(([name, c]) => `${name}=${c}`)
        .join(' '),
  );
  // The mutator must really reach both sides and every rule, or the agreement means little.
  t.ok(accepted >= ITERATIONS * 0.05, `at least 5% accepted (${accepted})`);
  t.ok(ITERATIONS - accepted >= ITERATIONS * 0.5, `at least half rejected (${ITERATIONS - accepted})`);
  if (ITERATIONS >= 2000) {
    const missing: string[] = [];
    for (const r of NS_ERROR_NAMES.keys()) {
      if (counts[r] === 0) missing.push(dropReasonName(r));
    }
    t.same(missing, [], 'every parser drop reason was produced');
  } else {
    t.comment(`reason coverage not asserted below 2000 iterations (ran ${ITERATIONS})`);
  }
});

t.test('fast-check: arbitrary bytes and window never throw, result is a drop reason', async (t) => {
  const view = new NsView();
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 160 }),
      fc.integer({ min: -8, max: 170 }),
      fc.oneof(fc.integer({ min: -8, max: 200 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 0.5)),
      (bytes, start, length) => {
        const r = parseNS(bytes, start, length, view);
        return Number.isInteger(r) && r >= 0 && r < DROP_REASON_COUNT;
      },
    ),
    { seed: SEED, numRuns: 2000 },
  );
  t.pass('no exception, always a DropReason');
});

t.test('fast-check: a valid NS with arbitrary bytes overwritten, checksum repaired: parser == reference', async (t) => {
  const view = new NsView();
  fc.assert(
    fc.property(
      fc.constantFrom(...BASES),
      fc.nat({ max: 100 }),
      fc.uint8Array({ minLength: 1, maxLength: 6 }),
      fc.boolean(),
      (base, at, patch, repair) => {
        const f = base.slice();
        for (let i = 0; i < patch.length && at + i < f.length; i++) f[at + i] = patch[i]!;
        if (repair) fixChecksum(f);
        const got = parseNS(f, 0, f.length, view);
        return (got === DropReason.None) === (referenceDecodeNS(f).problem === null);
      },
    ),
    { seed: SEED, numRuns: 2000 },
  );
  t.pass('agrees');
});
