#!/bin/sh
# SPDX-License-Identifier: MIT
# make image: the agent's container image, built without docker or a registry.
#
#   root filesystem  mmdebstrap --variant=extract of deploy/image/packages (Debian
#                    bookworm), trimmed to the runtime libraries, CA bundle and /bin/sh,
#                    plus a stripped dstack-p2p (the agent and the CLI; no simulator)
#   image            one layer (tar sorted by name, owner 0, mtimes clamped to
#                    SOURCE_DATE_EPOCH, gzip -n), config, manifest, OCI layout
#   archive          $O/image/dstack-p2p.oci.tar: an OCI archive that also carries
#                    docker's manifest.json, so `podman load` and `docker load` take it
#
# Reproducible: the same binary, package versions and SOURCE_DATE_EPOCH (default: the
# commit time of HEAD) give the same bytes and digest. Debian's mirror moves on with
# point and security releases: the package versions used are listed in
# $O/image/packages.txt and in the image (/usr/share/dstack-p2p/packages).
# The archive is rebuilt only when its inputs change (their hash is in $O/image/key);
# IMAGE_FORCE=1 rebuilds anyway. Prints the path, digest and sizes. Needs root
# (mmdebstrap --mode=root), mmdebstrap and the build dependencies (scripts/deps.sh image).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
O=${O:-build}
out=$O/image
mirror=${IMAGE_MIRROR:-http://deb.debian.org/debian}
security=${IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
name=${IMAGE_NAME:-dstack-p2p}
tag=${IMAGE_TAG:-latest}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH

die() { echo "image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (scripts/deps.sh image)"

# The binary, built apart from the default build so a SANITIZE=... build never ends up
# in the image; paths are relative and the binary stripped, so it does not depend on
# where the tree is checked out.
mkdir -p "$out"
# One build of $out at a time: the host scripts and the VM suite, running side by side in
# make check, each ask for the image; the later ones wait and find the archive made.
exec 9>"$out.lock"
flock -w 1800 9 || die "$out.lock stayed taken for 30 min"
make -s O="$out/obj" CFLAGS="-O2 -ffile-prefix-map=$root/=" "$out/obj/dstack-p2p" >&2
strip --strip-all -o "$out/dstack-p2p" "$out/obj/dstack-p2p"
version=$("$out/dstack-p2p" version | sed 's/^dstack-p2p //')

key=$(cat "$out/dstack-p2p" deploy/image/packages scripts/image.sh |
	{ sha256sum; echo "$SOURCE_DATE_EPOCH $mirror $security $name:$tag"; } | sha256sum | cut -c1-64)
archive=$out/$name.oci.tar
report() {
	echo "image: $archive"
	cat "$out/summary"
}
if [ -z "${IMAGE_FORCE:-}" ] && [ -f "$archive" ] && [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
	report
	exit 0
fi
rm -f "$out/key" "$archive"

# ---- root filesystem ---------------------------------------------------------------
rootfs=$out/rootfs
rm -rf "$rootfs"
include=$(grep -v '^#' deploy/image/packages | grep . | tr '\n' ',' | sed 's/,$//')
# extract: unpack the packages and their dependencies, run no maintainer script.
# --skip=download/empty keeps the .debs, to list the versions that were used.
mmdebstrap --quiet --mode=root --variant=extract --include="$include" \
	--skip=download/empty --skip=cleanup/apt \
	bookworm "$rootfs" \
	"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
	"deb $security bookworm-security main" >&2
ls "$rootfs/var/cache/apt/archives" | grep '\.deb$' | LC_ALL=C sort |
	sed -n 's/^\([^_]*\)_\([^_]*\)_.*/\1 \2/p'  | sed 's/%3a/:/' >"$out/packages.txt"

(
	cd "$rootfs"
	# Only the runtime: no documentation beyond the copyright files, no programs other
	# than /bin/sh, no iconv modules, no package state, no device nodes (the runtime
	# mounts /dev).
	find usr/share/doc -type f ! -name copyright -delete
	rm -rf usr/share/man usr/share/info usr/share/locale usr/share/lintian usr/share/perl5 \
		usr/share/debconf usr/share/bug usr/share/pixmaps usr/share/menu usr/share/bash-completion \
		usr/lib/x86_64-linux-gnu/gconv usr/lib/x86_64-linux-gnu/perl-base \
		usr/sbin usr/lib/ssl/misc var/cache var/lib var/log etc/debconf.conf \
		etc/ssl/private dev/*
	find usr/bin -mindepth 1 -delete
	find bin -mindepth 1 ! -name dash -delete
	ln -s dash bin/sh
	# No other program (dpkg's start-stop-daemon in /sbin), no package manager's
	# configuration, and nothing of the build machine: mmdebstrap copies its hostname
	# and resolver into the tree (the runtime mounts its own), which made the digest
	# differ from one build machine to the next.
	rm -rf sbin etc/dpkg etc/alternatives etc/cron.daily etc/logrotate.d usr/share/dpkg \
		usr/lib/dpkg usr/libexec usr/lib/mime usr/share/polkit-1 usr/share/debianutils \
		lib/systemd etc/apt etc/fstab etc/rmt etc/hostname etc/resolv.conf etc/hosts etc/mtab
	# The CA bundle, as update-ca-certificates makes it from the default set.
	mkdir -p etc/ssl/certs
	find usr/share/ca-certificates -name '*.crt' | LC_ALL=C sort | xargs cat >etc/ssl/certs/ca-certificates.crt
	rm -rf usr/share/ca-certificates
	mkdir -p run var/lib etc
	chmod 1777 tmp
	ln -sfn /run var/run
	printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
	printf 'root:x:0:\n' >etc/group
	printf 'hosts: files dns\n' >etc/nsswitch.conf
	mkdir -p root usr/share/dstack-p2p
)
install -m 0755 "$out/dstack-p2p" "$rootfs/usr/bin/dstack-p2p"
cp "$out/packages.txt" "$rootfs/usr/share/dstack-p2p/packages"
# Shared libraries that neither dstack-p2p nor /bin/sh loads go (the packages' own
# helpers pulled them in); plugin folders (OpenSSL providers) stay.
in_rootfs() { # path inside the image -> the file it names, following its symlinks there
	local p=$1 n=0 t
	while [ -L "$rootfs$p" ] && [ "$n" -lt 10 ]; do
		t=$(readlink "$rootfs$p")
		case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
		n=$((n + 1))
	done
	echo "$p"
}
needed=$(for exe in /usr/bin/dstack-p2p /bin/dash; do
	chroot "$rootfs" /lib64/ld-linux-x86-64.so.2 --list "$exe" | sed -n 's/.*=> \([^ ]*\) .*/\1/p'
done | { cat; echo /lib64/ld-linux-x86-64.so.2; } | while read -r lib; do in_rootfs "$lib"; done | sort -u)
for dir in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu; do
	find "$rootfs/$dir" -maxdepth 1 -type f -name '*.so*' | while read -r f; do
		echo "$needed" | grep -qxF "/${f#"$rootfs"/}" || rm -f "$f"
	done
	find "$rootfs/$dir" -maxdepth 1 -xtype l -delete
done
# Nothing executable but the agent, /bin/sh and the loader the kernel starts them with:
# libraries and plugins are mapped, never executed, and need no x bit.
loader=$(in_rootfs /lib64/ld-linux-x86-64.so.2)
find "$rootfs" -type f -perm /7111 ! -path "$rootfs/usr/bin/dstack-p2p" ! -path "$rootfs/bin/dash" \
	! -path "$rootfs$loader" -exec chmod a-x,u-s,g-s,-t {} +
# The binary's libraries must all be in the image (an extract that missed one would
# only show when the container starts).
missing=$(chroot "$rootfs" /lib64/ld-linux-x86-64.so.2 --list /usr/bin/dstack-p2p | grep 'not found' || true)
[ -z "$missing" ] || die "libraries missing from the image: $missing"
chroot "$rootfs" /usr/bin/dstack-p2p version >/dev/null || die "dstack-p2p does not run in the image"

# ---- OCI image ---------------------------------------------------------------------
blobs=$out/oci/blobs/sha256
rm -rf "$out/oci"
mkdir -p "$blobs"
tar_det() { # dir, output, paths...: sorted, owner 0, mtimes clamped, no atime/ctime
	local dir=$1 output=$2
	shift 2
	tar --sort=name --format=posix --numeric-owner --owner=0 --group=0 \
		--mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-C "$dir" -cf "$output" "$@"
}
blob() { # file -> moves it into blobs, prints its sha256
	local h
	h=$(sha256sum "$1" | cut -c1-64)
	mv "$1" "$blobs/$h"
	echo "$h"
}
tar_det "$rootfs" "$out/layer.tar" $(cd "$rootfs" && ls -A | LC_ALL=C sort)
diff_id=$(sha256sum "$out/layer.tar" | cut -c1-64)
unpacked=$(stat -c %s "$out/layer.tar")
gzip -9n "$out/layer.tar"
layer_size=$(stat -c %s "$out/layer.tar.gz")
layer=$(blob "$out/layer.tar.gz")

created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
labels="\"org.opencontainers.image.title\":\"dstack-p2p\",\"org.opencontainers.image.version\":\"$version\",\"org.opencontainers.image.revision\":\"$revision\",\"org.opencontainers.image.created\":\"$created\""
# Healthy once this node is registered (the agent answers on its control socket).
printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$created\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"dstack-p2p\",\"agent\"],\"WorkingDir\":\"/\",\"Labels\":{$labels},\
\"Healthcheck\":{\"Test\":[\"CMD\",\"dstack-p2p\",\"wait\",\"--timeout\",\"5\"],\
\"Interval\":30000000000,\"Timeout\":10000000000,\"StartPeriod\":120000000000,\"Retries\":3}},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"scripts/image.sh (mmdebstrap --variant=extract)\"}]}" \
	>"$out/config.json"
config_size=$(stat -c %s "$out/config.json")
config=$(blob "$out/config.json")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$layer_size}],\
\"annotations\":{$labels}}" >"$out/manifest.json"
manifest_size=$(stat -c %s "$out/manifest.json")
manifest=$(blob "$out/manifest.json")
printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"digest\":\"sha256:$manifest\",\"size\":$manifest_size,\
\"annotations\":{\"io.containerd.image.name\":\"docker.io/library/$name:$tag\",\"org.opencontainers.image.ref.name\":\"$tag\"}}]}" \
	>"$out/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci/oci-layout"
# docker load before OCI support (docker < 25) reads this file instead of index.json.
printf '%s' "[{\"Config\":\"blobs/sha256/$config\",\"RepoTags\":[\"$name:$tag\"],\"Layers\":[\"blobs/sha256/$layer\"]}]" \
	>"$out/oci/manifest.json"
find "$out/oci" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar_det "$out/oci" "$archive.tmp" oci-layout index.json manifest.json blobs
mv "$archive.tmp" "$archive"

{
	echo "image: $name:$tag, dstack-p2p $version, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
	echo "image: digest sha256:$manifest (image id sha256:$config)"
	echo "image: $(stat -c %s "$archive") bytes archive, $layer_size bytes compressed layer, $unpacked bytes unpacked, $(wc -l <"$out/packages.txt") Debian packages"
} >"$out/summary"
echo "$key" >"$out/key"
rm -rf "$rootfs"
report
