#!/usr/bin/env bash
# The Docker lab: Docker hosts as network namespaces on one Linux bridge, a real dockerd in each.
#
#   scripts/docker-lab.sh up [--id ID] [--hosts 1|2] [--no-containers] [--dockerd-arg ARG]...
#       Create namespaces ndplab-ID-br (bridge br0), ndplab-ID-d1 and ndplab-ID-d2 (eth0 with
#       2003:ab11::1/64 and ::2/64, forwarding=1), start a dockerd in each (vfs, own roots and
#       socket, --ipv6 --fixed-cidr-v6 2003:ab11::8000:0:0:0/66 on d1, ...:c000:0:0:0/66 on d2),
#       import the busybox image, run web1 on d1 and web2 on d2. Prints KEY=VALUE lines
#       (LAB_ID, LAB_DIR, D1_NS, D1_SOCK, ...). On failure it tears down what it made.
#       --dockerd-arg adds one argument to every dockerd of the lab (kept for dockerd-start),
#       e.g. --dockerd-arg=--tlsverify --dockerd-arg=-H --dockerd-arg='tcp://[2003:ab11::1]:2376'.
#   scripts/docker-lab.sh down ID            Remove everything of lab ID (safe to repeat).
#   scripts/docker-lab.sh env ID             Print the KEY=VALUE lines again.
#   scripts/docker-lab.sh dockerd-start ID HOST       HOST is d1 or d2; waits until it answers.
#   scripts/docker-lab.sh dockerd-stop ID HOST [--kill]  TERM (or KILL: containerd and the
#                                            containers are then killed too, like a host crash).
#   scripts/docker-lab.sh docker ID HOST ARGS...      The docker CLI against that engine.
#   scripts/docker-lab.sh exec ID HOST|br CMD...      Run CMD in that namespace (nsenter --net).
#   scripts/docker-lab.sh addr ID HOST CONTAINER      A container's global IPv6 address(es).
#   scripts/docker-lab.sh proxy ID on|off    Kernel proxy_ndp entries for web1 (d1) and web2 (d2).
#   scripts/docker-lab.sh check ID           docker exec web2 ping6 -c2 -W2 <web1>; exit 0 if answered.
#   scripts/docker-lab.sh list               Labs that exist on this machine.
#
# Everything of a lab lives under $NDPLAB_ROOT/ndplab-ID (default /tmp) and in namespaces
# and cgroups named ndplab-ID-*: nothing touches the machine's own interfaces.
set -euo pipefail

ROOT=${NDPLAB_ROOT:-/tmp}
IMAGE=${NDPLAB_IMAGE:-ndplab/busybox:latest}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
READY_TIMEOUT=${NDPLAB_READY_TIMEOUT:-90}

die() { echo "docker-lab: $*" >&2; exit 1; }
log() { echo "docker-lab: $*" >&2; }

labdir() { echo "$ROOT/ndplab-$1"; }
nsname() { echo "ndplab-$1-$2"; }
sockof() { echo "$(labdir "$1")/$2/docker.sock"; }
cidr_of() {
  case "$1" in
    d1) echo 2003:ab11:0:0:8000::/66 ;;
    d2) echo 2003:ab11:0:0:c000::/66 ;;
    *) die "unknown host $1" ;;
  esac
}
addr_of() {
  case "$1" in
    d1) echo 2003:ab11::1/64 ;;
    d2) echo 2003:ab11::2/64 ;;
    *) die "unknown host $1" ;;
  esac
}
web_of() {
  case "$1" in
    d1) echo web1 ;;
    d2) echo web2 ;;
  esac
}

dk() { # dk ID HOST ARGS...
  local id=$1 host=$2
  shift 2
  docker -H "unix://$(sockof "$id" "$host")" "$@"
}

in_ns() { # in_ns NS CMD...
  local ns=$1
  shift
  nsenter --net="/var/run/netns/$ns" -- "$@"
}

hosts_of() { cat "$(labdir "$1")/hosts" 2>/dev/null || true; }

print_env() {
  local id=$1 dir
  dir=$(labdir "$id")
  [[ -d "$dir" ]] || die "no lab $id"
  echo "LAB_ID=$id"
  echo "LAB_DIR=$dir"
  echo "BR_NS=$(nsname "$id" br)"
  local h H
  for h in $(hosts_of "$id"); do
    H=${h^^}
    echo "${H}_NS=$(nsname "$id" "$h")"
    echo "${H}_SOCK=$(sockof "$id" "$h")"
    echo "${H}_CIDR=$(cidr_of "$h")"
    echo "${H}_ADDR=$(addr_of "$h")"
  done
}

