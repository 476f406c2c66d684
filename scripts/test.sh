#!/usr/bin/env bash
# The test command (README, CI): set up, build, type-check, then every test: pure unit tests and
# lab tests against real kernels, ndisc6 and dockerd in network namespaces the tests create.
# Must run as root. Prints 'N passed, N failed' last. Extra arguments go to tap
# (e.g. `bash scripts/test.sh test/unit` runs only the unit tests). `npm test` runs the unit tests
# alone, without root.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "test.sh: run as root (the lab tests create network namespaces)" >&2; exit 2; fi
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# Lint (ESLint), the layering rule (scripts/check-layers.mjs) and the format check: one more
# result line, and a failure fails the run.
lint_status=0
npm run --silent lint || lint_status=1
mkdir -p .tap
[ $# -gt 0 ] || set -- test/unit test/lab
# tap runs TypeScript through tsx (package.json), so folders are expanded to their *.test.ts here.
files=()
for a in "$@"; do
  if [ -d "$a" ]; then while IFS= read -r f; do files+=("$f"); done < <(find "$a" -name '*.test.ts' | sort)
  else files+=("$a"); fi
done
status=0
NO_COLOR=1 npx tap --reporter=tap --reporter-file=.tap/report.tap "${files[@]}" || status=$?
# One line per test file, then every failed assertion with its diagnostics, then the count.
grep -E '^(not )?ok ' .tap/report.tap || true
if grep -qE '^\s*not ok ' .tap/report.tap; then
  echo "---- failures ----"
  awk '/^[[:space:]]*not ok /{p=1} p{print} /^[[:space:]]*\.\.\.$/{p=0}' .tap/report.tap | grep -v '^[[:space:]]*# Subtest' | head -400
fi
if [ "$lint_status" != 0 ]; then echo "---- lint failed (npm run lint, output above) ----"; fi
node scripts/tap-summary.mjs .tap/report.tap "$lint_status" || status=1
exit "$status"
