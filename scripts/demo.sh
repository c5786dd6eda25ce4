#!/usr/bin/env bash
# Sets up a fresh machine and shows tsswarm's most complete working path: a swarm of four test hosts
# on this machine (network namespaces on a private fabric, one daemon each, mutual TLS between them)
# gets its image from a registry on one test host (pushed once by the manager, pulled by each worker),
# runs a web service with replicas on an overlay network, published on port 8080 through the routing
# mesh; every host answers from different replicas; then it is scaled, a node drained, all torn down.
# Nothing is sent outside the namespaces the demo makes; the machine's own network is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root (containers need namespaces, cgroups and mounts)" >&2; exit 1; }
bash scripts/setup.sh
exec node dist/cluster-test/demo.js
