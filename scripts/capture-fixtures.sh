#!/usr/bin/env bash
# Capture real Neighbor Discovery frames from real peers (the Linux kernel, ndisc6) into fixtures/.
#
# Lab: network namespaces made by this script, "lan" (the soliciting peer) and "host" (where the
# responder would run), joined by a veth pair with fixed MAC addresses (lan eth0 <-> host eth0).
# tcpdump runs on the host side. Nothing outside these namespaces is touched; all are deleted on
# exit, also on failure.
#
# VLAN: this kernel is built without CONFIG_VLAN_8021Q (no `ip link add ... type vlan`), and has
# neither bridge VLAN filtering nor act_vlan. So the 802.1Q path is a third namespace "sw" acting
# as a VLAN switch: lan eth1 (untagged, access port) <-> sw acc; sw trunk <-> host eth1 (trunk).
# A small AF_PACKET relay in sw copies each frame from acc to trunk with an 802.1Q tag (VID 42)
# inserted after the MAC addresses; the NS itself is still the lan kernel's, byte for byte.
#
# Usage: sudo bash scripts/capture-fixtures.sh [OUTDIR]   (default: fixtures/ next to this script)
# Writes NAME.pcap + NAME.txt (tcpdump -vvv -e -nn rendering) per capture and capture-info.txt.
# Exits non-zero when any capture came out empty; existing fixtures are then left as they were.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../fixtures}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

tag="ndpfx$$"
LAN="$tag-lan"
HOST="$tag-host"
SW="$tag-sw"

LAN_MAC=02:00:00:aa:00:01
HOST_MAC=02:00:00:bb:00:02
LAN_ADDR=2003:ab11::1
HOST_ADDR=2003:ab11::2
VLAN_ID=42
LAN_VMAC=02:00:00:aa:00:42
HOST_VMAC=02:00:00:bb:00:42
LAN_VADDR=2001:db8:42::1
# Targets in the container range 2003:ab11::8000:0:0:0/66 that nobody in the lab owns.
T_KERNEL=2003:ab11::8000:0:0:1
T_NDISC6=2003:ab11::8000:0:0:2
T_DAD=2003:ab11::8000:0:0:dad
T_NUD=2003:ab11::8000:0:0:3
T_VLAN=2001:db8:42::8000:0:0:1
T_LOOPBACK=2003:ab11::8000:0:0:4

tmp="$(mktemp -d /tmp/ndp-fixtures.XXXXXX)"
tcpdump_pid=""
relay_pid=""
PYTHON="$(command -v python3)" || { echo "capture-fixtures: python3 is needed for the VLAN relay" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [[ -n "$tcpdump_pid" ]]; then kill "$tcpdump_pid" 2>/dev/null || true; fi
  if [[ -n "$relay_pid" ]]; then kill "$relay_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  ip netns del "$LAN" 2>/dev/null || true
  ip netns del "$HOST" 2>/dev/null || true
  ip netns del "$SW" 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "capture-fixtures: $*" >&2; exit 1; }
inlan() { ip netns exec "$LAN" "$@"; }
inhost() { ip netns exec "$HOST" "$@"; }
insw() { ip netns exec "$SW" "$@"; }

# --- lab -------------------------------------------------------------------------------------
ip netns add "$LAN"
ip netns add "$HOST"
ip netns add "$SW"
for ns in "$LAN" "$HOST" "$SW"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 \
    net.ipv6.conf.default.router_solicitations=0
  ip netns exec "$ns" ip link set lo up
done
# The veth pair is created inside the namespaces: its names cannot clash with the machine's.
inlan ip link add eth0 type veth peer name eth0 netns "$HOST"
inlan ip link set dev eth0 address "$LAN_MAC"
inhost ip link set dev eth0 address "$HOST_MAC"
inlan ip link add eth1 type veth peer name acc netns "$SW"
inhost ip link add eth1 type veth peer name trunk netns "$SW"
inlan ip link set dev eth1 address "$LAN_VMAC"
inhost ip link set dev eth1 address "$HOST_VMAC"
insw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
insw sysctl -qw net.ipv6.conf.acc.disable_ipv6=1 net.ipv6.conf.trunk.disable_ipv6=1
inlan ip -6 addr add "$LAN_ADDR/64" dev eth0 nodad
inhost ip -6 addr add "$HOST_ADDR/64" dev eth0 nodad
inlan ip -6 addr add "$LAN_VADDR/64" dev eth1 nodad
for ns in "$LAN" "$HOST"; do
  ip netns exec "$ns" ip link set eth0 up
  ip netns exec "$ns" ip link set eth1 up
done
insw ip link set acc up
insw ip link set trunk up
# NUD: go from DELAY to PROBE after 1 s instead of the default 5 s (only timing changes).
inlan sysctl -qw net.ipv6.neigh.eth0.delay_first_probe_time=1

