# SPDX-License-Identifier: MIT
# Zero trust under a lying or failing RPC (issue 10): one scenario per numbered point,
# as functions zt_1 .. zt_12 (10 to 12: the reads by token, issue 12) over one harness run (netns-harness/lib.sh). Node 1's agent
# reads the chain through netns-harness/rpc-proxy.py ("a", and "b" for point 7) in the hub
# namespace; nodes 2 and 3 read anvil directly. Every scenario starts and ends with the
# whole 3-node mesh and asserts only on what wg, ping and cast observe (plus the agent's
# own exit status and messages where the issue asks for a message). Figures (time to
# repair, registration transactions, ping loss) are printed as "FIGURE ..." lines, never
# asserted. Source after lib.sh; zt_setup first; then zt_run N... .

# Every scenario (1b and 5b: the lie of 1 and 5 while the agent starts; 10 to 12: lies
# in what the agent reads by token after a log, getPeerByToken and eth_getLogs).
ZT_ALL="1 1b 2 3 4 5 5b 6 7 8 9 10 11 12"

ZT_SIG_PEER='(uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes)'

zt_pass() { h_log "PASS: $*"; }
zt_figure() { echo "$*" >>"$H_RUN/zt-figures"; h_log "FIGURE $*"; }
zt_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

zt_setup() {
	h_deploy
	h_proxy_start a 8601
	h_proxy_start b 8602
	H_RPC_NODE[1]=${H_PROXY_URL[a]}
	for i in 1 2 3; do h_node_up "$i"; done
	# Scenario 1's forged record (a dozen cast calls), made while the mesh converges.
	ZT_ATTACK_KMS=$(zt_key)
	ZT_FORGED_PUB=$(wg genkey | wg pubkey)
	zt_forge "$ZT_ATTACK_KMS" "${H_TOKEN[2]}" "$ZT_FORGED_PUB" "$H_SUBNET.66:51830" 1 >"$H_RUN/forged.hex" &
	ZT_FORGE_PID=$!
	for i in 1 2 3; do h_agent_wait_registered "$i" 30; done
	h_wait_mesh 30 1 2 3 || h_die "3-node mesh did not converge"
	[ "$(h_ping_all 1 2 3)" = 6 ] || h_die "3-node mesh: not every pair answers"
	wait "$ZT_FORGE_PID" || h_die "forging the attacker's record failed"
	H_KMS_ADDR=$("$H_CAST" wallet address --private-key "$H_KMS_KEY" | tr 'A-F' 'a-f')
	h_log "zt: 3 nodes, node 1 behind ${H_PROXY_URL[a]}"
}

# The funded key's nonce (the chain's count of registration transactions node i sent).
zt_txs() { h_cast nonce "$("$H_CAST" wallet address --private-key "$(cat "$H_RUN/txkey$1")")"; }

zt_restart_agent() { # i [flags...]: SIGTERM (interface and peers stay up), start again
	local i=$1
	shift
	kill "${H_PID_AGENT[$i]}" 2>/dev/null || true
	wait "${H_PID_AGENT[$i]}" 2>/dev/null || true
	echo "--- zt restart $*" >>"$H_RUN/agent$i.log"
	h_agent_start "$i" "$@"
}

zt_agent_alive() { kill -0 "${H_PID_AGENT[$1]}" 2>/dev/null || h_die "node $1's agent exited ($H_RUN/agent$1.log)"; }

# ---- watching node 1 during a fault ------------------------------------------------------
# zt_watch_start SECONDS: node 1's `wg show dump` every 0.2 s and pings to nodes 2 and 3
# every 0.2 s, both for SECONDS (bounded). zt_watch_end waits and checks every sample.
zt_watch_start() {
	ZT_WATCH_S=$1
	ZT_WATCH=$(mktemp -d "$H_RUN/watch.XXXXXX")  # (scenarios run in subshells: no counter)
	# Until the deadline (a sample may take longer than 0.2 s on a loaded machine), and
	# at most 5 samples a second.
	local end=$(( $(date +%s%N) + ZT_WATCH_S * 1000000000 ))
	( for t in $(seq 1 $(( ZT_WATCH_S * 5 ))); do
		[ "$(date +%s%N)" -lt "$end" ] || break
		echo "--- $(date +%s%N)"
		h_in 1 wg show "$(h_if 1)" dump | tail -n +2
		sleep 0.2
	done ) >"$ZT_WATCH/dump" 2>&1 &
	ZT_WATCH_PIDS=($!)
	# A count, and 2 s more than it takes to send them: with -w SECONDS alone, a reply
	# still on its way at the deadline (the last ping, on a loaded machine) counts as lost.
	for j in 2 3; do
		h_in 1 ping -i 0.2 -c $(( ZT_WATCH_S * 5 )) -w $(( ZT_WATCH_S + 2 )) -W 1 "10.0.1.${H_TOKEN[$j]}" >"$ZT_WATCH/ping$j" 2>&1 &
		ZT_WATCH_PIDS+=($!)
	done
}

