/**
 * Pure helpers for the Docker watcher: read container IPv6 addresses out of the Engine API's
 * JSON (`GET /containers/json` entries and `GET /containers/{id}/json`), decide which of them
 * we answer for, and build the table rules. No I/O here; tested on JSON captured from
 * dockerd 20.10 (fixtures/docker/).
 */
import { formatCidr, parseAddress } from '../addr/index.js';
import { Action, type Rule } from '../table/rule.js';

/** The label a container uses to opt out (`=false`) or, in opt-in mode, in (`=true`). */
export const ENABLE_LABEL = 'ndp-responder.enable';

/** One IPv6 address of a container on one network, as text from the API. */
export interface NetworkAddress {
  /** Network name (the key of `NetworkSettings.Networks`). */
  readonly network: string;
  /** Network ID, '' when the API did not say. */
  readonly networkId: string;
  readonly address: string;
}

/** What the watcher needs to know about one container. */
export interface ContainerInfo {
  readonly id: string;
  /** Name without the leading '/'. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Running or paused: its network stays up, so we keep answering for it. */
  readonly running: boolean;
  readonly addresses: readonly NetworkAddress[];
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const o = obj(v);
  if (!o) return out;
  for (const [k, val] of Object.entries(o)) if (typeof val === 'string') out[k] = val;
  return out;
}

/**
 * Addresses from `NetworkSettings` (same shape in list entries and in inspect):
 * per network `GlobalIPv6Address` and `IPAMConfig.IPv6Address` (a `--ip6` the user asked for),
 * plus the legacy top-level `GlobalIPv6Address` and `SecondaryIPv6Addresses` (inspect only,
 * credited to `defaultNetwork`). Duplicates within a container are dropped.
 */
function addressesOf(networkSettings: unknown, defaultNetwork: string): NetworkAddress[] {
  const out: NetworkAddress[] = [];
  const seen = new Set<string>();
  const add = (network: string, networkId: string, address: string): void => {
    const a = address.trim();
    if (a === '' || seen.has(a)) return;
    seen.add(a);
    out.push({ network, networkId, address: a });
  };
  const ns = obj(networkSettings);
  if (!ns) return out;
  const networks = obj(ns['Networks']);
  if (networks) {
    for (const name of Object.keys(networks).sort()) {
      const n = obj(networks[name]);
      if (!n) continue;
      const id = str(n['NetworkID']);
      add(name, id, str(n['GlobalIPv6Address']));
      add(name, id, str(obj(n['IPAMConfig'])?.['IPv6Address']));
    }
  }
  const legacyNet = networks && Object.keys(networks).length === 1 ? Object.keys(networks)[0]! : defaultNetwork;
  const legacyId = str(obj(networks?.[legacyNet])?.['NetworkID']);
  add(legacyNet, legacyId, str(ns['GlobalIPv6Address']));
  const secondary = ns['SecondaryIPv6Addresses'];
  if (Array.isArray(secondary)) {
    for (const s of secondary) add(legacyNet, legacyId, str(obj(s)?.['Addr']));
  }
  return out;
}

/** Docker says `default` for the default bridge in `HostConfig.NetworkMode`. */
function networkModeName(mode: string): string {
  return mode === '' || mode === 'default' ? 'bridge' : mode;
}

/**
 * A `GET /containers/json` entry (the list already carries labels, state and per-network
 * addresses, so one list call is a full sync). Undefined when the entry has no ID.
 */
