#!/bin/bash
# Runs the test suites named on the command line (default: all) and prints each
# runner's own summary, then one line per suite with its wall and CPU time and a closing
# "check: N passed, N failed". A suite that fails, or that ran nothing, fails the check.
#
# Named suites run one after the other, their output live. The default (every suite)
# runs in two lanes at once: the host suite, whose scripts mostly wait on timers and
# networks, then python and contracts, beside the CPU-bound rest (unit, asan, fuzz, vm).
# The host suite prints a line per script as it ends; every other suite then writes to
# its log and is printed whole when it ends.
#
#   env: O=build  CHECK_SERIAL=1 (one suite at a time)  FUZZ_SECONDS=10 (each target)
#        HOST_JOBS=4 (host scripts at once)  TEST_TIMEOUT=600 (each host script, s)
#        HOST_TESTS=GLOB (only tests/host/GLOB.sh)
#        ASAN_HOST="test-mesh-scenarios test-mesh-gateway" (host scripts run a second
#        time with the sanitized agent and simulator, $O/asan; empty: none)
#
# Host scripts in parallel: each one's output goes to $O/check/host/NAME.log, a
# PASS/FAIL line with its wall and CPU time is printed when it ends, and a failed one's
# log is printed whole (up to 300 lines). Each is bounded by TEST_TIMEOUT. Scripts whose
# header says "# check-lock: NAME" never run at the same time as another script with
# that NAME (a resource they cannot share). The longest (by the last run's times, in
# $O/check/host-times, or tests/host/times.txt) start first.
set -u
cd "$(dirname "$0")/.."
O=${O:-build}
ALL_SUITES="unit asan contracts fuzz host python vm"
# Two lanes of about 5 and 7 minutes on an idle 2-core machine: the host scripts (waiting,
# mostly), the Python SDK's harness and forge, beside the CPU-bound suites, the VM last.
LANE_HOST="host python contracts"
LANE_CPU="unit asan fuzz vm"
CHECK_DIR=$O/check
# The tree as make check builds it (Makefile: check-build, PREFIX=/usr). Test scripts
# that run make see the same PREFIX, so they find it up to date.
export PREFIX=${PREFIX:-/usr}

# cpu_seconds FILE: the CPU seconds (user + system) in the last line of `times >FILE`:
# those of every process the shell waited for. `times` itself must run in that shell: in
# a pipe or $(...) it would report a fresh subshell's.
cpu_seconds() {
	awk 'END { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.0f", s }' "$1"
}

# run_suite NAME CMD...: CMD's output to the terminal and to the suite's log.
run_suite() {
	local name=$1 log=$O/check-$1.log
	shift
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

# The same unit tests built with SANITIZE=address,undefined in $O/asan (make check builds
# it): any sanitizer report fails the suite, even one in a test that criterion counts as
# passed. (The host suite runs the gateway scenario with $O/asan's agent too.)
SAN_PATTERN='runtime error:|ERROR: (Address|Leak|Undefined)Sanitizer|SUMMARY: (Address|Undefined|Leak)Sanitizer'
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
suite_asan() {
	local bin=$O/asan/tests/unit-tests
	[ -x "$bin" ] || { echo "asan: $bin missing (make check-build)"; return 1; }
	run_suite asan "$bin" --jobs=2 || return 1
	grep -Eq 'Synthesis: Tested: [1-9]' "$O/check-asan.log" || return 1
	if grep -Eq "$SAN_PATTERN" "$O/check-asan.log"; then
		echo "asan: sanitizer reports above"
		return 1
	fi
}

suite_contracts() {
	[ -d contracts ] && [ -f contracts/foundry.toml ] || { echo "no contracts yet"; return 2; }
	run_suite contracts sh -c 'cd contracts && ../node_modules/.bin/forge test' || return 1
	grep -Eq '[1-9][0-9]* tests passed' "$O/check-contracts.log"
}

# Short libFuzzer runs: every target must exist and run clean for a bounded time.
# 10 s each by default, after replaying the corpus in tests/fuzz/corpus and the one kept
# in $O/fuzz-corpus (so each check goes on from the last); FUZZ_SECONDS=600 for a longer
# look. (At 5 s, a third of the new coverage a 10 s run finds would be lost.)
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

# ---- host scripts, several at once --------------------------------------------------

# The order: longest first by the last run's times ($CHECK_DIR/host-times; in a fresh
# tree tests/host/times.txt, measured), unknown scripts before them all, so that a long
# script does not start last.
host_order() {
	local t secs times=$CHECK_DIR/host-times
	[ -s "$times" ] || times=tests/host/times.txt
	for t in "$@"; do
		secs=$(awk -v n="$(job_name "$t")" '$1 == n { print $2 }' "$times" 2>/dev/null | tail -1)
		echo "${secs:-99999} $t"
	done | sort -k1,1nr -k2 | cut -d' ' -f2-
}

# host_one JOB LOGDIR: JOB is a script, or asan:SCRIPT for the script with $O/asan's
# agent and simulator (H_BIN) and its run folders kept (H_KEEP, under a TMPDIR of its
# own) so that every log in them is searched for sanitizer lines afterwards. Runs it with
# its time bound, under its lock if its header names one (flock(1) holds it for as long
# as the script runs); writes LOGDIR/NAME.result: "rc wall_s cpu_s".
host_one() {
	local job=$1 dir=$2 t=${1#asan:} name lock rc=0 t0 keep= env=()
	name=$(job_name "$job")
	lock=$(sed -n '1,30s/^# check-lock: *\([A-Za-z0-9_-]*\).*/\1/p' "$t" | head -1)
	if [ "$job" != "$t" ]; then
		keep=$(mktemp -d "${TMPDIR:-/tmp}/dstack-p2p-asan.XXXXXX")
		env=(H_BIN="$(cd "$O/asan" && pwd)" H_KEEP=1 TMPDIR="$keep")
	fi
	t0=$(date +%s%N)
	env "${env[@]}" ${lock:+flock "$dir/.lock-$lock"} timeout -k 30 "${TEST_TIMEOUT:-600}" bash "$t" \
		</dev/null >"$dir/$name.log" 2>&1 || rc=$?
	if [ -n "$keep" ]; then
		if grep -rEl "$SAN_PATTERN" "$keep" "$dir/$name.log" >"$dir/$name.san"; then
			{
				echo "check: sanitizer reports in:"
				cat "$dir/$name.san"
				grep -rEh -B2 -A30 "$SAN_PATTERN" "$keep" | head -120
			} >>"$dir/$name.log"
			[ "$rc" != 0 ] || rc=1
		else
			echo "check: no sanitizer line in $(find "$keep" -type f -name '*.log' | wc -l) logs of the run" >>"$dir/$name.log"
		fi
		rm -rf "$keep"
	fi
	times >"$dir/$name.times"
	echo "$rc $(( ($(date +%s%N) - t0) / 1000000000 )) $(cpu_seconds "$dir/$name.times")" >"$dir/$name.result"
}
job_name() { case $1 in asan:*) echo "asan-$(basename "$1" .sh)" ;; *) basename "$1" .sh ;; esac; }

