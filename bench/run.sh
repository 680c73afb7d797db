#!/bin/bash
# Runs every benchmark script in bench/ (bench/<area>.sh). Figures are printed, not
# asserted; a benchmark that cannot run says why and the others still run.
set -u
cd "$(dirname "$0")/.."
rc=0
for b in bench/*.sh; do
	[ "$b" = bench/run.sh ] && continue
	echo "==> $b"
	bash "$b" || { echo "bench: $b failed (exit $?)"; rc=1; }
done
exit $rc
