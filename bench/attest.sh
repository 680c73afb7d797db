#!/bin/bash
# attest/ benchmarks: record verification and key derivation in-process, then whole
# identity loads (Info + 2 GetKey) from dstack-sim over its unix socket. Figures only.
set -eu
cd "$(dirname "$0")/.."
O=${O:-build}
N=${ATTEST_BENCH_N:-2000}
LOADS=${ATTEST_BENCH_LOADS:-50}

make -s "$O/bench/attest-verify" >/dev/null
"$O/bench/attest-verify" "$N"

RUN=$(mktemp -d /tmp/bench-attest.XXXXXX)
SIM_PID=
trap '[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; rm -rf "$RUN"' EXIT
"$O/dstack-sim" --socket "$RUN/agent.sock" --kms-root-key "$(openssl rand -hex 32)" \
	--app-id "$(openssl rand -hex 20)" --instance-id "$(openssl rand -hex 20)" \
	--ready-file "$RUN/ready" >/dev/null 2>&1 &
SIM_PID=$!
for _ in $(seq 50); do [ -s "$RUN/ready" ] && break; sleep 0.1; done
[ -s "$RUN/ready" ] || { echo "attest: dstack-sim did not start"; exit 1; }
t0=$(date +%s%N)
for _ in $(seq "$LOADS"); do
	"$O/dstack-p2p" identity --agent "$RUN/agent.sock" >/dev/null
done
t1=$(date +%s%N)
echo "attest: dstack-p2p identity (process + Info + 2 GetKey): $LOADS in $(( (t1 - t0) / 1000000 )) ms," \
	"$(( (t1 - t0) / 1000 / LOADS )) us each"
