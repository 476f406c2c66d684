#!/usr/bin/env bash
# The Docker lab by hand: Docker hosts as network namespaces on one bridge, a real dockerd in each.
# A thin wrapper: the lab itself is src/lab/docker-lab.ts (the same code the tests and the Docker
# benchmark use); the subcommands are listed in src/lab/docker-lab-cli.ts.
#
#   scripts/docker-lab.sh up [--id ID] [--hosts 1|2] [--no-containers]   # prints KEY=VALUE lines
#   scripts/docker-lab.sh down ID
#   scripts/docker-lab.sh docker ID d1 ps
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec node --import tsx src/lab/docker-lab-cli.ts "$@"
