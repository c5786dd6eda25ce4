#!/usr/bin/env bash
# Provisions one VM of the Vagrant swarm: Node 20, the project the README's way (scripts/setup.sh),
# the systemd unit, then `swarm init` (the first manager) or `swarm join` with the token the first
# manager left in the shared folder.
#   provision.sh ROLE IP HOSTNAME FIRST_MANAGER_IP    (ROLE: init | manager | worker)
set -euo pipefail
role=$1 ip=$2 name=$3 first=$4
share=/swarm-share
src=/vagrant
dest=/opt/tsswarm
export DEBIAN_FRONTEND=noninteractive

# 1. Node 20 (Debian 12 ships 18): NodeSource's apt repository.
if ! node --version 2>/dev/null | grep -q '^v20\.'; then
  apt-get update -qq
  apt-get install -y -qq ca-certificates curl gnupg rsync >/dev/null
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main" > /etc/apt/sources.list.d/nodesource.list
  apt-get update -qq
  apt-get install -y -qq nodejs >/dev/null
fi
command -v rsync >/dev/null || apt-get install -y -qq rsync >/dev/null

# 2. The project, as the README installs it: a copy of the checkout, then scripts/setup.sh
#    (Debian packages, npm ci, the native runtime, the TypeScript build).
rsync -a --delete --exclude .git --exclude .vagrant --exclude .vagrant-swarm --exclude node_modules --exclude dist --exclude native/build "$src/" "$dest/"
(cd "$dest" && bash scripts/setup.sh)
ln -sf "$dest/bin/tsswarm" /usr/local/bin/tsswarm

# 3. The daemon under systemd.
install -m 0644 "$dest/deploy/tsswarm.service" /etc/systemd/system/tsswarm.service
printf 'TSSWARM_LISTEN_ADDR=%s:2377\nTSSWARM_HOSTNAME=%s\n' "$ip" "$name" > /etc/default/tsswarm
systemctl daemon-reload
systemctl enable --now tsswarm.service
for _ in $(seq 1 60); do [ -S /run/tsswarm/tsswarm.sock ] && break; sleep 1; done
tsswarm info >/dev/null

# 4. The busybox test image on every node (images are not distributed between nodes yet).
tsswarm image ls | grep -q demo/busybox || { bash "$dest/scripts/busybox-rootfs.sh" /tmp/busybox.tar && tsswarm image import /tmp/busybox.tar demo/busybox:latest; }

# 5. Into the swarm, once.
in_swarm() { [ -n "$(tsswarm swarm inspect | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).nodeId||""))')" ]; }
if in_swarm; then echo "$name is already in a swarm"; exit 0; fi
mkdir -p "$share"
if [ "$role" = init ]; then
  tsswarm swarm init --advertise-addr "$ip"
  # written to temporary names, then renamed: a joining VM never reads half a token
  tsswarm swarm join-token -q manager > "$share/.manager-token" && mv "$share/.manager-token" "$share/manager-token"
  tsswarm swarm join-token -q worker > "$share/.worker-token" && mv "$share/.worker-token" "$share/worker-token"
  echo "$ip:2377" > "$share/.manager-addr" && mv "$share/.manager-addr" "$share/manager-addr"
else
  for _ in $(seq 1 600); do [ -s "$share/$role-token" ] && [ -s "$share/manager-addr" ] && break; sleep 1; done
  [ -s "$share/$role-token" ] || { echo "no $role token in $share after 10 minutes: is the first manager ($first) up?" >&2; exit 1; }
  tsswarm swarm join --token "$(cat "$share/$role-token")" "$(cat "$share/manager-addr")"
fi
tsswarm swarm inspect
