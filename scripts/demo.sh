#!/usr/bin/env bash
# Sets up a fresh machine and shows tsswarm's most complete working path: three daemons on this
# machine (one manager, two workers, mutual TLS on loopback) running a replicated service of real
# containers, scaled and drained; and a container run directly on one node.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (containers need namespaces, cgroups and mounts)" >&2; exit 1; }
bash scripts/setup.sh

DEMO=$(mktemp -d /tmp/tsswarm-demo.XXXXXX)
PORT=$((24500 + RANDOM % 400))
PIDS=()
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
on() { local n=$1; shift; ./bin/tsswarm -H "unix://$DEMO/node$n.sock" "$@"; }
run() { local n=$1; shift; say "node$n\$ tsswarm $*"; on "$n" "$@"; }

cleanup() {
  on 1 service rm web >/dev/null 2>&1 || true
  sleep 2
  for n in 1 2 3; do
    for c in $(on "$n" container ps -a -q 2>/dev/null); do on "$n" container rm -f "$c" >/dev/null 2>&1 || true; done
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*/tsswarm-demo-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  rm -rf "$DEMO"
}
trap cleanup EXIT

bash scripts/busybox-rootfs.sh "$DEMO/busybox.tar"
for n in 1 2 3; do
  ./bin/tsswarm daemon --data-dir "$DEMO/node$n" --socket "$DEMO/node$n.sock" --cgroup-parent "tsswarm-demo-$n" \
    --listen-addr "127.0.0.1:$((PORT + n))" --hostname "node$n" >"$DEMO/node$n.log" 2>&1 &
  PIDS+=($!)
done
for n in 1 2 3; do for _ in $(seq 100); do [ -S "$DEMO/node$n.sock" ] && break; sleep 0.1; done; done
for n in 1 2 3; do run "$n" image import "$DEMO/busybox.tar" demo/busybox:latest; done

run 1 container run --rm --hostname demo --memory 64m demo/busybox sh -c 'echo hello from $(hostname), pid $$, memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)'

run 1 swarm init --advertise-addr "127.0.0.1:$((PORT + 1))" --dispatcher-heartbeat 1s
TOKEN=$(on 1 swarm join-token -q worker)
for n in 2 3; do run "$n" swarm join --token "$TOKEN" --listen-addr "127.0.0.1:$((PORT + n))" "127.0.0.1:$((PORT + 1))"; done
sleep 2
run 1 node ls
run 1 service create --name web --replicas 3 demo/busybox httpd -f -v -p 8080
run 1 service ps web
run 1 service scale web=6
run 1 service ls
WORKER=$(on 2 swarm inspect | sed -n 's/.*"nodeId": "\(.*\)".*/\1/p')
run 1 node update --availability drain "$WORKER"
sleep 3
run 1 service ps -f desired-state=running web
for n in 1 2 3; do run "$n" container ps; done
run 1 service rm web
