#!/bin/bash
# The module graph of docs/README.md, checked: every #include "x/..." of a module's files
# and, when its objects are built (O, default build), every symbol its objects call must
# come from the module itself or one it may depend on. An edge to a higher module fails.
#
#   common -> crypto -> {chain, attest} -> registry -> mesh -> netlink
#   net (HTTP client and server, TLS, WebSocket) is on common only, below chain, attest,
#   relay and mesh; relay (gateway transport), netlink and dns (the peer-name responder)
#   are below mesh; api is on common only; ops (the operator's side) is on registry and
#   what is below it, beside mesh.
# Inside mesh/, the decision (decide.c) does no I/O: no socket header, no call into one.
#
# Usage: scripts/module-graph.sh [--print]   (--print: the edges found, "a -> b")
set -u
cd "$(dirname "$0")/.."
O=${O:-build}

declare -A allowed=(
	[common]=""
	[net]="common"
	[crypto]="common"
	[chain]="common net crypto"
	[attest]="common net crypto"
	[registry]="common net crypto chain attest"
	[ops]="common net crypto chain attest registry"
	[netlink]="common crypto"
	[relay]="common net crypto"
	[dns]="common"
	[mesh]="common net crypto chain attest registry netlink relay dns"
	[api]="common"
)
modules="common net crypto chain attest registry ops netlink relay dns mesh api"
bad=0
declare -A edges=()

may_use() { # module target
	[ "$1" = "$2" ] && return 0
	case " ${allowed[$1]} " in *" $2 "*) return 0;; esac
	return 1
}

edge() { # module target where
	edges["$1 -> $2"]=1
	if ! may_use "$1" "$2"; then
		echo "module-graph: $1 -> $2 is a back edge ($3)" >&2
		bad=1
	fi
}

# Includes. The simulator (attest/sim) is a program of its own, like cli/.
for m in $modules; do
	while IFS=: read -r file inc; do
		t=${inc%%/*}
		[ -n "${allowed[$t]+x}" ] || continue
		edge "$m" "$t" "$file includes $inc"
	done < <(grep -Ho '^#include "[a-z_]*/[^"]*"' "$m"/*.c "$m"/*.h 2>/dev/null | sed 's/#include "\(.*\)"/\1/')
done

# Calls: each module's undefined symbols, resolved to the module that defines them.
if ls "$O"/common/*.o >/dev/null 2>&1; then
	declare -A owner=()
	for m in $modules; do
		for o in "$O/$m"/*.o; do
			[ -f "${o}" ] && [ -f "$m/$(basename "${o%.o}").c" ] || continue
			while read -r sym; do owner[$sym]=$m; done < <(nm -g --defined-only "$o" | awk '{print $3}')
		done
	done
	for m in $modules; do
		for o in "$O/$m"/*.o; do
			[ -f "${o}" ] && [ -f "$m/$(basename "${o%.o}").c" ] || continue
			while read -r sym; do
				t=${owner[$sym]:-}
				[ -n "$t" ] && edge "$m" "$t" "$(basename "$o") calls $sym"
			done < <(nm -u "$o" | awk '{print $2}')
		done
	done
fi

# Inside mesh/: the decision (decide.c) is pure. It includes no socket or resolver header
# and calls nothing that opens a socket, resolves a name, or is a component's I/O (the
# registry handle, the sender, the transport's paths, the control server, the agent).
DECIDE_O=${DECIDE_O:-$O/mesh/decide.o}
if grep -Hn '^#include <\(sys/socket\|sys/un\|netdb\|poll\)\.h>' mesh/decide.c >&2; then
	echo "module-graph: mesh/decide.c includes a socket or resolver header (the decision does no I/O)" >&2
	bad=1
fi
if [ -f "$DECIDE_O" ]; then
	while read -r sym; do
		case $sym in
		socket | connect | bind | send* | recv* | getaddrinfo | gethostbyname* | poll | mesh_endpoint_parse | \
			registry_handle_* | registry_read* | eth_rpc_* | http_* | mesh_sender_* | agent_* | control_*)
			echo "module-graph: mesh/decide.c calls $sym (the decision does no I/O)" >&2
			bad=1
			;;
		esac
	done < <(nm -u "$DECIDE_O" | awk '{print $2}')
fi

if [ "${1:-}" = --print ]; then
	for e in "${!edges[@]}"; do
		a=${e% -> *} b=${e#* -> }
		[ "$a" != "$b" ] && echo "$e"
	done | sort
fi
[ "$bad" = 0 ] && echo "module-graph: no back edges (${#edges[@]} edges checked)"
exit "$bad"
