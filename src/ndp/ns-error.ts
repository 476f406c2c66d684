/**
 * Why a frame is not a Neighbor Solicitation we may answer: the codec's verdict on the frame
 * alone (RFC 4861 section 7.1.1 and the checks Linux's IPv6 input makes before ND sees a packet).
 * The engine adds its own reasons (no rule, excluded, ...) in engine/verdict.ts; codec codes are
 * 0..63, the engine's from 64, so one number names one reason everywhere.
 *
 * Append new codes at the end, and their names to NS_ERROR_NAMES.
 */
export const NsError = Object.freeze({
  /** Not an error: a valid NS. */
  None: 0,
  /** Shorter than an Ethernet header plus a fixed IPv6 header. */
  TooShort: 1,
  /** Ethertype is neither IPv6 nor one 802.1Q tag carrying IPv6. */
  NotIPv6: 2,
  /** More than one VLAN tag (802.1ad / QinQ). */
  StackedVlan: 3,
  /** IP version field is not 6. */
  BadIPVersion: 4,
  /** Frame holds fewer bytes than the IPv6 payload length says. */
  Truncated: 5,
  /** Next header is not ICMPv6 (extension headers are not followed). */
  NotICMPv6: 6,
  /** ICMPv6 type is not Neighbor Solicitation. */
  NotNS: 7,
  /** IPv6 hop limit is not 255 (RFC 4861 7.1.1). */
  BadHopLimit: 8,
  /** ICMPv6 checksum does not verify. */
  BadChecksum: 9,
  /** ICMPv6 code is not 0. */
  BadCode: 10,
  /** ICMPv6 length is less than 24 octets. */
  IcmpTooShort: 11,
  /** Target address is multicast. */
  TargetMulticast: 12,
  /** An option has length 0 or runs past the end of the packet. */
  BadOptionLength: 13,
  /** Source is unspecified but destination is not a solicited-node address. */
  UnspecifiedSourceBadDestination: 14,
  /** Source is unspecified but a Source Link-Layer Address option is present. */
  UnspecifiedSourceWithSllao: 15,
  /** IPv6 source address is multicast. */
  MulticastSource: 16,
  /** Source Link-Layer Address option is not 6 octets of unicast MAC. */
  BadSourceLinkLayer: 17,
  /** IPv6 destination is neither the target nor the target's solicited-node group. */
  DestinationMismatch: 18,
} as const);
export type NsError = (typeof NsError)[keyof typeof NsError];

/** kebab-case names by code; used in logs, metrics and `--explain`. */
export const NS_ERROR_NAMES: ReadonlyMap<number, string> = new Map([
  [NsError.TooShort, 'too-short'],
  [NsError.NotIPv6, 'not-ipv6'],
  [NsError.StackedVlan, 'stacked-vlan'],
  [NsError.BadIPVersion, 'bad-ip-version'],
  [NsError.Truncated, 'truncated'],
  [NsError.NotICMPv6, 'not-icmpv6'],
  [NsError.NotNS, 'not-ns'],
  [NsError.BadHopLimit, 'bad-hop-limit'],
  [NsError.BadChecksum, 'bad-checksum'],
  [NsError.BadCode, 'bad-code'],
  [NsError.IcmpTooShort, 'icmp-too-short'],
  [NsError.TargetMulticast, 'target-multicast'],
  [NsError.BadOptionLength, 'bad-option-length'],
  [NsError.UnspecifiedSourceBadDestination, 'unspecified-source-bad-destination'],
  [NsError.UnspecifiedSourceWithSllao, 'unspecified-source-with-sllao'],
  [NsError.MulticastSource, 'multicast-source'],
  [NsError.BadSourceLinkLayer, 'bad-source-link-layer'],
  [NsError.DestinationMismatch, 'destination-mismatch'],
]);
