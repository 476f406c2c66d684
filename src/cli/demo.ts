/** `ndp-responder demo`: the seed's scenario on the built-in lab, narrated. */
import type { ChildProcess } from 'node:child_process';
import { COMMON_OPTIONS, UsageError, parseFlags } from './flags.js';
import { nsSpawn, nsTry } from '../lab/netns.js';
import { waitForLine } from '../lab/process.js';
import { createLab, type TwoHostLab as Lab } from '../lab/topology.js';
import { DEMO_HELP } from './help.js';

const OPTIONS = { ...COMMON_OPTIONS, keep: { type: 'boolean' }, backend: { type: 'string' } } as const;

/** argv that starts this same CLI again (works under node dist/ and under tsx). */
export function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

function say(s: string): void {
  process.stdout.write(s + '\n');
}

function ping(lab: Lab, from: 'h1' | 'h2', to: string): { ok: boolean; ms: string } {
  const r = nsTry(lab[from].containerNs, ['ping', '-6', '-c', '1', '-W', '2', to], 5000);
  const m = /time=([\d.]+) ms/.exec(r.out);
  return { ok: r.status === 0, ms: m ? `${m[1]} ms` : '-' };
}

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('demo', args, OPTIONS, false);
  if (values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const backend = values.backend ?? 'afpacket';
  if (backend !== 'afpacket' && backend !== 'pcap') throw new UsageError(`--backend: '${backend}' is not one of afpacket, pcap`);
  if (process.getuid?.() !== 0) throw new UsageError('demo: run as root (it creates network namespaces)');
  // The lab's namespaces and the daemons are also removed on Ctrl-C (the lab's exit sweep).
  const lab = createLab({ tag: `d${process.pid % 10000}` });
  if (values.keep) lab.keep();
  const daemons: ChildProcess[] = [];
  const cleanup = () => {
    for (const d of daemons) d.kill('SIGTERM');
    if (!values.keep) lab.destroy();
  };
  try {
    say(`Lab "${lab.tag}": hosts ${lab.h1.ns} (${lab.h1.addr}) and ${lab.h2.ns} (${lab.h2.addr}) on one bridge;`);
    say(
      `  container ${lab.h1.container} behind ${lab.h1.ns} (${lab.h1.range}), ${lab.h2.container} behind ${lab.h2.ns} (${lab.h2.range}).`,
    );
    say('');
    say(`1. Without any NDP help, container on h2 pings container on h1:`);
    const before = ping(lab, 'h2', lab.h1.container);
    say(`   ${before.ok ? 'reply (unexpected!)' : 'no reply: h2 asks "who has ' + lab.h1.container + '?" and nobody answers'}`);
    say('');
    say(`2. Start ndp-responder on both hosts' eth0 (backend ${backend}), no kernel proxy entries:`);
    for (const h of [lab.h1, lab.h2]) {
      const child = nsSpawn(h.ns, [
        ...selfCommand(),
        'run',
        '--interface',
        'eth0',
        '--prefix',
        h.range,
        '--backend',
        backend,
        '--log-level',
        'info',
      ]);
      daemons.push(child);
      await waitForLine(child, /"msg":"ready"/, 15_000);
      say(`   ${h.ns}: ndp-responder run --interface eth0 --prefix ${h.range}   ready`);
    }
    say('');
    say('3. The same ping again:');
    const after = ping(lab, 'h2', lab.h1.container);
    say(`   ${after.ok ? `reply in ${after.ms}, on the first packet` : 'no reply (FAILED)'}`);
    const back = ping(lab, 'h1', lab.h2.container);
    say(`   and the other way: ${back.ok ? `reply in ${back.ms}` : 'no reply (FAILED)'}`);
    say('');
    say(`4. h2's neighbour table now maps h1's container to h1's MAC:`);
    say(
      nsTry(lab.h2.ns, ['ip', '-6', 'neigh', 'show', 'dev', 'eth0'])
        .out.split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => '   ' + l)
        .join('\n'),
    );
    const ok = !before.ok && after.ok && back.ok;
    say('');
    say(ok ? 'Demo passed.' : 'Demo FAILED.');
    return ok ? 0 : 1;
  } finally {
    cleanup();
  }
}
