/** Byte-level IPv6 and MAC helpers for the hot path: no strings, no allocation. */

/** True when the 16 bytes at `off` are ff00::/8. */
export function isMulticast(b: Uint8Array, off: number): boolean {
  return b[off] === 0xff;
}

/** True when the 16 bytes at `off` are all zero (::). */
export function isUnspecified(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) return false;
  return true;
}

/** Compare 16 bytes. */
export function equal16(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Compare 6 bytes (MAC addresses). */
export function equal6(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 6; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** The solicited-node prefix ff02::1:ff00:0/104 (RFC 4291 section 2.7.1). */
const SOLICITED_NODE_PREFIX = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/** True when the 16 bytes at `groupOff` are the solicited-node group of the address at `addrOff`. */
export function isSolicitedNodeOf(group: Uint8Array, groupOff: number, addr: Uint8Array, addrOff: number): boolean {
  for (let i = 0; i < 13; i++) if (group[groupOff + i] !== SOLICITED_NODE_PREFIX[i]) return false;
  return (
    group[groupOff + 13] === addr[addrOff + 13] &&
    group[groupOff + 14] === addr[addrOff + 14] &&
    group[groupOff + 15] === addr[addrOff + 15]
  );
}

/** True when the 16 bytes at `off` are some solicited-node group (ff02::1:ffxx:xxxx). */
export function isSolicitedNode(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 13; i++) if (b[off + i] !== SOLICITED_NODE_PREFIX[i]) return false;
  return true;
}

/** Write the solicited-node group of the address at `addrOff` into `out` at `outOff`. */
export function solicitedNodeAddress(addr: Uint8Array, addrOff: number, out: Uint8Array, outOff: number): void {
  for (let i = 0; i < 13; i++) out[outOff + i] = SOLICITED_NODE_PREFIX[i]!;
  out[outOff + 13] = addr[addrOff + 13]!;
  out[outOff + 14] = addr[addrOff + 14]!;
  out[outOff + 15] = addr[addrOff + 15]!;
}

/** Write the Ethernet multicast MAC (33:33:ff:xx:xx:xx) of the solicited-node group of an address. */
export function solicitedNodeMac(addr: Uint8Array, addrOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  out[outOff + 2] = 0xff;
  out[outOff + 3] = addr[addrOff + 13]!;
  out[outOff + 4] = addr[addrOff + 14]!;
  out[outOff + 5] = addr[addrOff + 15]!;
}

/** Write the Ethernet multicast MAC for any IPv6 multicast group (33:33 + low 32 bits, RFC 2464 section 7). */
export function multicastMac(group: Uint8Array, groupOff: number, out: Uint8Array, outOff: number): void {
  out[outOff] = 0x33;
  out[outOff + 1] = 0x33;
  out[outOff + 2] = group[groupOff + 12]!;
  out[outOff + 3] = group[groupOff + 13]!;
  out[outOff + 4] = group[groupOff + 14]!;
  out[outOff + 5] = group[groupOff + 15]!;
}

/** Parse `aa:bb:cc:dd:ee:ff` (or with `-`) to 6 bytes. Edge use only. @throws Error on bad input. */
export function parseMac(text: string): Uint8Array {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new Error(`invalid MAC address '${text}' (expected aa:bb:cc:dd:ee:ff)`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Format 6 bytes at `off` as `aa:bb:cc:dd:ee:ff`. Edge use only. */
export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push((b[off + i] ?? 0).toString(16).padStart(2, '0'));
  return out.join(':');
}

/** True when the 16 bytes at `off` are a link-local unicast address (fe80::/10, RFC 4291 section 2.5.6). */
export function isLinkLocalUnicast(b: Uint8Array, off: number): boolean {
  return b[off] === 0xfe && (b[off + 1]! & 0xc0) === 0x80;
}

/**
 * Format 16 bytes at `off` as IPv6 text in the RFC 5952 canonical form (lower case,
 * longest run of two or more zero groups as `::`, first run on ties). Edge use only.
 */
export function formatIPv6(b: Uint8Array, off = 0): string {
  // Find the longest run (>= 2) of zero groups, the first on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if ((b[off + 2 * i] ?? 0) !== 0 || (b[off + 2 * i + 1] ?? 0) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && (b[off + 2 * j] ?? 0) === 0 && (b[off + 2 * j + 1] ?? 0) === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (((b[off + 2 * i] ?? 0) << 8) | (b[off + 2 * i + 1] ?? 0)).toString(16);
  }
  return out;
}

/**
 * Parse IPv6 text (`2001:db8::1`, `::`, `::ffff:192.0.2.1`; no zone, no prefix length) to 16 bytes.
 * Edge use only.
 * @throws Error on malformed text.
 */
export function parseIPv6(text: string): Uint8Array {
  const fast = parseHexIPv6(text);
  if (fast !== null) return fast;
  const bad = (): Error => new Error(`invalid IPv6 address '${text}'`);
  let s = text.trim();
  const groups: number[] = [];
  // An embedded dotted IPv4 tail (RFC 4291 section 2.2, form 3) becomes two groups.
  const v4 = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  let tail: number[] = [];
  if (v4) {
    const o = v4.slice(2, 6).map(Number);
    if (o.some((x) => x > 255)) throw bad();
    tail = [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
    s = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const parseHalf = (h: string): number[] => {
    if (h === '') return [];
    return h.split(':').map((p) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) throw bad();
      return parseInt(p, 16);
    });
  };
  const head = parseHalf(halves[0]!);
  if (halves.length === 2) {
    const rest = [...parseHalf(halves[1]!), ...tail];
    const fill = 8 - head.length - rest.length;
    if (fill < 1) throw bad();
    groups.push(...head, ...new Array<number>(fill).fill(0), ...rest);
  } else {
    groups.push(...head, ...tail);
  }
  if (groups.length !== 8) throw bad();
  const out = new Uint8Array(16);
  groups.forEach((v, i) => {
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/**
 * The hex-group forms (no dotted IPv4 tail) in one pass over the characters, without regular
 * expressions or intermediate arrays: the bulk path for address files. Returns null for
 * anything it does not accept (the caller then tries the general parser or reports the error).
 */
function parseHexIPv6(text: string): Uint8Array | null {
  const n = text.length;
  const groups = new Uint16Array(8);
  let count = 0;
  let gap = -1; // index in groups where '::' stands
  let i = 0;
  if (n >= 2 && text.charCodeAt(0) === 58 && text.charCodeAt(1) === 58) {
    gap = 0;
    i = 2;
    if (i === n) return new Uint8Array(16);
  } else if (n > 0 && text.charCodeAt(0) === 58) {
    return null;
  }
  while (i < n) {
    let v = 0;
    let digits = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      v = (v << 4) | d;
      if (++digits > 4) return null;
      i++;
    }
    if (digits === 0 || count === 8) return null;
    groups[count++] = v;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return null; // '.', space or anything else
    i++;
    if (i < n && text.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = count;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return null; // a trailing single ':'
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return null;
  const out = new Uint8Array(16);
  const shift = gap < 0 ? 0 : 8 - count;
  for (let k = 0; k < count; k++) {
    const at = gap >= 0 && k >= gap ? k + shift : k;
    out[2 * at] = groups[k]! >>> 8;
    out[2 * at + 1] = groups[k]! & 0xff;
  }
  return out;
}

