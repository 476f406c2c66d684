/**
 * Classic BPF programs for the AF_PACKET back end (attached with SO_ATTACH_FILTER before the
 * socket is bound, so no unfiltered frame ever reaches user space).
 *
 * Each program is the `tcpdump -dd` output of the expression in the comment beside it,
 * generated on a veth in a throwaway network namespace (tcpdump 4.99.3, libpcap 1.10.3):
 *
 *   ip netns add bpfgen && ip -n bpfgen link add v0 type veth peer name v1
 *   ip -n bpfgen link set v0 up && ip -n bpfgen link set v1 up
 *   ip netns exec bpfgen tcpdump -i v0 -dd 'EXPRESSION'
 *   ip netns del bpfgen
 *
 * The expressions use explicit `ether[]` offsets rather than tcpdump's `vlan` / `icmp6`
 * keywords on purpose: on a live Linux capture `vlan` compiles to ancillary loads
 * (SKF_AD_VLAN_TAG_PRESENT) and `icmp6` chases fragment headers. Here every offset is visible.
 *
 * VLAN: Linux strips a received 802.1Q tag into skb metadata before packet sockets see the
 * frame, so the filter sees such a frame in the untagged layout (the native side re-inserts
 * the tag from PACKET_AUXDATA afterwards). A tag that stays in the data (e.g. the inner tag of
 * a QinQ frame) is matched by the second half of each program. Both layouts are accepted.
 *
 * Offsets (untagged / one tag in the data):
 *   ethertype 12 / 16; IPv6 next header 20 / 24; ICMPv6 type right after IPv6 54 / 58;
 *   Hop-by-Hop next header 54 / 58, HBH length 55 / 59, ICMPv6 type after an 8-byte HBH 62 / 66.
 */

/** One classic BPF instruction (struct sock_filter). */
export interface BpfInstruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** A named classic BPF program with the tcpdump expression that produced it. */
export interface BpfProgram {
  readonly name: string;
  readonly expression: string;
  readonly instructions: readonly BpfInstruction[];
}

type Raw = readonly [code: number, jt: number, jf: number, k: number];

function program(name: string, expression: string, raw: readonly Raw[]): BpfProgram {
  const instructions = raw.map(([code, jt, jf, k]) => Object.freeze({ code, jt, jf, k }));
  return Object.freeze({ name, expression, instructions: Object.freeze(instructions) });
}

/**
 * Neighbor Solicitations (ICMPv6 type 135 directly after the IPv6 header) and MLD queries
 * (ICMPv6 type 130 after one 8-byte Hop-by-Hop header, as RFC 2710 / RFC 3810 require), each
 * untagged or with one 802.1Q tag in the data. The back end's default filter: the engine answers
 * the NS, the membership manager answers the MLD queries.
 *
 * (000) ldh [12]          (001) jeq #0x86dd jt 2 jf 13
 * (002) ldb [20]          (003) jeq #0x3a  jt 4  jf 6      next header ICMPv6?
 * (004) ldb [54]          (005) jeq #0x87  jt 27 jf 28     NS
 * (006) jeq #0x0 jt 7 jf 28                                next header Hop-by-Hop?
 * (007) ldb [54] jeq #0x3a; (009) ldb [55] jeq #0;  (011) ldb [62] jeq #0x82 (MLD query)
 * (013) jeq #0x8100 ... same checks 4 bytes further on ... (027) ret #262144  (028) ret #0
 */
