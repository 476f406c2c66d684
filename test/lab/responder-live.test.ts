/**
 * `ndp-responder run` against real kernels, for each back end, on the seed's two-host topology
 * (src/lab/topology.ts): hosts h1 and h2 on one bridge, a "container" namespace behind each
 * with its range routed to it, forwarding on, no kernel proxy entries anywhere.
 *
 * h2's kernel, ping -6 and ndisc6 are the soliciting peers for h1's responder, and the other way.
 * Counters come from the daemon's own "stopped" log line (its counters at exit).
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { nsExec, nsSpawn, nsTry } from '../../src/lab/netns.js';
import { waitFor, waitForLine } from '../../src/lab/process.js';
import { createLab, type TwoHostLab as Lab, waitForSnooping } from '../../src/lab/topology.js';
import { formatAddress, parseAddress } from '../../src/addr/index.js';

const CLI = new URL('../../dist/src/cli.js', import.meta.url).pathname;
const H1_MAC = '02:00:00:00:01:01';

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' (scripts/test.sh does)`);

interface Daemon {
  child: ChildProcess;
  out: string[];
  /** SIGTERM, wait for exit, return the counters of its "stopped" line. */
  stop(): Promise<Record<string, unknown>>;
}

async function startResponder(ns: string, args: string[]): Promise<Daemon> {
  const child = nsSpawn(ns, [process.execPath, CLI, 'run', '--interface', 'eth0', '--log-level', 'info', ...args]);
  const out: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(...d.split('\n').filter(Boolean)));
  await waitForLine(child, /"msg":"ready"/, 20_000);
  return {
    child,
    out,
    stop: async () => {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        throw new Error('responder did not exit within 10 s of SIGTERM');
      }
      if (code !== 0) throw new Error(`responder exited ${code}`);
      const line = out.map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.msg === 'stopped');
      if (!line) throw new Error('no "stopped" log line');
      return line.counters as Record<string, unknown>;
    },
  };
}

function ping(ns: string, addr: string, count = 1): boolean {
  return nsTry(ns, ['ping', '-6', '-n', '-c', String(count), '-W', '2', addr], 10_000).status === 0;
}

/** ndisc6 from `ns`: the MAC it learned, or null when nobody answered. */
function ndisc6(ns: string, addr: string): string | null {
  const r = nsTry(ns, ['ndisc6', '-1', '-r', '2', '-w', '400', addr, 'eth0'], 10_000);
  const m = /Target link-layer address:\s*([0-9A-Fa-f:]{17})/.exec(r.out);
  return r.status === 0 && m ? m[1]!.toLowerCase() : null;
}

function neighMac(ns: string, addr: string): string | null {
  const out = nsTry(ns, ['ip', '-6', 'neigh', 'show', addr, 'dev', 'eth0']).out;
  const m = /lladdr ([0-9a-f:]{17})/.exec(out);
  return m ? m[1]! : null;
}

