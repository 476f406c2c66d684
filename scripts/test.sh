#!/usr/bin/env bash
# The test command (README, CI): set up, build, type-check, then every test: pure unit tests and
# lab tests against real kernels, ndisc6 and dockerd in network namespaces the tests create.
# Must run as root. Prints 'N passed, N failed' last. Extra arguments go to tap
# (e.g. `bash scripts/test.sh test/unit` runs only the unit tests).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "test.sh: run as root (the lab tests create network namespaces)" >&2; exit 2; fi
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p .tap
[ $# -gt 0 ] || set -- test/unit test/lab
NO_COLOR=1 npx tap --reporter=terse --no-color "$@" 2>&1 | tee .tap/console.txt
status=${PIPESTATUS[0]}
node scripts/tap-summary.mjs .tap/console.txt || status=1
exit "$status"
