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
h_init img
h_deploy
h_image_load "$archive"
h_log "image $H_IMAGE loaded"
h_node_up 1
h_node_up 2
h_node_add 3
h_mint_bind 3
h_agent_start_image 3
c=${H_PREFIX}a3

# The container shares node 3's network namespace, nothing else of the host's.
cpid=$(h_podman inspect -f '{{.State.Pid}}' "$c")
[ "$(ip netns identify "$cpid")" = "$(h_ns 3)" ] || h_die "container not in $(h_ns 3)"
[ "$(readlink /proc/"$cpid"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || h_die "container shares our mounts"
[ "$(readlink /proc/"$cpid"/exe)" = /usr/bin/dstack-p2p ] || h_die "container runs $(readlink /proc/"$cpid"/exe)"

h_agent_wait_registered 1
h_agent_wait_registered 2
DSTACK_P2P_CONTROL=$H_RUN/run3/control.sock "$H_BIN/dstack-p2p" wait --timeout 60 >/dev/null ||
	h_die "node 3 (image) did not register"
h_wait_mesh 60 1 2 3 || h_die "mesh did not converge: $(h_in 3 wg show "$(h_if 3)" allowed-ips)"
h_log "mesh of 3 converged, node 3 from the image"
ok=$(h_ping_all 1 2 3)
[ "$ok" = 6 ] || h_die "$ok of 6 pings answered"

# Node 3's device as wg reports it: exactly the two peers, each at its endpoint, with
# a handshake now that pings went through.
dump=$(h_in 3 wg show "$(h_if 3)" dump | tail -n +2)
[ "$(echo "$dump" | wc -l)" = 2 ] || h_die "node 3 dump: $dump"
for j in 1 2; do
	line=$(echo "$dump" | awk -v k="${H_PUB[$j]}" '$1 == k')
	[ "$(echo "$line" | cut -f3)" = "$H_SUBNET.$j:51830" ] || h_die "node 3's peer $j: $line"
	[ "$(echo "$line" | cut -f4)" = "10.0.1.${H_TOKEN[$j]}/32" ] || h_die "node 3's peer $j: $line"
	[ "$(echo "$line" | cut -f5)" != 0 ] || h_die "node 3 has no handshake with $j"
done

# What the app side of the compose files reads: the peers file on the shared volume,
# and the on-change hook, run by the image's /bin/sh.
for j in 1 2; do
	grep -q "10.0.1.${H_TOKEN[$j]}" "$H_RUN/run3/peers" || h_die "peers file lacks node $j: $(cat "$H_RUN/run3/peers")"
	grep -q "10.0.1.${H_TOKEN[$j]}" "$H_RUN/run3/on-change" 2>/dev/null || h_die "on-change did not run"
done
h_podman exec "$c" dstack-p2p wait --timeout 5 >/dev/null || h_die "the image's HEALTHCHECK command fails"

h_podman stop -t 10 "$c" >/dev/null
[ "$(h_podman inspect -f '{{.State.ExitCode}}' "$c")" = 0 ] || h_die "agent exit code $(h_podman inspect -f '{{.State.ExitCode}}' "$c")"
h_log "PASS: the image's agent joined the mesh (wg dump, 6/6 pings) and stopped cleanly"
