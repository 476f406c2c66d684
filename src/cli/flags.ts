/**
 * Command-line parsing and validation: text in, typed settings out. Every error here is a
 * UsageError with a one-line message; the CLI prints it and exits 2.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { equal16, formatCidr, parseAddress, parseAddressBytes, parseCidr, parseMac } from '../addr/index.js';
import { ruleProblem } from '../service/scope.js';
import { Action, type Rule, type RuleSource } from '../table/rule.js';
import { AddressBlock } from '../table/address-block.js';
import { makeRule } from '../table/target-table.js';
import { DEFAULT_ANSWER_SETTINGS, type AnswerSettings, type SourcePolicy } from '../engine/types.js';
import { MAX_VLAN_ID, UNTAGGED_ONLY, VlanSet } from '../engine/vlans.js';

/** A bad flag, value or file: printed as one line, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** Options shared by run, replay and explain: which addresses are ours. */
export const RULE_OPTIONS = {
  prefix: { type: 'string', multiple: true },
  address: { type: 'string', multiple: true },
  'address-file': { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

/** Options shared by run and replay: how answers are built. */
export const ANSWER_OPTIONS = {
  'source-policy': { type: 'string' },
  router: { type: 'boolean' },
  override: { type: 'string' },
  'no-override': { type: 'boolean' },
  vlan: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

/** Options shared by run and explain: following Docker. */
export const DOCKER_OPTIONS = {
  docker: { type: 'string' },
  'docker-network': { type: 'string', multiple: true },
  'docker-label-opt-in': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/** `--docker` takes an optional URL: a bare `--docker` becomes `--docker=` (default URL). */
export function normaliseOptionalDocker(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    // A following word is the URL when it has a scheme (any: ssh:// must reach its clear
    // error) or is an absolute socket path; anything else is the next argument.
    if (a === '--docker' && (next === undefined || !(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(next) || next.startsWith('/')))) {
      out.push('--docker=');
    } else {
      out.push(a);
    }
  }
  return out;
}

/** The Docker settings from --docker, --docker-network and --docker-label-opt-in (undefined without --docker). */
export function dockerSettings(values: {
  docker?: string | undefined;
  'docker-network'?: string[] | undefined;
  'docker-label-opt-in'?: boolean | undefined;
}): { url: string | undefined; networks: string[]; labelOptIn: boolean } | undefined {
  if (values.docker === undefined) {
    if (values['docker-network'] !== undefined || values['docker-label-opt-in']) {
      throw new UsageError('--docker-network and --docker-label-opt-in need --docker');
    }
    return undefined;
  }
  return {
    url: values.docker === '' ? undefined : values.docker,
    networks: values['docker-network'] ?? [],
    labelOptIn: values['docker-label-opt-in'] ?? false,
  };
}

export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** parseArgs with errors turned into UsageErrors. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: O,
  allowPositionals: boolean,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new UsageError(`${command}: ${msg} (see 'ndp-responder ${command} --help')`);
  }
}

function staticSource(flag: '--prefix' | '--address' | '--exclude'): RuleSource {
  return { kind: 'static', flag };
}

/**
 * A rule from its text, refused when it cannot be meant: host bits set beyond the length (the
 * masked form is shown, as `ip route` refuses such a prefix), or a range no NS target lies in.
 * @throws Error with the reason.
 */
export function strictRule(text: string, action: Action, source: RuleSource): Rule {
  const { prefix, length } = parseCidr(text);
  const slash = text.indexOf('/');
  if (slash >= 0 && !equal16(parseAddress(text.slice(0, slash)), 0, prefix, 0)) {
    throw new Error(
      `'${text.trim()}' has host bits set beyond /${length}; the prefix is ${formatCidr(prefix, length)} (is that what you meant?)`,
    );
  }
  const problem = ruleProblem(prefix, length);
  if (problem !== undefined) throw new Error(`'${text.trim()}': ${problem}`);
  return makeRule(text, action, source);
}

function ruleFrom(text: string, flag: '--prefix' | '--address' | '--exclude', where = flag): Rule {
  try {
    const { length } = parseCidr(text);
    if (flag === '--address' && length !== 128 && text.includes('/')) {
      throw new Error(`'${text}' is a prefix; use --prefix for prefixes`);
    }
    return strictRule(text, flag === '--exclude' ? Action.Exclude : Action.Answer, staticSource(flag));
  } catch (e) {
    throw new UsageError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** What one address file held and how long it took to load (logged by `run`). */
export interface AddressFileStats {
  file: string;
  /** Exact addresses (one /128 rule each), duplicates not counted. */
  addresses: number;
  /** Lines with an address already given (ignored). */
  duplicates: number;
  /** Lines with a prefix length. */
  prefixes: number;
  ms: number;
}

/** Is the /128 at `off` one ruleProblem refuses (multicast, link-local, loopback, unspecified)? */
function neverAnAddress(a: Uint8Array, off: number): boolean {
  if (a[off] === 0xff || (a[off] === 0xfe && (a[off + 1]! & 0xc0) === 0x80)) return true;
  for (let i = 0; i < 15; i++) if (a[off + i] !== 0) return false;
  return a[off + 15]! <= 1;
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 11 || c === 12;

/**
 * Read an address file: one address (or CIDR) per line; blank lines and `#` comments skipped.
 * Plain addresses are read from the file's bytes straight into one buffer and become one
 * {@link AddressBlock} (no string or rule object per line on the way); a line with a prefix
 * length, or in a form the byte reader does not take (dotted IPv4 tail, non-ASCII space),
 * goes through the general text parser. Both accept and refuse exactly the same lines.
 * @param stats when given, receives the file's counts and load time.
 * @throws UsageError naming the file and line of the first bad entry.
 */
export function readAddressFile(path: string, stats?: AddressFileStats[]): Rule[] {
  const t0 = performance.now();
  const cannot = (e: unknown): UsageError =>
    new UsageError(`--address-file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read'}`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw cannot(e);
  }
  const prefixes: Rule[] = [];
  const src = staticSource('--address');
  let count = 0;
  let lineNo = 0;
  let addresses = new Uint8Array(0);
  try {
    const size = fstatSync(fd).size;
    // Room for as many addresses as the file could hold (4 bytes per line at least: "::2\n"):
    // pages never written are never resident, and the block keeps an exact-size copy.
    addresses = new Uint8Array(16 * (Math.ceil((size + 1) / 4) + 1));
    /** One line `buf[s..e)` (no newline). */
    const line = (buf: Buffer, s: number, e: number): void => {
      lineNo++;
      // The line without its comment and surrounding blanks; anything unusual takes the text path.
      let end = e;
      let slow = false;
      for (let k = s; k < e; k++) {
        const c = buf[k]!;
        if (c === 35) {
          end = k;
          break;
        }
        if (c === 47 || c >= 0x80) slow = true;
      }
      let a = s;
      while (a < end && isBlank(buf[a]!)) a++;
      let b = end;
      while (b > a && isBlank(buf[b - 1]!)) b--;
      if (a === b && !slow) return;
      if (16 * count + 16 > addresses.length) {
        // Only when the file grew after fstat (or is not a regular file).
        const bigger = new Uint8Array(2 * addresses.length);
        bigger.set(addresses);
        addresses = bigger;
      }
      if (!slow && parseAddressBytes(buf, a, b, addresses, 16 * count) && !neverAnAddress(addresses, 16 * count)) {
        count++;
        return;
      }
      const text = buf.toString('utf8', a, end).trim();
      if (text === '') return;
      try {
        if (text.includes('/')) prefixes.push(strictRule(text, Action.Answer, src));
        else {
          const addr = parseAddress(text);
          const problem = ruleProblem(addr, 128);
          if (problem !== undefined) throw new Error(`'${text}': ${problem}`);
          addresses.set(addr, 16 * count++);
        }
      } catch (err) {
        throw new UsageError(`--address-file ${path}:${lineNo}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // Read in chunks, not the whole file at once: a million lines are 40 MB of text that would
    // stay resident after start-up.
    let buf = Buffer.allocUnsafe(1 << 20);
    let have = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, have, buf.length - have, null);
      } catch (e) {
        throw cannot(e);
      }
      have += got;
      let s = 0;
      for (let e = buf.indexOf(10, s); e >= 0 && e < have; e = buf.indexOf(10, s)) {
        line(buf, s, e);
        s = e + 1;
      }
      if (got === 0) {
        line(buf, s, have); // the last line, without a newline (or empty)
        break;
      }
      buf.copy(buf, 0, s, have);
      have -= s;
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(2 * buf.length); // a line longer than the buffer
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
    }
  } finally {
    closeSync(fd);
  }
  const block = new AddressBlock(addresses, count, Action.Answer, src, true);
  // The block's own array when the file holds only addresses (a million pointers not copied):
  // callers must not change it (staticRules copies before it adds).
  let rules: Rule[] = block.rules;
  if (prefixes.length > 0) {
    rules = new Array<Rule>(block.count + prefixes.length);
    for (let i = 0; i < block.count; i++) rules[i] = block.rules[i]!;
    for (let i = 0; i < prefixes.length; i++) rules[block.count + i] = prefixes[i]!;
  }
  stats?.push({
    file: path,
    addresses: block.count,
    duplicates: block.duplicates,
    prefixes: prefixes.length,
    ms: Math.round(performance.now() - t0),
  });
  return rules;
}

/**
 * The static rules from --prefix, --address, --address-file and --exclude.
 * @param files when given, receives one entry per address file read.
 */
export function staticRules(
  values: {
    prefix?: string[] | undefined;
    address?: string[] | undefined;
    'address-file'?: string[] | undefined;
    exclude?: string[] | undefined;
  },
  files?: AddressFileStats[],
): Rule[] {
  const rules: Rule[] = [];
  for (const t of values.prefix ?? []) rules.push(ruleFrom(t, '--prefix'));
  for (const t of values.address ?? []) rules.push(ruleFrom(t, '--address'));
  // No spread: an address file can hold a million entries, more than a call's arguments. The
  // usual case, rules from one file only, keeps the file's array (readAddressFile's callers must
  // not change it) instead of copying it.
  const fileList = values['address-file'] ?? [];
  const excludes = values.exclude ?? [];
  for (const f of fileList) {
    const fromFile = readAddressFile(f, files);
    if (rules.length === 0 && fileList.length === 1 && excludes.length === 0) return fromFile;
    for (const r of fromFile) rules.push(r);
  }
  for (const t of excludes) rules.push(ruleFrom(t, '--exclude'));
  return rules;
}

/** Answer settings from --source-policy, --router, --override, --no-override (= --override never) and --vlan. */
export function answerSettings(values: {
  'source-policy'?: string | undefined;
  router?: boolean | undefined;
  override?: string | undefined;
  'no-override'?: boolean | undefined;
  vlan?: string[] | undefined;
}): AnswerSettings {
  if (values['no-override'] === true && values.override !== undefined && values.override !== 'never') {
    throw new UsageError(`--no-override contradicts --override ${values.override}`);
  }
  const mode = values['no-override'] === true ? 'never' : (values.override ?? DEFAULT_ANSWER_SETTINGS.overrideMode!);
  if (mode !== 'auto' && mode !== 'always' && mode !== 'never') {
    throw new UsageError(`--override: '${mode}' is not one of auto, always, never`);
  }
  const sp = values['source-policy'] ?? DEFAULT_ANSWER_SETTINGS.sourcePolicy;
  if (sp !== 'link-local' && sp !== 'target') {
    throw new UsageError(`--source-policy: '${sp}' is not one of link-local, target`);
  }
  return {
    sourcePolicy: sp as SourcePolicy,
    router: values.router ?? DEFAULT_ANSWER_SETTINGS.router,
    override: mode !== 'never',
    overrideMode: mode,
    vlans: vlanFlags(values.vlan),
  };
}

export function macFlag(text: string | undefined, flag = '--mac'): Uint8Array {
  if (text === undefined) throw new UsageError(`${flag} is required`);
  try {
    return parseMac(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

export function addressFlag(text: string, flag: string): Uint8Array {
  try {
    return parseAddress(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export function logLevel(text: string | undefined, dflt = 'info'): string {
  const l = text ?? dflt;
  if (!LOG_LEVELS.includes(l)) throw new UsageError(`--log-level: '${l}' is not one of ${LOG_LEVELS.join(', ')}`);
  return l;
}

/** A positive integer flag. */
export function intFlag(text: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: '${text}' is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag}: ${n} is out of range ${min}..${max}`);
  return n;
}

/**
 * `--vlan ID` (repeatable; `--vlan 10,20` also works): the 802.1Q VLANs answered besides
 * untagged frames. 1..4094; VID 0 is a priority tag on untagged traffic and always answered.
 */
export function vlanFlags(texts: string[] | undefined): VlanSet {
  const ids: number[] = [];
  for (const text of texts ?? []) {
    for (const part of text.split(',')) {
      const p = part.trim();
      if (!/^\d+$/.test(p)) throw new UsageError(`--vlan: '${part}' is not a VLAN ID (1..${MAX_VLAN_ID})`);
      const id = Number(p);
      if (id === 0) throw new UsageError('--vlan: 0 is a priority tag, not a VLAN: priority-tagged NS are answered as untagged');
      if (id > MAX_VLAN_ID) throw new UsageError(`--vlan: ${id} is out of range 1..${MAX_VLAN_ID}`);
      ids.push(id);
    }
  }
  return ids.length === 0 ? UNTAGGED_ONLY : new VlanSet(ids);
}
