/**
 * Facts about a network interface, read from Linux's /sys and /proc: index, MAC, MTU, state,
 * IPv6 addresses with prefix length and scope. The parsing functions are pure (they take the
 * file text) so they are tested on literal /proc text; `readInterfaceFacts` only reads files.
 *
 * Facts go stale: an interface can flap, be renamed or lose its link-local address. Nothing
 * here caches; callers re-read (poll, or re-read after a send error).
 */
import { readFileSync } from 'node:fs';
import { loadNative, type NativeModule } from './afpacket.js';
import { formatCidr, linkLocalFromMac, maskBytes } from '../addr/index.js';
import { CodedError } from './coded-error.js';

/** Scope of an IPv6 address as the kernel reports it (`ifp->scope`, include/net/ipv6.h). */
export type AddressScope = 'global' | 'host' | 'link' | 'site' | 'compat' | 'unknown';

/** Address flags from /proc/net/if_inet6 (IFA_F_*, include/uapi/linux/if_addr.h). */
export const IFA_F_TEMPORARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;

/** Interface flags from /sys/class/net/IF/flags (IFF_*, include/uapi/linux/if.h). */
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_PROMISC = 0x100;
export const IFF_ALLMULTI = 0x200;
export const IFF_MULTICAST = 0x1000;

export interface InterfaceAddress {
  /** 16 bytes. */
  readonly addr: Uint8Array;
  readonly prefixLength: number;
  readonly scope: AddressScope;
  /** IFA_F_* bits. */
  readonly flags: number;
}

/** One line of /proc/net/if_inet6. */
export interface IfInet6Entry extends InterfaceAddress {
  readonly ifindex: number;
  readonly ifname: string;
}

export interface InterfaceFacts {
  readonly ifname: string;
  readonly ifindex: number;
  /** 6 bytes. */
  readonly mac: Uint8Array;
  /**
   * The link-local address to speak from: the first fe80::/10 address that is neither
   * tentative (DAD still running: the kernel will not use it yet) nor failed DAD; null if none.
   */
  readonly linkLocal: Uint8Array | null;
  readonly addresses: readonly InterfaceAddress[];
  readonly mtu: number;
  /** Administratively up (IFF_UP) and operstate `up` (or `unknown`, which tun/dummy report when working). */
  readonly up: boolean;
  /** /sys/class/net/IF/operstate as is (`up`, `down`, `lowerlayerdown`, `unknown`, ...). */
  readonly operstate: string;
  /** IFF_* bits from /sys/class/net/IF/flags. */
  readonly flags: number;
}

/** An on-link prefix (a global address's prefix, host bits zeroed). */
export interface OnLinkPrefix {
  /** 16 bytes, host bits zeroed. */
  readonly addr: Uint8Array;
  readonly prefixLength: number;
  /** `2001:db8::/64`. */
  readonly text: string;
}

/** An Error with a `code`, as Node's own errors have. */
export class InterfaceError extends CodedError {}

/** Map the kernel's scope value (hex column 4 of if_inet6) to a name. */
export function scopeName(scope: number): AddressScope {
  switch (scope) {
    case 0x00:
      return 'global';
    case 0x10:
      return 'host';
    case 0x20:
      return 'link';
    case 0x40:
      return 'site';
    case 0x80:
      return 'compat';
    default:
      return 'unknown';
  }
}

/**
 * Parse /proc/net/if_inet6: one address per line, six whitespace-separated columns
 * `address(32 hex) ifindex(hex) prefixlen(hex) scope(hex) flags(hex) ifname`
 * (net/ipv6/addrconf.c, if6_seq_show). Malformed lines are skipped.
 *
 * @param ifname when given, keep only that interface's lines.
 */
export function parseIfInet6(text: string, ifname?: string): IfInet6Entry[] {
  const out: IfInet6Entry[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length !== 6) continue;
    const [hex, idx, plen, scope, flags, name] = cols as [string, string, string, string, string, string];
    if (ifname !== undefined && name !== ifname) continue;
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) continue;
    if (![idx, plen, scope, flags].every((c) => /^[0-9a-fA-F]{1,8}$/.test(c))) continue;
    const prefixLength = parseInt(plen, 16);
    if (prefixLength > 128) continue;
    const addr = new Uint8Array(16);
    for (let i = 0; i < 16; i++) addr[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    out.push({
      addr,
      ifindex: parseInt(idx, 16),
      prefixLength,
      scope: scopeName(parseInt(scope, 16)),
      flags: parseInt(flags, 16),
      ifname: name,
    });
  }
  return out;
}

