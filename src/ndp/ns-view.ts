/**
 * A parsed Neighbor Solicitation, as offsets into the frame it came from.
 * One instance is reused for every frame: parsing allocates nothing.
 * Offsets are absolute indexes into `frame`; -1 means "absent".
 */
export class NsView {
  /** The frame the offsets point into (the caller's buffer, not a copy). */
  frame: Uint8Array = new Uint8Array(0);
  /** Start of the Ethernet header in `frame`. */
  start = 0;
  /** Number of bytes of the frame (from `start`). */
  length = 0;
  /** 802.1Q TCI (PCP/DEI/VID, 16 bits) of the single VLAN tag, or -1 when untagged. */
  vlanTci = -1;
  /** Offset of the IPv6 header. */
  ipOff = 0;
  /** Offset of the ICMPv6 header. */
  icmpOff = 0;
  /** ICMPv6 length in bytes (the IPv6 payload length). */
  icmpLen = 0;
  /** Offset of the 16-byte target address. */
  targetOff = 0;
  /** Offset of the 6-byte MAC inside the Source Link-Layer Address option, or -1. */
  sllaoOff = -1;
  /** Offset of the Nonce option (its type byte), or -1. RFC 3971 / RFC 7527. */
  nonceOff = -1;
  /** True when the IPv6 source is the unspecified address (a DAD probe). */
  unspecifiedSource = false;

  /** Offset of the Ethernet source MAC. */
  get ethSrcOff(): number {
    return this.start + 6;
  }
  /** Offset of the Ethernet destination MAC. */
  get ethDstOff(): number {
    return this.start;
  }
  /** Offset of the 16-byte IPv6 source address. */
  get srcOff(): number {
    return this.ipOff + 8;
  }
  /** Offset of the 16-byte IPv6 destination address. */
  get dstOff(): number {
    return this.ipOff + 24;
  }

  /** Forget the previous frame (called by the parser before filling in a new one). */
  reset(frame: Uint8Array, start: number, length: number): void {
    this.frame = frame;
    this.start = start;
    this.length = length;
    this.vlanTci = -1;
    this.ipOff = 0;
    this.icmpOff = 0;
    this.icmpLen = 0;
    this.targetOff = 0;
    this.sllaoOff = -1;
    this.nonceOff = -1;
    this.unspecifiedSource = false;
  }
}
