/**
 * `ndp-responder doctor`: what the daemon needs, and what gets in its way. One line per finding
 * (ok, WARN, FAIL, info), each not-ok finding with the exact command or configuration that fixes
 * it (doctor-checks.ts). Everything goes to stdout; the tools it runs (ip, ip6tables) have their
 * stderr captured, so nothing stray reaches the terminal.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { COMMON_OPTIONS, UsageError, normaliseOptionalDocker, parseFlags } from './flags.js';
import { formatMac, formatAddress, formatCidr, parseCidr } from '../addr/index.js';
import { readInterfaceFacts, onLinkPrefixes, type InterfaceFacts, type OnLinkPrefix } from '../io/interface.js';
import { CAP, capNames, hasCap, readCapabilities } from '../io/capabilities.js';
import { routeTableFromIpJson } from '../table/ip-routes.js';
import { routesAway } from '../table/route-table.js';
import {
  OTHER_ANSWERERS,
  answererFinding,
  dockerFindings,
  dockerRanges,
  formatFinding,
  forwardPolicyFinding,
  forwardingFinding,
  proxyFinding,
  routeFinding,
  sysctlFix,
  type DockerNetworkInfo,
  type Finding,
  type Level,
  type ServedRange,
} from './doctor-checks.js';
import { DOCTOR_HELP } from './help.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  interface: { type: 'string', short: 'i' },
  prefix: { type: 'string', multiple: true },
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

/** Run a tool; its stdout, or an Error (ENOENT when it is not installed). Its stderr never reaches ours. */
function tool(cmd: string, args: string[]): string | Error {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const first = (err.stderr ?? '').split('\n').find((l) => l.trim() !== '');
    return Object.assign(new Error(first ?? err.message), { code: err.code });
  }
}

/** CAP_NET_RAW is bit 13 of the effective capability set. */
export function hasCapNetRaw(statusText: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText);
  if (!m) return false;
  return (BigInt('0x' + m[1]) & (1n << 13n)) !== 0n;
}

