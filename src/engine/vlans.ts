/**
 * Which 802.1Q VLANs are answered. Untagged frames, and priority-tagged frames (VID 0, which
 * IEEE 802.1Q and Linux treat as untagged), are always answered; a frame tagged with any other
 * VLAN ID is answered only when the operator named that ID (`--vlan ID`): an uplink that is a
 * trunk must not have answers leak into VLANs it does not serve.
 */

/** The highest VLAN ID a frame may carry; 4095 is reserved (IEEE 802.1Q table 9-2). */
export const MAX_VLAN_ID = 4094;

/** A set of VLAN IDs (1..4094) as a 4096-entry table: one load per check on the hot path. */
export class VlanSet {
  private readonly served = new Uint8Array(4096);
  /** The IDs, ascending, for logs and `--help`-style summaries. */
  readonly ids: readonly number[];

  /** @throws RangeError for an ID outside 1..4094. */
  constructor(ids: Iterable<number> = []) {
    const list: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 1 || id > MAX_VLAN_ID) throw new RangeError(`VLAN ID ${id} is not in 1..${MAX_VLAN_ID}`);
      if (this.served[id] === 0) list.push(id);
      this.served[id] = 1;
    }
    this.ids = Object.freeze(list.sort((a, b) => a - b));
  }

  /**
   * True when a frame with this 802.1Q TCI (-1 when untagged) is answered: untagged, VLAN ID 0
   * (priority tag only), or a named VLAN. The PCP and DEI bits do not matter.
   */
  servesTci(tci: number): boolean {
    if (tci < 0) return true;
    const vid = tci & 0xfff;
    return vid === 0 || this.served[vid] === 1;
  }
}

/** No VLAN named: untagged (and priority-tagged) frames only. */
export const UNTAGGED_ONLY: VlanSet = new VlanSet();
