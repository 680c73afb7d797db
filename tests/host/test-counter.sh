#!/bin/bash
# SPDX-License-Identifier: MIT
# Seed 003's distributed counter (examples/counter/) through a leader failover on a 3-node
# netns mesh: netns-harness/demo-counter.sh checks every step against the contract
# (cast call leaderState()/currentLeader()), every node's HTTP API (/status, /counter,
# /log, /members) and the logs' contents, and exits non-zero on any mismatch. Here its
# output must also hold the figures it printed: 0 acknowledged increments lost, 0 counted
# twice, and a PASS line. About 60-90 s on an idle 2-core machine.
set -u
cd "$(dirname "$0")/../.."
out=$(mktemp /tmp/test-counter.XXXXXX)
trap 'rm -f "$out"' EXIT
if ! bash netns-harness/demo-counter.sh 3 >"$out" 2>&1; then
	tail -40 "$out"
	echo "FAIL: the counter scenario (above)"
	exit 1
fi
grep -E 'timeline|->|acknowledged|twice' "$out"
fail=0
grep -Eq '^  acknowledged increments lost +0$' "$out" || { echo "FAIL: acknowledged increments lost"; fail=1; }
grep -Eq '^  increments counted twice +0$' "$out" || { echo "FAIL: increments counted twice"; fail=1; }
grep -Eq '^  acknowledged increments +1[0-9]$' "$out" || { echo "FAIL: fewer increments than the scenario makes"; fail=1; }
grep -q 'demo-counter: PASS' "$out" || { echo "FAIL: no PASS line"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: counter failover (N=3), no acknowledged increment lost"
exit "$fail"
