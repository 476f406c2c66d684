/** Facts about the interface we answer on. Filled from the OS when live, from flags in replay. */
export interface HostFacts {
  /** Interface name, for logs. */
  readonly ifname: string;
  /** The interface's MAC: Ethernet source of every NA and the Target Link-Layer option. */
  readonly mac: Uint8Array;
  /** The interface's link-local address (16 bytes); NA source under `--source-policy link-local`. */
  readonly linkLocal: Uint8Array;
}

export type SourcePolicy = 'link-local' | 'target';

/** How NAs are built. */
export interface AnswerSettings {
  /**
   * IPv6 source of our NAs. Default `target`: the NA comes from the address it speaks for,
   * exactly as the container would answer itself; ndisc6 and some provider filters only
   * accept that. `link-local` uses the interface's fe80:: address.
   */
  readonly sourcePolicy: SourcePolicy;
  /** R flag (we are a router). Default false. */
  readonly router: boolean;
  /** O flag. Default true (`--no-override` clears it). */
  readonly override: boolean;
  /**
   * 802.1Q VLANs answered besides untagged frames (`--vlan ID`, repeatable). Absent: untagged
   * (and VID 0 priority-tagged) frames only; a tagged NS is dropped as `vlan-not-served`.
   * A VlanSet (src/engine/vlans.ts).
   */
  readonly vlans?: { servesTci(tci: number): boolean } | undefined;
}

export const DEFAULT_ANSWER_SETTINGS: AnswerSettings = Object.freeze({
  sourcePolicy: 'target',
  router: false,
  override: true,
});
