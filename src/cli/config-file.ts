/**
 * The configuration file of `run --config FILE` and the `NDP_RESPONDER_*` environment: YAML
 * (JSON is YAML) read with the `yaml` package, validated key by key. Every error names the file,
 * the line and the key (`FILE:LINE: KEY: reason`) and is a {@link UsageError}.
 *
 * Keys are `run`'s long flag names. `uplinks:` is a list of per-interface blocks; every other
 * top-level key is a default for all uplinks (or a process-wide setting: docker, metrics,
 * log-level, nice, realtime, control). Without `uplinks:`, a top-level `interface:` with its rules is the
 * one uplink.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Node, Pair } from 'yaml';
import { parseDockerUrl } from '../docker/url.js';
import { endpointOptions, processEnv } from '../docker/watcher.js';
import { parseListen } from '../service/http-server.js';
import { UsageError, answerSettings, intFlag, logLevel, staticRules } from './flags.js';

/** The `yaml` package, loaded at the first config file: `run` without `--config` never needs it. */
let yamlLib: typeof Yaml | undefined;
const yaml = (): typeof Yaml => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof Yaml);
const isMap = ((n: unknown) => yaml().isMap(n)) as typeof Yaml.isMap;
const isScalar = ((n: unknown) => yaml().isScalar(n)) as typeof Yaml.isScalar;
const isSeq = ((n: unknown) => yaml().isSeq(n)) as typeof Yaml.isSeq;

/** A flag-like value: what parseArgs would give for the same key. */
export type FlagValue = string | string[] | boolean;
/** Flag-like values by long flag name. */
export type FlagValues = Record<string, FlagValue | undefined>;

type Kind = 'string' | 'list' | 'bool';
/** Where a key may appear: in an uplink block, at the top level only (process-wide), or both. */
type Where = 'uplink' | 'global' | 'both';

/** Every key the file and the environment know, with its kind and where it belongs. */
export const CONFIG_KEYS: Readonly<Record<string, { kind: Kind; where: Where }>> = {
  interface: { kind: 'string', where: 'uplink' },
  prefix: { kind: 'list', where: 'uplink' },
  address: { kind: 'list', where: 'uplink' },
  'address-file': { kind: 'list', where: 'uplink' },
  exclude: { kind: 'list', where: 'uplink' },
  backend: { kind: 'string', where: 'both' },
  'source-policy': { kind: 'string', where: 'both' },
  router: { kind: 'bool', where: 'both' },
  override: { kind: 'string', where: 'both' },
  'no-override': { kind: 'bool', where: 'both' },
  'max-groups': { kind: 'string', where: 'both' },
  'no-mld': { kind: 'bool', where: 'both' },
  promiscuous: { kind: 'bool', where: 'both' },
  'no-announce': { kind: 'bool', where: 'both' },
  'no-route-check': { kind: 'bool', where: 'both' },
  'wait-interface': { kind: 'bool', where: 'both' },
  docker: { kind: 'string', where: 'global' },
  'docker-network': { kind: 'list', where: 'global' },
  'docker-label-opt-in': { kind: 'bool', where: 'global' },
  metrics: { kind: 'string', where: 'global' },
  'log-level': { kind: 'string', where: 'global' },
  nice: { kind: 'string', where: 'global' },
  realtime: { kind: 'string', where: 'global' },
  control: { kind: 'string', where: 'global' },
  'no-control': { kind: 'bool', where: 'global' },
};

/** Keys that say which addresses an uplink answers. */
export const RULE_KEYS = ['prefix', 'address', 'address-file', 'exclude'] as const;

/** The file, checked: top-level values and the uplink blocks (each with the line it starts on). */
export interface ConfigFile {
  readonly path: string;
  readonly top: FlagValues;
  readonly uplinks: readonly { readonly line: number; readonly values: FlagValues }[] | undefined;
}

/**
 * Check one value the way the flag would be checked (the same functions), so a bad value in the
 * file is refused with its place rather than later without one.
 * @throws Error with the reason.
 */
