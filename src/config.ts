/**
 * Command-line parsing and validation: text in, typed settings out. Every error here is a
 * UsageError with a one-line message; the CLI prints it and exits 2.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseMac } from './ndp/address.js';
import { parseAddress, parseCidr } from './table/cidr.js';
import { Action, type Rule, type RuleSource } from './table/rule.js';
import { makeAddressRules, makeRule } from './table/target-table.js';
import { DEFAULT_ANSWER_SETTINGS, type AnswerSettings, type SourcePolicy } from './engine/types.js';
import { MAX_VLAN_ID, UNTAGGED_ONLY, VlanSet } from './engine/vlans.js';

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
  'no-override': { type: 'boolean' },
  vlan: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  'log-level': { type: 'string' },
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

function ruleFrom(text: string, flag: '--prefix' | '--address' | '--exclude', where = flag): Rule {
  try {
    const { length } = parseCidr(text);
    if (flag === '--address' && length !== 128 && text.includes('/')) {
      throw new Error(`'${text}' is a prefix; use --prefix for prefixes`);
    }
    return makeRule(text, flag === '--exclude' ? Action.Exclude : Action.Answer, staticSource(flag));
  } catch (e) {
    throw new UsageError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Read an address file: one address (or CIDR) per line; blank lines and `#` comments skipped.
 * @throws UsageError naming the file and line of the first bad entry.
 */
export function readAddressFile(path: string): Rule[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--address-file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read'}`);
  }
  const prefixes: Rule[] = [];
  const src = staticSource('--address');
  const lines = text.split('\n');
  // Plain addresses go back to back into one buffer (bulk /128 rules keep views into it);
  // a line with a prefix length becomes an ordinary rule.
  const addresses = new Uint8Array(lines.length * 16);
  let count = 0;
  let lineNo = 0;
  for (const raw of lines) {
    lineNo++;
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === '') continue;
    try {
      if (line.includes('/')) prefixes.push(makeRule(line, Action.Answer, src));
      else addresses.set(parseAddress(line), 16 * count++);
    } catch (e) {
      throw new UsageError(`--address-file ${path}:${lineNo}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const rules = makeAddressRules(addresses.slice(0, 16 * count), count, Action.Answer, src);
  for (const r of prefixes) rules.push(r);
  return rules;
}

/** The static rules from --prefix, --address, --address-file and --exclude. */
export function staticRules(values: {
  prefix?: string[] | undefined;
  address?: string[] | undefined;
  'address-file'?: string[] | undefined;
  exclude?: string[] | undefined;
}): Rule[] {
  const rules: Rule[] = [];
  for (const t of values.prefix ?? []) rules.push(ruleFrom(t, '--prefix'));
  for (const t of values.address ?? []) rules.push(ruleFrom(t, '--address'));
  // No spread: an address file can hold a million entries, more than a call's arguments.
  for (const f of values['address-file'] ?? []) for (const r of readAddressFile(f)) rules.push(r);
  for (const t of values.exclude ?? []) rules.push(ruleFrom(t, '--exclude'));
  return rules;
}

/** Answer settings from --source-policy, --router, --no-override and --vlan. */
export function answerSettings(values: {
  'source-policy'?: string | undefined;
  router?: boolean | undefined;
  'no-override'?: boolean | undefined;
  vlan?: string[] | undefined;
}): AnswerSettings {
  const sp = values['source-policy'] ?? DEFAULT_ANSWER_SETTINGS.sourcePolicy;
  if (sp !== 'link-local' && sp !== 'target') {
    throw new UsageError(`--source-policy: '${sp}' is not one of link-local, target`);
  }
  return {
    sourcePolicy: sp as SourcePolicy,
    router: values.router ?? DEFAULT_ANSWER_SETTINGS.router,
    override: values['no-override'] === true ? false : DEFAULT_ANSWER_SETTINGS.override,
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

/** The modified EUI-64 link-local address of a MAC (RFC 4291 appendix A), fe80::/64. */
export function linkLocalFromMac(mac: Uint8Array): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xfe;
  a[1] = 0x80;
  a[8] = mac[0]! ^ 0x02;
  a[9] = mac[1]!;
  a[10] = mac[2]!;
  a[11] = 0xff;
  a[12] = 0xfe;
  a[13] = mac[3]!;
  a[14] = mac[4]!;
  a[15] = mac[5]!;
  return a;
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
