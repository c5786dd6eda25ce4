#!/usr/bin/env bash
# Sets up a fresh machine and shows tsswarm's most complete working path: a daemon, an image
# imported from a rootfs tarball, and containers run, listed, logged and removed through the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (containers need namespaces, cgroups and mounts)" >&2; exit 1; }
bash scripts/setup.sh

DEMO=$(mktemp -d /tmp/tsswarm-demo.XXXXXX)
export TSSWARM_HOST=unix://$DEMO/tsswarm.sock
ts() { ./bin/tsswarm "$@"; }
say() { printf '\n\033[1m$ tsswarm %s\033[0m\n' "$*"; }

./bin/tsswarm daemon --data-dir "$DEMO/data" --socket "$DEMO/tsswarm.sock" --cgroup-parent tsswarm-demo >"$DEMO/daemon.log" 2>&1 &
DAEMON=$!
cleanup() {
  ts container rm -f web >/dev/null 2>&1 || true
  kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
  rm -rf "$DEMO"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$DEMO/tsswarm.sock" ] && break; sleep 0.1; done

bash scripts/busybox-rootfs.sh "$DEMO/busybox.tar"
say image import busybox.tar demo/busybox:latest; ts image import "$DEMO/busybox.tar" demo/busybox:latest
say image ls; ts image ls
say container run --rm demo/busybox sh -c 'echo hello from \$(hostname), pid \$\$'
ts container run --rm --hostname demo demo/busybox sh -c 'echo hello from $(hostname), pid $$'
say container run -d --name web --memory 64m --cpus 0.5 demo/busybox httpd -f -v -p 8080
ts container run -d --name web --memory 64m --cpus 0.5 demo/busybox httpd -f -v -p 8080
say container ps; ts container ps
say container exec web ps; ts container exec web ps
say container pause web; ts container pause web; ts container ps
say container unpause web; ts container unpause web
say container stop -t 2 web; ts container stop -t 2 web
say container ps -a; ts container ps -a
say container rm web; ts container rm web
say info; ts info
