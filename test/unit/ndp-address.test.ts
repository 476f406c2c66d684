import fc from 'fast-check';
import t from 'tap';
import { formatAddress, isLinkLocalUnicast, parseAddress } from '../../src/addr/index.js';
import { ip6 } from '../support/frames.js';

t.test('formatAddress: RFC 5952 canonical text', async (t) => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group stays (RFC 5952 4.2.2)
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run wins (4.2.3)
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs (4.2.3)
    ['fe80:0:0:0:42:acff:fe11:9', 'fe80::42:acff:fe11:9'],
    ['ff02:0:0:0:0:1:ff00:10', 'ff02::1:ff00:10'],
    ['1:0:0:0:0:0:0:0', '1::'],
  ];
  for (const [full, want] of cases) t.equal(formatAddress(ip6(full)), want, full);
  const buf = new Uint8Array(20);
  buf.set(ip6('2001:db8::7'), 4);
  t.equal(formatAddress(buf, 4), '2001:db8::7', 'at an offset');
});

t.test('parseAddress accepts the text forms and rejects junk', async (t) => {
  for (const text of [
    '::',
    '::1',
    '2001:db8::',
    '2001:DB8::a:B',
    '1:2:3:4:5:6:7:8',
    '::ffff:192.0.2.1',
    '64:ff9b::198.51.100.7',
    ' fe80::1 ',
  ]) {
    t.same([...parseAddress(text)], [...ip6(text.trim().toLowerCase())], text);
  }
  for (const bad of [
    '',
    ':',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7::8',
    '::300.1.1.1',
    '1.2.3.4',
    'fe80::1%eth0',
    '2001:db8::/64',
  ]) {
    t.throws(() => parseAddress(bad), Error, JSON.stringify(bad));
  }
});

t.test('parseAddress(formatAddress(x)) === x for any 16 bytes', async (t) => {
  fc.assert(
    fc.property(
      // Bias toward zero groups so the :: compression is exercised.
      fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }),
      (groups) => {
        const b = new Uint8Array(16);
        groups.forEach((g, i) => {
          b[2 * i] = g >> 8;
          b[2 * i + 1] = g & 0xff;
        });
        const text = formatAddress(b);
        return Buffer.from(parseAddress(text)).equals(Buffer.from(b)) && Buffer.from(ip6(text)).equals(Buffer.from(b));
      },
    ),
    { seed: 42, numRuns: 3000 },
  );
  t.pass('round trips');
});

t.test('isLinkLocalUnicast is fe80::/10', async (t) => {
  t.ok(isLinkLocalUnicast(ip6('fe80::1'), 0));
  t.ok(isLinkLocalUnicast(ip6('febf::1'), 0));
  t.notOk(isLinkLocalUnicast(ip6('fec0::1'), 0));
  t.notOk(isLinkLocalUnicast(ip6('ff02::1'), 0));
  t.notOk(isLinkLocalUnicast(ip6('2001:db8::1'), 0));
});
