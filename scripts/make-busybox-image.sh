#!/usr/bin/env bash
# Build a tiny image from the machine's busybox-static and import it into one Docker engine.
#
#   scripts/make-busybox-image.sh DOCKER_SOCK [NAME:TAG]
#
# DOCKER_SOCK is a path (/tmp/x/docker.sock) or a URL (unix:///tmp/x/docker.sock).
# NAME:TAG defaults to ndplab/busybox:latest. Idempotent: an engine that already has the
# image is left alone. No registry is involved: the image is `docker import`ed from a tarball.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 DOCKER_SOCK [NAME:TAG]" >&2
  exit 2
fi
sock=$1
image=${2:-ndplab/busybox:latest}
case "$sock" in
  unix://*) host=$sock ;;
  tcp://*) host=$sock ;;
  *) host=unix://$sock ;;
esac
# The client may be newer than the engine (28.x client, 20.10 engine): it negotiates the
# API version down by itself; DOCKER_API_VERSION is honoured when the caller sets it.
docker_() { docker -H "$host" "$@"; }

if docker_ image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi

busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] || { echo "busybox not found (apt-get install -y busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked; the image needs busybox-static" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/ndplab-image.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/sbin" "$dir/tmp" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/var/www"
cp "$busybox" "$dir/bin/busybox"
for app in sh ash ip ifconfig route sleep ping ping6 httpd cat echo ls ps kill wget nc \
  hostname true false env id mkdir rm sed grep awk head tail wc date uname netstat arping; do
  ln -s busybox "$dir/bin/$app"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$dir/etc/passwd"
echo 'root:x:0:' >"$dir/etc/group"
echo 'ndplab' >"$dir/var/www/index.html"

tar -C "$dir" --numeric-owner --owner=0 --group=0 -c . |
  docker_ import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin:/sbin' - "$image" >/dev/null
docker_ image inspect "$image" >/dev/null
