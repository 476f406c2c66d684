/** Wire constants for Ethernet, IPv6 and ICMPv6 Neighbor Discovery (RFC 4861, RFC 4443, RFC 8200). */

export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;
export const ETHERTYPE_IPV6 = 0x86dd;
/** IEEE 802.1Q customer VLAN tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** IEEE 802.1ad service tag (QinQ outer tag): we do not answer stacked tags. */
export const ETHERTYPE_QINQ = 0x88a8;

export const IPV6_HLEN = 40;
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMPV6 = 58;

export const ICMPV6_MLD2_REPORT = 143;
export const ICMPV6_MLD1_REPORT = 131;
export const ICMPV6_MLD1_DONE = 132;
export const ICMPV6_MLD_QUERY = 130;
export const ICMPV6_NS = 135;
export const ICMPV6_NA = 136;

/** Fixed part of an NS: type, code, checksum, reserved(4), target(16). RFC 4861 section 4.3. */
export const NS_LEN = 24;
/** Fixed part of an NA: type, code, checksum, flags+reserved(4), target(16). RFC 4861 section 4.4. */
export const NA_LEN = 24;

/** ND option types, RFC 4861 section 4.6 and RFC 3971 section 5.3.2 (nonce). */
export const OPT_SOURCE_LLA = 1;
export const OPT_TARGET_LLA = 2;
export const OPT_NONCE = 14;

/** NA flags (first byte of the flags word), RFC 4861 section 4.4. */
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

/** Every ND message must arrive with this hop limit, and is sent with it. */
export const ND_HOP_LIMIT = 255;

/** Length of a complete NA frame we send: Ethernet + IPv6 + NA + TLLA option (8). */
export const NA_FRAME_LEN = ETH_HLEN + IPV6_HLEN + NA_LEN + 8;
/** Same with one 802.1Q tag. */
export const NA_FRAME_LEN_VLAN = NA_FRAME_LEN + VLAN_HLEN;
