#!/bin/bash
# Runs the test suites named on the command line (default: all) and prints each
# runner's own summary, then one line per suite and a closing "N passed, N failed".
# A suite that fails, or that ran nothing, fails the check.
set -u
cd "$(dirname "$0")/.."
O=${O:-build}
ALL_SUITES="unit contracts fuzz host python vm"
suites=${*:-$ALL_SUITES}
passed=0 failed=0 results=()

run_suite() {
	local name=$1 log=$O/check-$1.log
	shift
	echo "==> suite $name"
	mkdir -p "$O"
	"$@" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

# The criterion binary: its synthesis line must show at least one test.
# The module graph (docs/README.md) is checked with it: a back edge fails the suite.
suite_unit() {
	scripts/module-graph.sh || return 1
	run_suite unit "$O/tests/unit-tests" --jobs=2 || return 1
	grep -Eq 'Synthesis: Tested: [1-9]' "$O/check-unit.log"
}

suite_contracts() {
	[ -d contracts ] && [ -f contracts/foundry.toml ] || { echo "no contracts yet"; return 2; }
	run_suite contracts sh -c 'cd contracts && ../node_modules/.bin/forge test' || return 1
	grep -Eq '[1-9][0-9]* tests passed' "$O/check-contracts.log"
}

# Short libFuzzer runs: every target must exist and run clean for a bounded time.
suite_fuzz() {
	local n=0 f
	for f in "$O"/fuzz/fuzz-*; do
		[ -x "$f" ] || continue
		local name corpus
		name=$(basename "$f")
		corpus=tests/fuzz/corpus/${name#fuzz-}
		mkdir -p "$O/fuzz-corpus/$name"
		echo "fuzz: $name (${FUZZ_SECONDS:-10} s)"
		"$f" -max_total_time="${FUZZ_SECONDS:-10}" -timeout=5 -rss_limit_mb=1024 \
			"$O/fuzz-corpus/$name" $( [ -d "$corpus" ] && echo "$corpus" ) \
			>"$O/fuzz-$name.log" 2>&1 || { tail -40 "$O/fuzz-$name.log"; return 1; }
		grep -E '^Done [0-9]+ runs' "$O/fuzz-$name.log"
		n=$((n + 1))
	done
	echo "fuzz: $n targets"
	[ "$n" -gt 0 ]
}

# Shell tests on the host: namespaces, anvil, wireguard-go. Each prints PASS/FAIL.
suite_script_dir() {
	local dir=$1 n=0 bad=0 t
	for t in "$dir"/*.sh; do
		[ -f "$t" ] || continue
		n=$((n + 1))
		echo "--- $t"
		if timeout "${TEST_TIMEOUT:-600}" bash "$t"; then
			echo "PASS $t"
		else
			echo "FAIL $t"
			bad=$((bad + 1))
		fi
	done
	echo "$dir: $((n - bad)) passed, $bad failed"
	[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
suite_host() { run_suite host suite_script_dir tests/host; }
# The Python SDK against a live harness mesh, with Debian's python3 and pytest (stdlib SDK).
suite_python() {
	run_suite python sh -c 'cd tests/python && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -v -p no:cacheprovider' || return 1
	grep -Eq '^=+ [1-9][0-9]* passed' "$O/check-python.log" && ! grep -Eq '[0-9]+ (failed|error)' "$O/check-python.log"
}
suite_vm() {
	[ -x netns-harness/vm/run-tests.sh ] || { echo "no VM tests yet"; return 2; }
	# with-vm-chain.sh adds anvil and a prepared chain to the image (tests/vm/test-mesh-kernel.sh).
	run_suite vm netns-harness/with-vm-chain.sh netns-harness/vm/run-tests.sh
}

for s in $suites; do
	"suite_$s"
	rc=$?
	case $rc in
	0) results+=("PASS $s"); passed=$((passed + 1)) ;;
	*) results+=("FAIL $s (exit $rc)"); failed=$((failed + 1)) ;;
	esac
done
echo "==> summary"
printf '  %s\n' "${results[@]}"
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
