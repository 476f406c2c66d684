#!/usr/bin/env bash
# startup.sh: time to `ready` and resident memory of `ndp-responder run --address-file` for N
# exact addresses, in a namespace of its own (a veth pair, both ends inside it).
#
# Usage: bash bench/startup.sh [--sizes 1,100000,1000000] [--runs 3] [-- extra run flags]
# Prints one JSON line per run: {size, run, readyMs (spawn to the `ready` log line), cpuMs (user +
# system CPU of the process at ready: less sensitive to a loaded machine), rssMB (VmRSS 0.5 s after
# ready), hwmMB (VmHWM), load}. NDPR_CLI picks another build (default dist/src/cli.js).
# Needs root, gcc (builds bench/gen-addrs.c into bench/build/) and dist/ (npm run build).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=1,100000,1000000
runs=3
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: bench/startup.sh [--sizes N,..] [--runs R] [-- run flags]" >&2; exit 2 ;;
  esac
done
mkdir -p bench/build
[ bench/build/gen-addrs -nt bench/gen-addrs.c ] || gcc -O2 -o bench/build/gen-addrs bench/gen-addrs.c
ns="ndpst$$"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link add v-host type veth peer name v-lan
ip -n "$ns" link set v-host up
ip -n "$ns" link set v-lan up
ip -n "$ns" -6 addr add 2001:db8:77::2/64 dev v-host nodad
IFS=, read -ra list <<<"$sizes"
for n in "${list[@]}"; do
  f="bench/build/addrs-$n.txt"
  [ -s "$f" ] || bench/build/gen-addrs --prefix 2001:db8:77:0:0:0:0:0 --len 64 --count "$n" >"$f"
  for ((r = 1; r <= runs; r++)); do
    log="bench/build/startup-$n-$r.log"
    rm -f "$log" # else the wait below could see the last run's `ready`
    t0=$(date +%s%N)
    ip netns exec "$ns" node "${NDPR_CLI:-dist/src/cli.js}" run --interface v-host --address-file "$f" "${extra[@]}" >"$log" 2>&1 &
    pid=$!
    ready=""
    # Bounded wait: 120 s.
    for ((i = 0; i < 12000; i++)); do
      if grep -q '"msg":"ready"' "$log" 2>/dev/null; then
        ready=$(date +%s%N)
        cpu=$(awk '{print $14 + $15}' /proc/$pid/stat)
        break
      fi
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      sleep 0.01
    done
    if [ -z "$ready" ]; then echo "{\"size\":$n,\"error\":\"not ready\",\"log\":\"$log\"}"; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; continue; fi
    # The node process is the child of `ip netns exec` (which execs, so $pid is node itself).
    sleep 0.5
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    echo "{\"size\":$n,\"run\":$r,\"readyMs\":$(((ready - t0) / 1000000)),\"cpuMs\":$((cpu * 1000 / $(getconf CLK_TCK))),\"rssMB\":$((rss / 1024)),\"hwmMB\":$((hwm / 1024)),\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
  done
done