for (const backend of ['afpacket', 'pcap'] as const) {
  t.test(`${backend}: real kernels, ping -6 and ndisc6 on the two-host topology`, async (t) => {
    const lab: Lab = createLab({ tag: `r${backend[0]}${process.pid % 1000}` });
    t.teardown(() => lab.destroy());
    const daemons: Daemon[] = [];
    t.teardown(() => daemons.forEach((d) => d.child.kill('SIGKILL')));

    t.notOk(ping(lab.h2.containerNs, lab.h1.container), 'before: container on h2 cannot reach container on h1');

    const d1 = await startResponder(lab.h1.ns, [
      '--backend',
      backend,
      '--prefix',
      lab.h1.range,
      '--address',
      '2003:ab11:0:0:8000::98',
      '--exclude',
      '2003:ab11:0:0:8000::30/128',
    ]);
    daemons.push(d1);
    const d2 = await startResponder(lab.h2.ns, ['--backend', backend, '--address', lab.h2.container]);
    daemons.push(d2);

    t.ok(ping(lab.h2.containerNs, lab.h1.container), 'with responders: the first ping gets through, both ways resolved');
    t.equal(neighMac(lab.h2.ns, lab.h1.container), H1_MAC, "h2's neighbour table holds h1's MAC for h1's container");

    t.equal(ndisc6(lab.h2.ns, '2003:ab11:0:0:8000::77'), H1_MAC, 'ndisc6 (accepts only NA sourced from the target) gets our answer');
    t.equal(ndisc6(lab.h2.ns, '2003:ab11:0:0:8000::30'), null, 'excluded address: no answer');
    t.equal(ndisc6(lab.h2.ns, '2003:ab11:0:0:4000::1'), null, 'address outside every rule: no answer');

    // NUD: make h2's entry STALE, use it; the kernel probes with a unicast NS to the target.
    const tcpdump = nsSpawn(lab.h2.ns, [
      'tcpdump',
      '-i',
      'eth0',
      '-nn',
      '-l',
      '-c',
      '2',
      `icmp6 and ip6 dst ${lab.h1.container} and ip6[40] == 135`,
    ]);
    const seen: string[] = [];
    tcpdump.stdout!.setEncoding('utf8').on('data', (d: string) => seen.push(d));
    await new Promise((r) => setTimeout(r, 300));
    nsExec(lab.h2.ns, ['sysctl', '-q', '-w', 'net.ipv6.neigh.eth0.delay_first_probe_time=1']);
    nsExec(lab.h2.ns, ['ip', '-6', 'neigh', 'change', lab.h1.container, 'lladdr', H1_MAC, 'nud', 'stale', 'dev', 'eth0']);
    ping(lab.h2.containerNs, lab.h1.container);
    await waitFor(
      () =>
        /REACHABLE/.test(nsTry(lab.h2.ns, ['ip', '-6', 'neigh', 'show', lab.h1.container]).out) &&
        seen.join('').includes('neighbor solicitation'),
      {
        timeoutMs: 6000,
        what: 'unicast NUD probe answered (entry REACHABLE again)',
      },
    );
    tcpdump.kill();
    const canonical = formatAddress(parseAddress(lab.h1.container));
    t.ok(seen.join('').includes(`> ${canonical}: ICMP6, neighbor solicitation`), `the probe was a unicast NS to the target (${canonical})`);

    // DAD: h2 tries to take an exact address h1 holds (--address): the kernel must see it as taken.
    nsExec(lab.h2.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_dad=1']);
    nsExec(lab.h2.ns, ['ip', '-6', 'addr', 'add', '2003:ab11:0:0:8000::98/64', 'dev', 'eth0']);
    const addrLine = (a: string): string =>
      nsTry(lab.h2.ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0'])
        .out.split('\n')
        .find((l) => l.includes(` ${a}/64 `)) ?? '';
    await waitFor(() => /dadfailed/.test(addrLine('2003:ab11::8000:0:0:98')), {
      timeoutMs: 5000,
      what: 'DAD for 2003:ab11:0:0:8000::98 to fail',
    });
    t.pass('a DAD probe for an exact address we hold ends dadfailed');
    // ... but an address covered only by a prefix rule is not ours to defend: the other node's
    // DAD succeeds, and from then on that address is in use on the link and never answered.
    nsExec(lab.h2.ns, ['ip', '-6', 'addr', 'add', '2003:ab11:0:0:8000::99/64', 'dev', 'eth0']);
    await waitFor(
      () => {
        const l = addrLine('2003:ab11::8000:0:0:99');
        return l !== '' && !/tentative|dadfailed/.test(l);
      },
      {
        timeoutMs: 5000,
        what: 'DAD for 2003:ab11:0:0:8000::99 (prefix rule only) to succeed',
      },
    );
    t.notMatch(addrLine('2003:ab11::8000:0:0:99'), /dadfailed/, 'not defended');
    t.pass('a DAD probe for an address covered only by a prefix rule succeeds');

    // The host's own address: the kernel answers, we must not (counted as own-address).
    t.equal(ndisc6(lab.h2.ns, lab.h1.addr), H1_MAC, "h1's own address is answered (by h1's kernel)");

    const c1 = await d1.stop();
    daemons.length = 0;
    await d2.stop();
    const drops = c1.drops as Record<string, number>;
    t.ok((drops['own-address'] ?? 0) >= 1, `own address counted as own-address drop (${drops['own-address']})`);
    t.ok((drops['excluded'] ?? 0) >= 1, `excluded counted (${drops['excluded']})`);
    t.ok((drops['no-rule'] ?? 0) >= 1, `outside rules counted as no-rule (${drops['no-rule']})`);
    t.ok((drops['in-use-on-link'] ?? 0) >= 1, `the other node's DAD probe counted as in-use-on-link (${drops['in-use-on-link']})`);
    const byKind = c1.answeredByKind as Record<string, number>;
    t.ok((byKind['dad-defence'] ?? 0) >= 1, `DAD defended (${byKind['dad-defence']})`);
    t.equal(c1.sendFailed, 0, 'no send failures');

    t.notOk(ping(lab.h2.containerNs, '2003:ab11:0:0:8000::55'), 'after stop: a fresh address behind h1 is unreachable again');
  });
}

t.test('afpacket: through a strict MLD-snooping bridge, exact addresses are answered thanks to MLD', async (t) => {
  const lab = createLab({ tag: `rs${process.pid % 1000}`, snooping: true });
  t.teardown(() => lab.destroy());
  const daemons: Daemon[] = [];
  t.teardown(() => daemons.forEach((d) => d.child.kill('SIGKILL')));
  const waited = await waitForSnooping(lab);
  t.comment(`the switch forwards by its MLD table after ${waited} ms`);

  // Without MLD reports the switch never forwards the NS for h1's container to h1.
  const quiet = await startResponder(lab.h1.ns, ['--address', lab.h1.container, '--no-mld']);
  daemons.push(quiet);
  t.equal(ndisc6(lab.h2.ns, lab.h1.container), null, 'no MLD report: the snooping switch drops the NS');
  await quiet.stop();
  daemons.length = 0;

  const d1 = await startResponder(lab.h1.ns, ['--address', lab.h1.container]);
  daemons.push(d1);
  const sn = 'ff02::1:ff00:10';
  await waitFor(() => nsTry(lab.switchNs, ['bridge', 'mdb', 'show']).out.includes(sn), { timeoutMs: 3000, what: `${sn} in bridge mdb` });
  t.pass(`the switch learned ${sn} on h1's port from our MLD report`);
  t.equal(ndisc6(lab.h2.ns, lab.h1.container), H1_MAC, 'with MLD: answered through the snooping switch');
  await d1.stop();
  daemons.length = 0;
});
