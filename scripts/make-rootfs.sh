#!/usr/bin/env bash
# Assemble the sidecar image's root filesystem from a built checkout and the machine it runs on.
#
#   scripts/make-rootfs.sh OUTDIR
#
# OUTDIR gets: /usr/local/bin/node (this machine's node), /usr/sbin/ip when present (doctor and
# the pcap back end's multicast entries use it), every shared library those and the native addons
# load (found with ldd, copied to the paths ldd names), and /app: package.json, dist/src,
# build/Release/ndp_native.node and the production node_modules (as package-lock.json marks them;
# the optional pcap and raw-socket come along when they are installed). Nothing is downloaded.
# Used by the Dockerfile's build stage and, on machines without a registry, by
# scripts/build-image.sh, which `docker import`s OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

[[ -f dist/src/cli.js ]] || { echo "make-rootfs: dist/src/cli.js is missing: run 'npm run build' first" >&2; exit 1; }
[[ -f build/Release/ndp_native.node ]] || { echo "make-rootfs: build/Release/ndp_native.node is missing: run 'npm run build' first" >&2; exit 1; }
[[ -d node_modules ]] || { echo "make-rootfs: node_modules is missing: run 'npm ci' first" >&2; exit 1; }

node_bin=$(readlink -f "$(command -v node)")
ip_bin=$(command -v ip || true)

# The skeleton: root's entries only (the daemon runs as root with a few capabilities), /tmp
# for node's tmpdir (the pcap back end checks filters through a temporary file).
mkdir -p "$out"/{etc,tmp,proc,sys,dev,run,var/run,usr/local/bin,usr/sbin,app}
chmod 1777 "$out/tmp"
echo 'root:x:0:0:root:/root:/usr/sbin/nologin' >"$out/etc/passwd"
echo 'root:x:0:' >"$out/etc/group"
install -m 0755 "$node_bin" "$out/usr/local/bin/node"
# Distribution builds of node may carry debug info (12 MB of 99 here): not needed to run.
command -v strip >/dev/null && strip --strip-debug "$out/usr/local/bin/node"
[[ -n "$ip_bin" ]] && install -m 0755 "$(readlink -f "$ip_bin")" "$out/usr/sbin/ip"

# The application.
cp package.json "$out/app/"
mkdir -p "$out/app/dist" "$out/app/build/Release"
tar -C . -c --exclude='*.map' dist/src | tar -C "$out/app" -x
cp build/Release/ndp_native.node "$out/app/build/Release/"

# Production dependencies (and the optional ones): every package package-lock.json does not mark
# dev-only and that is installed, each directory once (nested node_modules come with their
# parent), without build intermediates, type definitions or source maps.
nm=$(readlink -f node_modules)
mapfile -t keep < <(node -e '
  const lock = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
  const paths = Object.entries(lock.packages ?? {})
    .filter(([p, v]) => p.startsWith("node_modules/") && !v.dev && !v.link)
    .map(([p]) => p.slice("node_modules/".length))
    .sort();
  const kept = [];
  for (const p of paths) if (!kept.some((q) => p.startsWith(q + "/"))) kept.push(p);
  console.log(kept.join("\n"));' | while IFS= read -r p; do [[ -d "$nm/$p" ]] && echo "$p"; done)
[[ ${#keep[@]} -gt 0 ]] || { echo "make-rootfs: package-lock.json lists no installed production dependency" >&2; exit 1; }
mkdir -p "$out/app/node_modules"
tar -C "$nm" -c --exclude='build/Release/obj.target' --exclude='build/Release/.deps' --exclude='@types' \
  --exclude='*.md' --exclude='*.d.ts' --exclude='*.map' --exclude='.github' "${keep[@]}" | tar -C "$out/app/node_modules" -x

# Shared libraries of node, ip and every native addon in the tree, at the paths ldd resolves.
bins=("$out/usr/local/bin/node")
[[ -n "$ip_bin" ]] && bins+=("$out/usr/sbin/ip")
while IFS= read -r -d '' f; do bins+=("$f"); done < <(find "$out/app" -name '*.node' -type f -print0)
for b in "${bins[@]}"; do
  ldd "$b" 2>/dev/null | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}'
done | sort -u | while IFS= read -r lib; do
  [[ -e "$out$lib" ]] && continue
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