# zt_watch_end NAME [forged_key...]: every sample lists nodes 2 and 3 with their
# overlay address and no forged key; prints the ping loss.
zt_watch_end() {
	local name=$1 k j loss
	shift
	wait "${ZT_WATCH_PIDS[@]}" 2>/dev/null || true
	h_cache_keys 1 2 3
	for k in "$@"; do
		grep -qF "$k" "$ZT_WATCH/dump" && h_die "$name: forged key $k was programmed on node 1 ($ZT_WATCH/dump)"
	done
	awk -v k2="${H_PUB[2]}" -v a2="10.0.1.${H_TOKEN[2]}/32" -v k3="${H_PUB[3]}" -v a3="10.0.1.${H_TOKEN[3]}/32" '
		function check() { if (n && !(seen2 && seen3)) bad++; seen2 = seen3 = 0 }
		/^--- / { check(); n++; next }
		$1 == k2 && $4 == a2 { seen2 = 1 }
		$1 == k3 && $4 == a3 { seen3 = 1 }
		END { check(); if (n < 2) exit 2; exit bad ? 1 : 0 }' "$ZT_WATCH/dump" ||
		h_die "$name: a genuine peer was missing from node 1's wg show dump in some sample ($ZT_WATCH/dump)"
	zt_figure "$name: wg show dump sampled $(grep -c '^--- ' "$ZT_WATCH/dump") times: nodes 2 and 3 at 10.0.1.${H_TOKEN[2]}/32 and 10.0.1.${H_TOKEN[3]}/32 in every sample${1:+, no forged key}"
	for j in 2 3; do
		loss=$(grep -o '[0-9.]*% packet loss' "$ZT_WATCH/ping$j" | cut -d% -f1)
		zt_figure "$name: ping loss node 1 -> node $j during the fault: ${loss:-?} %"
	done
}

