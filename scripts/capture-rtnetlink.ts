/**
 * Capture real rtnetlink route messages for fixtures/rtnetlink-routes.json: what the kernel
 * sends to a NETLINK_ROUTE socket (native/netlink.cc, the one the route monitor uses) for an
 * RTM_GETROUTE dump and for each `ip -6 route` change of a fixed script.
 *
 * Run as root: node --import tsx scripts/capture-rtnetlink.ts [out.json]
 * It makes a namespace of its own (deleted at the end, also on failure), runs itself inside it
 * with `ip netns exec`, and touches nothing outside it.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';

import { loadNative } from '../src/io/afpacket.js';
import type { NativeNetlinkSocket } from '../src/service/routes.js';
import { routeDumpRequest, RTMGRP_IPV6_ROUTE } from '../src/io/rtnetlink.js';

const out = process.argv.find((a, i) => i >= 2 && !a.startsWith('--')) ?? 'fixtures/rtnetlink-routes.json';

/** The setup, then the changes, each captured on its own. */
const SETUP: string[][] = [
  ['link', 'set', 'lo', 'up'],
  ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'],
  ['link', 'add', 'docker0', 'type', 'veth', 'peer', 'name', 'docker0p'],
  ['link', 'set', 'eth0', 'up'],
  ['link', 'set', 'eth0p', 'up'],
  ['link', 'set', 'docker0', 'up'],
  ['link', 'set', 'docker0p', 'up'],
  ['-6', 'addr', 'add', '2001:db8:a::2/64', 'dev', 'eth0', 'nodad'],
  ['-6', 'route', 'add', '2001:db8:a:0:8000::/66', 'dev', 'docker0'],
  ['-6', 'route', 'add', 'default', 'via', '2001:db8:a::1', 'dev', 'eth0'],
];

const STEPS: { label: string; args: string[] }[] = [
  { label: 'add-specific-to-uplink', args: ['-6', 'route', 'add', '2001:db8:a:0:8000::/112', 'dev', 'eth0'] },
  { label: 'add-blackhole', args: ['-6', 'route', 'add', 'blackhole', '2001:db8:b::/48'] },
  { label: 'add-unreachable', args: ['-6', 'route', 'add', 'unreachable', '2001:db8:c::/48'] },
  { label: 'add-prohibit', args: ['-6', 'route', 'add', 'prohibit', '2001:db8:d::/48'] },
  { label: 'add-throw-local', args: ['-6', 'route', 'add', 'throw', '2001:db8:e::/48', 'table', 'local'] },
  {
    label: 'add-multipath',
    args: [
      '-6',
      'route',
      'add',
      '2001:db8:f::/48',
      'nexthop',
      'via',
      '2001:db8:a::1',
      'dev',
      'eth0',
      'nexthop',
      'via',
      'fe80::1',
      'dev',
      'docker0',
    ],
  },
  { label: 'add-table-100', args: ['-6', 'route', 'add', '2001:db8:a:0:8000::/80', 'dev', 'eth0', 'table', '100'] },
  { label: 'add-table-1000', args: ['-6', 'route', 'add', '2001:db8:a:0:8000::/81', 'dev', 'eth0', 'table', '1000'] },
  { label: 'add-metric-2048', args: ['-6', 'route', 'add', '2001:db8:a:0:8000::/66', 'dev', 'eth0', 'metric', '2048'] },
  { label: 'replace-to-uplink', args: ['-6', 'route', 'replace', '2001:db8:a:0:8000::/66', 'dev', 'eth0'] },
  { label: 'del-one-nexthop', args: ['-6', 'route', 'del', '2001:db8:f::/48', 'via', 'fe80::1', 'dev', 'docker0'] },
  { label: 'del-blackhole', args: ['-6', 'route', 'del', 'blackhole', '2001:db8:b::/48'] },
  { label: 'del-specific', args: ['-6', 'route', 'del', '2001:db8:a:0:8000::/112', 'dev', 'eth0'] },
];

interface Step {
  label: string;
  command: string;
  /** Datagrams in arrival order, hex. */
  datagrams: string[];
}

async function inside(): Promise<void> {
  for (const a of SETUP) execFileSync('ip', a, { stdio: 'inherit' });
  // The link-local addresses (and their routes) come after DAD: wait for all four, bounded.
  for (let i = 0; i < 100; i++) {
    const local = execFileSync('ip', ['-6', 'route', 'show', 'table', 'local']).toString();
    if ((local.match(/^local fe80::/gm) ?? []).length === 4) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
  const { NetlinkSocket } = loadNative() as unknown as {
    NetlinkSocket: new (o: Record<string, unknown>) => NativeNetlinkSocket;
  };
  const SLOT = 32768;
  const rx = new Uint8Array(16 * SLOT);
  const lengths = new Uint32Array(16);
  const sock = new NetlinkSocket({
    groups: RTMGRP_IPV6_ROUTE,
    rxBuffer: rx,
    lengths,
    slots: 16,
    slotSize: SLOT,
    rcvbuf: 1 << 20,
    maxBatchesPerWake: 16,
  });
  let got: string[] = [];
  sock.start((count, errno) => {
    if (errno !== 0) throw new Error(`netlink receive error ${errno}`);
    for (let i = 0; i < count; i++) got.push(Buffer.from(rx.subarray(i * SLOT, i * SLOT + lengths[i]!)).toString('hex'));
  });
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));
  const steps: Step[] = [];
  const take = (label: string, command: string): void => {
    steps.push({ label, command, datagrams: got });
    got = [];
  };
  sock.send(routeDumpRequest(1));
  await settle();
  take('dump-initial', 'RTM_GETROUTE dump (AF_INET6, all tables), seq 1');
  for (const s of STEPS) {
    execFileSync('ip', s.args, { stdio: 'inherit' });
    await settle();
    take(s.label, `ip ${s.args.join(' ')}`);
  }
  sock.send(routeDumpRequest(2));
  await settle();
  take('dump-final', 'RTM_GETROUTE dump (AF_INET6, all tables), seq 2');
  sock.close();
  const doc = {
    about: 'rtnetlink datagrams captured by scripts/capture-rtnetlink.ts; see fixtures/README.md',
    kernel: release(),
    iproute2: execFileSync('ip', ['-V']).toString().trim(),
    byteOrder: 'little-endian (host)',
    ifindex: Object.fromEntries(
      (JSON.parse(execFileSync('ip', ['-j', 'link', 'show']).toString()) as { ifname: string; ifindex: number }[]).map((l) => [
        l.ifname,
        l.ifindex,
      ]),
    ),
    setup: SETUP.map((a) => `ip ${a.join(' ')}`),
    routesAtEnd: execFileSync('ip', ['-6', 'route', 'show', 'table', 'all']).toString().trim().split('\n'),
    steps,
  };
  writeFileSync(out, JSON.stringify(doc, null, 1) + '\n');
}

if (process.argv.includes('--inside')) {
  await inside();
} else {
  if (process.getuid?.() !== 0) throw new Error('run as root (it makes a network namespace)');
  const ns = `rtcap${process.pid.toString(36)}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--inside', out], {
      stdio: 'inherit',
    });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
  console.log(`wrote ${out}`);
}