/** Processes of another NDP answerer in this network namespace: [name, pid]. */
function otherAnswerers(): [string, number][] {
  const out: [string, number][] = [];
  let mine: string;
  try {
    mine = readlinkSync('/proc/self/ns/net');
  } catch {
    return out;
  }
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const comm = readSys(`/proc/${d}/comm`);
    if (comm === undefined || !OTHER_ANSWERERS.includes(comm)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/net`) === mine) out.push([comm, Number(d)]);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

/** The upper half of the first on-link /64, as a suggestion for fixed-cidr-v6. */
function suggestRange(onLink: readonly OnLinkPrefix[]): string | undefined {
  const p = onLink.find((x) => x.prefixLength === 64);
  if (p === undefined) return undefined;
  const a = new Uint8Array(p.addr);
  a[8] = 0x80;
  return formatCidr(a, 65);
}

export async function doctorCommand(args: string[]): Promise<number> {
  const { values } = parseFlags('doctor', normaliseOptionalDocker(args), OPTIONS, false);
  if (values.help) {
    process.stdout.write(DOCTOR_HELP);
    return 0;
  }
  const ifname = values.interface;
  if (ifname === undefined) throw new UsageError('doctor: --interface IF is required');
  const ranges: ServedRange[] = [];
  for (const t of values.prefix ?? []) {
    try {
      const { prefix, length } = parseCidr(t);
      ranges.push({ prefix, length, origin: '--prefix' });
    } catch (e) {
      throw new UsageError(`--prefix: ${(e as Error).message}`);
    }
  }
  const checks: Finding[] = [];
  const add = (level: Level, check: string, detail: string, fix?: string) =>
    checks.push(fix === undefined ? { level, check, detail } : { level, check, detail, fix });

  // Capabilities held (effective set) and the ones the daemon needs or can use.
  const status = readSys('/proc/self/status') ?? '';
  let rawOk: boolean;
  try {
    const caps = readCapabilities();
    rawOk = hasCap(caps.effective, CAP.NET_RAW);
    const held =
      caps.effective === 0n
        ? 'none'
        : caps.effective === caps.bounding
          ? `all ${capNames(caps.effective).split(',').length} of the bounding set`
          : capNames(caps.effective);
    if (rawOk) add('ok', 'capabilities', `effective: ${held} (CAP_NET_RAW needed; the daemon keeps only what it needs after start)`);
    else
      add(
        'fail',
        'capabilities',
        `effective: ${held}: CAP_NET_RAW missing, no packet socket`,
        'run as root, or give it: systemd unit AmbientCapabilities=CAP_NET_RAW CAP_SYS_NICE, or setcap cap_net_raw,cap_sys_nice+ep "$(readlink -f "$(command -v node)")"',
      );
    if (rawOk && !hasCap(caps.effective, CAP.SYS_NICE))
      add(
        'info',
        'capabilities',
        'CAP_SYS_NICE missing: --nice and --realtime are not applied',
        'systemd unit AmbientCapabilities=CAP_NET_RAW CAP_SYS_NICE',
      );
  } catch (e) {
    rawOk = hasCapNetRaw(status);
    add(rawOk ? 'ok' : 'fail', 'capabilities', `cannot read /proc/self/status: ${(e as Error).message}`);
  }

  let facts: InterfaceFacts | undefined;
  let onLink: OnLinkPrefix[] = [];
  try {
    facts = readInterfaceFacts(ifname);
    if (facts.up) add('ok', 'interface', `${ifname} ifindex ${facts.ifindex}, up, mtu ${facts.mtu}, MAC ${formatMac(facts.mac)}`);
    else add('warn', 'interface', `${ifname} ifindex ${facts.ifindex} is DOWN (operstate ${facts.operstate})`, `ip link set ${ifname} up`);
    if (facts.linkLocal) add('ok', 'link-local', formatAddress(facts.linkLocal));
    else
      add(
        'warn',
        'link-local',
        'none (needed by --source-policy link-local and MLD reports)',
        `sysctl -w net.ipv6.conf.${ifname}.addr_gen_mode=0 && ip link set ${ifname} down && ip link set ${ifname} up`,
      );
    onLink = onLinkPrefixes(facts);
    const texts = onLink.map((p) => formatCidr(p.addr, p.prefixLength));
    if (texts.length > 0) add('ok', 'on-link prefixes', `${texts.join(', ')} (Docker addresses inside these are answered by default)`);
    else
      add(
        'warn',
        'on-link prefixes',
        `none on ${ifname}: Docker addresses are in scope only inside --prefix rules`,
        `ndp-responder run --interface ${ifname} --docker --prefix RANGE (the containers' range)`,
      );
  } catch (e) {
    add('fail', 'interface', `${ifname}: ${(e as Error).message}`, "ip -br link (and give the uplink's name to --interface)");
  }

  try {
    const { AfPacketBackend } = await import('../io/afpacket.js');
    if (facts !== undefined && rawOk) {
      const b = AfPacketBackend.open({ ifname, ifindex: facts.ifindex });
      b.close();
      add('ok', 'native back end', 'AF_PACKET socket with BPF filter opened and closed');
    } else {
      add('info', 'native back end', 'addon loads (socket not tried)');
    }
  } catch (e) {
    add('fail', 'native back end', (e as Error).message, 'npm run build (needs g++, make, python3), or run with --backend pcap');
  }
  try {
    await import('../io/pcap-backend.js');
    add('ok', 'pcap back end', 'node_pcap and raw-socket load');
  } catch (e) {
    add(
      'info',
      'pcap back end',
      `${(e as Error).message} (only needed for --backend pcap)`,
      'apt-get install libpcap-dev && npm rebuild pcap raw-socket',
    );
  }

  const fwd = readSys('/proc/sys/net/ipv6/conf/all/forwarding');
  checks.push(forwardingFinding(fwd));
  const ra = readSys(`/proc/sys/net/ipv6/conf/${ifname}/accept_ra`);
  if (fwd === '1' && ra !== undefined && ra !== '2') {
    add(
      'warn',
      'accept_ra',
      `${ifname} accept_ra=${ra}: with forwarding on the kernel ignores Router Advertisements (a SLAAC default route would expire)`,
      sysctlFix(`net.ipv6.conf.${ifname}.accept_ra`, 2),
    );
  }

  // Other answerers: kernel proxy entries, ndppd/npd6/ndpresponder in this namespace.
  const neigh = tool('ip', ['-6', 'neigh', 'show', 'proxy', 'dev', ifname]);
  const entries =
    typeof neigh === 'string'
      ? neigh
          .split('\n')
          .map((l) => l.trim().split(/\s+/)[0] ?? '')
          .filter((a) => a !== '')
      : [];
  checks.push(
    proxyFinding(ifname, readSys(`/proc/sys/net/ipv6/conf/${ifname}/proxy_ndp`), readSys('/proc/sys/net/ipv6/conf/all/proxy_ndp'), entries),
  );
  const others = otherAnswerers();
  for (const [name, pid] of others) checks.push(answererFinding(name, pid));
  if (others.length === 0) add('ok', 'other answerer', `no ${OTHER_ANSWERERS.join(', ')} running in this network namespace`);

  if (facts !== undefined) {
    const flags = facts.flags;
    add(
      'info',
      'multicast',
      `${flags & 0x200 ? 'ALLMULTI ' : ''}${flags & 0x100 ? 'PROMISC ' : ''}flags 0x${flags.toString(16)}; snooping switches need MLD reports (on by default)`,
    );
  }

  // Docker: its IPv6 settings; its IPv6 networks join the ranges whose routes are checked.
  let networks: DockerNetworkInfo[] | undefined;
  if (values.docker !== undefined) {
    try {
      const { default: Docker } = await import('dockerode');
      const { dockerOptions } = await import('../docker/watcher.js');
      const docker = new Docker(dockerOptions(values.docker === '' ? undefined : values.docker));
      const v = await docker.version();
      const list = await docker.listContainers();
      networks = (await docker.listNetworks()) as DockerNetworkInfo[];
      let v6 = 0;
      for (const c of list) for (const n of Object.values(c.NetworkSettings?.Networks ?? {})) if (n.GlobalIPv6Address) v6++;
      add('ok', 'docker', `engine ${v.Version} (API ${v.ApiVersion}), ${list.length} running containers, ${v6} IPv6 addresses`);
      for (const r of dockerRanges(networks, parseCidr)) ranges.push(r);
    } catch (e) {
      add(
        'fail',
        'docker',
        `unreachable: ${(e as Error).message}`,
        'systemctl start docker, or give its socket: --docker unix:///path/docker.sock',
      );
    }
  }

  // The FORWARD policy (and whether Docker manages ip6tables) from ip6tables itself.
  const forward = tool('ip6tables', ['-S', 'FORWARD']);
  let policy: string | undefined;
  let managed: boolean | undefined;
  if (typeof forward === 'string') {
    checks.push(forwardPolicyFinding(forward, ranges, parseCidr));
    policy = /^-P FORWARD (\S+)/m.exec(forward)?.[1];
    const chains = tool('ip6tables', ['-S']);
    if (typeof chains === 'string') managed = /^-N DOCKER$/m.test(chains);
  } else if ((forward as NodeJS.ErrnoException).code === 'ENOENT') {
    add(
      'info',
      'ip6tables FORWARD',
      'ip6tables is not installed: the FORWARD policy was not checked (with nftables: nft list chain ip6 filter FORWARD)',
    );
  } else {
    add('info', 'ip6tables FORWARD', `ip6tables -S FORWARD failed: ${forward.message}`);
  }
  if (networks !== undefined) for (const f of dockerFindings(networks, suggestRange(onLink), managed, policy)) checks.push(f);

  // A route to each range, as run's route check sees it.
  if (ranges.length > 0) {
    const text = tool('ip', ['-j', '-6', 'route', 'show', 'table', 'all']);
    let routes: ReturnType<typeof routeTableFromIpJson> | undefined;
    if (typeof text === 'string') {
      try {
        routes = routeTableFromIpJson(text);
      } catch (e) {
        add('info', 'routes', `cannot read 'ip -j -6 route show table all': ${(e as Error).message}`);
      }
    } else {
      add('info', 'routes', `ip -j -6 route show table all failed: ${text.message}`);
    }
    if (routes !== undefined) {
      const names = new Map([...routes.ifindex].map(([n, i]) => [i, n]));
      const uplink = routes.ifindex.get(ifname) ?? -1;
      for (const r of ranges) {
        // One address inside the range (its first host) stands for it.
        const probe = new Uint8Array(r.prefix);
        if (r.length < 128) probe[15] = probe[15]! | 1;
        const route = routes.table.lookup(probe, 0);
        const device = route?.oifs.map((i) => names.get(i) ?? String(i)).join(',');
        checks.push(routeFinding(r, routesAway(routes.table, probe, 0, uplink), device, ifname, onLink));
      }
    }
  } else {
    add('info', 'routes', 'no container range to check (give --prefix RANGE or --docker)');
  }

  if (values.json) {
    process.stdout.write(JSON.stringify(checks, null, 2) + '\n');
  } else {
    for (const c of checks) process.stdout.write(formatFinding(c) + '\n');
  }
  return checks.some((c) => c.level === 'fail') ? 1 : 0;
}
