#!/bin/bash
# SPDX-License-Identifier: MIT
# Agent memory: one real agent (netns harness: wireguard-go, the simulator, anvil) with
# 16 and then 254 registry entries, the others synthetic peers signed by the run's KMS
# root (build/bench/chain-registry --fill), which the agent verifies like real ones.
# Prints the agent's RSS and its smaps attributed per mapping (libraries, heap, stacks).
# Figures are printed, never asserted.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench/memory.sh: needs root (network namespaces); skipped"; exit 0; }
. "$(dirname "$0")/../netns-harness/lib.sh"
FILL=$H_ROOT/build/bench/chain-registry
[ -x "$FILL" ] || { echo "memory: $FILL missing (make bench builds it)"; exit 1; }

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
	echo "memory: agent with $label: RSS $(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$pid/status")" \
		"(anonymous $(awk '/RssAnon/ { print $2 " " $3 }' "/proc/$pid/status")," \
		"file-backed $(awk '/RssFile/ { print $2 " " $3 }' "/proc/$pid/status"))," \
		"$(awk '/^Pss:/ { s += $2 } END { print s " kB" }' "/proc/$pid/smaps_rollup") PSS;" \
		"$(grep -c '\.so' <(awk '{ print $6 }' "/proc/$pid/maps" | sort -u)) shared objects mapped"
	smaps_by_mapping "$pid" 14
}
wait_peers() { # n: the agent's device holds n peers (bounded)
	local t
	for t in $(seq 1 600); do
		[ "$(h_in 1 wg show "$(h_if 1)" peers | wc -l)" -ge "$1" ] && return 0
		sleep 0.2
	done
	h_die "the agent did not reach $1 peers"
}

# The floor under any libcurl-based agent: a process that only loads and initialises
# Debian's libcurl, each flavour, with and without libssh2's crypto start-up
# (common/http.c skips it).
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
	echo "memory: a process that only initialises libcurl (RSS): OpenSSL flavour" \
		"$("$H_RUN/floor-openssl" | tr -d '\n'), GnuTLS flavour $("$H_RUN/floor-gnutls" | tr -d '\n')," \
		"GnuTLS without libssh2's crypto start-up $("$H_RUN/floor-gnutls" no-ssh-crypto | tr -d '\n')"
}

h_init dpm
floor
h_deploy
h_node_up 1
h_agent_wait_registered 1 60
pid=${H_PID_AGENT[1]}
for n in 16 254; do
	OWNER_KEY=$H_OPERATOR_KEY KMS_KEY=$H_KMS_KEY "$FILL" --fill "$n" "$H_RUN/anvil.ipc" "$H_CONTRACT" 2>/dev/null ||
		h_die "filling the registry to $n"
	wait_peers $((n - 1))
	sleep 3  # a few idle polls after the change
	report "$pid" "$n registry entries ($((n - 1)) peers)"
done