# Wait (bounded) until the link-local addresses have finished their own DAD.
for _ in $(seq 1 50); do
  if [[ -z "$(inlan ip -6 addr show tentative)$(inhost ip -6 addr show tentative)" ]]; then break; fi
  sleep 0.1
done
[[ -z "$(inlan ip -6 addr show tentative)$(inhost ip -6 addr show tentative)" ]] || die "link-local DAD did not finish"

# --- capture helpers ---------------------------------------------------------------------------
# start_capture IF NAME COUNT FILTER...: tcpdump in "host" on IF, stops after COUNT frames or 8 s.
start_capture() {
  local ifname="$1" name="$2" count="$3"
  shift 3
  rm -f "$tmp/$name.pcap" "$tmp/$name.err"
  ip netns exec "$HOST" timeout 8 tcpdump -i "$ifname" -U -nn -s 0 -c "$count" -w "$tmp/$name.pcap" "$@" \
    2>"$tmp/$name.err" &
  tcpdump_pid=$!
  for _ in $(seq 1 50); do
    grep -q 'listening on' "$tmp/$name.err" 2>/dev/null && return 0
    sleep 0.1
  done
  die "tcpdump for $name did not start: $(cat "$tmp/$name.err")"
}
# finish_capture NAME: wait for tcpdump to end (count reached or timeout), check non-empty.
finish_capture() {
  local name="$1"
  wait "$tcpdump_pid" || true
  tcpdump_pid=""
relay_pid=""
PYTHON="$(command -v python3)" || { echo "capture-fixtures: python3 is needed for the VLAN relay" >&2; exit 1; }
  local size
  size=$(stat -c %s "$tmp/$name.pcap" 2>/dev/null || echo 0)
  [[ "$size" -gt 24 ]] || die "capture $name is empty ($(tail -n 2 "$tmp/$name.err" | tr '\n' ' '))"
  tcpdump -vvv -e -nn -r "$tmp/$name.pcap" >"$tmp/$name.txt" 2>/dev/null
  echo "captured $name: $(grep -c . "$tmp/$name.txt") lines, $size bytes"
}

# BPF filters: ICMPv6 NS (or NS/NA) whose target (ICMPv6 offset 8 = IPv6 offset 48) is ADDR,
# so retransmissions left over from an earlier step cannot end up in the wrong file.
target_match() {
  "$PYTHON" -c 'import ipaddress,sys
b=ipaddress.IPv6Address(sys.argv[1]).packed
print(" and ".join("ip6[%d:4] == 0x%s" % (48+i, b[i:i+4].hex()) for i in range(0,16,4)))' "$1"
}
ns_only() { echo "icmp6 and ip6[40] == 135 and $(target_match "$1")"; }
ns_na() { echo "icmp6 and (ip6[40] == 135 or ip6[40] == 136) and $(target_match "$1")"; }
# Stop lan's pending resolutions/probes so one step's retransmissions do not run into the next.
settle() { inlan ip -6 neigh flush dev eth0 >/dev/null 2>&1 || true; inlan ip -6 neigh flush dev eth1 >/dev/null 2>&1 || true; }

# 1. kernel-ns: the kernel resolves an address nobody owns (multicast NS with SLLAO).
start_capture eth0 kernel-ns 1 "$(ns_only "$T_KERNEL")"
inlan ping -6 -c1 -W1 "$T_KERNEL" >/dev/null 2>&1 || true
finish_capture kernel-ns
settle

# 2. ndisc6-ns: one NS from ndisc6 (user-space raw ICMPv6 socket).
start_capture eth0 ndisc6-ns 1 "$(ns_only "$T_NDISC6")"
inlan ndisc6 -1 -r1 -w 200 "$T_NDISC6" eth0 >/dev/null 2>&1 || true
finish_capture ndisc6-ns

# 3. dad-ns: the kernel's DAD probe for a new address (defaults: accept_dad, dad_transmits, enhanced_dad).
start_capture eth0 dad-ns 1 "$(ns_only "$T_DAD")"
inlan ip -6 addr add "$T_DAD/64" dev eth0
finish_capture dad-ns
settle
inlan ip -6 addr del "$T_DAD/64" dev eth0 || true

# 4. nud-ns: a STALE neighbour entry pointing at host's MAC is used -> DELAY -> PROBE:
#    unicast NS to the target, Ethernet destination = host's MAC.
inlan ip -6 neigh replace "$T_NUD" lladdr "$HOST_MAC" dev eth0 nud stale
start_capture eth0 nud-ns 1 "$(ns_only "$T_NUD")"
inlan ping -6 -c1 -W1 "$T_NUD" >/dev/null 2>&1 || true
finish_capture nud-ns
settle