export function checkValue(key: string, v: FlagValue): void {
  const one = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      const msg = (e as Error).message;
      // Drop the flag name the shared checks prefix: the caller names the key.
      throw new Error(msg.replace(/^--[a-z-]+:\s*/, ''), { cause: e });
    }
  };
  switch (key) {
    case 'prefix':
    case 'address':
    case 'exclude':
      for (const t of v as string[]) one(() => staticRules({ [key]: [t] }));
      return;
    case 'backend':
      if (v !== 'afpacket' && v !== 'pcap') throw new Error(`'${String(v)}' is not one of afpacket, pcap`);
      return;
    case 'source-policy':
      one(() => answerSettings({ 'source-policy': v as string }));
      return;
    case 'override':
      one(() => answerSettings({ override: v as string }));
      return;
    case 'log-level':
      one(() => logLevel(v as string));
      return;
    case 'max-groups':
      one(() => intFlag(v as string, '--max-groups', 0, 0, 1 << 24));
      return;
    case 'nice':
      if (!/^-?\d+$/.test(v as string) || Number(v) < -20 || Number(v) > 0)
        throw new Error(`'${String(v)}' is not a whole number from -20 to 0`);
      return;
    case 'realtime':
      if (!/^\d+$/.test(v as string) || Number(v) > 99) throw new Error(`'${String(v)}' is not a whole number from 0 to 99`);
      return;
    case 'metrics':
      one(() => parseListen(v as string));
      return;
    case 'docker':
      if (v !== '') one(() => endpointOptions(parseDockerUrl(v as string, processEnv())));
      return;
    case 'interface':
    case 'control':
      if (v === '') throw new Error('must not be empty');
      return;
    default:
      return;
  }
}

/** Read and check a configuration file. @throws UsageError naming file, line and key. */
export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--config ${path}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read'}`);
  }
  return parseConfigText(text, path);
}

/** Check configuration text (YAML or JSON). @throws UsageError naming file, line and key. */
export function parseConfigText(text: string, path: string): ConfigFile {
  const { LineCounter, parseDocument } = yaml();
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineOf = (n: Node | null | undefined | unknown): number => {
    const r = (n as { range?: [number, number, number] } | null | undefined)?.range;
    return r ? lc.linePos(r[0]).line : 1;
  };
  const fail = (line: number, key: string | undefined, msg: string): never => {
    throw new UsageError(`${path}:${line}: ${key === undefined ? '' : `${key}: `}${msg}`);
  };
  const first = doc.errors[0];
  if (first !== undefined) {
    const line = first.linePos?.[0].line ?? 1;
    fail(line, undefined, `not valid YAML: ${first.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return { path, top: {}, uplinks: undefined };
  if (!isMap(root)) fail(lineOf(root), undefined, 'the file must be a mapping of keys (e.g. "uplinks:", "docker:")');

  const block = (pairs: Pair[], where: 'top' | 'uplink'): FlagValues => {
    const out: FlagValues = {};
    for (const pair of pairs) {
      const k = pair.key;
      const line = lineOf(k);
      if (!isScalar(k) || typeof k.value !== 'string') fail(line, undefined, 'keys must be plain words');
      const key = (k as { value: string }).value;
      if (key === 'uplinks') {
        if (where !== 'top') fail(line, key, 'only at the top level');
        continue;
      }
      const spec = CONFIG_KEYS[key];
      if (spec === undefined) {
        const near = Object.keys(CONFIG_KEYS).find((c) => editDistance(c, key.replace(/_/g, '-').toLowerCase()) <= 2);
        fail(
          line,
          key,
          `unknown key${near ? ` (did you mean '${near}'?)` : ''}; keys are run's long flag names (see 'ndp-responder run --help')`,
        );
      }
      if (where === 'uplink' && spec!.where === 'global')
        fail(line, key, 'is process-wide: put it at the top level, not in an uplink block');
      const vnode = pair.value as Node | null;
      const vline = vnode ? lineOf(vnode) : line;
      const v = valueOf(
        spec!.kind,
        vnode,
        (msg) => fail(vline, key, msg),
        lineOf,
        (l, msg) => fail(l, key, msg),
      );
      // A list is checked item by item, so an error names the item's own line.
      const items: [FlagValue, number][] =
        Array.isArray(v) && isSeq(vnode) ? v.map((x, i) => [[x], lineOf(vnode.items[i])] as [FlagValue, number]) : [[v, vline]];
      for (const [x, l] of items) {
        try {
          checkValue(key, x);
        } catch (e) {
          fail(l, key, (e as Error).message);
        }
      }
      out[key] = v;
    }
    return out;
  };

  const rootMap = root as { items: Pair[] };
  const top = block(rootMap.items, 'top');
  let uplinks: { line: number; values: FlagValues }[] | undefined;
  const upPair = rootMap.items.find((p) => isScalar(p.key) && p.key.value === 'uplinks');
  if (upPair !== undefined) {
    const line = lineOf(upPair.key);
    const seq = upPair.value as Node | null;
    if (!isSeq(seq)) fail(line, 'uplinks', 'must be a list of uplink blocks ("- interface: eth0 ...")');
    uplinks = [];
    const names = new Map<string, number>();
    for (const item of (seq as { items: unknown[] }).items) {
      const il = lineOf(item);
      if (!isMap(item)) fail(il, 'uplinks', 'each entry must be a block with at least "interface:"');
      const values = block((item as { items: Pair[] }).items, 'uplink');
      const name = values.interface;
      if (typeof name !== 'string') fail(il, 'uplinks', 'this uplink has no "interface:"');
      const prev = names.get(name as string);
      if (prev !== undefined) fail(il, 'interface', `'${String(name)}' is already listed at line ${prev}`);
      names.set(name as string, il);
      uplinks.push({ line: il, values });
    }
    if (uplinks.length === 0) fail(line, 'uplinks', 'is empty');
    for (const k of [...RULE_KEYS, 'interface'] as const) {
      if (top[k] !== undefined) {
        const p = rootMap.items.find((q) => isScalar(q.key) && q.key.value === k)!;
        fail(lineOf(p.key), k, 'belongs in an uplink block when "uplinks:" is given');
      }
    }
  }
  return { path, top, uplinks };
}