suite_script_dir() {
	local dir=$1 jobs=${HOST_JOBS:-4} logdir n=0 bad=0 t j name rc secs cpu list=() r
	logdir=$CHECK_DIR/$(basename "$dir")
	rm -rf "$logdir"
	mkdir -p "$logdir"
	for t in "$dir"/${HOST_TESTS:-*}.sh; do
		[ -f "$t" ] || continue
		list+=("$t")
		! in_list "$(basename "$t" .sh)" "${ASAN_HOST-test-mesh-scenarios test-mesh-gateway}" || list+=("asan:$t")
	done
	[ ${#list[@]} -gt 0 ] || { echo "$dir: no scripts"; return 1; }
	echo "$dir: ${#list[@]} runs, $jobs at a time; logs in $logdir/"
	# Each job prints its own result line when it ends (one short write: lines never mix).
	for j in $(host_order "${list[@]}"); do
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
		(
			host_one "$j" "$logdir"
			read -r rc secs cpu <"$logdir/$(job_name "$j").result"
			case $rc in 0) r=PASS ;; 124) r="FAIL (timeout ${TEST_TIMEOUT:-600} s)" ;; *) r="FAIL (exit $rc)" ;; esac
			printf '%s %s  %s s, CPU %s s\n' "$r" "$j" "$secs" "$cpu"
		) &
	done
	wait
	: >"$logdir/times.new"
	for j in "${list[@]}"; do
		name=$(job_name "$j")
		n=$((n + 1))
		read -r rc secs cpu 2>/dev/null <"$logdir/$name.result" || rc=1 secs=0 cpu=0
		echo "$name $secs $cpu" >>"$logdir/times.new"
		[ "$rc" = 0 ] && continue
		bad=$((bad + 1))
		echo "--- FAIL $j (exit $rc): $logdir/$name.log"
		if [ "$(wc -l <"$logdir/$name.log")" -le 300 ]; then
			cat "$logdir/$name.log"
		else
			echo "(its last 300 lines)"
			tail -300 "$logdir/$name.log"
		fi
		echo "--- end of $j"
	done
	# Keep the times of scripts that did not run this time (HOST_TESTS) too.
	{ cat "$logdir/times.new"; cat "$CHECK_DIR/host-times" 2>/dev/null; } |
		awk '!seen[$1]++' >"$CHECK_DIR/host-times.tmp" && mv "$CHECK_DIR/host-times.tmp" "$CHECK_DIR/host-times"
	echo "$dir: $((n - bad)) passed, $bad failed"
	[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
suite_host() { run_suite host suite_script_dir tests/host; }
# The Python SDK against a live harness mesh, with Debian's python3 and pytest (stdlib SDK).
suite_python() {
	SDK_HARNESS_LOG=$(cd "$CHECK_DIR" && pwd)/python-harness.log \
		run_suite python sh -c 'cd tests/python && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -v -p no:cacheprovider' || return 1
	grep -Eq '^=+ [1-9][0-9]* passed' "$O/check-python.log" && ! grep -Eq '[0-9]+ (failed|error)' "$O/check-python.log"
}
suite_vm() {
	[ -x netns-harness/vm/run-tests.sh ] || { echo "no VM tests yet"; return 2; }
	# with-vm-chain.sh adds anvil and a prepared chain to the image (tests/vm/test-mesh-kernel.sh).
	run_suite vm netns-harness/with-vm-chain.sh netns-harness/vm/run-tests.sh
}

# ---- running suites -----------------------------------------------------------------

# timed_suite NAME: runs suite_NAME in a subshell; writes $CHECK_DIR/NAME.result
# ("rc wall_s cpu_s"), CPU being that of every process the suite waited for.
timed_suite() {
	local s=$1 t0
	t0=$(date +%s%N)
	(
		"suite_$s"
		rc=$?
		times >"$CHECK_DIR/$s.times"
		echo "$rc $(( ($(date +%s%N) - t0) / 1000000000 )) $(cpu_seconds "$CHECK_DIR/$s.times")" >"$CHECK_DIR/$s.result"
	)
}

# lane SUITE...: one after the other. With QUIET=1 (suites run side by side) each suite
# but host writes to $CHECK_DIR/NAME.out, printed whole when it ends under a lock, so
# that blocks never mix; the host suite prints one short line per script as it goes.
lane() {
	local s rc secs cpu
	for s in "$@"; do
		if [ "${QUIET:-0}" = 1 ] && [ "$s" != host ]; then
			timed_suite "$s" >"$CHECK_DIR/$s.out" 2>&1
			read -r rc secs cpu 2>/dev/null <"$CHECK_DIR/$s.result" || rc=? secs=?
			{
				flock 9
				echo "==> suite $s (exit $rc, $secs s)"
				cat "$CHECK_DIR/$s.out"
			} 9>"$CHECK_DIR/.print-lock"
		else
			echo "==> suite $s"
			timed_suite "$s"
		fi
	done
}

in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# A script that rebuilds the tree while others run it is a defect: said at the end.
tree_stamp() { stat -c '%n %Y' "$O/dstack-p2p" "$O/dstack-sim" "$O/libdstack-p2p-internal.a" 2>/dev/null; }

# All of it in one function, read whole before it runs, and the exit on the same line as
# its call: editing this file while a check runs cannot change what the running one does.
main() {
	local suites=${*:-$ALL_SUITES} passed=0 failed=0 results=() s rc secs cpu t_start tree_before host_lane
	t_start=$(date +%s)
	mkdir -p "$CHECK_DIR"
	# The version too is fixed for the whole check: a commit made meanwhile would change it
	# (git describe) and a script's make would relink the agent under the others.
	VERSION=$(make -s O="$O" print-version) || return 1
	export VERSION
	# Up to date already when make check called us; built here when run directly.
	make -s O="$O" check-build || { echo "check: the build failed"; return 1; }
	# Compiled once before any suite runs forge (contracts/deploy.sh takes the same lock).
	(cd contracts && flock .forge.lock ../node_modules/.bin/forge build -q) >"$CHECK_DIR/forge-build.log" 2>&1 ||
		{ cat "$CHECK_DIR/forge-build.log"; echo "check: forge build failed"; return 1; }
	tree_before=$(tree_stamp)
	for s in $suites; do rm -f "$CHECK_DIR/$s.result"; done
	if [ -z "${CHECK_SERIAL:-}" ] && [ "$suites" = "$ALL_SUITES" ]; then
		echo "check: lanes side by side: [$LANE_HOST] [$LANE_CPU] (CHECK_SERIAL=1: one at a time)"
		QUIET=1 lane $LANE_HOST &
		host_lane=$!
		QUIET=1 lane $LANE_CPU
		wait "$host_lane"
	else
		lane $suites
	fi

	for s in $suites; do
		read -r rc secs cpu 2>/dev/null <"$CHECK_DIR/$s.result" || rc=1 secs=? cpu=?
		case $rc in
		0) results+=("PASS $(printf '%-10s %5s s  CPU %5s s' "$s" "$secs" "$cpu")"); passed=$((passed + 1)) ;;
		*) results+=("FAIL $(printf '%-10s %5s s  CPU %5s s  (exit %s)' "$s" "$secs" "$cpu" "$rc")"); failed=$((failed + 1)) ;;
		esac
	done
	[ "$(tree_stamp)" = "$tree_before" ] ||
		echo "check: WARNING: $O was rebuilt while the suites ran (a test script ran make with other settings?)"
	echo "==> summary (wall time, CPU time of the suite's processes)"
	printf '  %s\n' "${results[@]}"
	echo "  total: $(( $(date +%s) - t_start )) s"
	echo "check: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

main "$@"; exit $?
