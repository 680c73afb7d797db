#!/bin/bash
# SPDX-License-Identifier: MIT
# make demo-counter [N=3]: a distributed counter (examples/counter/counter.py),
# one per node of an N-node netns mesh, through a leader failover:
#   increments through every node; the leader cut off the mesh (its overlay traffic
#   dropped in its own namespace); the followers' votes of no confidence and the new
#   leader on chain; increments through the survivors; the old leader restored, back as a
#   follower with the full log. Prints a timeline with figures.
# Every step is checked against the contract (cast call), every node's HTTP API and the
# logs' contents; any mismatch fails (exit 1). tests/host/test-counter.sh runs it.
# DB=1 (make demo-db) adds a real database over the mesh: Debian's redis-server on every
# node, made primary or replica of the contract's leader by examples/counter/redis_follow.py
# (the SDK only); a write on the primary is read back from every replica over 10.0.1.x
# with redis-cli, before and after the failover and after the rejoin.
# H_KEEP=1 keeps the scratch directory (counter<i>.log, agent<i>.log, redis<i>.log).
set -euo pipefail
N=${1:-3}
DB=${DB:-0}
DEMO=demo-counter; [ "$DB" = 0 ] || DEMO=demo-db  # its make target: what it is called here
. "$(dirname "$0")/lib.sh"
h_check_n "$DEMO" 3 9 "$N"
PORT=8080
PY=/usr/bin/python3
[ "$DB" = 0 ] || command -v redis-server >/dev/null || { echo "DB=1 needs redis-server (scripts/deps.sh)" >&2; exit 2; }

h_init ctr
h_deploy
for i in $(seq 1 "$N"); do h_node_add "$i"; done
for i in $(seq 1 "$N"); do h_mint_bind "$i"; done
for i in $(seq 1 "$N"); do h_agent_start "$i"; done
for i in $(seq 1 "$N"); do h_agent_wait_registered "$i" 90; done
nodes=($(seq 1 "$N"))
h_wait_mesh 90 "${nodes[@]}" || h_die "the WireGuard peers did not converge"
h_log "mesh of $N nodes up (every node registered, WireGuard peers match the registry)"

# A short lease, so the leader's heartbeats show within the demo (the contract's default is 300 s).
LEASE=${LEASE:-15}
h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "setLeaderLease(uint64)" "$LEASE" >/dev/null ||
	h_die "setLeaderLease"
declare -A NODE_OF=()
for i in "${nodes[@]}"; do NODE_OF[${H_TOKEN[$i]}]=$i; done

