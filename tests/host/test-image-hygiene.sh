#!/bin/bash
# SPDX-License-Identifier: MIT
# make image's hygiene. scripts/image.sh runs twice, each as on another build machine: a
# mount and UTS namespace of its own with another hostname, /etc/hostname and
# /etc/resolv.conf; both must print the same digest (the compile is not what is tested:
# both start from the objects of build/image/obj when there are some). Then the layer
# is listed: the only files with an x, setuid or setgid bit are the agent, /bin/sh
# (dash) and the loader the kernel starts them with; no package manager, its state or
# configuration, no host identity, no device node.
# Builds in its own mktemp folders (parallel-safe); each build fetches from Debian's mirror.
set -eu
cd "$(dirname "$0")/../.."
for tool in mmdebstrap unshare; do
	command -v "$tool" >/dev/null || { echo "test-image-hygiene: $tool missing (scripts/deps.sh image)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "test-image-hygiene: run as root (mmdebstrap, namespaces)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/dstack-p2p-image-hygiene.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
die() { echo "test-image-hygiene: FAIL: $*" >&2; exit 1; }
t0=$(date +%s)

# build NAME: scripts/image.sh into $tmp/NAME as a machine called NAME would run it.
build() {
	local name=$1 o=$tmp/$1
	mkdir -p "$o/image"
	[ -d "${O:-build}/image/obj" ] && cp -a "${O:-build}/image/obj" "$o/image/obj"
	echo "$name" >"$tmp/$name.hostname"
	# The same resolvers (the build fetches from Debian's mirror), another file.
	{ echo "# $name's resolver"; cat /etc/resolv.conf; } >"$tmp/$name.resolv"
	unshare --mount --uts --propagation private sh -c '
		[ -e /etc/hostname ] && mount --bind "$1" /etc/hostname
		[ -e /etc/resolv.conf ] && mount --bind "$2" /etc/resolv.conf
		hostname "$3" && O="$4" IMAGE_FORCE=1 scripts/image.sh' sh \
		"$tmp/$name.hostname" "$tmp/$name.resolv" "$name" "$o" >"$o.log" 2>&1 ||
		{ tail -20 "$o.log" >&2; die "scripts/image.sh as $name"; }
	sed -n 's/^image: digest \(sha256:[0-9a-f]*\).*/\1/p' "$o.log"
}
a=$(build builder-one)
b=$(build other-machine-2)
echo "test-image-hygiene: builder-one $a, other-machine-2 $b"
[ -n "$a" ] && [ "$a" = "$b" ] || die "the digest depends on the build machine ($a vs $b)"

# The layer, listed from the archive as podman or docker would unpack it.
mkdir "$tmp/oci"
tar -C "$tmp/oci" -xf "$tmp/builder-one/image/dstack-p2p.oci.tar"
layer=$(/usr/bin/python3 -c '
import json, sys
d = sys.argv[1] + "/blobs/sha256/"
m = json.load(open(d + json.load(open(sys.argv[1] + "/index.json"))["manifests"][0]["digest"][7:]))
print(d + m["layers"][0]["digest"][7:])' "$tmp/oci")
tar -tvzf "$layer" >"$tmp/layer.txt"
exe=$(awk '$1 ~ /^-/ && substr($1, 2) ~ /[xsS]/ {print $6}' "$tmp/layer.txt" | sort | tr '\n' ' ')
want="bin/dash lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 usr/bin/dstack-p2p "
[ "$exe" = "$want" ] || die "executable files in the layer: $exe(want $want)"
grep -q '^l.* bin/sh -> dash$' "$tmp/layer.txt" || die "/bin/sh is not dash"
bad=$(awk '{print $6}' "$tmp/layer.txt" | grep -E '^(s?bin/.*start-stop|sbin/|usr/sbin/|usr/libexec/|etc/(dpkg|apt|alternatives|hostname|resolv\.conf|hosts)(/|$)|var/lib/(dpkg|apt)/|usr/(share|lib)/dpkg/)' || true)
[ -z "$bad" ] || die "left in the layer: $(echo $bad)"
! awk '$1 ~ /^[cbp]/' "$tmp/layer.txt" | grep -q . || die "device nodes in the layer"
# `make image` installs what building it needs (scripts/deps.sh image-build): the
# Dockerfile's build-stage packages and mmdebstrap, none of the test toolchain.
need=$(scripts/deps.sh --list image-build | sort)
build_stage=$(sed -n '/^FROM .* AS build/,/^FROM/p' Dockerfile | sed -n '/apt-get install/,/&& rm/p' |
	tr ' \t\\' '\n\n\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|update|install|rm')
for p in $build_stage mmdebstrap; do
	grep -qx "$p" <<<"$need" || die "deps.sh image-build lacks $p (the Dockerfile's build stage has it)"
done
extra=$(comm -23 <(echo "$need") <({ echo "$build_stage" | tr ' ' '\n'; echo mmdebstrap; echo git; echo ca-certificates; } | sort -u))
[ -z "$extra" ] || die "deps.sh image-build installs more than the build needs: $(echo $extra)"
echo "test-image-hygiene: make image installs $(echo $need)"
echo "test-image-hygiene: layer of $(wc -l <"$tmp/layer.txt") entries; executable: $exe"
echo "test-image-hygiene: PASS in $(( $(date +%s) - t0 )) s: one digest from two build machines ($a), nothing executable but the agent, /bin/sh and the loader"
