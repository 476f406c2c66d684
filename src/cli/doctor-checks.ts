/**
 * The findings of `ndp-responder doctor`, from facts already read (pure functions, so each
 * finding and its fix can be tested on text). Every finding carries the exact command or
 * configuration that fixes it when it is not ok.
 */
import { formatCidr, prefixCovers } from '../addr/index.js';
import type { RouteVerdict } from '../table/route-table.js';

export type Level = 'ok' | 'warn' | 'fail' | 'info';

/** One line of doctor's output. */
export interface Finding {
  level: Level;
  check: string;
  detail: string;
  /** The command or configuration that fixes it (absent when there is nothing to fix). */
  fix?: string;
}

/** A range the host serves: a --prefix, or a Docker network's IPv6 subnet. */
export interface ServedRange {
  prefix: Uint8Array;
  length: number;
  /** Where it came from: `--prefix`, `docker network bridge`. */
  origin: string;
  /** The interface that should carry it (a Docker bridge), when known. */
  device?: string | undefined;
}

/** One line: `WARN check: detail; fix: command`. */
export function formatFinding(f: Finding): string {
  const tag: Record<Level, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };
  return `${tag[f.level]} ${f.check}: ${f.detail}${f.fix !== undefined ? `; fix: ${f.fix}` : ''}`;
}

/** The sysctl command and the line that keeps it over a reboot. */
export function sysctlFix(key: string, value: string | number): string {
  return `sysctl -w ${key}=${value} (and keep it: echo '${key}=${value}' >> /etc/sysctl.d/90-ndp-responder.conf)`;
}

/** `net.ipv6.conf.all.forwarding`. */
export function forwardingFinding(value: string | undefined): Finding {
  if (value === '1') return { level: 'ok', check: 'forwarding', detail: 'net.ipv6.conf.all.forwarding=1' };
  return {
    level: 'fail',
    check: 'forwarding',
    detail: `net.ipv6.conf.all.forwarding=${value ?? '?'}: traffic for containers reaches the host but is not routed to them`,
    fix: sysctlFix('net.ipv6.conf.all.forwarding', 1),
  };
}

/**
 * Kernel proxy_ndp: proxy entries on the uplink are answered by the kernel too (when proxy_ndp is
 * on for the interface or for all, and forwarding is on), a second answerer beside us.
 * @param entries the addresses of `ip -6 neigh show proxy dev IF`.
 */
export function proxyFinding(
  ifname: string,
  proxyNdpIf: string | undefined,
  proxyNdpAll: string | undefined,
  entries: readonly string[],
): Finding {
  const on = proxyNdpIf === '1' || proxyNdpAll === '1';
  const shown = entries.slice(0, 3).map((a) => `ip -6 neigh del proxy ${a} dev ${ifname}`);
  const more = entries.length > 3 ? ` (and the same for the other ${entries.length - 3}: ip -6 neigh show proxy dev ${ifname})` : '';
  const del = `${shown.join(' && ')}${more}`;
  const setting = `proxy_ndp=${proxyNdpIf ?? '?'} on ${ifname}, ${proxyNdpAll ?? '?'} on all`;
  if (entries.length === 0) {
    return { level: 'ok', check: 'kernel proxy_ndp', detail: `${setting}, no proxy entries on ${ifname}` };
  }
  const list = entries.slice(0, 3).join(', ') + (entries.length > 3 ? ', ...' : '');
  if (on) {
    const off = proxyNdpIf === '1' ? ` && sysctl -w net.ipv6.conf.${ifname}.proxy_ndp=0` : '';
    const offAll = proxyNdpAll === '1' ? ' && sysctl -w net.ipv6.conf.all.proxy_ndp=0' : '';
    return {
      level: 'warn',
      check: 'kernel proxy_ndp',
      detail: `${setting} with ${entries.length} proxy ${entries.length === 1 ? 'entry' : 'entries'} (${list}): the kernel answers for them too (with forwarding on, after up to proxy_delay)`,
      fix: `${del}${off}${offAll}`,
    };
  }
  return {
    level: 'info',
    check: 'kernel proxy_ndp',
    detail: `${setting}: ${entries.length} proxy ${entries.length === 1 ? 'entry' : 'entries'} (${list}) unused now, answered as soon as proxy_ndp is set`,
    fix: del,
  };
}

/** The other user-space NDP answerers looked for among running processes. */
export const OTHER_ANSWERERS: readonly string[] = ['ndppd', 'npd6', 'ndpresponder'];

/** A process running another NDP answerer in this network namespace. */
export function answererFinding(name: string, pid: number): Finding {
  return {
    level: 'warn',
    check: 'other answerer',
    detail: `${name} (pid ${pid}) runs in this network namespace and answers Neighbor Solicitations too`,
    fix: `systemctl disable --now ${name} (or: kill ${pid})`,
  };
}

/**
 * Whether FORWARD rules accept a range both ways: an ACCEPT rule with `-d` (or `-o` its bridge)
 * covering it, and one with `-s` (or `-i` its bridge). Rules with other matches (state, ports)
 * count too: the check is whether the operator (or Docker) wrote rules for it at all.
 */
