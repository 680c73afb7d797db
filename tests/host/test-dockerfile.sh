#!/bin/bash
# SPDX-License-Identifier: MIT
# The Dockerfile, built for real and offline from any registry: the base its FROM lines
# name (debian:bookworm-slim) is made here by mmdebstrap (apt, and this machine's Debian
# sources so the build stage's apt-get reaches the same mirror), tagged under exactly that
# name, and `podman build --pull=never --format docker` builds the Dockerfile with the
# build context .dockerignore lets through. The result runs node 3 of a harness mesh
# (tests/host/image-mesh.bash, as test-image.sh does for `make image`), and its config
# keeps the HEALTHCHECK (docker format).
# Cached under $O/dockerfile/ (ignored by git): the base tarball (rebuilt when the Debian
# sources change) and a podman storage whose layer cache keeps the build stage's apt step;
# a second run rebuilds only from `COPY . .` on. Runs in parallel with other host tests: the
# cache is taken under a lock, the mesh runs in this run's namespaces and podman storage.
set -eu
cd "$(dirname "$0")/../.."
for tool in mmdebstrap podman runc flock; do
	command -v "$tool" >/dev/null || { echo "test-dockerfile: $tool missing (scripts/deps.sh image)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "test-dockerfile: run as root (mmdebstrap, namespaces)" >&2; exit 1; }
O=${O:-build}
cache=$(mkdir -p "$O/dockerfile" && cd "$O/dockerfile" && pwd)
tag=localhost/dstack-p2p-dockerfile:test
log() { echo "test-dockerfile: $*"; }
die() { echo "test-dockerfile: FAIL: $*" >&2; exit 1; }

from=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' Dockerfile | sort -u)
[ "$from" = debian:bookworm-slim ] || die "the Dockerfile's base is '$from', this test makes debian:bookworm-slim"
sources=${DOCKERFILE_SOURCES:-}
if [ -z "$sources" ]; then
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -s "$f" ] && grep -q '^[^#]*bookworm' "$f" && { sources=$f; break; }
	done
fi
[ -n "$sources" ] || die "no Debian bookworm sources on this machine (set DOCKERFILE_SOURCES)"

store() { # podman on the cached storage (settings as h_image_load's)
	CONTAINERS_CONF=$tmp/containers.conf podman --root "$cache/storage" --runroot "$cache/run" --runtime runc \
		--storage-driver overlay --cgroup-manager cgroupfs "$@"
}
tmp=$(mktemp -d /tmp/dstack-p2p-dockerfile.XXXXXX)
printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n' >"$tmp/containers.conf"
t0=$(date +%s)
exec 9>"$cache/lock"
flock -w 1800 9 || die "the cache lock $cache/lock stayed taken for 30 min"
release() {
	umount "$cache/storage/overlay" 2>/dev/null || true
	flock -u 9 2>/dev/null || true
}
trap 'release; rm -rf "$tmp"' EXIT

# ---- the base: Debian's bookworm with apt, as bookworm-slim is -----------------------
key=$( { cat "$sources"; echo "apt bookworm v1"; } | sha256sum | cut -c1-64)
if [ "$(cat "$cache/base.key" 2>/dev/null)" != "$key" ] || ! [ -s "$cache/base.tar" ]; then
	log "making the base with mmdebstrap (once per Debian sources)"
	rm -f "$cache/base.key"
	mmdebstrap --quiet --mode=root --variant=apt --format=tar \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
		--aptopt='Acquire::Languages "none"' \
		bookworm "$cache/base.tar.tmp" "$sources" >"$tmp/mmdebstrap.log" 2>&1 ||
		{ tail -20 "$tmp/mmdebstrap.log"; die "mmdebstrap"; }
	mv "$cache/base.tar.tmp" "$cache/base.tar"
	store rmi -f "docker.io/library/$from" >/dev/null 2>&1 || true
	echo "$key" >"$cache/base.key"
fi
if ! store image exists "docker.io/library/$from"; then
	store import -q "$cache/base.tar" "docker.io/library/$from" >/dev/null || die "podman import of the base"
fi
log "base docker.io/library/$from: $(store images -q --no-trunc "docker.io/library/$from")"

# ---- the Dockerfile, as docker users build it ----------------------------------------
# --network host: the build stage's apt-get reaches the mirror from this namespace, as
# docker build does by default. --pull=never: nothing comes from a registry.
t1=$(date +%s)
store build --pull=never --network host --format docker --layers -t "$tag" . >"$tmp/build.log" 2>&1 ||
	{ tail -25 "$tmp/build.log"; die "podman build of the Dockerfile"; }
log "built in $(( $(date +%s) - t1 )) s: $(store images -q --no-trunc "$tag")"
health=$(store image inspect -f '{{.HealthCheck}}' "$tag")
grep -q 'CMD dstack-p2p wait --timeout 5]' <<<"$health" || die "the image lost its HEALTHCHECK: $health"
store run --rm --network none --no-healthcheck "$tag" dstack-p2p version >"$tmp/version" || die "dstack-p2p version in the image"
log "the image says: $(cat "$tmp/version")"
store save -q --format docker-archive -o "$tmp/image.tar" "$tag" || die "podman save"
store image prune -f >/dev/null 2>&1 || true
release
log "cache ready in $(( $(date +%s) - t0 )) s"

# ---- the result, as node 3 of a mesh ----------------------------------------------------
source netns-harness/lib.sh
source tests/host/image-mesh.bash
h_init dkf
# h_init's trap (h_cleanup, which keeps the test's exit status) removes the scratch too.
dkf_cleanup() { rm -rf "$tmp"; }
H_CLEANUP_HOOK=dkf_cleanup
h_deploy
h_image_load "$tmp/image.tar"
h_log "the Dockerfile's image $H_IMAGE loaded"
image_mesh_check
h_log "PASS: the Dockerfile builds (podman, local base) and its agent joined the mesh (wg dump, 6/6 pings)"
