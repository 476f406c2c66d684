/** `ndp-responder doctor`: what the daemon needs, and what gets in its way. One line per check. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { COMMON_OPTIONS, UsageError, normaliseOptionalDocker, parseFlags } from './flags.js';
import { formatMac, formatAddress, formatCidr } from '../addr/index.js';
import { readInterfaceFacts, onLinkPrefixes, type InterfaceFacts } from '../io/interface.js';
import { DOCTOR_HELP } from './help.js';

type Level = 'ok' | 'warn' | 'fail' | 'info';
interface Check {
  level: Level;
  check: string;
  detail: string;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  interface: { type: 'string', short: 'i' },
  docker: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function readSys(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** CAP_NET_RAW is bit 13 of the effective capability set. */
export function hasCapNetRaw(statusText: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  if (!m) return false;
  return (BigInt('0x' + m[1]) & (1n << 13n)) !== 0n;
}

export async function doctorCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('doctor', normaliseOptionalDocker(args), OPTIONS, false);
  if (values.help) {
    process.stdout.write(DOCTOR_HELP);
    return 0;
  }
  const ifname = values.interface;
  if (ifname === undefined) throw new UsageError('doctor: --interface IF is required');
  const checks: Check[] = [];
  const add = (level: Level, check: string, detail: string) => checks.push({ level, check, detail });

  const status = readSys('/proc/self/status') ?? '';
  add(hasCapNetRaw(status) ? 'ok' : 'fail', 'privileges', hasCapNetRaw(status) ? 'CAP_NET_RAW present' : 'CAP_NET_RAW missing: run as root or grant cap_net_raw');

  let facts: InterfaceFacts | undefined;
  try {
    facts = readInterfaceFacts(ifname);
    add(facts.up ? 'ok' : 'warn', 'interface', `${ifname} ifindex ${facts.ifindex}, ${facts.up ? 'up' : 'DOWN'}, mtu ${facts.mtu}, MAC ${formatMac(facts.mac)}`);
    add(facts.linkLocal ? 'ok' : 'warn', 'link-local', facts.linkLocal ? formatAddress(facts.linkLocal) : 'none (needed by --source-policy link-local and MLD reports)');
    const prefixes = onLinkPrefixes(facts).map((p) => formatCidr(p.addr, p.prefixLength));
    add(prefixes.length > 0 ? 'ok' : 'warn', 'on-link prefixes', prefixes.length > 0 ? `${prefixes.join(', ')} (Docker addresses inside these are answered by default)` : 'none: give --prefix so Docker addresses are in scope');
  } catch (e) {
    add('fail', 'interface', `${ifname}: ${(e as Error).message}`);
  }

  try {
    const { AfPacketBackend } = await import('../io/afpacket.js');
    if (facts !== undefined && hasCapNetRaw(status)) {
      const b = AfPacketBackend.open({ ifname, ifindex: facts.ifindex });
      b.close();
      add('ok', 'native back end', 'AF_PACKET socket with BPF filter opened and closed');
    } else {
      add('info', 'native back end', 'addon loads (socket not tried)');
    }
  } catch (e) {
    add('fail', 'native back end', `${(e as Error).message} (build with 'npm run build', or use --backend pcap)`);
  }
  try {
    await import('../io/pcap-backend.js');
    add('ok', 'pcap back end', 'node_pcap and raw-socket load');
  } catch (e) {
    add('warn', 'pcap back end', `${(e as Error).message}`);
  }

  const fwd = readSys('/proc/sys/net/ipv6/conf/all/forwarding');
  add(fwd === '1' ? 'ok' : 'warn', 'forwarding', fwd === '1' ? 'net.ipv6.conf.all.forwarding=1' : 'net.ipv6.conf.all.forwarding is not 1: answered traffic reaches the host but is not routed to containers');
  const ra = readSys(`/proc/sys/net/ipv6/conf/${ifname}/accept_ra`);
  if (fwd === '1' && ra !== undefined && ra !== '2') {
    add('warn', 'accept_ra', `${ifname} accept_ra=${ra}: with forwarding on the kernel ignores Router Advertisements unless accept_ra=2 (a SLAAC default route would expire)`);
  }
  const proxy = readSys(`/proc/sys/net/ipv6/conf/${ifname}/proxy_ndp`);
  let proxyEntries = 0;
  try {
    proxyEntries = execFileSync('ip', ['-6', 'neigh', 'show', 'proxy', 'dev', ifname], { encoding: 'utf8', timeout: 5000 })
      .split('\n')
      .filter((l) => l.trim() !== '').length;
  } catch {
    /* ip missing or interface gone: reported above */
  }
  if (proxy === '1' && proxyEntries > 0) {
    add('warn', 'kernel proxy_ndp', `proxy_ndp=1 on ${ifname} with ${proxyEntries} proxy entries: the kernel answers those too (after up to proxy_delay); remove them to let ndp-responder answer alone`);
  } else {
    add('ok', 'kernel proxy_ndp', `proxy_ndp=${proxy ?? '?'}, ${proxyEntries} proxy entries on ${ifname}: not needed`);
  }
  if (facts !== undefined) {
    const flags = Number(readSys(`/sys/class/net/${ifname}/flags`) ?? '0');
    add('info', 'multicast', `${flags & 0x200 ? 'ALLMULTI ' : ''}${flags & 0x100 ? 'PROMISC ' : ''}flags 0x${flags.toString(16)}; snooping switches need MLD reports (on by default)`);
  }

  if (values.docker !== undefined) {
    try {
      const { default: Docker } = await import('dockerode');
      const { dockerOptions } = await import('../docker/watcher.js');
      const docker = new Docker(dockerOptions(values.docker === '' ? undefined : values.docker));
      const v = await docker.version();
      const list = await docker.listContainers();
      let v6 = 0;
      for (const c of list) for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) if (n.GlobalIPv6Address) v6++;
      add('ok', 'docker', `engine ${v.Version} (API ${v.ApiVersion}), ${list.length} running containers, ${v6} IPv6 addresses`);
    } catch (e) {
      add('fail', 'docker', `unreachable: ${(e as Error).message}`);
    }
  }

  if (values.json) {
    process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  } else {
    const tag: Record<Level, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };
    for (const c of checks) process.stdout.write(`${tag[c.level]} ${c.check}: ${c.detail}\n`);
  }
  return checks.some((c) => c.level === 'fail') ? 1 : 0;
}
