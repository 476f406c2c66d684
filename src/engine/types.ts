import type { NaFlags, NaSender, SourcePolicy } from '../ndp/build.js';
import type { OverrideMode } from './decide.js';
import type { VlanSet } from './vlans.js';

export type { SourcePolicy };

/** Facts about the interface we answer on. Filled from the OS when live, from flags in replay. */
export interface HostFacts extends NaSender {
  /** Interface name, for logs. */
  readonly ifname: string;
  /** The interface's MAC: Ethernet source of every NA and the Target Link-Layer option. */
  readonly mac: Uint8Array;
  /** The interface's link-local address (16 bytes); NA source under `--source-policy link-local`. */
  readonly linkLocal: Uint8Array;
  /**
   * False while the interface has no valid link-local address yet (DAD running) and `linkLocal`
   * is a stand-in: MLD reports then come from :: (RFC 3810 section 5.2.13). Absent: valid.
   */
  readonly linkLocalValid?: boolean;
}

/** How NAs are built. */
export interface AnswerSettings extends NaFlags {
  /**
   * IPv6 source of our NAs. Default `target`: the NA comes from the address it speaks for,
   * exactly as the container would answer itself; ndisc6 and some provider filters only
   * accept that. `link-local` uses the interface's fe80:: address.
   */
  readonly sourcePolicy: SourcePolicy;
  /** R flag (we are a router). Default false. */
  readonly router: boolean;
  /** O flag when `overrideMode` is absent (and the value `overrideMode` starts from). */
  readonly override: boolean;
  /** `--override auto|always|never` (see engine/decide.ts `overrideFor`); absent: `override` as is. */
  readonly overrideMode?: OverrideMode;
  /**
   * 802.1Q VLANs answered besides untagged frames (`--vlan ID`, repeatable). Absent: untagged
   * (and VID 0 priority-tagged) frames only; a tagged NS is dropped as `vlan-not-served`.
   * A VlanSet (src/engine/vlans.ts).
   */
  readonly vlans?: VlanSet | undefined;
}

export const DEFAULT_ANSWER_SETTINGS: AnswerSettings = Object.freeze({
  sourcePolicy: 'target',
  router: false,
  override: true,
  overrideMode: 'auto',
});
