/**
 * The fast IPv6 text codec (src/addr/text.ts, used for bulk address files and logs) must agree
 * with the ip-address package, which stays the arbiter at the edges: same acceptance and same
 * bytes for every hex-group string, and the same RFC 5952 text for every address.
 */
import fc from 'fast-check';
import { Address6 } from 'ip-address';
import t from 'tap';
import { formatAddress, parseAddress } from '../../src/addr/index.js';

function viaLibrary(text: string): string | null {
  try {
    const a = new Address6(text);
    return Buffer.from(a.toUnsignedByteArray()).toString('hex').padStart(32, '0');
  } catch {
    return null;
  }
}
function viaFast(text: string): string | null {
  try {
    return Buffer.from(parseAddress(text)).toString('hex');
  } catch {
    return null;
  }
}

const hexChar = fc.constantFrom(...'0123456789abcdefABCDEF:'.split(''), ':', ':', '0');
const group = fc.integer({ min: 0, max: 0xffff }).map((v) => v.toString(16));

t.test('random hex-group strings: accepted by both or neither, same bytes', async (t) => {
  fc.assert(
    fc.property(
      fc.array(hexChar, { maxLength: 42 }).map((a) => a.join('')),
      (s) => {
        const fast = viaFast(s);
        const lib = viaLibrary(s);
        return fast === lib;
      },
    ),
    { seed: 4861, numRuns: 20000 },
  );
  t.pass('agree');
});

t.test('structured addresses with random :: compression: same bytes', async (t) => {
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.nat({ max: 8 }), fc.nat({ max: 8 }), (g, a, b) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const text = to - from >= 1 ? `${g.slice(0, from).join(':')}::${g.slice(to).join(':')}` : g.join(':');
      return viaFast(text) === viaLibrary(text);
    }),
    { seed: 4291, numRuns: 20000 },
  );
  t.pass('agree');
});

t.test('formatAddress equals ip-address correctForm (RFC 5952)', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.array(fc.nat({ max: 7 }), { maxLength: 6 }), (bytes, zeros) => {
      const b = Uint8Array.from(bytes);
      for (const z of zeros) b[2 * z] = b[2 * z + 1] = 0; // make zero runs likely
      return formatAddress(b) === Address6.fromUnsignedByteArray(Array.from(b)).correctForm();
    }),
    { seed: 5952, numRuns: 20000 },
  );
  t.pass('agree');
});
