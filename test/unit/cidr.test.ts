import t from 'tap';
import fc from 'fast-check';
import { formatAddress, formatCidr, maskBytes, parseAddress, parseCidr } from '../../src/addr/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Independent RFC 5952 section 4 printer, to check the library's output against. */
function rfc5952(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is never shortened (4.2.2)
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const h = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return h(g);
  return `${h(g.slice(0, bestStart))}::${h(g.slice(bestStart + bestLen))}`;
}

t.test('parseAddress: good inputs', async (t) => {
  const cases: Array<[string, string]> = [
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['2001:DB8::1', '20010db8000000000000000000000001'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1::2:3:4:5:6:7', '00010000000200030004000500060007'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffffffffffffffffffffffffffffffff'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['  2001:db8::5 ', '20010db8000000000000000000000005'],
  ];
  for (const [text, want] of cases) t.equal(hex(parseAddress(text)), want, text);
});

t.test('parseAddress: bad inputs throw a clear Error', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['192.0.2.1', /IPv4 is not supported/],
    ['fe80::1%eth0', /zone/],
    ['fe80::1%', /zone/],
    ['2001:db8::/64', /prefix length is not allowed/],
    ['[::1]', /unexpected characters/],
    ['2001:db8:::1', /invalid IPv6 address/],
    ['2001:db8::1::2', /invalid IPv6 address/],
    ['1:2:3:4:5:6:7', /invalid IPv6 address/],
    ['1:2:3:4:5:6:7:8:9', /invalid IPv6 address/],
    ['02001:db8::1', /invalid IPv6 address/],
    ['g::1', /unexpected characters/],
    ['::1.2.3', /invalid IPv6 address/],
    ['hello', /invalid IPv6 address 'hello'/],
    ['2001:db8::1 2', /unexpected characters/],
  ];
  for (const [text, re] of cases) t.throws(() => parseAddress(text), re, JSON.stringify(text));
  t.throws(() => parseAddress(42 as unknown as string), TypeError);
});

t.test('parseCidr: good inputs, host bits masked', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['2001:db8::1', '20010db8000000000000000000000001', 128],
    ['2001:db8::1/128', '20010db8000000000000000000000001', 128],
    ['2001:db8::1/64', '20010db8000000000000000000000000', 64],
    ['2001:db8:ffff:ffff::/33', '20010db8800000000000000000000000', 33],
    ['2003:ab11::ffff:ffff:ffff:ffff/66', '2003ab1100000000c000000000000000', 66],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127', 'fffffffffffffffffffffffffffffffe', 127],
    ['ffff::/0', '00000000000000000000000000000000', 0],
    ['ff02::1:ff00:0/104', 'ff0200000000000000000001ff000000', 104],
    [' 2001:db8::/48 ', '20010db8000000000000000000000000', 48],
  ];
  for (const [text, want, len] of cases) {
    const c = parseCidr(text);
    t.equal(hex(c.prefix), want, text);
    t.equal(c.length, len, text);
  }
});

t.test('parseCidr: bad inputs throw a clear Error', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['2001:db8::/129', /out of range 0\.\.128/],
    ['2001:db8::/-1', /not a number 0\.\.128/],
    ['2001:db8::/', /not a number/],
    ['2001:db8::/64/64', /not a number/],
    ['2001:db8::/064', /not a number/],
    ['2001:db8::/6x', /not a number/],
    ['2001:db8::/ 64', /not a number/],
    ['2001:db8::/1e2', /not a number/],
    ['/64', /invalid IPv6 prefix '\/64'.*empty/],
    ['10.0.0.0/8', /IPv4 is not supported/],
    ['fe80::%eth0/64', /zone/],
    ['fe80::1%eth0', /zone/],
    ['nonsense/64', /invalid IPv6 prefix/],
  ];
  for (const [text, re] of cases) t.throws(() => parseCidr(text), re, JSON.stringify(text));
});

t.test('formatAddress: RFC 5952 canonical form', async (t) => {
  const cases: Array<[string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: one zero group stays
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3: the longest run
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: the first of equal runs
    ['2001:DB8::AbCd', '2001:db8::abcd'], // 4.3: lower case
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
  ];
  for (const [text, want] of cases) t.equal(formatAddress(parseAddress(text)), want, text);
  const buf = new Uint8Array(20);
  buf.set(parseAddress('2001:db8::7'), 3);
  t.equal(formatAddress(buf, 3), '2001:db8::7', 'at an offset');
  t.throws(() => formatAddress(buf, 5), RangeError);
  t.throws(() => formatAddress(new Uint8Array(15)), RangeError);
  t.throws(() => formatAddress(buf, -1), RangeError);
});

t.test('formatAddress agrees with an independent RFC 5952 printer and round-trips', async (t) => {
  // Groups drawn mostly from {0, small, large} so zero runs of every length and position occur.
  const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 0xf }), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (gs) => {
      const b = new Uint8Array(16);
      gs.forEach((g, i) => {
        b[2 * i] = g >> 8;
        b[2 * i + 1] = g & 0xff;
      });
      const s = formatAddress(b);
      return s === rfc5952(b) && hex(parseAddress(s)) === hex(b);
    }),
    { seed: 5952, numRuns: 2000 },
  );
  t.pass('2000 random addresses agree and round-trip');
});

t.test('formatCidr and maskBytes', async (t) => {
  t.equal(formatCidr(parseCidr('2001:db8::1/64').prefix, 64), '2001:db8::/64');
  t.equal(formatCidr(parseCidr('2001:db8::1').prefix, 128), '2001:db8::1/128');
  t.equal(formatCidr(new Uint8Array(16), 0), '::/0');
  t.throws(() => formatCidr(new Uint8Array(16), 129), RangeError);
  t.throws(() => formatCidr(new Uint8Array(16), 1.5), RangeError);
  for (let len = 0; len <= 128; len++) {
    const b = new Uint8Array(18).fill(0xff);
    maskBytes(b, 1, len);
    let ones = 0;
    for (let i = 1; i < 17; i++) for (let bit = 7; bit >= 0; bit--) ones += (b[i]! >> bit) & 1;
    t.equal(ones, len, `mask /${len} keeps ${len} bits`);
    t.equal(b[0], 0xff, 'byte before untouched');
    t.equal(b[17], 0xff, 'byte after untouched');
    // the kept bits are the leading ones
    t.equal(formatCidr(b.subarray(1, 17), len), formatCidr(parseCidr(`ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/${len}`).prefix, len));
  }
});
