#!/bin/bash
# SPDX-License-Identifier: MIT
# Metrics (issue 27.1) with real parts. Two agents in the harness, node 2's token minted
# with a hostile label (quotes, backslashes, braces, a '#'). `dstack-p2p metrics` prints
# the exposition; Debian's python3-prometheus-client parses it and reads the label back
# exactly. Debian's prometheus (2.42), run in node 1's namespace with a config and storage
# of its own, scrapes node 1's P2P_METRICS_LISTEN on loopback and node 2's on its overlay
# address (through WireGuard); PromQL through its HTTP API returns the expected series and
# values. Hostile callers of the listener (silent, dripping, oversized, other paths) stop
# neither the scrapes nor the agent's control socket. A listen address that is neither
# loopback nor the overlay is refused at start-up with an error naming the variable.
# Parallel-safe: its own namespace prefix, temp dir and cleanup (netns-harness/lib.sh);
# prometheus and the listeners use fixed ports inside this run's own namespaces.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
pass() { h_log "PASS: $*"; }
PY=/usr/bin/python3
PORT=9464
PROM_PORT=9090
HOSTILE='n2"}1\x\\{a="b"}#x\"y\\z"{}!=,}'  # 31 bytes: quotes, backslashes, braces, '#' (no spaces: labelOf is printable ASCII)

[ "${#HOSTILE}" = 31 ] || { echo "HOSTILE is ${#HOSTILE} bytes" >&2; exit 1; }
h_init metr

# --- refused at start-up, before anything else is read
for bad in "0.0.0.0:$PORT" ":$PORT" "192.168.77.9:$PORT" "10.0.1.1:$PORT" "localhost:$PORT" \
	"127.0.0.1" "overlay:0" "[::]:$PORT"; do
	rc=0
	P2P_METRICS_LISTEN=$bad timeout 20 "$H_BIN/dstack-p2p" agent >"$H_RUN/bad.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || h_die "P2P_METRICS_LISTEN=$bad: exit $rc, not 2: $(cat "$H_RUN/bad.out")"
	grep -q "P2P_METRICS_LISTEN" "$H_RUN/bad.out" ||
		h_die "P2P_METRICS_LISTEN=$bad: the error does not name it: $(cat "$H_RUN/bad.out")"
done
pass "P2P_METRICS_LISTEN elsewhere than loopback or overlay:PORT is refused at start-up ($(head -1 "$H_RUN/bad.out"))"

h_deploy
h_node_add 1; h_mint_bind 1
h_node_add 2; h_mint_bind 2 "$HOSTILE"
P2P_METRICS_LISTEN=127.0.0.1:$PORT h_agent_start 1
P2P_METRICS_LISTEN=overlay:$PORT h_agent_start 2
for i in 1 2; do h_agent_wait_registered "$i" 60; done
h_wait_mesh 60 1 2 || h_die "2-node mesh did not converge"
T1=${H_TOKEN[1]} T2=${H_TOKEN[2]}

# --- dstack-p2p metrics: the exposition over the control socket, parsed by Debian's parser
metrics() { DSTACK_P2P_CONTROL="$H_RUN/ctl$1.sock" "$H_BIN/dstack-p2p" metrics; }
# parse: "name{labels as JSON} value" per sample, as python3-prometheus-client reads it.
parse() {
	$PY -c 'import json, sys
from prometheus_client.parser import text_string_to_metric_families as f
for fam in f(sys.stdin.read()):
    for s in fam.samples:
        print(s.name, json.dumps(s.labels, sort_keys=True), s.value)'
}
want_label=$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$HOSTILE")
want_path="dstack_p2p_peer_path {\"label\": $want_label, \"path\": \"udp\", \"token\": \"$T2\"} 1.0"
# Labels are read in the turns after the mesh forms, the first handshake comes with traffic
# (keepalives every $H_KEEPALIVE s).
for _ in $(seq 1 100); do
	metrics 1 >"$H_RUN/m1.txt" 2>"$H_RUN/m1.err" || true
	parse <"$H_RUN/m1.txt" >"$H_RUN/m1.parsed" 2>"$H_RUN/m1.perr" || true
	grep -qF "$want_path" "$H_RUN/m1.parsed" &&
		grep -q '^dstack_p2p_peer_last_handshake_age_seconds ' "$H_RUN/m1.parsed" && break
	sleep 0.2