function rangeAccepted(
  rules: readonly string[],
  r: ServedRange,
  parse: (cidr: string) => { prefix: Uint8Array; length: number },
): { to: boolean; from: boolean } {
  const covers = (cidr: string | undefined): boolean => {
    if (cidr === undefined) return false;
    try {
      const c = parse(cidr);
      return c.length <= r.length && prefixCovers(c.prefix, c.length, r.prefix);
    } catch {
      return false;
    }
  };
  let to = false;
  let from = false;
  for (const l of rules) {
    if (!/ -j ACCEPT\b/.test(l)) continue;
    const d = / -d (\S+)/.exec(l)?.[1];
    const s = / -s (\S+)/.exec(l)?.[1];
    const o = / -o (\S+)/.exec(l)?.[1];
    const i = / -i (\S+)/.exec(l)?.[1];
    if (covers(d) || (r.device !== undefined && o === r.device)) to = true;
    if (covers(s) || (r.device !== undefined && i === r.device)) from = true;
  }
  return { to, from };
}

/**
 * The FORWARD policy from `ip6tables -S FORWARD`. DROP/REJECT drops the containers' traffic the
 * host forwards unless rules accept it: ok when every served range is accepted both ways.
 * @param ranges the served ranges, for the exact ACCEPT rules to add.
 */
export function forwardPolicyFinding(
  text: string,
  ranges: readonly ServedRange[],
  parse: (cidr: string) => { prefix: Uint8Array; length: number },
): Finding {
  const m = /^-P FORWARD (\S+)/m.exec(text);
  if (m === null) return { level: 'info', check: 'ip6tables FORWARD', detail: "no policy line in 'ip6tables -S FORWARD'" };
  const policy = m[1]!;
  if (policy === 'ACCEPT') return { level: 'ok', check: 'ip6tables FORWARD', detail: 'policy ACCEPT' };
  const rules = text.split('\n').filter((l) => l.startsWith('-A FORWARD '));
  if (ranges.length === 0) {
    return {
      level: 'warn',
      check: 'ip6tables FORWARD',
      detail: `policy ${policy}: forwarded traffic to containers is dropped unless a rule accepts it (give --prefix RANGE or --docker to check the rules for each range)`,
      fix: 'ip6tables -I FORWARD -d RANGE -j ACCEPT && ip6tables -I FORWARD -s RANGE -j ACCEPT (for each container range), or ip6tables -P FORWARD ACCEPT',
    };
  }
  const fixes: string[] = [];
  const missing: string[] = [];
  for (const r of ranges) {
    const c = formatCidr(r.prefix, r.length);
    const a = rangeAccepted(rules, r, parse);
    if (!a.to) fixes.push(`ip6tables -I FORWARD -d ${c} -j ACCEPT`);
    if (!a.from) fixes.push(`ip6tables -I FORWARD -s ${c} -j ACCEPT`);
    if (!a.to || !a.from) missing.push(c);
  }
  if (fixes.length === 0)
    return {
      level: 'ok',
      check: 'ip6tables FORWARD',
      detail: `policy ${policy}, and rules accept ${ranges.length === 1 ? 'the container range' : `all ${ranges.length} container ranges`} both ways`,
    };
  return {
    level: 'warn',
    check: 'ip6tables FORWARD',
    detail: `policy ${policy} and no ACCEPT rule both ways for ${missing.join(', ')}: forwarded traffic to those containers is dropped`,
    fix: fixes.join(' && '),
  };
}

/**
 * Whether the host routes a served range away from the uplink (run answers only then).
 * @param verdict the route verdict for an address inside the range.
 * @param device the output interface name of that route, when known.
 * @param onLink the uplink's on-link prefixes.
 */
export function routeFinding(
  range: ServedRange,
  verdict: RouteVerdict,
  device: string | undefined,
  ifname: string,
  onLink: readonly { addr: Uint8Array; prefixLength: number }[],
): Finding {
  const c = formatCidr(range.prefix, range.length);
  const check = `route to ${c}`;
  if (verdict === 'elsewhere') return { level: 'ok', check, detail: `${range.origin}: routed to ${device ?? 'another interface'}` };
  // A --prefix as wide as the on-link prefix (ndppd style): only its routed-away parts are answered.
  if (onLink.some((p) => range.length <= p.prefixLength && prefixCovers(range.prefix, range.length, p.addr))) {
    return {
      level: 'info',
      check,
      detail: `${range.origin}: covers ${ifname}'s on-link prefix; only the addresses in it that the host routes away from ${ifname} (a container bridge) are answered`,
    };
  }
  const dev = range.device ?? '<the bridge the containers are on>';
  const fix = `ip -6 route add ${c} dev ${dev}`;
  switch (verdict) {
    case 'uplink':
      return {
        level: 'fail',
        check,
        detail: `${range.origin}: the host routes it out of ${ifname} itself, so nothing in it is answered (and forwarded packets would go back out)`,
        fix,
      };
    case 'none':
      return {
        level: 'fail',
        check,
        detail: `${range.origin}: no route: nothing in it is answered and the host cannot forward to it`,
        fix,
      };
    case 'local':
      return {
        level: 'warn',
        check,
        detail: `${range.origin}: a local route (an address of this host): the kernel answers for it, ndp-responder does not`,
        fix: `ip -6 route del local ${c} && ${fix}`,
      };
    default:
      return {
        level: 'fail',
        check,
        detail: `${range.origin}: route verdict '${verdict}': nothing in it is answered`,
        fix: `ip -6 route replace ${c} dev ${dev}`,
      };
  }
}