export const NS_AND_MLD_QUERY: BpfProgram = program(
  'ns-and-mld-query',
  '(ether[12:2] = 0x86dd and ((ether[20] = 58 and ether[54] = 135) or ' +
    '(ether[20] = 0 and ether[54] = 58 and ether[55] = 0 and ether[62] = 130))) or ' +
    '(ether[12:2] = 0x8100 and ether[16:2] = 0x86dd and ((ether[24] = 58 and ether[58] = 135) or ' +
    '(ether[24] = 0 and ether[58] = 58 and ether[59] = 0 and ether[66] = 130)))',
  [
    [0x28, 0, 0, 0x0000000c],
    [0x15, 0, 11, 0x000086dd],
    [0x30, 0, 0, 0x00000014],
    [0x15, 0, 2, 0x0000003a],
    [0x30, 0, 0, 0x00000036],
    [0x15, 21, 22, 0x00000087],
    [0x15, 0, 21, 0x00000000],
    [0x30, 0, 0, 0x00000036],
    [0x15, 0, 19, 0x0000003a],
    [0x30, 0, 0, 0x00000037],
    [0x15, 0, 17, 0x00000000],
    [0x30, 0, 0, 0x0000003e],
    [0x15, 14, 15, 0x00000082],
    [0x15, 0, 14, 0x00008100],
    [0x28, 0, 0, 0x00000010],
    [0x15, 0, 12, 0x000086dd],
    [0x30, 0, 0, 0x00000018],
    [0x15, 0, 2, 0x0000003a],
    [0x30, 0, 0, 0x0000003a],
    [0x15, 7, 8, 0x00000087],
    [0x15, 0, 7, 0x00000000],
    [0x30, 0, 0, 0x0000003a],
    [0x15, 0, 5, 0x0000003a],
    [0x30, 0, 0, 0x0000003b],
    [0x15, 0, 3, 0x00000000],
    [0x30, 0, 0, 0x00000042],
    [0x15, 0, 1, 0x00000082],
    [0x6, 0, 0, 0x00040000],
    [0x6, 0, 0, 0x00000000],
  ],
);

/**
 * Router Advertisements, Neighbor Solicitations and Neighbor Advertisements (ICMPv6 types
 * 134..136 directly after the IPv6 header) and MLD queries (as in {@link NS_AND_MLD_QUERY}), each
 * untagged or with one 802.1Q tag in the data. The live daemon's filter: the engine answers the
 * NS, and learns from the advertisements of other nodes which addresses they use (the conflict
 * guard); the membership manager answers the MLD queries.
 *
 * (000) ldh [12]          (001) jeq #0x86dd jt 2 jf 13
 * (002) ldb [20]          (003) jeq #0x3a  jt 4  jf 6      next header ICMPv6?
 * (004) ldb [54]          (005) jge #0x86  jt 20 jf 29     type >= 134 ...
 * (006) jeq #0x0 ... (012) jeq #0x82 jt 28 jf 29           Hop-by-Hop then MLD query
 * (013) jeq #0x8100 ... the same 4 bytes further on ...    (019) jge #0x86 jt 20 jf 29
 * (020) jgt #0x88 jt 29 jf 28                              ... and <= 136
 * (028) ret #262144  (029) ret #0
 */
export const ND_AND_MLD_QUERY: BpfProgram = program(
  'nd-and-mld-query',
  '(ether[12:2] = 0x86dd and ((ether[20] = 58 and ether[54] >= 134 and ether[54] <= 136) or ' +
    '(ether[20] = 0 and ether[54] = 58 and ether[55] = 0 and ether[62] = 130))) or ' +
    '(ether[12:2] = 0x8100 and ether[16:2] = 0x86dd and ((ether[24] = 58 and ether[58] >= 134 and ether[58] <= 136) or ' +
    '(ether[24] = 0 and ether[58] = 58 and ether[59] = 0 and ether[66] = 130)))',
  [
    [0x28, 0, 0, 0x0000000c],
    [0x15, 0, 11, 0x000086dd],
    [0x30, 0, 0, 0x00000014],
    [0x15, 0, 2, 0x0000003a],
    [0x30, 0, 0, 0x00000036],
    [0x35, 14, 23, 0x00000086],
    [0x15, 0, 22, 0x00000000],
    [0x30, 0, 0, 0x00000036],
    [0x15, 0, 20, 0x0000003a],
    [0x30, 0, 0, 0x00000037],
    [0x15, 0, 18, 0x00000000],
    [0x30, 0, 0, 0x0000003e],
    [0x15, 15, 16, 0x00000082],
    [0x15, 0, 15, 0x00008100],
    [0x28, 0, 0, 0x00000010],
    [0x15, 0, 13, 0x000086dd],
    [0x30, 0, 0, 0x00000018],
    [0x15, 0, 3, 0x0000003a],
    [0x30, 0, 0, 0x0000003a],
    [0x35, 0, 9, 0x00000086],
    [0x25, 8, 7, 0x00000088],
    [0x15, 0, 7, 0x00000000],
    [0x30, 0, 0, 0x0000003a],
    [0x15, 0, 5, 0x0000003a],
    [0x30, 0, 0, 0x0000003b],
    [0x15, 0, 3, 0x00000000],
    [0x30, 0, 0, 0x00000042],
    [0x15, 0, 1, 0x00000082],
    [0x6, 0, 0, 0x00040000],
    [0x6, 0, 0, 0x00000000],
  ],
);