done
parse <"$H_RUN/m1.txt" >"$H_RUN/m1.parsed" || h_die "python3-prometheus-client refused node 1's exposition"
grep -qF "$want_path" "$H_RUN/m1.parsed" ||
	h_die "node 1's path sample for token $T2 (label $want_label, on chain $(h_cast call "$H_CONTRACT" "labelOf(uint256)(string)" "$T2")): $(grep peer_path "$H_RUN/m1.parsed")"
grep -q '^dstack_p2p_peers {} 1.0$' "$H_RUN/m1.parsed" || h_die "dstack_p2p_peers: $(grep '^dstack_p2p_peers ' "$H_RUN/m1.parsed")"
for s in dstack_p2p_peer_last_handshake_age_seconds dstack_p2p_peer_rx_bytes_total dstack_p2p_peer_tx_bytes_total \
	dstack_p2p_registry_block dstack_p2p_registry_lag_blocks dstack_p2p_rpc_calls_total \
	dstack_p2p_transactions_sent_total dstack_p2p_registry_polls_total; do
	grep -q "^$s " "$H_RUN/m1.parsed" || h_die "no $s in node 1's exposition"
done
pass "dstack-p2p metrics: python3-prometheus-client parses it; token $T2's hostile label reads back exactly"

# --- the control request under a flood: 4 clients asking as fast as they can for 3 s. Each
# gets the page; the agent's loop keeps polling the registry meanwhile (the page is
# rendered at most every 500 ms, requests in between copy it).
$PY - "$H_RUN/ctl1.sock" >"$H_RUN/flood.out" 2>&1 <<'PY' || h_die "metrics flood: $(tail -5 "$H_RUN/flood.out")"
import json, re, socket, sys, threading, time
path = sys.argv[1]
def ask():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(b"metrics\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)["metrics"]
def polls(page):
    return int(re.search(r"^dstack_p2p_registry_polls_total (\d+)$", page, re.M).group(1))
first = polls(ask())
t0, counts, errors = time.time(), [0] * 4, []
def run(i):
    while time.time() - t0 < 3:
        try:
            ask()
            counts[i] += 1
        except Exception as e:
            errors.append(repr(e))
threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
last = polls(ask())
print("requests", sum(counts), "errors", len(errors), "polls", first, "->", last)
assert not errors, errors[:3]
assert sum(counts) >= 20, counts
assert last - first >= 3, (first, last)
PY
pass "metrics requests from 4 clients for 3 s: $(cat "$H_RUN/flood.out"); the registry polls went on"

# --- node 1 elects itself leader (a leader call its funded key pays): the leader's term and
# token, and the leader call, show in both agents' pages below.
DSTACK_P2P_CONTROL="$H_RUN/ctl1.sock" timeout 30 "$H_BIN/dstack-p2p" leader elect >"$H_RUN/elect.out" 2>&1 ||
	h_die "node 1 could not elect itself: $(cat "$H_RUN/elect.out")"

# --- prometheus in node 1's namespace: node 1 on loopback, node 2 on its overlay address
prom=$H_RUN/prometheus
mkdir -p "$prom/data"
cat >"$prom/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: agents
    static_configs:
      - targets: ['127.0.0.1:$PORT', '$(h_addr 2):$PORT']
YML
ip netns exec "$(h_ns 1)" env H_RUN="$H_RUN" /usr/bin/prometheus --config.file="$prom/prometheus.yml" \
	--storage.tsdb.path="$prom/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
	>"$H_RUN/prometheus.log" 2>&1 &
H_OTHER_PIDS+=($!)
# query PROMQL: the result vector as "labels-json value" lines, sorted.
query() {
	h_in 1 curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
		$PY -c 'import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
for r in sorted(d["data"]["result"], key=lambda r: json.dumps(r["metric"], sort_keys=True)):
    m = {k: v for k, v in r["metric"].items() if k not in ("instance", "job")}
    print(json.dumps(m, sort_keys=True), r["value"][1])'
}
# expect PROMQL WANT: within 60 s the query returns exactly WANT.
expect() {
	local got=
	for _ in $(seq 1 120); do
		got=$(query "$1" 2>/dev/null) || got=
		[ "$got" = "$2" ] && return 0
		sleep 0.5
	done
	h_die "PromQL $1: got '$got', want '$2' ($H_RUN/prometheus.log)"
}
expect 'count(up == 1)' '{} 2'
expect 'sum(dstack_p2p_peers)' '{} 2'
expect "dstack_p2p_peer_path{token=\"$T2\"}" "{\"__name__\": \"dstack_p2p_peer_path\", \"label\": $want_label, \"path\": \"udp\", \"token\": \"$T2\"} 1"
expect "count by (path) (dstack_p2p_peer_path)" '{"path": "udp"} 2'
expect 'count(dstack_p2p_registry_lag_blocks == 0)' '{} 2'
expect 'count(dstack_p2p_transactions_sent_total{kind="registration"} >= 1)' '{} 2'
expect "count(dstack_p2p_peer_rx_bytes_total > 0)" '{} 2'
expect "count(dstack_p2p_leader_token == $T1)" '{} 2'
expect 'count(dstack_p2p_leader_term >= 1)' '{} 2'
expect 'sum(dstack_p2p_transactions_sent_total{kind="leader_call"})' '{} 1'
pass "prometheus scrapes both agents (loopback and overlay): peers, path udp, the hostile label, lag 0, registrations and the leader call sent, bytes, node 1 leads"

# --- hostile callers of node 2's overlay listener, from node 1 (a peer); scrapes go on
h_in 1 $PY - "$(h_addr 2)" "$PORT" >"$H_RUN/hostile.out" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.create_connection((host, port), timeout=3)
    return s
held = []
for _ in range(40):                       # silent: more than the table holds
    try: held.append(conn())
    except OSError: pass
big = conn(); big.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 4096 + b"\r\n\r\n")
print("oversized:", big.recv(64).split(b"\r\n")[0].decode())
other = conn(); other.sendall(b"GET /admin HTTP/1.1\r\n\r\n")
print("other path:", other.recv(64).split(b"\r\n")[0].decode())
t0 = time.time()
while time.time() - t0 < 8:               # drip and reconnect for 8 s
    try:
        s = conn(); s.sendall(b"G"); held.append(s)
    except OSError: pass
    time.sleep(0.05)
