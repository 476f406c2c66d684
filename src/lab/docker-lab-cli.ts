/**
 * The Docker lab from the command line (scripts/docker-lab.sh runs this): labs made here outlive
 * the command, so they can be inspected by hand and removed later with `down`.
 *
 *   up [--id ID] [--hosts 1|2] [--no-containers] [--dockerd-arg ARG]...   build a lab; prints KEY=VALUE lines
 *                                                  (LAB_ID, LAB_DIR, BR_NS, D1_NS, D1_SOCK, ...)
 *   down ID                                        remove everything of lab ID (safe to repeat)
 *   env ID                                         print the KEY=VALUE lines again
 *   dockerd-start ID HOST                          HOST is d1 or d2; waits until it answers
 *   dockerd-stop ID HOST [--kill]                  TERM, or KILL (like a host crash)
 *   docker ID HOST ARGS...                         the docker CLI against that engine
 *   exec ID HOST|br CMD...                         run CMD in that namespace (nsenter --net)
 *   addr ID HOST CONTAINER                         a container's global IPv6 address(es)
 *   proxy ID on|off                                kernel proxy_ndp entries for web1 and web2
 *   check ID                                       web2 pings web1 (exit 0 when answered)
 *   list                                           labs that exist on this machine
 */
import { spawnSync } from 'node:child_process';

import { DockerLab, type HostName, teardownSync } from './docker-lab.js';

const USAGE = `usage: scripts/docker-lab.sh up [--id ID] [--hosts 1|2] [--no-containers] [--dockerd-arg ARG]...
       scripts/docker-lab.sh down|env|check ID
       scripts/docker-lab.sh dockerd-start ID HOST | dockerd-stop ID HOST [--kill]
       scripts/docker-lab.sh docker ID HOST ARGS... | exec ID HOST|br CMD...
       scripts/docker-lab.sh addr ID HOST CONTAINER | proxy ID on|off | list`;

function need(v: string | undefined, what: string): string {
  if (v === undefined || v === '') throw new Error(`${what} needed\n${USAGE}`);
  return v;
}

function hostArg(v: string | undefined): HostName {
  if (v !== 'd1' && v !== 'd2') throw new Error(`unknown host ${v ?? ''} (d1 or d2)`);
  return v;
}

/** Run a command with the terminal's stdio; returns its exit code. */
function inherit(cmd: string, args: string[]): number {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up': {
      let id: string | undefined;
      let hosts: 1 | 2 = 2;
      let containers = true;
      const dockerdArgs: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === '--id') id = need(rest[++i], '--id');
        else if (a === '--hosts') {
          const h = rest[++i];
          if (h !== '1' && h !== '2') throw new Error('--hosts must be 1 or 2');
          hosts = h === '1' ? 1 : 2;
        } else if (a === '--no-containers') containers = false;
        else if (a?.startsWith('--dockerd-arg=')) dockerdArgs.push(a.slice('--dockerd-arg='.length));
        else if (a === '--dockerd-arg') dockerdArgs.push(need(rest[++i], '--dockerd-arg'));
        else throw new Error(`up: unknown option ${a}`);
      }
      const lab = await DockerLab.up({ id, hosts, containers, dockerdArgs });
      lab.release();
      const p = lab.upPhasesMs;
      process.stderr.write(
        `docker-lab: up: namespaces+dockerd ${p.engines} ms, image+containers ${p.images} ms, total ${Math.round(lab.upMs)} ms\n`,
      );
      process.stdout.write(lab.env());
      return 0;
    }
    case 'down':
      teardownSync(need(rest[0], 'lab id'));
      return 0;
    case 'env':
      process.stdout.write(DockerLab.open(need(rest[0], 'lab id')).env());
      return 0;
    case 'dockerd-start':
      await DockerLab.open(need(rest[0], 'lab id')).startDockerd(hostArg(rest[1]));
      return 0;
    case 'dockerd-stop':
      await DockerLab.open(need(rest[0], 'lab id')).stopDockerd(hostArg(rest[1]), rest[2] === '--kill' ? 'kill' : 'term');
      return 0;
    case 'docker': {
      const lab = DockerLab.open(need(rest[0], 'lab id'));
      return inherit('docker', ['-H', lab.host(hostArg(rest[1])).url, ...rest.slice(2)]);
    }
    case 'exec': {
      const lab = DockerLab.open(need(rest[0], 'lab id'));
      const where = rest[1] === 'br' ? lab.brNs : lab.host(hostArg(rest[1])).ns;
      return inherit('nsenter', [`--net=/var/run/netns/${where}`, '--', ...rest.slice(2)]);
    }
    case 'addr': {
      const lab = DockerLab.open(need(rest[0], 'lab id'));
      for (const a of await lab.containerAddresses(hostArg(rest[1]), need(rest[2], 'container'))) process.stdout.write(`${a}\n`);
      return 0;
    }
    case 'proxy': {
      const lab = DockerLab.open(need(rest[0], 'lab id'));
      const on = need(rest[1], 'on|off') === 'on';
      for (const h of Object.values(lab.hosts)) {
        for (const a of await lab.containerAddresses(h.name, h.name === 'd1' ? 'web1' : 'web2')) await lab.kernelProxy(h.name, a, on);
      }
      return 0;
    }
    case 'check': {
      const lab = DockerLab.open(need(rest[0], 'lab id'));
      const [a] = await lab.containerAddresses('d1', 'web1');
      if (a === undefined) throw new Error('web1 has no IPv6 address');
      const r = await lab.ping6('d2', 'web2', a, 2, 2);
      process.stdout.write(r.stdout);
      return r.ok ? 0 : 1;
    }
    case 'list':
      for (const id of DockerLab.list()) process.stdout.write(`${id}\n`);
      return 0;
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`docker-lab: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