# 5. vlan-ns: kernel NS from lan eth1, tagged VID 42 by the relay in sw, captured on host eth1.
#    veth hands the tag to the receiver out of band (skb metadata; PACKET_AUXDATA), and
#    tcpdump/libpcap writes it back in-band into the pcap.
insw timeout 6 "$PYTHON" - acc trunk "$VLAN_ID" >"$tmp/relay.log" 2>&1 <<'PY' &
import socket, sys
src, dst, vid = sys.argv[1], sys.argv[2], int(sys.argv[3])
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
rx.bind((src, 0))
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((dst, 0))
tag = bytes([0x81, 0x00, vid >> 8, vid & 0xFF])
print("relay ready", flush=True)
for _ in range(64):  # bounded; `timeout` ends it too
    frame, addr = rx.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    tx.send(frame[:12] + tag + frame[12:])
PY
relay_pid=$!
for _ in $(seq 1 50); do grep -q 'relay ready' "$tmp/relay.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'relay ready' "$tmp/relay.log" || die "VLAN relay did not start: $(cat "$tmp/relay.log")"
start_capture eth1 vlan-ns 1 "vlan $VLAN_ID and $(ns_only "$T_VLAN")"
inlan ping -6 -c1 -W1 "$T_VLAN" >/dev/null 2>&1 || true
finish_capture vlan-ns
settle
kill "$relay_pid" 2>/dev/null || true
wait "$relay_pid" 2>/dev/null || true
relay_pid=""
grep -q "vlan $VLAN_ID" "$tmp/vlan-ns.txt" || die "vlan-ns.pcap has no 802.1Q tag $VLAN_ID"

# 6. kernel-na: reference answer. lan resolves host's own address; the host kernel answers.
start_capture eth0 kernel-na 2 "$(ns_na "$HOST_ADDR")"
inlan ping -6 -c1 -W1 "$HOST_ADDR" >/dev/null 2>&1 || true
finish_capture kernel-na
settle
grep -q 'neighbor advertisement' "$tmp/kernel-na.txt" || die "kernel-na.pcap holds no NA"

# 7. kernel-dad-na: reference DAD defence. lan starts DAD for host's own address (duplicate);
#    the host kernel defends it with an NA to ff02::1 (S=0, O=1). lan's copy ends "dadfailed".
start_capture eth0 kernel-dad-na 2 "$(ns_na "$HOST_ADDR")"
inlan ip -6 addr add "$HOST_ADDR/64" dev eth0
finish_capture kernel-dad-na
settle
inlan ip -6 addr del "$HOST_ADDR/64" dev eth0 2>/dev/null || true
grep -q 'neighbor advertisement' "$tmp/kernel-dad-na.txt" || die "kernel-dad-na.pcap holds no NA"

# 8. loopback-ns: ndisc6 with source ::1 (-s ::1). The kernel sends it out of eth0 as asked, but
#    a receiving Linux drops it in ip6_rcv_core (loopback source on a non-loopback device).
start_capture eth0 loopback-ns 1 "$(ns_only "$T_LOOPBACK")"
inlan ndisc6 -1 -r1 -w 200 -s ::1 "$T_LOOPBACK" eth0 >/dev/null 2>&1 || true
finish_capture loopback-ns
grep -q '::1 > ff02::1:ff00:4' "$tmp/loopback-ns.txt" || die "loopback-ns.pcap is not an NS from ::1"

# --- provenance, then publish -------------------------------------------------------------------
{
  echo "captured-by: scripts/capture-fixtures.sh"
  echo "date-utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -r)"
  echo "ndisc6: $(ndisc6 -V 2>&1 | head -n1)"
  echo "tcpdump: $(tcpdump --version 2>&1 | head -n1)"
  echo "libpcap: $(tcpdump --version 2>&1 | sed -n 2p)"
  echo "ping: $(ping -V 2>&1 | head -n1)"
  echo "python3 (VLAN relay): $("$PYTHON" --version 2>&1)"
  echo "lan:  eth0 $LAN_MAC $LAN_ADDR/64; eth1 $LAN_VMAC $LAN_VADDR/64 (untagged, into the sw access port)"
  echo "host: eth0 $HOST_MAC $HOST_ADDR/64 (capture point); eth1 $HOST_VMAC no address (trunk, VID $VLAN_ID, capture point of vlan-ns)"
  echo "sw:   acc <-> lan eth1, trunk <-> host eth1; AF_PACKET relay acc -> trunk inserting 802.1Q VID $VLAN_ID"
  echo "sysctl (lan) net.ipv6.neigh.eth0.delay_first_probe_time=1; accept_ra=0, router_solicitations=0 in both"
} >"$tmp/capture-info.txt"

for name in kernel-ns ndisc6-ns dad-ns nud-ns vlan-ns kernel-na kernel-dad-na loopback-ns; do
  cp "$tmp/$name.pcap" "$tmp/$name.txt" "$out/"
done
cp "$tmp/capture-info.txt" "$out/"
echo "fixtures written to $out"