print("done")
PY
hostile=$!
t_flood=$(date +%s)
sleep 3
DSTACK_P2P_CONTROL="$H_RUN/ctl2.sock" timeout 10 "$H_BIN/dstack-p2p" status >/dev/null ||
	h_die "node 2's control socket did not answer while its metrics listener was flooded"
wait "$hostile" || h_die "the hostile client failed: $(cat "$H_RUN/hostile.out")"
grep -q '^oversized: HTTP/1.1 431' "$H_RUN/hostile.out" || h_die "oversized head: $(cat "$H_RUN/hostile.out")"
grep -q '^other path: HTTP/1.1 404' "$H_RUN/hostile.out" || h_die "other path: $(cat "$H_RUN/hostile.out")"
grep -q '^done' "$H_RUN/hostile.out" || h_die "the flood did not run: $(cat "$H_RUN/hostile.out")"
# Prometheus's own record of node 2's target over the flood, read once: every scrape
# succeeded (up is 0 for a failed one), and there were scrapes.
sleep 1
span="$(( $(date +%s) - t_flood ))s"
target="up{instance=\"$(h_addr 2):$PORT\"}"
got=$(query "min(min_over_time($target[$span])) * count(count_over_time($target[$span]) >= 6)")
[ "$got" = '{} 1' ] || h_die "scrapes of node 2 over the $span of the flood: '$got' (min up x at least 6 scrapes)" \
	"$(query "count_over_time($target[$span])") $(query "min_over_time($target[$span])")"
pass "a flood of silent and dripping clients on node 2's listener: prometheus still scrapes it, status answers"

# --- node 1's loopback listener is not reachable over the overlay
if h_in 2 curl -s --max-time 2 -o /dev/null "http://$(h_addr 1):$PORT/metrics"; then
	h_die "node 1's loopback metrics listener answered on its overlay address"
fi
pass "a loopback listener is not reachable from a peer"
