#!/usr/bin/env bash
# Install everything ndp-responder's build, demo and tests need on a fresh Debian machine, then build.
# Idempotent: skips what is already there. Run as root (apt-get, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: libpcap-dev (node_pcap), the real NDP peers and tools the lab tests drive,
# Docker for the two-host scenario, the competitors the benchmark measures (and doctor detects),
# iptables for ip6tables (doctor reads the FORWARD policy).
PKGS=(libpcap-dev iproute2 iputils-ping ndisc6 tcpdump busybox-static docker.io util-linux procps
      ndppd npd6 netsniff-ng tcpreplay g++ make python3 openssl iptables)
# systemd-analyze checks the unit file (test/unit/systemd-unit.test.ts); Debian ships it in the
# systemd package, which installs without systemd running (a container).
command -v systemd-analyze >/dev/null || PKGS+=(systemd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Build native code against the machine's own Node headers (no download: the network is closed).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

# npm dependencies (native ones are approved in package.json's allowScripts). `npm ci` runs the
# package's `prepare` script, which builds; otherwise build here.
built=0
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (and build)"
  npm ci --no-audit --no-fund --loglevel=error
  built=1
fi

# TypeScript to dist/, the native addon to build/Release/ (renamed into place: see scripts/build-addon.mjs).
if [ "$built" = 0 ]; then
  echo "setup: build"
  npm run --silent build
fi
