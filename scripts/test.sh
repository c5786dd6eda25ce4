#!/usr/bin/env bash
# Sets up a fresh machine (Debian packages, npm packages, native build) and runs every test, then the
# cluster-test scenarios (chaos, partitions, checked histories; their RESULT lines stay in the log).
# Must run as root: the tests create real containers, cgroups, mounts and network namespaces.
# With arguments, runs only those vitest files/filters (no cluster-test).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (the tests use namespaces, cgroups and mounts)" >&2; exit 1; }
bash scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
npx vitest run "$@"
if [ $# -eq 0 ]; then
  npm run --silent cluster-test -- all
fi
