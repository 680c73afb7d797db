#!/bin/bash
# SPDX-License-Identifier: MIT
# `dstack-p2p leader` as an operator reads it, against a stand-in agent (fake-control.py): the
# lease's expiry in ISO 8601 UTC (as date(1) writes that Unix time), and a refused election's
# contract error with its field names, the expiry as a time, and a hint. No network; ~1 s.
set -eu
cd "$(dirname "$0")/../.."
BIN=${DSTACK_P2P_BIN:-build/dstack-p2p}
T=$(mktemp -d /tmp/dstack-p2p-leader-cli.XXXXXX)
FAKE_PID=
trap '[ -n "$FAKE_PID" ] && kill $FAKE_PID 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "test-leader-cli: FAIL: $*" >&2; exit 1; }
[ -x "$BIN" ] || fail "$BIN missing: run make"

mkdir -p "$T/docs"
/usr/bin/python3 tests/host/fake-control.py "$T/ctl.sock" "$T/docs" &
FAKE_PID=$!
for _ in $(seq 50); do [ -e "$T/docs/ready" ] && break; sleep 0.1; done
[ -e "$T/docs/ready" ] || fail "the stand-in agent did not start"
export DSTACK_P2P_CONTROL=$T/ctl.sock

EXPIRY=1796654689
iso=$(date -u -d "@$EXPIRY" +%Y-%m-%dT%H:%M:%SZ)
echo "{\"version\":1,\"leader\":{\"token\":2,\"label\":\"node-b\",\"address\":\"10.0.1.2\",\"term\":4,\"expiry\":$EXPIRY,\"lease_active\":true,\"self\":false,\"votes\":0,\"required\":2}}" >"$T/docs/leader.json"
"$BIN" leader >"$T/out" 2>&1 || fail "leader: $(cat "$T/out")"
grep -qF "lease active until $iso," "$T/out" || fail "leader does not print the expiry as $iso: $(cat "$T/out")"
grep -q "$EXPIRY" "$T/out" && fail "leader still prints the Unix time: $(cat "$T/out")"
echo "ok: leader: $(cat "$T/out")"

echo "{\"version\":1,\"error\":{\"code\":\"refused\",\"message\":\"eth_call reverted: LeaderStillActive(2, $EXPIRY)\"}}" \
	>"$T/docs/{\"version\":1,\"request\":\"leader.elect\"}.json"
rc=0; "$BIN" leader elect >"$T/out" 2>"$T/err" || rc=$?
[ $rc = 1 ] || fail "a refused elect exits $rc, not 1"
grep -qF "elect: eth_call reverted: LeaderStillActive(leader=2, expiry=$iso): " "$T/err" ||
	fail "a refused elect does not name the fields and the time: $(cat "$T/err")"
grep -qF "(refused)" "$T/err" || fail "the refusal's code is gone: $(cat "$T/err")"
echo "ok: $(cat "$T/err")"
echo "test-leader-cli: PASS"
