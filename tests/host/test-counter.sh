#!/bin/bash
# SPDX-License-Identifier: MIT
# The distributed counter example (examples/counter/) through a leader failover on a 3-node
# netns mesh, with Redis primary/replica following the contract's leader in the same run:
# netns-harness/demo-counter.sh (DB=1) checks every step against the contract (cast call
# leaderState()/currentLeader()), every node's HTTP API (/status, /counter, /log,
# /members), the logs' contents, and Redis with redis-cli (ROLE, INFO replication, a SET
# on the primary read back from every replica over 10.0.1.x, before and after the failover
# and after the rejoin); it exits non-zero on any mismatch. Here its output must also hold
# the figures it printed: 0 acknowledged increments lost, 0 counted twice, the Redis
# read-backs, and a PASS line. About 50-70 s on a 2-core machine (90 s loaded).
set -u
cd "$(dirname "$0")/../.."
out=$(mktemp /tmp/test-counter.XXXXXX)
trap 'rm -f "$out"' EXIT
command -v redis-server >/dev/null || { echo "FAIL: redis-server missing (scripts/deps.sh)"; exit 1; }
if ! DB=1 bash netns-harness/demo-counter.sh 3 >"$out" 2>&1; then
	tail -40 "$out"
	echo "FAIL: the counter scenario (above)"
	exit 1
fi
grep -E 'timeline|->|acknowledged|twice|heartbeats|redis-cli' "$out"
fail=0
grep -Eq '^  acknowledged increments lost +0$' "$out" || { echo "FAIL: acknowledged increments lost"; fail=1; }
grep -Eq '^  increments counted twice +0$' "$out" || { echo "FAIL: increments counted twice"; fail=1; }
grep -Eq '^  acknowledged increments +1[0-9]$' "$out" || { echo "FAIL: fewer increments than the scenario makes"; fail=1; }
[ "$(grep -c 'redis-cli -h 10.0.1.[0-9]* GET demo:' "$out")" -ge 5 ] || { echo "FAIL: Redis read-backs missing"; fail=1; }
grep -qE '] demo-db: PASS$' "$out" || { echo "FAIL: no 'demo-db: PASS' line (DB=1 is make demo-db)"; fail=1; }
# The node tables line up: each row's role starts under the header's "role".
awk '/^  node +address +role/ { h = index($0, "role"); next }
	h && /^  [0-9]+ +10\./ { rows++; if (index($0, " " $3 " ") + 1 != h) { print "misaligned: " $0; bad = 1 } }
	END { if (!rows) print "no status table rows"; exit bad || !rows }' "$out" ||
	{ echo "FAIL: the status table's columns do not line up"; fail=1; }
grep -E '^  (node +address|[0-9]+ +10\.)' "$out" | head -4
[ "$fail" = 0 ] && echo "PASS: counter failover (N=3), no acknowledged increment lost"
exit "$fail"