# ---- dockerd ---------------------------------------------------------------------------------

dockerd_running() { # ID HOST
  local pidf
  pidf="$(labdir "$1")/$2/dockerd.pid"
  [[ -s "$pidf" ]] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

dockerd_start() { # ID HOST  (no wait)
  local id=$1 host=$2 dir
  dir="$(labdir "$id")/$host"
  dockerd_running "$id" "$host" && return 0
  mkdir -p "$dir/data" "$dir/exec"
  [[ -f "$dir/daemon.json" ]] || echo '{}' >"$dir/daemon.json"
  rm -f "$dir/docker.sock"
  local extra=()
  [[ -s "$dir/dockerd.args" ]] && mapfile -t extra <"$dir/dockerd.args"
  # setsid: its own process group, so a caller's Ctrl-C does not reach it.
  setsid nsenter --net="/var/run/netns/$(nsname "$id" "$host")" -- \
    "$DOCKERD" \
    --config-file "$dir/daemon.json" \
    --storage-driver vfs \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" \
    --cgroup-parent "/$(nsname "$id" "$host")" \
    --ipv6 --fixed-cidr-v6 "$(cidr_of "$host")" \
    --iptables=false --ip-masq=false --userland-proxy=false \
    --shutdown-timeout 2 \
    --log-level info \
    "${extra[@]}" \
    >>"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.launcher.pid"
}

dockerd_wait() { # ID HOST
  local id=$1 host=$2 i n
  n=$((READY_TIMEOUT * 5))
  for ((i = 0; i < n; i++)); do
    if [[ -S "$(sockof "$id" "$host")" ]] && dk "$id" "$host" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$(labdir "$id")/$host/dockerd.launcher.pid" 2>/dev/null || echo 0)" 2>/dev/null; then
      tail -n 20 "$(labdir "$id")/$host/dockerd.log" >&2 || true
      die "dockerd on $host exited during start"
    fi
    sleep 0.2
  done
  tail -n 20 "$(labdir "$id")/$host/dockerd.log" >&2 || true
  die "dockerd on $host not ready after ${READY_TIMEOUT}s"
}

cgroup_pids() { # ID HOST: pids in the dockerd's cgroup parent (the containers), any controller
  local d
  for d in /sys/fs/cgroup/*/"$(nsname "$1" "$2")" /sys/fs/cgroup/"$(nsname "$1" "$2")"; do
    [[ -d "$d" ]] || continue
    find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  done | sort -u
}

wait_gone() { # SECONDS PID...
  local t=$1 i p alive
  shift
  for ((i = 0; i < t * 10; i++)); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

dockerd_stop() { # ID HOST [--kill]
  local id=$1 host=$2 mode=${3:-} dir pid pids
  dir="$(labdir "$id")/$host"
  pid=$(cat "$dir/dockerd.pid" 2>/dev/null || cat "$dir/dockerd.launcher.pid" 2>/dev/null || true)
  if [[ "$mode" == "--kill" ]]; then
    # A crash: the daemon, its containerd and shims and the containers all die at once.
    thaw "$id" "$host"
    # shellcheck disable=SC2046
    pids="$pid $(lab_pids_host "$id" "$host") $(cgroup_pids "$id" "$host")"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    wait_gone 10 $pids || log "some processes of $host survived SIGKILL"
  else
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone 30 "$pid" || { log "dockerd $pid ignored TERM, killing"; kill -KILL "$pid" 2>/dev/null || true; wait_gone 5 "$pid" || true; }
    fi
  fi
  rm -f "$dir/dockerd.pid"
}

thaw() { # ID HOST: paused (frozen) containers cannot die until thawed
  local f
  for f in /sys/fs/cgroup/freezer/"$(nsname "$1" "$2")"/*/freezer.state /sys/fs/cgroup/"$(nsname "$1" "$2")"/*/cgroup.freeze; do
    [[ -f "$f" ]] || continue
    case "$f" in
      *freezer.state) echo THAWED >"$f" 2>/dev/null || true ;;
      *) echo 0 >"$f" 2>/dev/null || true ;;
    esac
  done
}

lab_pids_host() { # ID HOST: processes whose command line names that host's dir (dockerd, containerd, shims)
  local f
  for f in $(grep -laF -- "$(labdir "$1")/$2/" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    f=${f#/proc/}
    f=${f%/cmdline}
    [[ "$f" != "$$" && "$f" != "$BASHPID" ]] && echo "$f"
  done
}

# ---- up / down -------------------------------------------------------------------------------

cmd_up() {
  local id="" nhosts=2 containers=1 dargs=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --id) id=$2; shift 2 ;;
      --dockerd-arg) dargs+=("$2"); shift 2 ;;
      --dockerd-arg=*) dargs+=("${1#--dockerd-arg=}"); shift ;;
      --hosts) nhosts=$2; shift 2 ;;
      --no-containers) containers=0; shift ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  [[ "$nhosts" == 1 || "$nhosts" == 2 ]] || die "--hosts must be 1 or 2"
  [[ -n "$id" ]] || id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  [[ "$id" =~ ^[a-z0-9]{1,8}$ ]] || die "lab id must be 1..8 of [a-z0-9]"
  local dir hosts=(d1) h br
  [[ "$nhosts" == 2 ]] && hosts=(d1 d2)
  dir=$(labdir "$id")
  [[ -e "$dir" ]] && die "lab $id exists ($dir)"
  mkdir -p "$dir"
  echo "${hosts[*]}" >"$dir/hosts"
  trap 'log "up failed; tearing down lab '"$id"'"; cmd_down '"$id"' >&2 || true' EXIT
  if ((${#dargs[@]})); then
    for h in "${hosts[@]}"; do
      mkdir -p "$dir/$h"
      printf '%s\n' "${dargs[@]}" >"$dir/$h/dockerd.args"
    done
  fi

  local t0
  t0=$(date +%s%N)
  br=$(nsname "$id" br)
  echo "$br" >>"$dir/namespaces"
  ip netns add "$br"
  ip -n "$br" link set lo up
  ip -n "$br" link add br0 type bridge
  ip -n "$br" link set br0 up
  for h in "${hosts[@]}"; do
    local ns
    ns=$(nsname "$id" "$h")
    echo "$ns" >>"$dir/namespaces"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # The veth pair is made inside the bridge namespace, one end moved straight into the host:
    # nothing appears in the machine's own namespace, not even for a moment.
    ip -n "$br" link add "v$h" type veth peer name eth0 netns "$ns"
    ip -n "$br" link set "v$h" master br0 up
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1
    ip -n "$ns" addr add "$(addr_of "$h")" dev eth0 nodad
    ip -n "$ns" link set eth0 up
  done
  for h in "${hosts[@]}"; do dockerd_start "$id" "$h"; done
  for h in "${hosts[@]}"; do dockerd_wait "$id" "$h"; done
  local t1
  t1=$(date +%s%N)
  local pids=()
  for h in "${hosts[@]}"; do
    "$HERE/make-busybox-image.sh" "$(sockof "$id" "$h")" "$IMAGE" &
    pids+=($!)
  done
  wait_pids "${pids[@]}"
  if ((containers)); then
    pids=()
    for h in "${hosts[@]}"; do
      # httpd under a shell that exits on TERM: as PID 1 httpd would ignore it for 10 s.
      dk "$id" "$h" run -d --name "$(web_of "$h")" "$IMAGE" \
        sh -c 'trap "exit 0" TERM; httpd -f -p 80 -h /var/www & wait' >/dev/null &
      pids+=($!)
    done
    wait_pids "${pids[@]}"
  fi
  local t2
  t2=$(date +%s%N)
  trap - EXIT
  log "up: namespaces+dockerd $(((t1 - t0) / 1000000)) ms, image+containers $(((t2 - t1) / 1000000)) ms, total $(((t2 - t0) / 1000000)) ms"
  print_env "$id"
}

wait_pids() { # wait for the given background jobs, fail if any failed
  local rc=0 j
  for j in "$@"; do wait "$j" || rc=1; done
  return $rc
}

cmd_down() {
  local id=${1:-}
  [[ -n "$id" ]] || die "down: lab id needed"
  local dir h ns m p
  dir=$(labdir "$id")
  local hosts
  hosts=$(hosts_of "$id")
  [[ -n "$hosts" ]] || hosts="d1 d2"
  # 1. Containers, politely, while their engine still answers (bounded by the client timeout).
  for h in $hosts; do
    if dockerd_running "$id" "$h" && [[ -S "$(sockof "$id" "$h")" ]]; then
      local ids
      ids=$(timeout 10 docker -H "unix://$(sockof "$id" "$h")" ps -aq 2>/dev/null || true)
      # shellcheck disable=SC2086
      [[ -z "$ids" ]] || timeout 30 docker -H "unix://$(sockof "$id" "$h")" rm -f $ids >/dev/null 2>&1 || true
    fi
  done
  # 2. Engines: TERM all at once (each takes ~3 s to shut down), bounded wait, then KILL.
  local dpids=""
  for h in $hosts; do
    p=$(cat "$dir/$h/dockerd.pid" 2>/dev/null || cat "$dir/$h/dockerd.launcher.pid" 2>/dev/null || true)
    if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      dpids="$dpids $p"
    fi
  done
  # shellcheck disable=SC2086
  if [[ -n "$dpids" ]] && ! wait_gone 30 $dpids; then
    log "dockerd ignored TERM, killing"
    for p in $dpids; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  # 3. Anything left: containerd, shims (by the lab dir in their command line) and container
  #    processes (by their cgroup), killed by pid.
  for h in $hosts; do
    local left
    thaw "$id" "$h"
    left="$(lab_pids_host "$id" "$h") $(cgroup_pids "$id" "$h")"
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    wait_gone 10 $left || log "processes of $h survived: $left"
    local d
    for d in /sys/fs/cgroup/*/"$(nsname "$id" "$h")" /sys/fs/cgroup/"$(nsname "$id" "$h")"; do
      [[ -d "$d" ]] || continue
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  done
  # 4. Mounts under the lab dir (netns bind mounts, shm, overlay leftovers), deepest first.
  if [[ -d "$dir" ]]; then
    for ((p = 0; p < 5; p++)); do
      m=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
      [[ -n "$m" ]] || break
      for x in $m; do umount "$x" 2>/dev/null || umount -l "$x" 2>/dev/null || true; done
    done
  fi
  # 5. Namespaces, by name.
  for ns in $(cat "$dir/namespaces" 2>/dev/null) $(nsname "$id" br) $(nsname "$id" d1) $(nsname "$id" d2); do
    [[ -e "/var/run/netns/$ns" ]] && ip netns delete "$ns" 2>/dev/null || true
  done
  # 6. Files (vfs layers are plain directories).
  [[ -d "$dir" ]] && rm -rf --one-file-system "$dir" 2>/dev/null || true
  if [[ -d "$dir" ]]; then
    log "down: could not remove $dir entirely"
    return 1
  fi
  return 0
}

# ---- helpers for tests and hand checks -------------------------------------------------------

container_addr() { # ID HOST NAME
  dk "$1" "$2" inspect -f '{{range .NetworkSettings.Networks}}{{if .GlobalIPv6Address}}{{.GlobalIPv6Address}} {{end}}{{end}}' "$3" | tr ' ' '\n' | sed '/^$/d'
}

cmd_proxy() { # ID on|off
  local id=$1 mode=$2 h a ns
  for h in $(hosts_of "$id"); do
    ns=$(nsname "$id" "$h")
    for a in $(container_addr "$id" "$h" "$(web_of "$h")"); do
      if [[ "$mode" == on ]]; then
        in_ns "$ns" sysctl -qw net.ipv6.conf.eth0.proxy_ndp=1
        ip -n "$ns" -6 neigh replace proxy "$a" dev eth0
      else
        ip -n "$ns" -6 neigh del proxy "$a" dev eth0 2>/dev/null || true
      fi
    done
  done
}

cmd_check() { # ID
  local id=$1 a
  a=$(container_addr "$id" d1 web1 | head -n1)
  [[ -n "$a" ]] || die "web1 has no IPv6 address"
  dk "$id" d2 exec web2 ping6 -c2 -W2 "$a"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  env) print_env "${2:?lab id}" ;;
  dockerd-start) dockerd_start "${2:?lab id}" "${3:?host}"; dockerd_wait "$2" "$3" ;;
  dockerd-stop) dockerd_stop "${2:?lab id}" "${3:?host}" "${4:-}" ;;
  docker) id=${2:?lab id}; h=${3:?host}; shift 3; dk "$id" "$h" "$@" ;;
  exec)
    id=${2:?lab id}; h=${3:?host}; shift 3
    in_ns "$(nsname "$id" "$h")" "$@" ;;
  addr) container_addr "${2:?lab id}" "${3:?host}" "${4:?container}" ;;
  proxy) cmd_proxy "${2:?lab id}" "${3:?on|off}" ;;
  check) cmd_check "${2:?lab id}" ;;
  list) ls -d "$ROOT"/ndplab-*/ 2>/dev/null | sed -E 's#.*/ndplab-([^/]+)/$#\1#' || true ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
