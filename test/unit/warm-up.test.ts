/** The warm-up's synthetic frames are valid by the independent reference, and warm-up runs. */
import t from 'tap';
import { syntheticDAD, syntheticNS, warmUp } from '../../src/engine/warm-up.js';
import { ip6, mac } from '../support/frames.js';
import { referenceDecodeNS } from '../support/reference-ns.js';

t.test('synthetic NS and DAD probe are valid NS by the reference validator', async (t) => {
  const target = ip6('2001:db8:ffff::10');
  const ns = referenceDecodeNS(syntheticNS(target));
  t.equal(ns.problem, null);
  t.equal(ns.unspecifiedSource, false);
  const dad = referenceDecodeNS(syntheticDAD(target));
  t.equal(dad.problem, null);
  t.equal(dad.unspecifiedSource, true);
});

t.test('warmUp runs the decision path and answers', async (t) => {
  const ms = warmUp(
    { ifname: 'w0', mac: mac('02:00:00:00:00:09'), linkLocal: ip6('fe80::9') },
    { sourcePolicy: 'target', router: false, override: true },
    2000,
  );
  t.ok(ms >= 0 && ms < 5000, `took ${ms.toFixed(1)} ms`);
});
