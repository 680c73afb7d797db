#!/bin/bash
# SPDX-License-Identifier: MIT
# with-vm-chain.sh CMD...: prepare a chain for the kernel mesh test in the qemu VM, then
# run CMD (netns-harness/vm/run-tests.sh) with it added to the VM image.
#
# On the host, as an operator would: anvil, the cluster contract, three tokens minted
# and bound to three instance ids chosen here, and a funded key per node; anvil's state
# is dumped to a file. The VM gets anvil (EXTRA_BINS, with its libraries), the state and
# an env file (EXTRA_FILES) under /opt/mesh; tests/vm/test-mesh-kernel.sh loads them.
# It also gets make image's layer at /opt/image/layer.tar.gz and capsh, for
# tests/vm/test-image-kernel.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
O=${O:-build}
out=$O/vm-mesh
mkdir -p "$out"
rm -f "$out/anvil-state.json" "$out/mesh.env"

(
	export H_ANVIL_ARGS="--dump-state $PWD/$out/anvil-state.json"
	. netns-harness/lib.sh
	h_init dpv
	h_deploy >&2
	env=$out/mesh.env.tmp
	{
		echo "CONTRACT=$H_CONTRACT"
		echo "KMS_KEY=${H_KMS_KEY#0x}"
		echo "ANVIL=$(readlink -f "$H_ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")"
	} >"$env"
	for i in 1 2 3; do
		H_INSTANCE[$i]=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
		h_mint_bind "$i" >&2
		key=0x$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
		h_cast rpc anvil_setBalance "$("$H_CAST" wallet address --private-key "$key")" \
			0x56BC75E2D63100000 >/dev/null
		echo "INSTANCE_$i=${H_INSTANCE[$i]} TOKEN_$i=${H_TOKEN[$i]} TXKEY_$i=$key" >>"$env"
	done
	mv "$env" "$out/mesh.env"
	# anvil writes the dump when it exits: stop it ourselves and wait (bounded) for that.
	pid=${H_OTHER_PIDS[0]}
	kill "$pid"
	for t in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
) >&2
[ -s "$out/anvil-state.json" ] || { echo "with-vm-chain: anvil left no state dump" >&2; exit 1; }
anvil=$(sed -n 's/^ANVIL=//p' "$out/mesh.env")
export EXTRA_BINS="${EXTRA_BINS:+$EXTRA_BINS }$anvil"
export EXTRA_FILES="${EXTRA_FILES:+$EXTRA_FILES }$out/anvil-state.json:/opt/mesh/anvil-state.json $out/mesh.env:/opt/mesh/mesh.env"
# tests/vm/test-image-kernel.sh runs the image's root filesystem (make image's one
# layer) as a container with CAP_NET_ADMIN alone, dropped to by capsh.
scripts/image.sh >&2
arc=$O/image/dstack-p2p.oci.tar
manifest=$(tar -xOf "$arc" index.json | jq -r '.manifests[0].digest' | cut -c8-)
layer=$(tar -xOf "$arc" "blobs/sha256/$manifest" | jq -r '.layers[0].digest' | cut -c8-)
tar -xOf "$arc" "blobs/sha256/$layer" >"$out/image-layer.tar.gz"
export EXTRA_BINS="$EXTRA_BINS $(command -v capsh)"
export EXTRA_FILES="$EXTRA_FILES $out/image-layer.tar.gz:/opt/image/layer.tar.gz"
echo "with-vm-chain: contract $(sed -n 's/^CONTRACT=//p' "$out/mesh.env"), 3 tokens bound; state $(du -h "$out/anvil-state.json" | cut -f1)" >&2
exec "$@"
