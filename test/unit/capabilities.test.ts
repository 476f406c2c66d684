/**
 * src/io/capabilities.ts (pure parts) and the receive sizing of src/io/afpacket.ts: /proc status
 * text to capability sets, names, what the daemon keeps for which option, slot and ring sizes.
 */
import t from 'tap';
import { CAP, capBit, capNames, hasCap, neededCapabilities, parseCapabilities } from '../../src/io/capabilities.js';
import { MIN_RING_FRAMES, ringBytesFor, slotSizeFor } from '../../src/io/afpacket.js';

// The capability lines of a real /proc/PID/status (root in a container, then after the drop).
const ROOT = `Name:\tnode
Uid:\t0\t0\t0\t0
CapInh:\t0000000000000000
CapPrm:\t000001fffeffffff
CapEff:\t000001fffeffffff
CapBnd:\t000001fffeffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t0
`;

t.test('parseCapabilities reads the five sets', async (t) => {
  const c = parseCapabilities(ROOT);
  t.equal(c.effective, 0x1fffeffffffn);
  t.equal(c.permitted, 0x1fffeffffffn);
  t.equal(c.inheritable, 0n);
  t.equal(c.bounding, 0x1fffeffffffn);
  t.equal(c.ambient, 0n);
  t.ok(hasCap(c.effective, CAP.NET_RAW));
  t.notOk(hasCap(c.effective, 24), 'bit 24 (cap_sys_resource) is clear in 1fffeffffff');
  t.ok(hasCap(c.effective, 40), 'bit 40 (cap_checkpoint_restore) is set');
  const dropped = parseCapabilities(ROOT.replace(/000001fffeffffff/g, '0000000000002000'));
  t.equal(dropped.effective, capBit(CAP.NET_RAW));
  t.throws(() => parseCapabilities('Name:\tnode\nCapEff:\t0000000000002000\n'), /no CapInh line/);
  t.throws(() => parseCapabilities(ROOT.replace('CapEff:\t000001fffeffffff', 'CapEff:\tzz')), /no CapEff line/);
});

t.test('capNames', async (t) => {
  t.equal(capNames(0n), 'none');
  t.equal(capNames(capBit(CAP.NET_RAW)), 'cap_net_raw');
  t.equal(capNames(capBit(CAP.NET_RAW) | capBit(CAP.SYS_NICE) | capBit(10)), 'cap_net_bind_service,cap_net_raw,cap_sys_nice');
  t.equal(capNames(1n << 63n), 'cap_63', 'unknown bits by number');
});

t.test('neededCapabilities: cap_net_raw always, others only for an option that still needs them', async (t) => {
  const keys = (m: Map<number, string>): number[] => [...m.keys()].sort((a, b) => a - b);
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0 })), [CAP.NET_RAW]);
  t.same(keys(neededCapabilities({ nice: -10, currentNice: -10 })), [CAP.NET_RAW], '--nice already applied');
  t.same(keys(neededCapabilities({ nice: -10, currentNice: -15 })), [CAP.NET_RAW], 'a higher priority set by the operator');
  t.same(keys(neededCapabilities({ nice: -10, currentNice: 0 })), [CAP.NET_RAW, CAP.SYS_NICE], '--nice not applied yet');
  t.same(
    keys(neededCapabilities({ nice: 0, currentNice: 0, realtime: 1, currentRealtime: 0 })),
    [CAP.NET_RAW, CAP.SYS_NICE],
    '--realtime not applied yet',
  );
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0, realtime: 1, currentRealtime: 1 })), [CAP.NET_RAW], '--realtime applied');
  t.same(
    keys(neededCapabilities({ nice: 0, currentNice: 0, realtime: 1, currentRealtime: 5 })),
    [CAP.NET_RAW],
    'a higher real-time priority',
  );
  t.match(neededCapabilities({ nice: 0, currentNice: 0, realtime: 3, currentRealtime: 0 }).get(CAP.SYS_NICE), /--realtime 3/);
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0, metrics: '[::1]:9464' })), [CAP.NET_RAW]);
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0, metrics: '[::1]:80' })), [CAP.NET_BIND_SERVICE, CAP.NET_RAW]);
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0, metrics: '443' })), [CAP.NET_BIND_SERVICE, CAP.NET_RAW], 'bare port');
  t.same(keys(neededCapabilities({ nice: 0, currentNice: 0, metrics: '[::1]:80', metricsBound: true })), [CAP.NET_RAW], 'already bound');
  t.match(neededCapabilities({ nice: 0, currentNice: 0 }).get(CAP.NET_RAW), /re-open/);
});

t.test('receive sizing: slots and ring frames hold an MTU-sized frame', async (t) => {
  t.equal(slotSizeFor(1500), 2048, 'at least 2048 (the old default) on a standard link');
  t.ok(slotSizeFor(9000) >= 9000 + 14 + 8 + 4, `jumbo slot ${slotSizeFor(9000)}`);
  t.equal(slotSizeFor(65535), 65540, 'never above the addon maximum');
  t.equal(ringBytesFor(1500), 4 << 20, '4 MiB at MTU 1500');
  // 9088-byte ring frames, 7 to a 64 KiB block.
  const b = ringBytesFor(9000);
  t.ok(Math.floor(b / 65536) * 7 >= MIN_RING_FRAMES, `${b} bytes hold ${MIN_RING_FRAMES} jumbo frames`);
  t.ok(b < 24 << 20, 'and stay under 24 MiB');
  t.ok(ringBytesFor(65535) <= 256 << 20, 'within the addon cap at the largest MTU');
});
