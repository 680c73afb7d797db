#!/bin/bash
# Fetches Debian's cloud kernel (wireguard.ko as a module) into a cache under build/
# and prints the cache directory. Nothing is installed on the host: apt-get download
# plus dpkg -x into the cache.
#   usage: fetch-kernel.sh [CACHE_DIR]      (default: build/vm/kernel)
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${1:-${O:-build}/vm/kernel}

if ls "$cache"/root/boot/vmlinuz-* >/dev/null 2>&1 && [ -d "$cache"/root/lib/modules ]; then
	echo "$cache"
	exit 0
fi

mkdir -p "$cache"
# First use by several people at once: one fetches, the others wait for it.
exec 9>"$cache/.lock"
flock 9
if ls "$cache"/root/boot/vmlinuz-* >/dev/null 2>&1 && [ -d "$cache"/root/lib/modules ]; then
	echo "$cache"
	exit 0
fi
mkdir -p "$cache/pkg"
# linux-image-cloud-amd64 is a metapackage; its first linux-image-* dependency is the
# versioned image (linux-image-6.1.0-NN-cloud-amd64).
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	awk '/Depends: linux-image-/ { print $2; exit }')
if [ -z "$pkg" ]; then
	echo "fetch-kernel: apt does not know linux-image-cloud-amd64 (run apt-get update)" >&2
	exit 1
fi
(cd "$cache/pkg" && apt-get download -q "$pkg" >&2)
rm -rf "$cache/root.tmp"
dpkg -x "$cache"/pkg/"$pkg"_*.deb "$cache/root.tmp"
kver=$(ls "$cache/root.tmp/lib/modules")
depmod -b "$cache/root.tmp" "$kver"
rm -rf "$cache/root" && mv "$cache/root.tmp" "$cache/root"
rm -rf "$cache/pkg"
echo "$cache"
