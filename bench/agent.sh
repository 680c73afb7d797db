#!/bin/bash
# SPDX-License-Identifier: MIT
# One agent at scale: a real agent (netns harness: wireguard-go, the simulator, anvil)
# with 16 and then 254 registry entries, the others synthetic peers signed by the run's
# KMS root (build/bench/chain-registry --fill), which the agent verifies like real ones.
# Prints its RSS and its smaps attributed per mapping (libraries, heap), and the idle CPU
# of a registered agent and of an unregistered one (bound, waiting for an operator to
# relay its registration) beside 253 registry entries, at the default 1 s poll. Beside
# the polling agent (node 1) runs one that follows new heads by push (node 3, --rpc-ws
# to anvil's WebSocket), and their RSS is printed side by side with the difference.
# Figures are printed, never asserted.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/agent.sh: needs root (network namespaces); skipped"; exit 0; }
H_POLL_MS=${H_POLL_MS:-1000}
. "$(dirname "$0")/../netns-harness/lib.sh"
. "$(dirname "$0")/cpu.bash"
FILL=$H_ROOT/build/bench/chain-registry
[ -x "$FILL" ] || { echo "agent: $FILL missing (make bench builds it)"; exit 1; }

# Rss per mapping name of a process, in KiB, largest first; the rest summed in one line.
smaps_by_mapping() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]"; sub(/.*\//, "", name); next }
	     /^Rss:/ { rss[name] += $2 }
	     END { for (n in rss) if (rss[n] > 0) print rss[n], n }' "/proc/$1/smaps" |
		sort -rn | awk -v top="${2:-12}" 'NR <= top { printf "    %6d KiB  %s\n", $1, $2; next }
			{ rest += $1; k++ } END { if (k) printf "    %6d KiB  (%d more mappings)\n", rest, k }'
}
report() {
	local pid=$1 label=$2
	echo "agent: agent with $label: RSS $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$pid/status")" \
		"(anonymous $(awk '/RssAnon/ { print $2 " " $3 }' "/proc/$pid/status")," \
		"file-backed $(awk '/RssFile/ { print $2 " " $3 }' "/proc/$pid/status"))," \
		"$(awk '/^Pss:/ { s += $2 } END { print s " kB" }' "/proc/$pid/smaps_rollup") PSS;" \
		"$(grep -c '\.so' <(awk '{ print $6 }' "/proc/$pid/maps" | sort -u)) shared objects mapped"
	smaps_by_mapping "$pid" 14
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# The polling agent against the push one: RSS of each and push minus polling, in kB, and
# the difference split into anonymous and file-backed pages.
versus() {
	local k d=()
	for k in VmRSS RssAnon RssFile; do d+=($(( $(status_kb "$2" $k) - $(status_kb "$1" $k) ))); done
	echo "agent: RSS at $3: polling $(status_kb "$1" VmRSS) kB, push (--rpc-ws)" \
		"$(status_kb "$2" VmRSS) kB, push - polling ${d[0]} kB (anonymous ${d[1]} kB," \
		"file-backed ${d[2]} kB)"
}
wait_peers() { # node n: its device holds n peers (bounded)
	local t
	for t in $(seq 1 600); do
		[ "$(h_in "$1" wg show "$(h_if "$1")" peers | wc -l)" -ge "$2" ] && return 0
		sleep 0.2
	done
	h_die "node $1 did not reach $2 peers"
}
fill() { # n: registry entries in all
	OWNER_KEY=$H_OPERATOR_KEY KMS_KEY=$H_KMS_KEY "$FILL" --fill "$1" "$H_RUN/anvil.ipc" "$H_CONTRACT" \
		2>/dev/null || h_die "filling the registry to $1"
}

# The floor under any libcurl-based agent: a process that only loads and initialises
# Debian's libcurl, each flavour, with and without libssh2's crypto start-up
# (net/http.c skips it).
floor() {
	local src=$H_RUN/floor.c
	cat >"$src" <<'C'
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
int main(int argc, char **argv)
{
	char line[128];
	FILE *f;

	if (argc > 1 && !strcmp(argv[1], "no-ssh-crypto")) {
		int (*init)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "libssh2_init");
		if (init)
			init(1);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			printf("%s", line + 6 + strspn(line + 6, " \t"));
	return 0;
}
C
	cc -o "$H_RUN/floor-openssl" "$src" -lcurl 2>/dev/null || return 0
	cc -o "$H_RUN/floor-gnutls" "$src" -l:libcurl-gnutls.so.4 2>/dev/null || return 0
	echo "agent: a process that only initialises libcurl (RSS): OpenSSL flavour" \
		"$("$H_RUN/floor-openssl" | tr -d '\n'), GnuTLS flavour $("$H_RUN/floor-gnutls" | tr -d '\n')," \
		"GnuTLS without libssh2's crypto start-up $("$H_RUN/floor-gnutls" no-ssh-crypto | tr -d '\n')"
}

h_init dpm
floor
h_deploy
h_node_up 1
h_agent_wait_registered 1 60
pid=${H_PID_AGENT[1]}
h_node_add 3
h_mint_bind 3
h_agent_start 3 --rpc-ws "ws://$H_HUB_IP:8545"
h_agent_wait_registered 3 60
for t in $(seq 1 150); do
	grep -q "push: subscribed to new heads" "$H_RUN/agent3.log" && break
	[ "$t" = 150 ] && h_die "node 3 did not subscribe to new heads ($H_RUN/agent3.log)"
	sleep 0.2
done
push_pid=${H_PID_AGENT[3]}
fill 16
wait_peers 1 15
wait_peers 3 15
sleep 3  # a few idle polls after the change
report "$pid" "16 registry entries (15 peers)"
report "$push_pid" "16 registry entries (15 peers), push"
versus "$pid" "$push_pid" "16 registry entries"

# 253 entries, then node 2 bound to token 254 with no funded key and no relayer: it
# prints its registration for an operator and waits, unregistered, beside 253 records.
fill 253
wait_peers 1 252
wait_peers 3 252
h_node_add 2
h_mint_bind 2
h_agent_start 2 --tx-key-file ""
wait_peers 2 253
sleep 5
lines0=$(wc -l <"$H_RUN/agent2.log")
cpu=($(bench_idle_cpu 20 "$pid" "${H_PID_AGENT[2]}"))
echo "agent: idle CPU beside 253 registry entries over 20 s, poll ${H_POLL_MS} ms: registered" \
	"agent ${cpu[0]}, unregistered agent (waiting for a relayed registration) ${cpu[1]}, which" \
	"logged $(( $(wc -l <"$H_RUN/agent2.log") - lines0 )) lines meanwhile"

# The operator relays node 2's registration: 254 entries, node 1 has 253 peers.
data=$(sed -n 's/^registration calldata: \(0x[0-9a-f]*\)$/\1/p' "$H_RUN/agent2.log" | tail -1)
[ -n "$data" ] || h_die "node 2 printed no registration"
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "$data" >/dev/null
wait_peers 1 253
wait_peers 3 253
sleep 3
report "$pid" "254 registry entries (253 peers)"
report "$push_pid" "254 registry entries (253 peers), push"
versus "$pid" "$push_pid" "254 registry entries"