# ---- helpers: every HTTP request is made inside a node's namespace --------------------
c_get() { h_in "$1" curl -sS -m 5 "http://127.0.0.1:$PORT$2"; }
# c_inc i id [out]: POST /increment {"id"} on node i; prints the HTTP status (000: no
# answer), the body goes to out ($H_RUN/inc.out)
c_inc() {
	h_in "$1" curl -s -m 15 -o "${3:-$H_RUN/inc.out}" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' -d "{\"id\":\"$2\"}" "http://127.0.0.1:$PORT/increment" || true
}
# chain_leader: "token term votes required" from the contract's leaderState()
chain_leader() {
	h_cast call "$H_CONTRACT" "leaderState()(uint256,address,uint64,uint64,uint256,uint256)" |
		awk 'NR==1||NR==3||NR==5||NR==6 {printf "%s ", $1} END {print ""}'
}
# wait_votes n: until leaderState() shows n votes of no confidence (bounded, 30 s);
# leaves the reading in tok term votes required
wait_votes() {
	local t
	for t in $(seq 1 300); do
		read -r tok term votes required <<<"$(chain_leader)"
		[ "$votes" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ids_of() { c_get "$1" /log | jq -r '.entries[].id' | tr '\n' ' '; }

ACKED=()
# inc_ok i id: the increment is acknowledged (retried with the same id while no leader serves)
inc_ok() {
	local i=$1 id=$2 t code
	for t in $(seq 1 40); do
		code=$(c_inc "$i" "$id")
		if [ "$code" = 200 ]; then ACKED+=("$id"); return 0; fi
		sleep 0.5
	done
	h_die "increment $id through node $i was never acknowledged (last: $code $(cat "$H_RUN/inc.out" 2>/dev/null))"
}

# wait_all_agree timeout: every node's /counter = number acknowledged and its /log holds
# exactly the acknowledged ids, in order.
wait_all_agree() {
	local deadline=$(( $(date +%s) + $1 )) want i ok
	shift
	want="${ACKED[*]} "
	while :; do
		ok=1
		for i in "$@"; do
			[ "$(c_get "$i" /counter | jq -r .value)" = "${#ACKED[@]}" ] && [ "$(ids_of "$i")" = "$want" ] || ok=0
		done
		[ "$ok" = 1 ] && return 0
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.3
	done
}

STATUS_ROW='  %-6s %-11s %-10s %-5s %-8s %-5s %s\n'
show_status() {
	local i row address role term value log leader
	printf "$STATUS_ROW" node address role term counter log leader
	for i in "${nodes[@]}"; do
		if row=$(c_get "$i" /status 2>/dev/null | jq -r \
			'[.address, .role, .term, .value, .log_length, (.leader.address // "-")] | map(tostring) | @tsv') &&
			[ -n "$row" ]; then
			IFS=$'\t' read -r address role term value log leader <<<"$row"
			printf "$STATUS_ROW" "$i" "$address" "$role" "$term" "$value" "$log" "$leader"
		else
			printf '  %-6s %s\n' "$i" "(no answer)"
		fi
	done
}

# ---- Redis (DB=1) ------------------------------------------------------------------------
r_cli() { local i=$1; shift; h_in "$i" timeout 5 redis-cli --no-raw "$@" 2>&1; }
# r_topology_ok primary replicas...: the primary says role master; each replica says
# master_host 10.0.1.<primary's token> with its link up (INFO replication).
r_topology_ok() {
	local p=$1 i info
	shift
	[ "$(r_cli "$p" ROLE | head -1)" = '1) "master"' ] || return 1
	for i in "$@"; do
		info=$(r_cli "$i" INFO replication | tr -d '\r')
		grep -qx "master_host:$(h_addr $p)" <<<"$info" && grep -qx "master_link_status:up" <<<"$info" || return 1
	done
}
r_wait_topology() { # timeout primary replicas...
	local deadline=$(( $(date +%s) + $1 ))
	shift
	until r_topology_ok "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}
# r_write_read primary key replicas...: SET on the primary (its own 127.0.0.1), then GET of
# every replica from the primary's namespace over the mesh (10.0.1.x), bounded wait each.
r_write_read() {
	local p=$1 key=$2 val i t got
	shift 2
	val="written-on-$(h_addr $p)-$RANDOM"
	[ "$(r_cli "$p" SET "$key" "$val")" = OK ] || h_die "redis: SET $key on the primary node $p: $(r_cli "$p" SET "$key" "$val")"
	echo "  redis-cli -h 127.0.0.1 SET $key $val   (node $p, the primary)"
	for i in "$@"; do
		for t in $(seq 1 50); do
			got=$(r_cli "$p" -h "$(h_addr $i)" GET "$key")
			[ "$got" = "\"$val\"" ] && break
			sleep 0.1
		done
		[ "$got" = "\"$val\"" ] || h_die "redis: node $i ($(h_addr $i)) answers GET $key with $got"
		echo "  redis-cli -h $(h_addr $i) GET $key -> $got"
	done
}
# r_round title primary key nodes...: the nodes other than primary follow it; a write on it
# is read back from each of them.
r_round() {
	local title=$1 p=$2 key=$3 i others=()
	shift 3
	for i in "$@"; do [ "$i" = "$p" ] || others+=("$i"); done
	echo
	echo "=== Redis $title: node $p is the primary, nodes ${others[*]} its replicas"
	r_wait_topology 60 "$p" "${others[@]}" || { r_show; h_die "redis: nodes ${others[*]} do not follow node $p"; }
	r_show
	r_write_read "$p" "$key" "${others[@]}"
}
r_show() {
	local i
	for i in "${nodes[@]}"; do
		printf '  node %s (%s): %s\n' "$i" "$(h_addr $i)" \
			"$(r_cli "$i" INFO replication | tr -d '\r' | grep -E '^(role|master_host|master_link_status|connected_slaves):' | tr '\n' ' ')"
	done
}
if [ "$DB" != 0 ]; then
	for i in "${nodes[@]}"; do
		mkdir -p "$H_RUN/redis$i"
		ip netns exec "$(h_ns "$i")" redis-server --port 6379 --bind 0.0.0.0 --protected-mode no \
			--save "" --appendonly no --dir "$H_RUN/redis$i" --logfile "$H_RUN/redis$i.log" &
		H_OTHER_PIDS+=($!)
		ip netns exec "$(h_ns "$i")" env DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" \
			"$PY" "$H_ROOT/examples/counter/redis_follow.py" --every 2 >"$H_RUN/redis-follow$i.log" 2>&1 &
		H_OTHER_PIDS+=($!)
	done
fi

# ---- the counters --------------------------------------------------------------------
for i in "${nodes[@]}"; do
	ip netns exec "$(h_ns "$i")" env DSTACK_P2P_CONTROL="$H_RUN/ctl$i.sock" \
		"$PY" "$H_ROOT/examples/counter/counter.py" --port "$PORT" >"$H_RUN/counter$i.log" 2>&1 &
	H_OTHER_PIDS+=($!)
done
t_start=$(now_ms)
leader=""
for t in $(seq 1 300); do
	read -r tok term votes required <<<"$(chain_leader)"
	if [ "$tok" != 0 ] && c_get "${NODE_OF[$tok]}" /status 2>/dev/null | jq -e .serving_writes >/dev/null; then
		leader=${NODE_OF[$tok]}
		break
	fi
	sleep 0.2
done
[ -n "$leader" ] || h_die "no counter became the serving leader (counter logs in $H_RUN)"
h_log "leader on chain: token $tok (node $leader, $H_OVERLAY_NET.$tok), term $term; it serves writes ($(( $(now_ms) - t_start )) ms after the counters started)"
[ "$(h_cast call "$H_CONTRACT" "currentLeader()(address)" | tr A-F a-f)" = "0x${H_INSTANCE[$leader]}" ] ||
	h_die "currentLeader() is not node $leader's instance"

echo
echo "=== GET /members on node 1 (live members from the contract, with labels)"
c_get 1 /members | jq -c '.members[]'

[ "$DB" = 0 ] || r_round "(primary = the contract's leader)" "$leader" demo:before "${nodes[@]}"

# ---- increments through every node -----------------------------------------------------
k=0
for r in 1 2; do for i in "${nodes[@]}"; do
	k=$((k + 1)); inc_ok "$i" "a$k"
	echo "  POST /increment via node $i (id a$k): $(jq -c '{value, index, term, leader, forwarded_to}' "$H_RUN/inc.out")"
done; done
wait_all_agree 30 "${nodes[@]}" || h_die "the nodes do not agree on ${#ACKED[@]} increments"
h_log "${#ACKED[@]} increments acknowledged; every node's /counter and /log agree"
show_status

# ---- what another node or a client may send: refused, nothing counted ---------------------
f=1; [ "$leader" != 1 ] || f=2          # a follower
g=$(( f % N + 1 )); [ "$g" != "$leader" ] || g=$(( g % N + 1 ))  # another follower
n=${#ACKED[@]}
forged="{\"term\":$term,\"prev\":$n,\"prev_term\":$term,\"entries\":[[$term,\"forged\",\"$(h_addr $f)\"]],\"commit\":$((n + 1))}"
# expect i url code body: node i POSTs body to url; the answer must be HTTP code
expect() {
	local got
	got=$(h_in "$1" curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary "$4" "$2" || true)
	[ "$got" = "$3" ] || h_die "node $1 POST $2: HTTP $got, expected $3"
	printf '  %-72s HTTP %s\n' "node $1 -> ${2#http://} ${5:-}" "$got"
}
echo
echo "=== refused: appends forged by a follower, requests from outside the mesh, malformed bodies"
expect "$f" "http://$(h_addr $leader):$PORT/internal/append" 403 "$forged" "(a follower's append to the leader)"
expect "$f" "http://$(h_addr $g):$PORT/internal/append" 403 "$forged" "(a follower's append to another)"
expect "$f" "http://$(h_addr $g):$PORT/internal/prepare" 403 "{\"term\":$((term + 1))}" "(prepare of a term nobody leads)"
expect "$g" "http://127.0.0.1:$PORT/internal/prepare" 403 "{\"term\":$term}" "(not over the mesh)"
expect "$f" "http://$(h_addr $g):$PORT/internal/append" 400 '{"term":1,"entries":"x"}' "(malformed append)"
expect "$f" "http://127.0.0.1:$PORT/increment" 400 '{"id":"../../etc"}' "(an id out of [A-Za-z0-9._:-])"
expect "$f" "http://127.0.0.1:$PORT/increment" 400 'not json' "(not JSON)"
expect "$f" "http://127.0.0.1:$PORT/increment" 413 "{\"id\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}" "(a 5 kB body)"
wait_all_agree 10 "${nodes[@]}" || h_die "a refused request changed a node's counter or log"
h_log "every forged or malformed request was refused; every node still holds exactly ${#ACKED[@]} increments"

old=$leader old_tok=${H_TOKEN[$leader]} old_term=$term
survivors=()
for i in "${nodes[@]}"; do [ "$i" = "$old" ] || survivors+=("$i"); done
# The contract's successor rule: the next registered token after the old leader's.
want_tok=$(for i in "${nodes[@]}"; do echo "${H_TOKEN[$i]}"; done | sort -n | awk -v o="$old_tok" '$1>o' | head -1)
[ -n "$want_tok" ] || want_tok=$(for i in "${nodes[@]}"; do echo "${H_TOKEN[$i]}"; done | sort -n | head -1)
succ=${NODE_OF[$want_tok]}

# ---- a follower loses sight of the leader for a while: it votes, then withdraws ----------
probe=(OUTPUT -d "$H_OVERLAY_NET.$old_tok" -p tcp --dport "$PORT" -j DROP)
echo
echo "=== node $f loses sight of the leader: its requests to $H_OVERLAY_NET.$old_tok:$PORT dropped in its namespace"
h_in "$f" iptables -I "${probe[@]}"
wait_votes 1 || h_die "node $f's vote of no confidence did not land"
[ "$tok" = "$old_tok" ] || h_die "one vote of $required moved the leadership"
h_log "on chain: $votes of $required votes against token $tok; the leader stays"
h_in "$f" iptables -D "${probe[@]}"
wait_votes 0 && [ "$tok" = "$old_tok" ] && [ "$term" = "$old_term" ] ||
	h_die "node $f's vote was not withdrawn (votes $votes, token $tok, term $term)"
grep -h "vote:" "$H_RUN/counter$f.log" | sed 's/^/  /'
h_log "the leader answers node $f again: its vote is withdrawn, 0 of $required on chain, same term"

# ---- the successor falls behind ------------------------------------------------------------
# The leader's appends to the next leader-to-be are dropped in that node's namespace (its own
# requests to the leader, the probes, still pass): increments are acknowledged by the
# leader and the other followers only. After the cut the new leader must take them from
# the others' logs, or they are lost.
rule=(INPUT -s "$H_OVERLAY_NET.$old_tok" -p tcp --dport "$PORT" -j DROP)
h_in "$succ" iptables -I "${rule[@]}"
behind=$(c_get "$succ" /status | jq .log_length)
echo
echo "=== node $succ (the successor) falls behind: the leader's appends to it dropped in its namespace"
others=(); for i in "${nodes[@]}"; do [ "$i" = "$succ" ] || others+=("$i"); done
for k in $(seq 1 "${#others[@]}"); do
	i=${others[$(( k - 1 ))]}
	inc_ok "$i" "l$k"
	echo "  POST /increment via node $i (id l$k): $(jq -c '{value, index, term, leader, forwarded_to}' "$H_RUN/inc.out")"
done
wait_all_agree 30 "${others[@]}" || h_die "the nodes but $succ do not agree on ${#ACKED[@]} increments"
[ "$(c_get "$succ" /status | jq .log_length)" = "$behind" ] || h_die "node $succ was fed despite the drop"
h_log "${#ACKED[@]} increments acknowledged; node $succ holds $behind of them"

# ---- cut the leader off the mesh ---------------------------------------------------------
echo
echo "=== cutting the leader (node $old, $H_OVERLAY_NET.$old_tok) off the mesh: its WireGuard traffic dropped in its namespace"
t_cut=$(now_ms)
h_in "$old" iptables -I INPUT -i "$(h_if "$old")" -j DROP
h_in "$old" iptables -I OUTPUT -o "$(h_if "$old")" -j DROP
h_in "$succ" iptables -D "${rule[@]}"
# A write to the cut-off leader itself: it cannot reach a majority, so it must not acknowledge.
( code=$(c_inc "$old" x1 "$H_RUN/x1.out"); echo "$code" >"$H_RUN/x1.code" ) &
x1_pid=$!
last_votes=""
new=""
for t in $(seq 1 600); do
	read -r tok term votes required <<<"$(chain_leader)"
	if [ "$votes/$required" != "$last_votes" ] && [ "$tok" = "$old_tok" ]; then
		h_log "on chain: $votes of $required votes of no confidence against token $old_tok"
		last_votes="$votes/$required"
	fi
	if [ "$tok" != "$old_tok" ] && [ "$tok" != 0 ]; then new=${NODE_OF[$tok]}; break; fi
	sleep 0.1
done
t_leader=$(now_ms)
[ -n "$new" ] || h_die "the leadership did not move after the cut"
h_log "on chain: new leader token $tok (node $new), term $term (was token $old_tok, term $old_term)"
grep -h "vote:" "$H_RUN"/counter*.log | sort | sed 's/^/  /'
[ "$tok" = "$want_tok" ] || h_die "new leader token $tok, expected the successor $want_tok"
[ "$term" -gt "$old_term" ] || h_die "the term did not increase"

# Writes through the survivors, from right after the leader change until the first is acknowledged.
t_write=""
for t in $(seq 1 200); do
	code=$(c_inc "${survivors[$(( t % ${#survivors[@]} ))]}" b1)
	if [ "$code" = 200 ]; then t_write=$(now_ms); ACKED+=(b1); break; fi
	sleep 0.1
done
[ -n "$t_write" ] || h_die "no write was acknowledged after the leader change"
grep -h "adopted the log" "$H_RUN/counter$new.log" | tail -1 | sed 's/^/  node '"$new"': /'
echo "  first write after the change: $(jq -c '{value, index, term, leader, forwarded_to}' "$H_RUN/inc.out")"
for k in $(seq 2 $(( ${#survivors[@]} + 1 ))); do
	i=${survivors[$(( k % ${#survivors[@]} ))]}
	inc_ok "$i" "b$k"
	echo "  POST /increment via node $i (id b$k): $(jq -c '{value, index, term, leader, forwarded_to}' "$H_RUN/inc.out")"
done
wait_all_agree 30 "${survivors[@]}" || h_die "the surviving nodes do not agree on ${#ACKED[@]} increments"
if [ "$DB" != 0 ]; then
	r_round "after the failover" "$new" demo:after "${survivors[@]}"
	t_db=$(now_ms)
	[ "$(r_cli "$new" GET demo:before)" != "(nil)" ] || h_die "redis: the new primary lost demo:before"
	echo "  redis-cli GET demo:before on the new primary: $(r_cli "$new" GET demo:before)"
fi
wait "$x1_pid" || true
x1=$(cat "$H_RUN/x1.code")
[ "$x1" != 200 ] || h_die "the cut-off leader acknowledged a write (x1) without a majority"
h_log "the cut-off old leader did not acknowledge its write x1 (HTTP $x1); the survivors agree on ${#ACKED[@]} increments"
show_status

# ---- restore the old leader --------------------------------------------------------------
echo
echo "=== restoring node $old's mesh traffic"
t_restore=$(now_ms)
h_in "$old" iptables -D INPUT -i "$(h_if "$old")" -j DROP
h_in "$old" iptables -D OUTPUT -o "$(h_if "$old")" -j DROP
wait_all_agree 60 "${nodes[@]}" || h_die "node $old did not catch up ($(ids_of "$old"))"
t_rejoin=$(now_ms)
st=$(c_get "$old" /status)
[ "$(jq -r .role <<<"$st")" = follower ] && [ "$(jq -r .leader.token <<<"$st")" = "$tok" ] ||
	h_die "node $old is not a follower of token $tok: $st"
h_log "node $old rejoined as a follower of token $tok with the full log (${#ACKED[@]} entries)"
# Its vote against the new leader while it was cut off (if any) is withdrawn.
new_tok=$tok
wait_votes 0 || h_die "$votes no-confidence votes still stand against the healthy leader"
[ "$tok" = "$new_tok" ] || h_die "the leadership moved again (token $tok)"
grep -h "withdraws" "$H_RUN/counter$old.log" | sed 's/^/  /' || true
inc_ok "$old" "c1"
echo "  POST /increment via node $old (id c1): $(jq -c '{value, index, term, leader, forwarded_to}' "$H_RUN/inc.out")"
wait_all_agree 30 "${nodes[@]}" || h_die "the nodes do not agree after the rejoin"

if [ "$DB" != 0 ]; then
	r_round "after the rejoin" "$new" demo:rejoined "${nodes[@]}"
	for k in demo:before demo:after; do
		[ "$(r_cli "$new" -h "$(h_addr $old)" GET $k)" = "$(r_cli "$new" GET $k)" ] ||
			h_die "redis: node $old does not hold $k"
	done
	echo "  node $old ($(h_addr $old)) also holds demo:before and demo:after"
fi

# ---- final checks: the contract, every node's API, the logs -------------------------------
[ "$(h_cast call "$H_CONTRACT" "currentLeader()(address)" | tr A-F a-f)" = "0x${H_INSTANCE[$new]}" ] ||
	h_die "currentLeader() is not node $new's instance"
# The leader kept its lease: heartbeats on chain (LeaderHeartbeat events), the leadership
# never moved but by the votes (term = the first leader's + 1).
beats=$(h_cast logs --json --from-block 0 --address "$H_CONTRACT" "LeaderHeartbeat(uint256,uint64)" | jq length)
[ "$beats" -ge 1 ] || h_die "no LeaderHeartbeat on chain (lease $LEASE s)"
read -r tok3 term3 votes3 required3 <<<"$(chain_leader)"
[ "$tok3" = "$tok" ] && [ "$term3" = "$((old_term + 1))" ] ||
	h_die "leader token $tok3, term $term3: the leadership moved more than once"
h_log "$beats leader heartbeats on chain (lease $LEASE s); term $term3: one change of leader, by the votes"
lost=0 dup=0
for i in "${nodes[@]}"; do
	ids=$(ids_of "$i")
	for id in "${ACKED[@]}"; do
		n=$(tr ' ' '\n' <<<"$ids" | grep -cx "$id" || true)
		[ "$n" -ge 1 ] || lost=$((lost + 1))
		[ "$n" -le 1 ] || dup=$((dup + 1))
	done
	! tr ' ' '\n' <<<"$ids" | grep -qx x1 || h_die "node $i's log holds the unacknowledged x1"
	st=$(c_get "$i" /status)
	[ "$(jq -r .leader.token <<<"$st")" = "$tok" ] || h_die "node $i names another leader: $st"
	[ "$(jq -r .role <<<"$st")" = "$([ "$i" = "$new" ] && echo leader || echo follower)" ] || h_die "node $i: role $st"
done
[ "$lost" = 0 ] && [ "$dup" = 0 ] || h_die "acknowledged increments lost: $lost, counted twice: $dup"
echo
show_status
echo
echo "=== GET /log on node $old (the old leader, rejoined)"
c_get "$old" /log | jq -c '.entries[] | {index, term, id, via}'
echo
echo "=== timeline (N=$N; leader node $old cut off the mesh at t=0)"
printf '  %-48s %8s ms\n' "cut -> new leader on chain (token $tok)" $((t_leader - t_cut))
printf '  %-48s %8s ms\n' "cut -> first acknowledged write" $((t_write - t_cut))
printf '  %-48s %8s ms\n' "new leader on chain -> first acknowledged write" $((t_write - t_leader))
printf '  %-48s %8s ms\n' "restore -> old leader has the full log" $((t_rejoin - t_restore))
printf '  %-48s %8s\n' "acknowledged increments" "${#ACKED[@]}"
printf '  %-48s %8s\n' "acknowledged increments lost" "$lost"
printf '  %-48s %8s\n' "increments counted twice" "$dup"
printf '  %-48s %8s\n' "leader heartbeats on chain (lease $LEASE s)" "$beats"
printf '  %-48s %8s\n' "writes acknowledged by the cut-off leader" 0
[ "$DB" = 0 ] || printf '  %-48s %8s ms\n' "cut -> Redis on the new primary, read back" $((t_db - t_cut))
h_log "$DEMO: PASS"
