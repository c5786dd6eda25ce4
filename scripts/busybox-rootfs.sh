#!/usr/bin/env bash
# Writes a small rootfs tarball (busybox-static with its applets, /etc/passwd, ...) to $1:
# the image that the demo, the tests and the benchmarks import.
set -euo pipefail
out=$(realpath -m "$1")
bb=$(command -v busybox) || { echo "busybox-rootfs: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
r=$tmp/rootfs
mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,root,run,var,usr/bin,usr/sbin,home}
cp "$(readlink -f "$bb")" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/home:/bin/false' >> "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
echo tsswarm-test-image > "$r/etc/image-marker"
chmod 1777 "$r/tmp"
tar -C "$r" --numeric-owner -cf "$out" .
