/**
 * IPv6 text at the edges: parse and print addresses and prefixes with the `ip-address` package.
 *
 * Everything inside the program carries addresses as 16 bytes (see `bytes.ts`); text
 * only appears where people type or read it (flags, config, Docker's API, logs, `explain`).
 * Parsing is strict: IPv4, zone identifiers, brackets, stray characters and out-of-range prefix
 * lengths are rejected with an `Error` that quotes the input, never silently accepted.
 */
import { Address6 } from 'ip-address';
import { maskBytes } from './bytes.js';

/** A parsed prefix: 16 bytes with the host bits zeroed, and its length. */
export interface Cidr {
  readonly prefix: Uint8Array;
  readonly length: number;
}

const LENGTH_RE = /^(?:0|[1-9][0-9]{0,2})$/;
/** Characters an IPv6 address may be written with (hex groups, `::`, embedded dotted IPv4). */
const ADDRESS_RE = /^[0-9A-Fa-f:.]+$/;
/** Pure hex-group forms, the common case (address files with a million lines). */
const HEX_FORM_RE = /^[0-9A-Fa-f:]+$/;

/**
 * Parse one IPv6 address (no prefix length, no zone) into 16 bytes.
 *
 * Accepts every RFC 4291 section 2.2 text form, including `::` elision and a trailing dotted
 * IPv4 part (`::ffff:192.0.2.1`). Surrounding whitespace is ignored.
 * @throws Error when the text is not exactly one IPv6 address (IPv4, zone id `%eth0`, `/len`,
 *   brackets, bad groups).
 */
export function parseAddress(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError(`IPv6 address must be a string, got ${typeof text}`);
  const t = text.trim();
  if (t === '') throw new Error('invalid IPv6 address: empty string');
  if (t.includes('%')) throw new Error(`invalid IPv6 address '${text}': zone identifiers (%...) are not allowed`);
  if (t.includes('/')) throw new Error(`invalid IPv6 address '${text}': a prefix length is not allowed here`);
  if (!t.includes(':')) {
    const hint = /^[0-9.]+$/.test(t) ? ' (IPv4 is not supported)' : '';
    throw new Error(`invalid IPv6 address '${text}'${hint}`);
  }
  if (!ADDRESS_RE.test(t)) throw new Error(`invalid IPv6 address '${text}': unexpected characters`);
  // Fast path for hex-group forms (~30x faster than Address6, which matters for 1,000,000-line
  // address files). Anything it refuses goes to Address6, which has the final word and the
  // diagnostic; dotted-IPv4 forms always do.
  if (HEX_FORM_RE.test(t)) {
    try {
      const fast = parseHexIPv6(t);
      if (fast !== null) return fast;
    } catch {
      /* Address6 below explains what is wrong */
    }
  }
  let a: Address6;
  try {
    a = new Address6(t);
  } catch (e) {
    throw new Error(`invalid IPv6 address '${text}': ${(e as Error).message}`, { cause: e });
  }
  const bytes = a.toUnsignedByteArray();
  if (bytes.length !== 16) throw new Error(`invalid IPv6 address '${text}': got ${bytes.length} bytes, not 16`);
  return Uint8Array.from(bytes);
}

/**
 * Parse `ADDR` (a /128) or `ADDR/LEN` (LEN 0..128, decimal, no leading zeros).
 * Host bits beyond LEN are zeroed, so `2001:db8::1/64` gives `2001:db8::/64`.
 * @throws Error on any bad input (see {@link parseAddress}; also a missing, non-decimal or
 *   out-of-range length).
 */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new TypeError(`IPv6 prefix must be a string, got ${typeof text}`);
  const t = text.trim();
  const slash = t.indexOf('/');
  if (slash < 0) return { prefix: parseAddress(t), length: 128 };
  const lenText = t.slice(slash + 1);
  if (!LENGTH_RE.test(lenText)) {
    throw new Error(`invalid IPv6 prefix '${text}': prefix length '${lenText}' is not a number 0..128`);
  }
  const length = Number(lenText);
  if (length > 128) throw new Error(`invalid IPv6 prefix '${text}': prefix length ${length} is out of range 0..128`);
  let prefix: Uint8Array;
  try {
    prefix = parseAddress(t.slice(0, slash));
  } catch (e) {
    throw new Error(`invalid IPv6 prefix '${text}': ${(e as Error).message}`, { cause: e });
  }
  maskBytes(prefix, 0, length);
  return { prefix, length };
}