export function fromListEntry(entry: unknown): ContainerInfo | undefined {
  const e = obj(entry);
  if (!e) return undefined;
  const id = str(e['Id']);
  if (id === '') return undefined;
  const names = Array.isArray(e['Names']) ? (e['Names'] as unknown[]) : [];
  const name = str(names[0]).replace(/^\//, '') || id.slice(0, 12);
  const state = str(e['State']);
  const mode = networkModeName(str(obj(e['HostConfig'])?.['NetworkMode']));
  return {
    id,
    name,
    labels: labelsOf(e['Labels']),
    running: state === 'running' || state === 'paused',
    addresses: addressesOf(e['NetworkSettings'], mode),
  };
}

/** A `GET /containers/{id}/json` answer. Undefined when it has no ID. */
export function fromInspect(inspect: unknown): ContainerInfo | undefined {
  const e = obj(inspect);
  if (!e) return undefined;
  const id = str(e['Id']);
  if (id === '') return undefined;
  const state = obj(e['State']);
  const mode = networkModeName(str(obj(e['HostConfig'])?.['NetworkMode']));
  return {
    id,
    name: str(e['Name']).replace(/^\//, '') || id.slice(0, 12),
    labels: labelsOf(obj(e['Config'])?.['Labels']),
    // Docker keeps Running true while paused; Restarting means its network is being torn down.
    running: state?.['Running'] === true && state['Restarting'] !== true,
    addresses: addressesOf(e['NetworkSettings'], mode),
  };
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/**
 * Does the container's `ndp-responder.enable` label let it in? Opt-out mode (default): in
 * unless the label says false. Opt-in mode: in only when the label says true.
 */
export function labelAllows(labels: Readonly<Record<string, string>>, optIn: boolean): boolean {
  const v = labels[ENABLE_LABEL]?.trim().toLowerCase();
  if (optIn) return v !== undefined && TRUE_WORDS.has(v);
  return v === undefined || !FALSE_WORDS.has(v);
}

/** True when `network` (name and ID) is one of `wanted` (names, full IDs or 12-char short IDs). */
export function networkSelected(wanted: readonly string[] | undefined, network: string, networkId: string): boolean {
  if (!wanted || wanted.length === 0) return true;
  for (const w of wanted) {
    if (w === network) return true;
    if (networkId !== '' && w.length >= 12 && networkId.startsWith(w)) return true;
  }
  return false;
}

export interface SelectOptions {
  /**
   * Which addresses are ours (service/scope.ts): undefined admits the address, a string is the
   * reason it is not admitted. Without it every address is admitted.
   */
  readonly scope?: (addr: Uint8Array) => string | undefined;
  /** Only these networks (names or IDs); all when empty or absent. */
  readonly networks?: readonly string[];
  /** Only containers labelled `ndp-responder.enable=true`. */
  readonly labelOptIn?: boolean;
  /**
   * The driver of an address's network (`bridge`, `macvlan`...); undefined when not known, null
   * when Docker says the network does not exist (a container seen on a network that was removed
   * meanwhile: its address is skipped until the disconnect is read). Addresses on
   * {@link ON_LINK_DRIVERS} networks are skipped.
   */
  readonly networkDriver?: (address: NetworkAddress) => string | null | undefined;
}

/**
 * Network drivers that put a container on the uplink's link itself, with its own MAC (macvlan)
 * or the parent's (ipvlan): the container answers its own Neighbor Solicitations (or, in ipvlan
 * L3 mode, is routed, not bridged), so a second answer from us would only compete with it.
 */
export const ON_LINK_DRIVERS: ReadonlySet<string> = new Set(['macvlan', 'ipvlan']);

/** The key under which a network's driver is looked up: its ID, else `name:` + its name. */
export function networkKey(a: Pick<NetworkAddress, 'network' | 'networkId'>): string {
  return a.networkId !== '' ? a.networkId : `name:${a.network}`;
}

/** Why a container or one of its addresses is not admitted; scope reasons come from the scope callback. */
export type SkipReason =
  'not-running' | 'label' | 'network-filter' | 'on-link-driver' | 'network-gone' | 'invalid-address' | 'duplicate' | (string & {});

export interface Skipped {
  readonly containerId: string;
  readonly containerName: string;
  readonly network: string;
  /** '' for a whole container skipped before its addresses were looked at. */
  readonly address: string;
  readonly reason: SkipReason;
}

export interface Selection {
  /** One /128 Answer rule per admitted address, sorted by address. */
  readonly rules: Rule[];
  readonly skipped: Skipped[];
  /** Containers with at least one admitted address. */
  readonly containers: number;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 16; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** One /128 rule that answers for a container address. */
export function dockerRule(addr: Uint8Array, containerId: string, containerName: string, network: string): Rule {
  const prefix = Uint8Array.from(addr);
  return {
    prefix,
    length: 128,
    action: Action.Answer,
    source: { kind: 'docker', containerId, containerName, network },
    text: formatCidr(prefix, 128),
  };
}

/**
 * Build the full rule set from every known container. Containers are taken in name order
 * so that, should two ever claim one address, the choice does not depend on map order.
 */
export function selectRules(containers: Iterable<ContainerInfo>, opts: SelectOptions = {}): Selection {
  const rules: Rule[] = [];
  const skipped: Skipped[] = [];
  const seen = new Map<string, Rule>();
  const admitted = new Set<string>();
  const sorted = [...containers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  for (const c of sorted) {
    const skipAll = (reason: SkipReason): void => {
      skipped.push({ containerId: c.id, containerName: c.name, network: '', address: '', reason });
    };
    if (!c.running) {
      skipAll('not-running');
      continue;
    }
    if (!labelAllows(c.labels, opts.labelOptIn === true)) {
      skipAll('label');
      continue;
    }
    for (const a of c.addresses) {
      const skip = (reason: SkipReason): void => {
        skipped.push({ containerId: c.id, containerName: c.name, network: a.network, address: a.address, reason });
      };
      if (!networkSelected(opts.networks, a.network, a.networkId)) {
        skip('network-filter');
        continue;
      }
      const driver = opts.networkDriver?.(a);
      if (driver === null) {
        skip('network-gone');
        continue;
      }
      if (driver !== undefined && ON_LINK_DRIVERS.has(driver)) {
        skip('on-link-driver');
        continue;
      }
      let bytes: Uint8Array;
      try {
        bytes = parseAddress(a.address);
      } catch {
        skip('invalid-address');
        continue;
      }
      const outOfScope = opts.scope?.(bytes);
      if (outOfScope !== undefined) {
        skip(outOfScope);
        continue;
      }
      const key = formatCidr(bytes, 128);
      if (seen.has(key)) {
        skip('duplicate');
        continue;
      }
      const rule = dockerRule(bytes, c.id, c.name, a.network);
      seen.set(key, rule);
      rules.push(rule);
      admitted.add(c.id);
    }
  }
  rules.sort((x, y) => compareBytes(x.prefix, y.prefix));
  return { rules, skipped, containers: admitted.size };
}

/** Same address, same container, same network, same name: nothing to swap. */
export function sameRules(a: readonly Rule[], b: readonly Rule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.text !== y.text || x.source.kind !== 'docker' || y.source.kind !== 'docker') return false;
    if (x.source.containerId !== y.source.containerId) return false;
    if (x.source.containerName !== y.source.containerName || x.source.network !== y.source.network) return false;
  }
  return true;
}

/** Rules of `next` whose address is not in `prev` (for announcements). */
export function addedRules(prev: readonly Rule[], next: readonly Rule[]): Rule[] {
  const old = new Set(prev.map((r) => r.text));
  return next.filter((r) => !old.has(r.text));
}

/** Rules of `prev` whose address is gone from `next`. */
export function removedRules(prev: readonly Rule[], next: readonly Rule[]): Rule[] {
  return addedRules(next, prev);
}
