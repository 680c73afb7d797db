#!/bin/bash
# SPDX-License-Identifier: MIT
# The container image, tested and not just built: `make image`'s OCI archive is loaded
# with podman (a storage of this run's own), and node 3's agent runs from it in node 3's
# namespace with the guest-agent socket, a shared /run/dstack-p2p volume and the
# wireguard-go UAPI folder mounted, as the compose files lay it out. Nodes 1 and 2 run
# the agent from the build tree. Asserts: every device lists the other two (wg show),
# node 3's dump has both peers with their endpoints and handshakes after a ping, every
# pair pings, the container's agent wrote the peers file and ran P2P_ON_CHANGE with the
# image's /bin/sh, the image's HEALTHCHECK command passes, and `podman stop` ends the
# agent cleanly (exit 0: it handles SIGTERM as PID 1).
# Needs scripts/deps.sh image (mmdebstrap, podman, runc); the image is rebuilt only when
# its inputs change (scripts/image.sh).
# check-lock: image  (tests/check.sh: one script at a time builds $O/image)
set -eu
cd "$(dirname "$0")/../.."
for tool in mmdebstrap podman runc; do
	command -v "$tool" >/dev/null || { echo "test-image: $tool missing (scripts/deps.sh image)" >&2; exit 1; }
done
archive=${O:-build}/image/dstack-p2p.oci.tar
scripts/image.sh >/tmp/dstack-p2p-image-test.$$.log 2>&1 ||
	{ tail -20 /tmp/dstack-p2p-image-test.$$.log; rm -f /tmp/dstack-p2p-image-test.$$.log; exit 1; }
grep '^image:' /tmp/dstack-p2p-image-test.$$.log
rm -f /tmp/dstack-p2p-image-test.$$.log
source netns-harness/lib.sh
source tests/host/image-mesh.bash
h_init img
h_deploy
h_image_load "$archive"
h_log "image $H_IMAGE loaded"
image_mesh_check
h_log "PASS: the image's agent joined the mesh (wg dump, 6/6 pings) and stopped cleanly"