function valueOf(
  kind: Kind,
  node: Node | null,
  bad: (msg: string) => never,
  lineOf: (n: unknown) => number,
  badAt: (line: number, msg: string) => never,
): FlagValue {
  const scalarText = (n: unknown, at: (msg: string) => never): string => {
    if (!isScalar(n)) return at('expected a single value');
    const v = n.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return at(`expected text, got ${v === null ? 'nothing' : typeof v}`);
  };
  switch (kind) {
    case 'bool': {
      if (!isScalar(node) || typeof node.value !== 'boolean') return bad('expected true or false');
      return node.value;
    }
    case 'string': {
      // `docker: true` means "follow Docker at its default address"; `docker: false` is off.
      if (isScalar(node) && typeof node.value === 'boolean') return node.value ? '' : bad('to turn it off, leave the key out');
      if (node === null) return bad('expected a value');
      return scalarText(node, bad);
    }
    case 'list': {
      if (node === null) return bad('expected a list');
      if (isSeq(node)) return node.items.map((it) => scalarText(it, (msg) => badAt(lineOf(it), msg)));
      return [scalarText(node, bad)];
    }
  }
}

/** The environment variable for a key: `NDP_RESPONDER_` and the key in capitals, `-` as `_`. */
export function envName(key: string): string {
  return `NDP_RESPONDER_${key.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * Flag-like values from `NDP_RESPONDER_*` (the container case). Lists are separated by commas or
 * white space; booleans are 1/true/yes/on or 0/false/no/off; `NDP_RESPONDER_DOCKER` is a URL,
 * or 1/true for the default address. An unknown `NDP_RESPONDER_*` name is an error (a typo
 * would otherwise be ignored silently).
 * @throws UsageError naming the variable.
 */
export function envValues(env: NodeJS.ProcessEnv): FlagValues {
  const out: FlagValues = {};
  const known = new Map(Object.keys(CONFIG_KEYS).map((k) => [envName(k), k] as const));
  known.set(envName('config'), 'config');
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('NDP_RESPONDER_') || raw === undefined) continue;
    if (name === 'NDP_RESPONDER_DEBUG') continue;
    const key = known.get(name);
    if (key === undefined)
      throw new UsageError(`${name}: not a setting (names are NDP_RESPONDER_ and a flag name in capitals, e.g. NDP_RESPONDER_INTERFACE)`);
    if (key === 'config') {
      out.config = raw;
      continue;
    }
    const kind = CONFIG_KEYS[key]!.kind;
    const text = raw.trim();
    let v: FlagValue;
    if (kind === 'bool') {
      if (/^(1|true|yes|on)$/i.test(text)) v = true;
      else if (/^(0|false|no|off|)$/i.test(text)) continue;
      else throw new UsageError(`${name}: '${raw}' is not one of 1, true, yes, on, 0, false, no, off`);
    } else if (kind === 'list') {
      v = text.split(/[\s,]+/).filter((s) => s !== '');
      if (v.length === 0) continue;
    } else if (key === 'docker') {
      if (/^(0|false|no|off)$/i.test(text)) continue;
      v = /^(1|true|yes|on|)$/i.test(text) ? '' : text;
    } else {
      v = text;
    }
    try {
      checkValue(key, v);
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message}`);
    }
    out[key] = v;
  }
  return out;
}

/** Levenshtein distance (key suggestions). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
