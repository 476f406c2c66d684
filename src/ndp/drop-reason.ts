/**
 * Why a frame was not answered. Every frame the engine sees ends in exactly one
 * verdict: an answer kind or one of these reasons. Drops are counted, never thrown.
 *
 * Numeric values index counter arrays; append new reasons at the end.
 */
export enum DropReason {
  /** Not a drop. */
  None = 0,
  /** Shorter than an Ethernet header plus a fixed IPv6 header. */
  TooShort,
  /** Ethertype is neither IPv6 nor one 802.1Q tag carrying IPv6. */
  NotIPv6,
  /** More than one VLAN tag (802.1ad / QinQ). */
  StackedVlan,
  /** IP version field is not 6. */
  BadIPVersion,
  /** Frame holds fewer bytes than the IPv6 payload length says. */
  Truncated,
  /** Next header is not ICMPv6 (extension headers are not followed). */
  NotICMPv6,
  /** ICMPv6 type is not Neighbor Solicitation. */
  NotNS,
  /** IPv6 hop limit is not 255 (RFC 4861 7.1.1). */
  BadHopLimit,
  /** ICMPv6 checksum does not verify. */
  BadChecksum,
  /** ICMPv6 code is not 0. */
  BadCode,
  /** ICMPv6 length is less than 24 octets. */
  IcmpTooShort,
  /** Target address is multicast. */
  TargetMulticast,
  /** An option has length 0 or runs past the end of the packet. */
  BadOptionLength,
  /** Source is unspecified but destination is not a solicited-node address. */
  UnspecifiedSourceBadDestination,
  /** Source is unspecified but a Source Link-Layer Address option is present. */
  UnspecifiedSourceWithSllao,
  /** IPv6 source address is multicast. */
  MulticastSource,
  /** Source Link-Layer Address option is not 6 octets of unicast MAC. */
  BadSourceLinkLayer,
  /** IPv6 destination is neither the target nor the target's solicited-node group. */
  DestinationMismatch,
  /** Frame was sent from the host's own MAC address. */
  FromSelf,
  /** Target matches no rule. */
  NoRule,
  /** Target matches an exclusion (the longest matching rule excludes it). */
  Excluded,
  /** Target is one of the interface's own addresses: the kernel answers for it. */
  OwnAddress,
  /** The engine could not write the answer (output buffer too small). */
  NoBufferSpace,
  /**
   * IPv6 source is the loopback address ::1 (RFC 4291 2.5.3: never sent outside a node).
   * Linux: ip6_rcv_core drops it on any non-loopback device.
   */
  LoopbackSource,
  /**
   * IPv6 source is IPv4-mapped, ::ffff:0:0/96 (RFC 6890: never a source on the wire).
   * Linux 5.4 to 5.11 dropped it in ip6_rcv_core; later kernels drop it only for TCP.
   */
  Ipv4MappedSource,
  /** IPv6 destination is ::1 (RFC 4291 2.5.3). Linux: ip6_rcv_core, non-loopback device. */
  LoopbackDestination,
  /**
   * IPv6 destination is an interface-local multicast group, scope 1 (RFC 4291 errata 3480).
   * Linux: ip6_rcv_core, for frames not looped back.
   */
  InterfaceLocalDestination,
  /** IPv6 destination is a multicast group with the reserved scope 0 (RFC 4291 2.7). Linux: ip6_rcv_core. */
  ReservedScopeDestination,
  /** The NS carries an 802.1Q VLAN ID that `--vlan` does not name (answer policy, engine). */
  VlanNotServed,
  /**
   * Ethernet destination is a unicast MAC other than the interface's: the frame was meant for
   * another host (seen only in promiscuous mode, on a bridge port or a veth). Linux: the first
   * check of ip6_rcv_core, `skb->pkt_type == PACKET_OTHERHOST`.
   */
  OtherHost,
}

/** Number of DropReason values, for sizing counter arrays. */
export const DROP_REASON_COUNT = DropReason.OtherHost + 1;

/**
 * The reasons parseNS can return, in DropReason order (for tests and documentation): the
 * codec's checks, as opposed to the engine's (from-self, other-host, no-rule, excluded,
 * own-address, no-buffer-space, vlan-not-served), which need the host's MAC, the table or settings.
 */
export const PARSE_DROP_REASONS: readonly DropReason[] = Object.freeze([
  DropReason.TooShort,
  DropReason.NotIPv6,
  DropReason.StackedVlan,
  DropReason.BadIPVersion,
  DropReason.Truncated,
  DropReason.NotICMPv6,
  DropReason.NotNS,
  DropReason.BadHopLimit,
  DropReason.BadChecksum,
  DropReason.BadCode,
  DropReason.IcmpTooShort,
  DropReason.TargetMulticast,
  DropReason.BadOptionLength,
  DropReason.UnspecifiedSourceBadDestination,
  DropReason.UnspecifiedSourceWithSllao,
  DropReason.MulticastSource,
  DropReason.BadSourceLinkLayer,
  DropReason.DestinationMismatch,
  DropReason.LoopbackSource,
  DropReason.Ipv4MappedSource,
  DropReason.LoopbackDestination,
  DropReason.InterfaceLocalDestination,
  DropReason.ReservedScopeDestination,
]);

/** kebab-case names, index = DropReason value; used in logs, metrics and `--explain`. */
export const DROP_REASON_NAMES: readonly string[] = Object.freeze([
  'none',
  'too-short',
  'not-ipv6',
  'stacked-vlan',
  'bad-ip-version',
  'truncated',
  'not-icmpv6',
  'not-ns',
  'bad-hop-limit',
  'bad-checksum',
  'bad-code',
  'icmp-too-short',
  'target-multicast',
  'bad-option-length',
  'unspecified-source-bad-destination',
  'unspecified-source-with-sllao',
  'multicast-source',
  'bad-source-link-layer',
  'destination-mismatch',
  'from-self',
  'no-rule',
  'excluded',
  'own-address',
  'no-buffer-space',
  'loopback-source',
  'ipv4-mapped-source',
  'loopback-destination',
  'interface-local-destination',
  'reserved-scope-destination',
  'vlan-not-served',
  'other-host',
]);

/** What kind of answer was sent. */
export enum AnswerKind {
  /** Solicited NA to the NS's source (S=1). */
  Solicited = 1,
  /** DAD defence: NA to ff02::1 with S=0 (RFC 4861 7.2.4). */
  DadDefence = 2,
}

export const ANSWER_KIND_NAMES: readonly string[] = Object.freeze(['none', 'answer', 'dad-defence']);