/** A Docker network as /networks lists it (the fields doctor reads). */
export interface DockerNetworkInfo {
  Name?: string;
  Id?: string;
  Driver?: string;
  EnableIPv6?: boolean;
  IPAM?: { Config?: { Subnet?: string }[] | null } | null;
  Options?: Record<string, string> | null;
}

/** The Linux bridge a bridge network uses: its option, else `br-` and the first 12 of the id. */
export function bridgeName(n: DockerNetworkInfo): string | undefined {
  if (n.Driver !== 'bridge') return undefined;
  return n.Options?.['com.docker.network.bridge.name'] ?? (n.Id !== undefined ? `br-${n.Id.slice(0, 12)}` : undefined);
}

/**
 * Docker's IPv6 settings (daemon.json `ipv6`, `fixed-cidr-v6`, `ip6tables`) as the engine shows
 * them: IPv6 on the default bridge and other bridge networks, their ranges, and whether Docker
 * manages ip6tables (its DOCKER chain is in `ip6tables -S`).
 * @param suggestRange a range to suggest for fixed-cidr-v6 (inside the on-link prefix), or undefined.
 * @param ip6tablesManaged true/false, or undefined when ip6tables could not be read.
 */
export function dockerFindings(
  networks: readonly DockerNetworkInfo[],
  suggestRange: string | undefined,
  ip6tablesManaged: boolean | undefined,
  forwardPolicy: string | undefined,
): Finding[] {
  const out: Finding[] = [];
  const bridges = networks.filter((n) => n.Driver === 'bridge');
  const v6 = bridges.filter((n) => n.EnableIPv6 === true);
  const dflt = bridges.find((n) => n.Name === 'bridge');
  const range = suggestRange ?? '<a part of the on-link prefix no other host uses>';
  const restart = 'then systemctl restart docker';
  if (dflt !== undefined) {
    const subnets = (dflt.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter((s) => s.includes(':'));
    if (dflt.EnableIPv6 === true && subnets.length > 0)
      out.push({ level: 'ok', check: 'docker ipv6', detail: `default bridge has IPv6, fixed-cidr-v6 ${subnets.join(', ')}` });
    else {
      out.push({
        level: v6.length > 0 ? 'info' : 'warn',
        check: 'docker ipv6',
        detail: `the default bridge network has no IPv6 (daemon.json "ipv6" is off)${v6.length > 0 ? `; ${v6.length} other network(s) have it` : ': containers on it get no IPv6 address'}`,
        fix: `/etc/docker/daemon.json: { "ipv6": true, "fixed-cidr-v6": "${range}" }, ${restart}`,
      });
    }
  } else if (v6.length === 0) {
    out.push({
      level: 'warn',
      check: 'docker ipv6',
      detail: 'no bridge network has IPv6',
      fix: `docker network create --ipv6 --subnet ${range} NAME`,
    });
  }
  if (v6.length > 0 && ip6tablesManaged === false) {
    const accept = forwardPolicy === 'ACCEPT';
    out.push({
      level: accept ? 'info' : 'warn',
      check: 'docker ip6tables',
      detail: `Docker does not manage ip6tables (no DOCKER chain)${accept ? ': containers are reachable only while the FORWARD policy stays ACCEPT' : ' and the FORWARD policy drops: containers are unreachable'}`,
      fix: `/etc/docker/daemon.json: "ip6tables": true (Docker before 27 also needs "experimental": true), ${restart}`,
    });
  } else if (v6.length > 0 && ip6tablesManaged === true) {
    out.push({ level: 'ok', check: 'docker ip6tables', detail: 'Docker manages ip6tables (DOCKER chain present)' });
  }
  return out;
}

/** The Docker networks' IPv6 ranges doctor checks routes for (bridge networks only). */
export function dockerRanges(
  networks: readonly DockerNetworkInfo[],
  parse: (cidr: string) => { prefix: Uint8Array; length: number },
): ServedRange[] {
  const out: ServedRange[] = [];
  for (const n of networks) {
    if (n.Driver !== 'bridge' || n.EnableIPv6 !== true) continue;
    for (const c of n.IPAM?.Config ?? []) {
      if (c.Subnet === undefined || !c.Subnet.includes(':')) continue;
      try {
        const { prefix, length } = parse(c.Subnet);
        out.push({ prefix, length, origin: `docker network ${n.Name ?? '?'}`, device: bridgeName(n) });
      } catch {
        /* a subnet Docker accepted but we cannot read: skipped */
      }
    }
  }
  return out;
}