# Waits until the proxy has logged PATTERN at least once more than it had before.
zt_proxy_wait() { # name pattern before_count [timeout_s]
	local t
	for t in $(seq 1 $(( ${4:-15} * 10 ))); do
		[ "$(grep -c -- "$2" "$H_RUN/proxy-$1.log" || true)" -gt "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
zt_proxy_count() { grep -c -- "$2" "$H_RUN/proxy-$1.log" || true; }

# zt_fault NAME SECONDS PROXY JSON PATTERN hup|restart [forged_key...]: PROXY behaves as
# JSON while node 1 is watched for SECONDS; node 1's agent is made to read (SIGHUP) or
# restarted under it; the proxy must log PATTERN (the fault happened), then every sample
# is checked (zt_watch_end). The proxy keeps behaving as JSON afterwards.
zt_fault() {
	local name=$1 secs=$2 px=$3 json=$4 pattern=$5 how=$6 lies
	shift 6
	h_proxy_set "$px" "$json"
	lies=$(zt_proxy_count "$px" "$pattern")
	zt_watch_start "$secs"
	if [ "$how" = restart ]; then zt_restart_agent 1; else kill -HUP "${H_PID_AGENT[1]}"; fi
	zt_proxy_wait "$px" "$pattern" "$lies" || h_die "$name: proxy $px never logged '$pattern'"
	if [ "$how" = restart ]; then sleep 1; kill -HUP "${H_PID_AGENT[1]}" 2>/dev/null || true; fi
	zt_watch_end "$name" "$@"
}

zt_repaired() { # name t0 live...: the whole mesh again; prints the time
	local name=$1 t0=$2
	shift 2
	h_wait_mesh 30 "$@" || h_die "$name: the mesh is not whole after the fault ended"
	zt_figure "$name: mesh whole $(zt_ms "$t0") ms after the fault ended"
	[ "$(h_ping_all "$@")" = $(( $# * ($# - 1) )) ] || h_die "$name: not every pair answers after the fault"
}

# ---- a record signed under an attacker's KMS root -----------------------------------------
zt_key() { echo "0x$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
zt_compressed() { # 0x<x||y> -> 02/03 || x
	local p=${1#0x}
	case ${p:127:1} in [02468aceACE]) echo "02${p:0:64}" ;; *) echo "03${p:0:64}" ;; esac
}
zt_sign() { "$H_CAST" wallet sign --no-hash --private-key "$1" "$2"; }

# zt_forge KMS_KEY TOKEN WG_PUB_B64 ENDPOINT NONCE: prints the ABI tuple of a Peer (no
# leading offset word) whose whole chain verifies to KMS_KEY's address, for this contract
# and chain; sets ZT_FORGED_INSTANCE.
zt_forge() {
	local kms=$1 token=$2 wg endpoint=$4 nonce=$5 app node app_pub node_pub kms_sig app_sig digest node_sig chain
	wg=0x$(echo "$3" | base64 -d | od -An -tx1 | tr -d ' \n')
	app=$(zt_key)
	node=$(zt_key)
	ZT_FORGED_INSTANCE=0x$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
	app_pub=$("$H_CAST" wallet public-key --private-key "$app")
	node_pub=$("$H_CAST" wallet public-key --private-key "$node")
	kms_sig=$(zt_sign "$kms" "$("$H_CAST" keccak "0x$(printf 'dstack-kms-issued:' | od -An -tx1 | tr -d ' \n')${H_CONTRACT#0x}$(zt_compressed "$app_pub")")")
	app_sig=$(zt_sign "$app" "$("$H_CAST" keccak "dstack-p2p:node:$(zt_compressed "$node_pub")")")
	chain=$(h_cast chain-id)
	digest=$("$H_CAST" keccak "$("$H_CAST" abi-encode "f(bytes32,uint256,address,address,bytes32,bytes32,uint8,uint64)" \
		"$("$H_CAST" keccak "dstack-p2p.PeerRecord.v1")" "$chain" "$H_CONTRACT" "$ZT_FORGED_INSTANCE" "$wg" \
		"$("$H_CAST" keccak "$endpoint")" 1 "$nonce")")
	node_sig=$(zt_sign "$node" "$digest")
	"$H_CAST" abi-encode "f($ZT_SIG_PEER)" \
		"($token,$ZT_FORGED_INSTANCE,$wg,\"$endpoint\",1,$nonce,$node_pub,$app_pub,$app_sig,$kms_sig,$node_sig)" |
		sed 's/^0x.\{64\}//'
}

# ---- 1: the KMS root comes from the RPC --------------------------------------------------
# zt_1_kms NAME hup|restart: the RPC names the attacker's KMS root and serves the forged
# record while the agent runs (a full re-read, SIGHUP) or while it starts.
zt_1_kms() {
	local name=$1 how=$2 fpub=$ZT_FORGED_PUB forged t0 tx0 attacker
	# The forged peer claims node 2's token, so node 2's overlay address (zt_setup made it).
	forged=$(cat "$H_RUN/forged.hex")
	[[ "$forged" =~ ^[0-9a-f]{1000,}$ ]] || h_die "$name: no forged record"
	attacker=$("$H_CAST" wallet address --private-key "$ZT_ATTACK_KMS" | tr 'A-F' 'a-f')
	tx0=$(zt_txs 1)
	zt_fault "$name kmsRoot lie ($how)" 6 a "{\"kms_root\": \"$attacker\", \"inject\": [\"$forged\"]}" \
		"kmsRoot lie" "$how" "$fpub"
	zt_agent_alive 1
	grep -qi "${attacker#0x}" "$H_RUN/agent1.log" && grep -qi "${H_KMS_ADDR#0x}" "$H_RUN/agent1.log" ||
		h_die "$name: the agent did not log both KMS root addresses (the RPC's and the genuine one)"
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "$name kmsRoot lie ($how)" "$t0" 1 2 3
	h_in 1 wg show "$(h_if 1)" dump | grep -qF "$fpub" && h_die "$name: forged key on node 1 after the lie"
	zt_figure "$name: registration transactions sent by node 1: $(( $(zt_txs 1) - tx0 ))"
}
zt_1() {
	# An honest kmsRoot(), a forged record added to getPeers(): rejected (never programmed).
	zt_fault "1 forged record, genuine root" 4 a "{\"inject\": [\"$(cat "$H_RUN/forged.hex")\"]}" \
		injected hup "$ZT_FORGED_PUB"
	zt_1_kms 1 hup
	zt_pass "1: a forged record (genuine root, or a lied-about root at a re-read) is never programmed, no genuine peer dropped, both roots logged"
}
zt_1b() {
	zt_1_kms 1b restart
	zt_pass "1b: the RPC names its own KMS root while the agent starts: forged record never programmed, no genuine peer dropped, both roots logged"
}

# ---- 2: a missing own record makes the agent send a transaction every poll ---------------
ZT_HIDE_S=${ZT_HIDE_S:-12}
# zt_2_hide NAME JSON: the proxy hides our own record (as JSON says) for ZT_HIDE_S while
# node 1's agent is made to re-read every second (SIGHUP); the funded key's nonce must
# show at most one registration per 15 s of the window.
zt_2_hide() {
	local name=$1 json=$2 tx0 t0 k sent window max tx1 hid
	tx0=$(zt_txs 1)
	hid=$(zt_proxy_count a "getPeers hid")
	t0=$(date +%s%N)
	h_proxy_set a "$json"
	zt_watch_start "$ZT_HIDE_S"
	for k in $(seq 1 "$ZT_HIDE_S"); do kill -HUP "${H_PID_AGENT[1]}"; sleep 1; done
	zt_watch_end "$name"
	[ "$(zt_proxy_count a "getPeers hid")" -gt "$hid" ] || h_die "$name: the proxy never hid our record"
	h_proxy_set a '{}'
	sleep 2  # a registration sent at the very end has its receipt
	# The window runs until the count: every send in it is 15 s from the one before.
	window=$(( ($(zt_ms "$t0") + 999) / 1000 ))
	sent=$(( $(zt_txs 1) - tx0 ))
	max=$(( window / 15 + 1 ))
	zt_figure "$name: registration transactions in ${window} s: $sent (15 s spacing allows $max)"
	[ "$sent" -le "$max" ] || h_die "$name: $sent registration transactions in ${window} s (at most $max with 15 s spacing)"
	zt_agent_alive 1
	t0=$(date +%s%N)
	zt_repaired "$name" "$t0" 1 2 3
	h_agent_wait_registered 1 30
	tx1=$(zt_txs 1)
	sleep 3
	[ "$(zt_txs 1)" = "$tx1" ] || h_die "$name: node 1 kept registering after its record was visible again"
}
zt_2() {
	zt_2_hide "2 own record hidden" "{\"hide\": [\"0x${H_INSTANCE[1]}\"]}"
	zt_2_hide "2 own record shown and hidden in turn" "{\"hide\": [\"0x${H_INSTANCE[1]}\"], \"hide_every\": 2}"
	zt_pass "2: our record hidden, or shown and hidden in turn, with a re-read every second: registrations stay 15 s apart, peers kept, none once it is visible"
}

# ---- 3: replay of an older record -------------------------------------------------------
zt_3() {
	local nonce_old block_old t0 key2 rec
	h_cache_keys 1 2 3
	key2=${H_PUB[2]}
	# the number alone: cast appends "[4.294e9]" to a nonce with feature bits (docs/registry.md)
	nonce_old=$(h_cast call "$H_CONTRACT" "nonceOf(address)(uint64)" "0x${H_INSTANCE[2]}" | cut -d' ' -f1)
	block_old=$(h_cast block-number)
	rec=$H_RUN/records-a/${H_INSTANCE[2]}-$nonce_old.hex
	[ -s "$rec" ] || h_die "3: the proxy never saw node 2's record at nonce $nonce_old"
	# Node 2 moves to another port: a new record (nonce + 1); the old one stays valid-looking.
	zt_restart_agent 2 --endpoint "$H_SUBNET.2:51831" --listen-port 51831
	for t in $(seq 1 150); do
		h_in 1 wg show "$(h_if 1)" endpoints | grep -qx "$key2	$H_SUBNET.2:51831" && break
		sleep 0.1
	done
	h_in 1 wg show "$(h_if 1)" endpoints | grep -qx "$key2	$H_SUBNET.2:51831" || h_die "3: node 1 did not follow node 2's new endpoint"
	h_wait_mesh 30 1 2 3 || h_die "3: mesh not whole after node 2 moved"
	# 3a: the proxy serves node 2's older record (recorded earlier) instead of the new one.
	zt_fault "3a replayed record" 5 a "{\"replace\": {\"0x${H_INSTANCE[2]}\": \"$(cat "$rec")\"}}" replaced hup
	zt_3_endpoint_kept "3a"
	# 3b: a lagging RPC: every read pinned to the block before node 2 moved.
	zt_fault "3b lagging RPC" 5 a "{\"lag_block\": $block_old}" getPeers hup
	zt_3_endpoint_kept "3b"
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "3 replay" "$t0" 1 2 3
	zt_pass "3: an older record (replayed, or from a lagging RPC) never rolls node 2 back"
}
zt_3_endpoint_kept() { # every sample of the last watch has node 2 at its new endpoint
	awk -v k="${H_PUB[2]}" -v e="$H_SUBNET.2:51831" '$1 == k && $3 != e { bad = 1 } END { exit bad }' "$ZT_WATCH/dump" ||
		h_die "$1: node 1 rolled node 2 back to its old endpoint ($ZT_WATCH/dump)"
}

# ---- 4: one truncated (or otherwise broken) getPeers() reply empties the mesh -------------
zt_4() {
	local mode t0
	# The one-shot fault takes the next record reply: the HUP's getPeers, or a getPeerByToken
	# the follower sends first (scenario 3's lag just ended, its logs are read again).
	for mode in '"truncate": 1' '"corrupt_sigs": 1'; do
		zt_fault "4 getPeers {$mode}" 4 a "{$mode}" "getPeer\(s\|ByToken [0-9]*\) .*\(truncated\|corrupted\)" hup
		h_proxy_set a '{}'
	done
	# Replies that are not JSON-RPC at all, while the agent re-reads: HTTP 500, garbage,
	# fuzzed honest replies, a timeout.
	for mode in http500 garbage fuzz timeout; do
		zt_fault "4 RPC fails with $mode" 3 a "{\"fail\": \"$mode\", \"timeout_s\": 3, \"seed\": 7}" "fail $mode" hup
		zt_agent_alive 1
	done
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "4 broken replies" "$t0" 1 2 3
	zt_pass "4: truncated, corrupted, 5xx, garbage, fuzzed and hung replies never remove a peer"
}

# ---- 5: the chain id is read once -----------------------------------------------------
# zt_5_chain NAME hup|restart: the RPC names another chain id while the agent runs (a
# full re-read) or while it starts.
zt_5_chain() {
	local name=$1 how=$2 tx0 t0
	tx0=$(zt_txs 1)
	zt_fault "$name wrong chain id ($how)" 6 a '{"chain_id": "0x1"}' "chain-id lie" "$how"
	zt_agent_alive 1
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "$name wrong chain id ($how)" "$t0" 1 2 3
	h_agent_wait_registered 1 30
	zt_figure "$name: registration transactions sent by node 1: $(( $(zt_txs 1) - tx0 ))"
}
zt_5() {
	zt_5_chain 5 hup
	zt_pass "5: a wrong chain id at a re-read removes no peer; the agent recovers when the RPC is honest"
}
zt_5b() {
	zt_5_chain 5b restart
	zt_pass "5b: a wrong chain id while the agent starts removes no peer; the same agent recovers when the RPC is honest"
}

# ---- 6: kernel drift --------------------------------------------------------------------
zt_6() {
	local dev t0 foreign port
	dev=$(h_if 1)
	# No full re-read for 10 minutes: only a per-poll device check can repair in this test.
	zt_restart_agent 1 --full-reread-ms 600000
	h_agent_wait_registered 1 30
	h_wait_mesh 30 1 2 3 || h_die "6: mesh not whole after the restart"
	h_cache_keys 1 2 3
	t0=$(date +%s%N)
	h_in 1 wg set "$dev" peer "${H_PUB[2]}" remove
	h_wait_mesh 30 1 2 3 || h_die "6: a peer removed by hand was not restored"
	zt_figure "6: peer removed by hand restored in $(zt_ms "$t0") ms"
	t0=$(date +%s%N)
	h_in 1 wg set "$dev" peer "${H_PUB[3]}" allowed-ips 10.0.1.250/32
	h_wait_mesh 30 1 2 3 || h_die "6: a changed allowed-ip was not restored"
	zt_figure "6: changed allowed-ip restored in $(zt_ms "$t0") ms"
	foreign=$(wg genkey | wg pubkey)
	t0=$(date +%s%N)
	h_in 1 wg set "$dev" peer "$foreign" allowed-ips "10.0.1.${H_TOKEN[2]}/32" endpoint "$H_SUBNET.66:51830"
	h_wait_mesh 30 1 2 3 || h_die "6: a foreign peer on node 2's address was not removed"
	zt_figure "6: foreign peer on node 2's address removed in $(zt_ms "$t0") ms"
	t0=$(date +%s%N)
	h_in 1 wg set "$dev" listen-port 51999
	kill -HUP "${H_PID_AGENT[1]}"
	for t in $(seq 1 300); do
		port=$(h_in 1 wg show "$dev" listen-port)
		[ "$port" = 51830 ] && break
		sleep 0.1
	done
	[ "$port" = 51830 ] || h_die "6: a listen port changed by hand was not restored after SIGHUP (still $port)"
	zt_figure "6: listen port restored $(zt_ms "$t0") ms after SIGHUP"
	zt_repaired "6 kernel drift" "$t0" 1 2 3
	zt_restart_agent 1
	h_agent_wait_registered 1 30
	zt_pass "6: a removed peer, a changed allowed-ip, a foreign peer and a changed listen port are repaired without a full re-read"
}

# ---- 7: two providers, one omitting a peer ----------------------------------------------
zt_7() {
	local t0 p q st before stpid said
	H_RPC_NODE[1]="${H_PROXY_URL[a]},${H_PROXY_URL[b]}"
	zt_restart_agent 1
	h_agent_wait_registered 1 30
	h_wait_mesh 30 1 2 3 || h_die "7: mesh not whole with two providers"
	for p in a b; do
		q=$([ "$p" = a ] && echo b || echo a)
		h_proxy_set "$q" '{}'
		before=$(zt_proxy_count "$q" getPeers)
		said=$(grep -ci 'disagree' "$H_RUN/agent1.log" || true)
		# (status is read half way: the watch runs 5 s from the SIGHUP)
		( sleep 3; DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" "$H_BIN/dstack-p2p" status --json >"$H_RUN/status7-$p" 2>&1 ) &
		stpid=$!
		zt_fault "7 provider $p omits node 3" 5 "$p" "{\"hide\": [\"0x${H_INSTANCE[3]}\"]}" "getPeers hid" hup
		wait "$stpid" || true
		[ "$(zt_proxy_count "$q" getPeers)" -gt "$before" ] || h_die "7: the agent did not read getPeers from provider $q as well"
		st=$(cat "$H_RUN/status7-$p")
		grep -qi 'disagree' <<<"$st" || h_die "7: status does not report the providers' disagreement: $st"
		[ "$(grep -ci 'disagree' "$H_RUN/agent1.log" || true)" -gt "$said" ] ||
			h_die "7: the log does not report the providers' disagreement"
	done
	# 7c: provider b answers every read from an older block (its hash at the height asked
	# is another block's): a disagreement, and nothing is removed or rolled back.
	h_proxy_set a '{}'
	said=$(grep -ci 'disagree' "$H_RUN/agent1.log" || true)
	zt_fault "7c provider b lags" 5 b "{\"lag_block\": $(( $(h_cast block-number) - 3 ))}" lag hup
	[ "$(grep -ci 'disagree' "$H_RUN/agent1.log" || true)" -gt "$said" ] ||
		h_die "7c: a provider answering from another block is not reported as a disagreement"
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	h_proxy_set b '{}'
	zt_repaired "7 one provider omits a peer" "$t0" 1 2 3
	H_RPC_NODE[1]=${H_PROXY_URL[a]}
	zt_restart_agent 1
	h_agent_wait_registered 1 30
	zt_pass "7: with two providers, one provider's omission never removes a peer the other serves; disagreement in status and log"
}

# ---- 8: configuration mistakes are not outages ----------------------------------------
# zt_agent_once NODE SIM_SOCKET CONTRACT [agent flags...]: an agent in node NODE's
# namespace that must exit on its own within 20 s; sets ZT_RC and ZT_OUT.
# ZT_NO_ENDPOINT=1 leaves P2P_ENDPOINT out (the agent then guesses it from the RPC URL);
# ZT_ENV=NAME=VALUE adds one more variable.
zt_agent_once() {
	local i=$1 sim=$2 contract=$3 envs
	shift 3
	envs=(DSTACK_SIMULATOR_ENDPOINT="$sim" CLUSTER_CONTRACT="$contract" P2P_MODE=wireguard
		ETH_RPC_URL="$H_RPC" P2P_INTERFACE="$(h_if "$i")" P2P_LISTEN_PORT=51830
		P2P_POLL_MS="$H_POLL_MS" DSTACK_P2P_CONTROL="$H_RUN/ctl-once$i.sock")
	[ -n "${ZT_NO_ENDPOINT:-}" ] || envs+=(P2P_ENDPOINT="$H_SUBNET.$i:51830")
	[ -z "${ZT_ENV:-}" ] || envs+=("$ZT_ENV")
	ZT_OUT=$(timeout 20 ip netns exec "$(h_ns "$i")" env "${envs[@]}" \
		"$H_BIN/dstack-p2p" agent "$@" 2>&1) && ZT_RC=0 || ZT_RC=$?
}
zt_sim() { # name app_id: a guest-agent simulator for another app id
	"$H_BIN/dstack-sim" --kms-root-key-file "$H_RUN/kms.key" --app-id "$2" \
		--instance-id "$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		--socket "$H_RUN/sim-$1.sock" >"$H_RUN/sim-$1.log" 2>&1 &
	H_OTHER_PIDS+=($!)
	for t in $(seq 1 100); do [ -S "$H_RUN/sim-$1.sock" ] && return 0; sleep 0.05; done
	h_die "simulator $1 did not start"
}
zt_8() {
	local eoa garbage
	h_node_add 4
	# An account without code.
	eoa=$("$H_CAST" wallet address --private-key "$(zt_key)" | tr 'A-F' 'a-f')
	zt_sim eoa "$eoa"
	zt_agent_once 4 "$H_RUN/sim-eoa.sock" "$eoa"
	echo "$ZT_OUT" | tail -3
	[ "$ZT_RC" = 2 ] || h_die "8: an EOA as CLUSTER_CONTRACT: exit $ZT_RC, not 2 (a configuration mistake)"
	grep -qi "${eoa#0x}" <<<"$ZT_OUT" || h_die "8: the message does not name the EOA"
	grep -qi "unreachable" <<<"$ZT_OUT" && h_die "8: an EOA is reported as an unreachable registry"
	# A contract that answers 0x..2a to every call.
	garbage=$(h_cast send --private-key "$H_OPERATOR_KEY" --json --create 0x600a600c600039600a6000f3602a60005260206000f3 |
		sed -n 's/.*"contractAddress":"\(0x[0-9a-fA-F]*\)".*/\1/p' | tr 'A-F' 'a-f')
	[[ "$garbage" =~ ^0x[0-9a-f]{40}$ ]] || h_die "8: could not deploy the garbage contract"
	[ "$(h_cast call "$garbage" "kmsRoot()(address)")" = 0x000000000000000000000000000000000000002A ] ||
		h_die "8: the garbage contract does not answer 0x..2a"
	zt_sim garbage "$garbage"
	zt_agent_once 4 "$H_RUN/sim-garbage.sock" "$garbage"
	echo "$ZT_OUT" | tail -3
	[ "$ZT_RC" = 2 ] || h_die "8: a non-cluster contract as CLUSTER_CONTRACT: exit $ZT_RC, not 2"
	grep -qi "${garbage#0x}" <<<"$ZT_OUT" || h_die "8: the message does not name the contract"
	# A KMS root pin (P2P_KMS_ROOT) that is not the root our own key chains to.
	ZT_ENV="P2P_KMS_ROOT=$("$H_CAST" wallet address --private-key "$(zt_key)")" \
		zt_agent_once 4 "$H_RUN/sim4.sock" "$H_CONTRACT"
	echo "$ZT_OUT" | tail -2
	[ "$ZT_RC" = 2 ] || h_die "8: a P2P_KMS_ROOT pin that is not our key's root: exit $ZT_RC, not 2"
	grep -qi "${H_KMS_ADDR#0x}" <<<"$ZT_OUT" || h_die "8: the pin mismatch message does not name the genuine root"
	# A second agent on node 1's interface (another control socket).
	zt_agent_once 1 "$H_RUN/sim1.sock" "$H_CONTRACT" --tx-key-file "$H_RUN/txkey1"
	echo "$ZT_OUT" | tail -3
	[ "$ZT_RC" != 0 ] && [ "$ZT_RC" != 124 ] || h_die "8: a second agent on $(h_if 1) did not refuse (exit $ZT_RC)"
	grep -q "$(h_if 1)" <<<"$ZT_OUT" || h_die "8: the second agent's message does not name the interface"
	zt_agent_alive 1
	h_wait_mesh 10 1 2 3 || h_die "8: the second agent disturbed the mesh"
	zt_pass "8: an EOA and a non-cluster contract exit 2 at start; a second agent on one interface is refused"
}

# ---- 9: smaller ------------------------------------------------------------------------
zt_9() {
	local w pids=() out cfg
	# 16 watchers fill the control socket; the 17th gets an error document.
	for w in $(seq 1 16); do
		( echo watch; sleep 6 ) | timeout 8 socat - UNIX-CONNECT:"$H_RUN/ctl1.sock" >"$H_RUN/watch9-$w" 2>&1 &
		pids+=($!)
	done
	for t in $(seq 1 50); do
		[ "$(cat "$H_RUN"/watch9-* | grep -c '"peers"')" -ge 16 ] && break
		sleep 0.1
	done
	[ "$(cat "$H_RUN"/watch9-* | grep -c '"peers"')" -ge 16 ] || h_die "9: 16 watch clients did not all get a peers document"
	out=$( (echo watch; sleep 2) | timeout 4 socat - UNIX-CONNECT:"$H_RUN/ctl1.sock" 2>&1 || true)
	wait "${pids[@]}" 2>/dev/null || true
	grep -q '"error"' <<<"$out" || h_die "9: the 17th watch client got no error document: '$out'"
	# A bad RPC URL is reported as that.
	ZT_NO_ENDPOINT=1 zt_agent_once 4 "$H_RUN/sim4.sock" "$H_CONTRACT" --rpc "notaurl"
	echo "$ZT_OUT" | tail -2
	[ "$ZT_RC" = 2 ] || h_die "9: a bad RPC URL: exit $ZT_RC, not 2"
	grep -q notaurl <<<"$ZT_OUT" || h_die "9: the message does not name the bad RPC URL"
	grep -qi "cannot tell our endpoint" <<<"$ZT_OUT" && h_die "9: a bad RPC URL is reported as an endpoint problem"
	# A config file with a NUL byte says so.
	cfg=$H_RUN/nul.conf
	printf 'CLUSTER_CONTRACT=%s\nP2P_MODE=wire\0guard\n' "$H_CONTRACT" >"$cfg"
	ZT_OUT=$(timeout 20 ip netns exec "$(h_ns 4)" env -u CLUSTER_CONTRACT -u ETH_RPC_URL \
		"$H_BIN/dstack-p2p" agent --config "$cfg" 2>&1) && ZT_RC=0 || ZT_RC=$?
	echo "$ZT_OUT" | tail -2
	[ "$ZT_RC" = 2 ] || h_die "9: a config file with NUL: exit $ZT_RC, not 2"
	grep -qi 'nul' <<<"$ZT_OUT" || h_die "9: the message does not say the config file has a NUL byte"
	zt_pass "9: 17th watcher gets an error document; a bad RPC URL and a NUL in the config file are named"
}

# ---- 10 to 12: the incremental reads (a log names tokens, getPeerByToken reads them) -----
# The agent reads by token only when a new block brings logs; anvil mines only on a
# transaction, so zt_mine_start mines a block every 0.3 s while a lie holds (bounded).
zt_mine_start() { # seconds
	local end=$(( $(date +%s%N) + $1 * 1000000000 ))
	( for t in $(seq 1 $(( $1 * 4 ))); do
		[ "$(date +%s%N)" -lt "$end" ] || break
		h_cast rpc evm_mine >/dev/null 2>&1 || true
		sleep 0.3
	done ) &
	ZT_MINE_PID=$!
}
zt_loss_zero() { # name: the last watch's pings lost nothing
	local j loss
	for j in 2 3; do
		loss=$(grep -o '[0-9.]*% packet loss' "$ZT_WATCH/ping$j" | cut -d% -f1)
		[ "${loss:-x}" = 0 ] || h_die "$1: ping node 1 -> node $j lost ${loss:-?} % during the lie ($ZT_WATCH/ping$j)"
	done
}
# zt_fault_mined NAME SECONDS JSON PATTERN [forged_key...]: zt_fault with blocks mined
# during the watch (the logs of each new block are what the lie rides on), no SIGHUP.
zt_fault_mined() {
	local name=$1 secs=$2 json=$3 pattern=$4 lies
	shift 4
	h_proxy_set a "$json"
	lies=$(zt_proxy_count a "$pattern")
	zt_watch_start "$secs"
	zt_mine_start "$secs"
	zt_proxy_wait a "$pattern" "$lies" "$secs" || h_die "$name: proxy a never logged '$pattern'"
	wait "$ZT_MINE_PID" || true
	zt_watch_end "$name" "$@"
}
zt_b64hex() { echo "$1" | base64 -d | od -An -tx1 | tr -d ' \n'; }

zt_10() {
	local fpub t0
	fpub=$(wg genkey | wg pubkey)
	# 10a: a log names node 2 (invented, every block) and getPeerByToken(2) answers node 2's
	# record with a forged WireGuard key; getPeers() stays honest.
	zt_fault_mined "10a forged key by token" 6 \
		"{\"on\": \"getPeerByToken\", \"invent_logs\": [${H_TOKEN[2]}], \"wg_key\": {\"0x${H_INSTANCE[2]}\": \"$(zt_b64hex "$fpub")\"}}" \
		"getPeerByToken ${H_TOKEN[2]} forged wg key" "$fpub"
	zt_loss_zero "10a"
	zt_figure "10a: getPeerByToken answers with the forged key: $(zt_proxy_count a "getPeerByToken ${H_TOKEN[2]} forged wg key"); forged key in wg show dump: 0 samples"
	# 10b: the same through a fully forged record (another instance, signed under an
	# attacker's KMS root) for node 2's token.
	zt_fault_mined "10b forged record by token" 6 \
		"{\"on\": \"getPeerByToken\", \"invent_logs\": [${H_TOKEN[2]}], \"inject\": [\"$(cat "$H_RUN/forged.hex")\"]}" \
		"getPeerByToken ${H_TOKEN[2]} injected" "$ZT_FORGED_PUB"
	zt_loss_zero "10b"
	zt_agent_alive 1
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "10 forged by token" "$t0" 1 2 3
	zt_pass "10: a forged key or record served only by getPeerByToken is never programmed; no ping lost"
}

# ---- 11: getPeerByToken says a live token has no record (TokenHasNoPeer) ----------------
zt_11() {
	local t0 key2 port
	h_cache_keys 1 2 3
	key2=${H_PUB[2]}
	# 11a: honest logs. Node 2 really changes its record (a new port: a PeerUpdated log),
	# and node 1's getPeerByToken(2) answers TokenHasNoPeer; getPeers() is honest.
	port=$(( 51832 + RANDOM % 100 ))
	h_proxy_set a "{\"on\": \"getPeerByToken\", \"hide\": [\"0x${H_INSTANCE[2]}\"]}"
	local lies
	lies=$(zt_proxy_count a "TokenHasNoPeer")
	zt_watch_start 8
	zt_restart_agent 2 --endpoint "$H_SUBNET.2:$port" --listen-port "$port"
	zt_proxy_wait a "TokenHasNoPeer" "$lies" 20 || h_die "11a: node 1 never read node 2's change by token"
	zt_watch_end "11a live token read as removed (honest logs)"
	for t in $(seq 1 150); do
		h_in 1 wg show "$(h_if 1)" endpoints | grep -qx "$key2	$H_SUBNET.2:$port" && break
		sleep 0.1
	done
	h_in 1 wg show "$(h_if 1)" endpoints | grep -qx "$key2	$H_SUBNET.2:$port" ||
		h_die "11a: node 1 did not follow node 2's new endpoint (the honest getPeers() has it)"
	# 11b: invented logs name node 2 every block and every read by token says it has none.
	zt_fault_mined "11b live token read as removed (invented logs)" 8 \
		"{\"on\": \"getPeerByToken\", \"invent_logs\": [${H_TOKEN[2]}], \"hide\": [\"0x${H_INSTANCE[2]}\"]}" \
		"TokenHasNoPeer"
	zt_loss_zero "11b"
	zt_figure "11: TokenHasNoPeer lies told: $(zt_proxy_count a TokenHasNoPeer)"
	zt_agent_alive 1
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "11 removal by token" "$t0" 1 2 3
	zt_pass "11: a live token read as removed by getPeerByToken (after a real or an invented log) is never torn down"
}

# ---- 12: invented logs: the reads they cost stay bounded per poll -------------------------
# zt_12_cost NAME FROM_LINE: per poll (the proxy's lines from one eth_getLogs to the next),
# the most getPeerByToken and getPeers reads, and their mean in the first and second half.
zt_12_cost() {
	tail -n +"$2" "$H_RUN/proxy-a.log" | awk '
		$2 == "eth_getLogs" { if (n) { bt[n] = b; fp[n] = f } n++; b = f = 0; next }
		$2 == "eth_call" && $3 == "getPeerByToken" { b++ }
		$2 == "eth_call" && $3 == "getPeers" { f++ }
		END {
			if (n) { bt[n] = b; fp[n] = f }
			for (i = 1; i <= n; i++) {
				if (bt[i] > mb) mb = bt[i]; if (fp[i] > mf) mf = fp[i]
				if (i <= n / 2) { b1 += bt[i]; f1 += fp[i]; h1++ } else { b2 += bt[i]; f2 += fp[i]; h2++ }
			}
			printf "%d %d %d %.2f %.2f %.2f %.2f\n", n, mb, mf, h1 ? b1 / h1 : 0, h2 ? b2 / h2 : 0, h1 ? f1 / h1 : 0, h2 ? f2 / h2 : 0
		}'
}
zt_12() {
	local toks from c polls mb mf t0 extra
	toks="${H_TOKEN[1]}, ${H_TOKEN[2]}, ${H_TOKEN[3]}"
	# A token with no record at all: its read by token reverts, honestly.
	extra=250
	for mode in "" ', "invent_removed": true'; do
		from=$(( $(wc -l <"$H_RUN/proxy-a.log") + 1 ))
		zt_fault_mined "12 invented logs{$mode}" 10 "{\"invent_logs\": [$toks, $extra]$mode}" "getLogs invented"
		zt_loss_zero "12 invented logs{$mode}"
		read -r polls mb mf b1 b2 f1 f2 <<<"$(zt_12_cost "12" "$from")"
		zt_figure "12 invented logs{$mode}: $polls polls; per poll at most $mb getPeerByToken and $mf getPeers; mean getPeerByToken $b1 then $b2, getPeers $f1 then $f2 (first, second half)"
		[ "$polls" -ge 4 ] || h_die "12: only $polls polls during the lie"
		# Each poll reads each named token at most once (4 of them), and getPeers() at
		# most twice (a resync, and the periodic full re-read).
		[ "$mb" -le 4 ] || h_die "12: $mb getPeerByToken reads in one poll for 4 named tokens"
		[ "$mf" -le 2 ] || h_die "12: $mf getPeers reads in one poll"
	done
	zt_agent_alive 1
	t0=$(date +%s%N)
	h_proxy_set a '{}'
	zt_repaired "12 invented logs" "$t0" 1 2 3
	zt_pass "12: invented and removed logs every block cost a bounded number of reads per poll; no peer lost, no ping lost"
}

# Each scenario runs in a subshell, so one that fails (h_die) does not stop the others:
# the state the harness keeps (agent PIDs, RPC URLs) is handed back through a file, the
# mesh is reset to honest proxies and live agents, and zt_run fails at the end if any
# scenario failed. Figures go to a file for the same reason.
zt_save_state() {
	declare -p H_PID_AGENT H_AGENT_PIDS H_RPC_NODE H_PUB H_NODES H_PID_SIM H_PID_WG H_INSTANCE \
		H_TOKEN H_OTHER_PIDS | sed 's/^declare -\([a-zA-Z]*\)/declare -g\1/' >"$H_RUN/zt-state"
}
zt_reset() {
	local i
	h_proxy_set a '{}'
	h_proxy_set b '{}'
	H_RPC_NODE[1]=${H_PROXY_URL[a]}
	zt_restart_agent 1
	for i in 2 3; do kill -0 "${H_PID_AGENT[$i]}" 2>/dev/null || h_agent_start "$i"; done
	h_wait_mesh 60 1 2 3 || h_log "reset: the mesh is still not whole"
}
zt_run() { # scenario numbers
	local n t0 rc failed=()
	for n in "$@"; do
		t0=$(date +%s%N)
		h_log "=== scenario $n"
		# (not in an && list: that would switch set -e off inside the subshell)
		set +e
		( set -e; trap 'zt_save_state' EXIT; "zt_$n" )
		rc=$?
		set -e
		. "$H_RUN/zt-state"
		zt_figure "scenario $n: $([ "$rc" = 0 ] && echo pass || echo FAIL) in $(zt_ms "$t0") ms"
		[ "$rc" = 0 ] || { failed+=("$n"); zt_reset; }
	done
	h_log "figures:"
	sed 's/^/  /' "$H_RUN/zt-figures"
	[ "${#failed[@]}" = 0 ] || h_die "zero-trust scenarios failed: ${failed[*]}"
}