/**
 * Neighbor Advertisements (ICMPv6 type 136 directly after the IPv6 header), untagged or with
 * one 802.1Q tag in the data. For counting answers in tests and benchmarks: open a second
 * back end with this filter, never start it, and read `stats().kernelPackets`.
 *
 * (000) ldh [12]  (001) jeq #0x86dd jt 2 jf 6
 * (002) ldb [20]  (003) jeq #0x3a jt 4 jf 14   (004) ldb [54] (005) jeq #0x88 jt 13 jf 14
 * (006) jeq #0x8100 jt 7 jf 14  (007) ldh [16] (008) jeq #0x86dd
 * (009) ldb [24]  (010) jeq #0x3a  (011) ldb [58] (012) jeq #0x88  (013) ret #262144 (014) ret #0
 */
export const NA_ONLY: BpfProgram = program(
  'na',
  '(ether[12:2] = 0x86dd and ether[20] = 58 and ether[54] = 136) or ' +
    '(ether[12:2] = 0x8100 and ether[16:2] = 0x86dd and ether[24] = 58 and ether[58] = 136)',
  [
    [0x28, 0, 0, 0x0000000c],
    [0x15, 0, 4, 0x000086dd],
    [0x30, 0, 0, 0x00000014],
    [0x15, 0, 10, 0x0000003a],
    [0x30, 0, 0, 0x00000036],
    [0x15, 7, 8, 0x00000088],
    [0x15, 0, 7, 0x00008100],
    [0x28, 0, 0, 0x00000010],
    [0x15, 0, 5, 0x000086dd],
    [0x30, 0, 0, 0x00000018],
    [0x15, 0, 3, 0x0000003a],
    [0x30, 0, 0, 0x0000003a],
    [0x15, 0, 1, 0x00000088],
    [0x6, 0, 0, 0x00040000],
    [0x6, 0, 0, 0x00000000],
  ],
);

/**
 * Accept every frame (tcpdump with an empty expression: `ret #262144`). For tests that need to
 * see everything on a link, e.g. a capture at a test peer. Never the responder's filter.
 */
export const ACCEPT_ALL: BpfProgram = program('accept-all', '', [[0x6, 0, 0, 0x00040000]]);

/** Size of struct sock_filter. */
export const BPF_INSN_SIZE = 8;

/**
 * Encode a program as the bytes of a `struct sock_filter[]` in host byte order (what
 * SO_ATTACH_FILTER takes).
 * @throws RangeError when the program is empty, longer than 4096 instructions, or a field is out of range.
 */
export function encodeBpf(prog: BpfProgram | readonly BpfInstruction[]): Uint8Array {
  const insns = 'instructions' in prog ? prog.instructions : prog;
  if (insns.length === 0 || insns.length > 4096) {
    throw Object.assign(new RangeError(`BPF program must have 1..4096 instructions, got ${insns.length}`), {
      code: 'ERR_OUT_OF_RANGE',
    });
  }
  const bytes = new Uint8Array(insns.length * BPF_INSN_SIZE);
  const view = new DataView(bytes.buffer);
  const little = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  insns.forEach((insn, i) => {
    const { code, jt, jf, k } = insn;
    if (!isInt(code, 0xffff) || !isInt(jt, 0xff) || !isInt(jf, 0xff) || !isInt(k, 0xffffffff)) {
      throw Object.assign(new RangeError(`BPF instruction ${i} has a field out of range`), {
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    const o = i * BPF_INSN_SIZE;
    view.setUint16(o, code, little);
    view.setUint8(o + 2, jt);
    view.setUint8(o + 3, jf);
    view.setUint32(o + 4, k, little);
  });
  return bytes;
}

function isInt(v: number, max: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= max;
}
