#!/usr/bin/env bash
# Installs everything tsswarm needs on a fresh Debian 12 machine (as root) and builds it:
# Debian packages, npm packages, the native runtime and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential pkg-config      # the native runtime (C)
  libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler  # native/cli: `tsswarm run` without Node (gRPC over HTTP/2)
  busybox-static                  # the test and demo image
  iproute2 nftables               # network namespaces, veth, bridges, VXLAN, load balancing
  runc crun                       # alternative OCI runtimes (--runtime runc|crun) and benchmark anchors
  umoci skopeo                    # OCI image layouts and docker-save archives for image tests
  zstd                            # zstd-compressed layers (Node 20's zlib has no zstd)
  docker-registry apache2-utils   # registry pull/push tests: a real registry, htpasswd for its basic auth
  podman                          # test/runtime/podman.test.ts: a real OCI client drives tsswarm-runtime
  hyperfine jq util-linux procps  # benchmarks and scripts
  curl                            # HTTP checks of published ports from test hosts
  iperf3                          # bench:overlay (TCP throughput through the overlay)
)
missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A node_modules that is a symlink is an install shared with another checkout: `npm ci` would
# empty it under that checkout's feet, so it is left as it is.
if [ -L node_modules ]; then
  echo "setup: node_modules links to $(readlink node_modules): not reinstalling it"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-fund --no-audit --loglevel=error
fi

echo "setup: building native runtime and TypeScript"
make -s -C native
npx tsc -p tsconfig.build.json
node scripts/build-cli.mjs