/**
 * Print the 16 bytes at `off` in RFC 5952 canonical form (lower case, no leading zeros, the
 * longest run of two or more zero groups as `::`, the first such run on a tie).
 * @throws RangeError when fewer than 16 bytes are available at `off`.
 */
export function formatAddress(b: Uint8Array, off = 0): string {
  if (!Number.isInteger(off) || off < 0 || off + 16 > b.length) {
    throw new RangeError(`formatAddress: need 16 bytes at offset ${off}, buffer has ${b.length}`);
  }
  return rfc5952(b, off);
}

/**
 * Print a prefix as `ADDR/LEN` (always with the length, also for /128).
 * @throws RangeError when `length` is not an integer 0..128 or `prefix` is shorter than 16 bytes.
 */
export function formatCidr(prefix: Uint8Array, length: number): string {
  if (!Number.isInteger(length) || length < 0 || length > 128) {
    throw new RangeError(`formatCidr: prefix length ${length} is out of range 0..128`);
  }
  return `${formatAddress(prefix, 0)}/${length}`;
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

/**
 * Format 16 bytes at `off` as IPv6 text in the RFC 5952 canonical form (lower case,
 * longest run of two or more zero groups as `::`, first run on ties). Edge use only.
 */
function rfc5952(b: Uint8Array, off = 0): string {
  // Find the longest run (>= 2) of zero groups, the first on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
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

/** Scratch bytes for {@link parseHexIPv6}: the longest hex-group form is 39 characters. */
const SCRATCH_TEXT = new Uint8Array(39);

/**
 * The hex-group forms (no dotted IPv4 tail) of a string, by {@link parseAddressBytes} on its
 * characters: one parser for text and for file bytes. Returns null for anything it does not
 * accept (the caller then tries the general parser or reports the error).
 */
function parseHexIPv6(text: string): Uint8Array | null {
  const n = text.length;
  if (n > SCRATCH_TEXT.length) return null;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return null;
    SCRATCH_TEXT[i] = c;
  }
  const out = new Uint8Array(16);
  return parseAddressBytes(SCRATCH_TEXT, 0, n, out, 0) ? out : null;
}

/** Scratch groups for {@link parseAddressBytes} (one call at a time: JavaScript is single-threaded). */
const SCRATCH_GROUPS = new Uint16Array(8);

/**
 * The hex-group forms of an IPv6 address (`2001:db8::1`; no dotted IPv4 tail, no zone, no
 * length) read straight from ASCII bytes `buf[start..end)` into the 16 bytes at `outOff` of
 * `out`: the bulk path for address files of a million lines (no string per line). Accepts
 * exactly what {@link parseAddress} accepts among those forms.
 * @returns false, leaving `out` unspecified, for anything else: the caller then hands the line
 *   to {@link parseAddress} (dotted forms) or reports its error.
 */
export function parseAddressBytes(buf: Uint8Array, start: number, end: number, out: Uint8Array, outOff: number): boolean {
  const groups = SCRATCH_GROUPS;
  let count = 0;
  let gap = -1; // index in groups where '::' stands
  let i = start;
  if (end - start >= 2 && buf[i] === 58 && buf[i + 1] === 58) {
    gap = 0;
    i += 2;
  } else if (i < end && buf[i] === 58) {
    return false;
  }
  while (i < end) {
    let v = 0;
    let digits = 0;
    while (i < end) {
      const c = buf[i]!;
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      v = (v << 4) | d;
      if (++digits > 4) return false;
      i++;
    }
    if (digits === 0 || count === 8) return false;
    groups[count++] = v;
    if (i === end) break;
    if (buf[i] !== 58) return false; // '.', space or anything else
    i++;
    if (i < end && buf[i] === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return false; // a trailing single ':'
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  out.fill(0, outOff, outOff + 16);
  const shift = gap < 0 ? 0 : 8 - count;
  for (let k = 0; k < count; k++) {
    const at = outOff + 2 * (gap >= 0 && k >= gap ? k + shift : k);
    out[at] = groups[k]! >>> 8;
    out[at + 1] = groups[k]! & 0xff;
  }
  return true;
}