/**
 * Parse a MAC as /sys/class/net/IF/address prints it (`aa:bb:cc:dd:ee:ff\n`).
 * @throws InterfaceError `EINVAL` when it is not a 6-byte MAC (e.g. a tunnel with no link layer).
 */
export function parseSysMac(text: string, what = 'address'): Uint8Array {
  const t = text.trim();
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(t)) {
    throw new InterfaceError('EINVAL', `${what}: '${t}' is not an Ethernet MAC address`);
  }
  return Uint8Array.from(t.split(':').map((p) => parseInt(p, 16)));
}

/**
 * Parse a number file from /sys (`1500\n`, or `0x1003\n` for flags).
 * @throws InterfaceError `EINVAL` on anything else.
 */
export function parseSysNumber(text: string, what: string): number {
  const t = text.trim();
  let v = NaN;
  if (/^0x[0-9a-fA-F]+$/.test(t)) v = parseInt(t.slice(2), 16);
  else if (/^\d+$/.test(t)) v = parseInt(t, 10);
  if (!Number.isSafeInteger(v)) throw new InterfaceError('EINVAL', `${what}: '${t}' is not a number`);
  return v;
}

/** Pick the link-local address to speak from (see {@link InterfaceFacts.linkLocal}). */
export function pickLinkLocal(addresses: readonly InterfaceAddress[]): Uint8Array | null {
  for (const a of addresses) {
    if (a.addr[0] !== 0xfe || (a.addr[1]! & 0xc0) !== 0x80) continue;
    if (a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) continue;
    return a.addr;
  }
  return null;
}

/** True for a name the kernel could have given an interface (and safe to put in a path). */
export function isValidIfname(name: string): boolean {
  return name.length > 0 && name.length < 16 && name !== '.' && name !== '..' && !/[/\s:\0]/.test(name);
}

/** Where the files are read from (tests point these at a fake tree). */
export interface InterfaceFactsPaths {
  /** Default `/sys/class/net`. */
  readonly sysClassNet?: string;
  /** Default `/proc/net/if_inet6`. */
  readonly procIfInet6?: string;
}

/**
 * Read an interface's facts from /sys/class/net/IF/{ifindex,address,mtu,operstate,flags} and
 * /proc/net/if_inet6 (in the caller's network namespace).
 *
 * @throws InterfaceError `ENODEV` when the interface does not exist, `EINVAL` on a bad name or a
 *   device without an Ethernet MAC; or the fs error (with its `code`) when a file can't be read.
 */
