#!/usr/bin/env bash
# The main job on a fresh machine: install and build, then the two-host demo in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo.sh: run as root (it creates network namespaces)" >&2; exit 2; fi
bash scripts/setup.sh
exec node dist/src/cli.js demo "$@"
