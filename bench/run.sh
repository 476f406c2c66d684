#!/usr/bin/env bash
# NDP responder benchmark: see bench/README.md.
#   bash bench/run.sh --quick      # sizes 1 and 1,000, short steps: a couple of minutes
#   bash bench/run.sh              # full run, about 25 minutes
#   bash bench/run.sh --help
# This wrapper runs bench/run.ts and, whatever happens to it (error, Ctrl-C, kill), deletes the
# namespaces of this run afterwards (all named "$NDPB_TAG-*", unique per run) and ends the
# processes left inside them (which are ours by construction).
set -u
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: must run as root" >&2; exit 1; }
export NDPB_TAG="ndpb$$"
export NDPB_CMDLINE="bash bench/run.sh $*"
cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NDPB_TAG}-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
node --import tsx bench/run.ts "$@"