export function readInterfaceFacts(ifname: string, paths: InterfaceFactsPaths = {}): InterfaceFacts {
  if (!isValidIfname(ifname)) throw new InterfaceError('EINVAL', `invalid interface name '${ifname}'`);
  const dir = `${paths.sysClassNet ?? '/sys/class/net'}/${ifname}`;
  const read = (file: string): string => {
    try {
      return readFileSync(`${dir}/${file}`, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENODEV') {
        throw new InterfaceError('ENODEV', `interface '${ifname}' does not exist`, { cause: err });
      }
      throw err;
    }
  };
  // /sys shows the namespace it was mounted in; a process that entered another namespace with
  // setns/nsenter (a sidecar, `nsenter --net`) sees the wrong interfaces there. The native
  // addon's ioctls answer for the namespace we really run in, so they come first.
  const live = paths.sysClassNet === undefined ? ioctlFacts(ifname) : undefined;
  let ifindex: number, mac: Uint8Array, mtu: number, flags: number, operstate: string;
  if (live !== undefined) {
    ({ ifindex, mac, mtu, flags } = live);
    let sysIndex = -1;
    try {
      sysIndex = parseSysNumber(read('ifindex'), `${ifname} ifindex`);
    } catch {
      /* not in this /sys */
    }
    operstate = sysIndex === ifindex ? read('operstate').trim() : (flags & IFF_RUNNING) !== 0 ? 'up' : 'down';
  } else {
    ifindex = parseSysNumber(read('ifindex'), `${ifname} ifindex`);
    mac = parseSysMac(read('address'), `${ifname} address`);
    mtu = parseSysNumber(read('mtu'), `${ifname} mtu`);
    flags = parseSysNumber(read('flags'), `${ifname} flags`);
    operstate = read('operstate').trim();
  }
  let inet6 = '';
  try {
    inet6 = readFileSync(paths.procIfInet6 ?? '/proc/net/if_inet6', 'utf8');
  } catch (err) {
    // No IPv6 in this kernel/namespace: no addresses rather than a failure.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const addresses: InterfaceAddress[] = parseIfInet6(inet6, ifname)
    .filter((e) => e.ifindex === ifindex)
    .map(({ addr, prefixLength, scope, flags: f }) => ({ addr, prefixLength, scope, flags: f }));
  return {
    ifname,
    ifindex,
    mac,
    linkLocal: pickLinkLocal(addresses),
    addresses,
    mtu,
    up: (flags & IFF_UP) !== 0 && (operstate === 'up' || operstate === 'unknown'),
    operstate,
    flags,
  };
}

/**
 * The on-link prefixes of an interface: the prefix of every global address shorter than /128,
 * host bits zeroed, without duplicates, in address order. These bound where Docker's
 * containers (and so our answers) can live on this link.
 */
export function onLinkPrefixes(facts: Pick<InterfaceFacts, 'addresses'>): OnLinkPrefix[] {
  const out: OnLinkPrefix[] = [];
  const seen = new Set<string>();
  for (const a of facts.addresses) {
    if (a.scope !== 'global' || a.prefixLength >= 128) continue;
    const prefix = Uint8Array.from(a.addr);
    maskBytes(prefix, 0, a.prefixLength);
    const text = formatCidr(prefix, a.prefixLength);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push({ addr: prefix, prefixLength: a.prefixLength, text });
  }
  return out;
}

/** What answering needs of an interface: its name, MAC and a link-local address. */
export interface SenderFacts {
  readonly ifname: string;
  readonly mac: Uint8Array;
  readonly linkLocal: Uint8Array;
  /** False while `linkLocal` is only the EUI-64 stand-in (the kernel has no valid one yet). */
  readonly linkLocalValid: boolean;
}

/**
 * The sender's view of the interface. While the interface has no usable link-local address yet
 * (DAD still running just after it came up) the modified EUI-64 one stands in; the facts are
 * re-read and replaced once the kernel's is valid (see service/link.ts).
 */
export function toSenderFacts(facts: InterfaceFacts): SenderFacts {
  return {
    ifname: facts.ifname,
    mac: facts.mac,
    linkLocal: facts.linkLocal ?? linkLocalFromMac(facts.mac),
    linkLocalValid: facts.linkLocal !== null,
  };
}

/**
 * ifindex, MAC, MTU and flags from the native addon's ioctls, or undefined when the addon is not
 * built (the pcap back end's portable case: then /sys is read).
 * @throws InterfaceError ENODEV when the interface does not exist in this namespace.
 */
function ioctlFacts(ifname: string): { ifindex: number; mac: Uint8Array; mtu: number; flags: number } | undefined {
  let info: ReturnType<NonNullable<NativeModule['interfaceInfo']>>;
  try {
    const native = loadNative();
    if (native.interfaceInfo === undefined) return undefined;
    info = native.interfaceInfo(ifname);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENODEV') throw new InterfaceError('ENODEV', `interface '${ifname}' does not exist`, { cause: err });
    return undefined;
  }
  // ARPHRD_ETHER (1) has the 6-byte MAC we answer with; ARPHRD_LOOPBACK (772) reports a zero
  // one, as /sys does. Others (tun: ARPHRD_NONE) have no link-layer address to answer with.
  if (info.mac === undefined || (info.hwtype !== 1 && info.hwtype !== 772)) {
    throw new InterfaceError('EINVAL', `interface '${ifname}' is not an Ethernet interface`);
  }
  return { ifindex: info.ifindex, mac: Uint8Array.from(info.mac), mtu: info.mtu ?? 1500, flags: info.flags ?? 0 };
}
