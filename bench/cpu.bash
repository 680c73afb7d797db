# SPDX-License-Identifier: MIT
# Sourced by the benchmark scripts (not one itself: bench/run.sh runs bench/*.sh only).

# bench_idle_cpu SECS PID...: each process's CPU (utime + stime from /proc) over the same
# SECS seconds, in % of one core, one line per PID in the order given.
bench_idle_cpu() {
	local secs=$1 hz pid before=() i=0
	shift
	hz=$(getconf CLK_TCK)
	for pid in "$@"; do before+=("$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"); done
	sleep "$secs"
	for pid in "$@"; do
		awk -v t0="${before[$i]}" -v hz="$hz" -v s="$secs" '{ printf "%.2f%%\n", 100 * ($14 + $15 - t0) / hz / s }' \
			"/proc/$pid/stat"
		i=$((i + 1))
	done
}
