#!/bin/bash
# Boots ONE qemu VM (Debian's cloud kernel, TCG) and runs the guest scripts in it:
# every tests/vm/*.sh by default, or the scripts named on the command line (paths
# relative to the repository). Prints each script's output and result, then
# "N passed, N failed"; exits non-zero when anything failed or the VM did not finish.
#
#   env: O=build  VM_TESTS=GLOB (only tests/vm/GLOB.sh)  VM_TIMEOUT=seconds (whole run)
#        VM_SCRIPT_TIMEOUT=seconds (each script)  VM_MEM=MiB  VM_LOG=path (default: a new
#        build/vm/run-*.log)
#        VM_GUESTFWD="PORT ..."  host 127.0.0.1:PORT reachable in the guest at 10.0.2.100:PORT
#        EXTRA_BINS, EXTRA_FILES   see build-initramfs.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
export O

if [ $# -gt 0 ]; then
	scripts=("$@")
else
	scripts=()
	for t in tests/vm/${VM_TESTS:-*}.sh; do [ -f "$t" ] && scripts+=("$t"); done
fi
if [ ${#scripts[@]} -eq 0 ]; then
	echo "run-tests: no guest scripts"
	exit 2
fi

for tool in qemu-system-x86_64 cpio depmod; do
	command -v "$tool" >/dev/null || { echo "run-tests: $tool is missing (make deps)"; exit 2; }
done
# Fresh binaries for the guest; the test helpers live with the benchmarks.
make -s all "$O/bench/netlink-wgtool" "$O/bench/wg-call-window.so" >&2 || echo "run-tests: warning: make failed; using what is built" >&2

kroot=$(netns-harness/vm/fetch-kernel.sh)/root
kernel=$(ls "$kroot"/boot/vmlinuz-* | head -1)
image=$(netns-harness/vm/build-initramfs.sh "$kroot" "${scripts[@]}")

net=(-net none)
if [ -n "${VM_GUESTFWD:-}" ]; then
	fwd=""
	for port in $VM_GUESTFWD; do
		fwd+=",guestfwd=tcp:10.0.2.100:$port-cmd:socat - TCP:127.0.0.1:$port"
	done
	net=(-netdev "user,id=n0,restrict=on$fwd" -device "virtio-net-pci,netdev=n0,romfile=")
fi

run=$(IFS=,; echo "${scripts[*]}")
# One log per run: several people may run the VM at once.
mkdir -p "$O/vm"
find "$O/vm" -maxdepth 1 -name 'run-*.log' -mmin +1440 -delete
log=${VM_LOG:-$(mktemp "$O/vm/run-XXXXXX.log")}
mkdir -p "$(dirname "$log")"
start=$(date +%s)
echo "run-tests: booting $(basename "$kernel") with ${#scripts[@]} guest scripts (TCG)"
# TCG only: /dev/kvm exists on these machines but does not work. A virtio-rng device
# (the host's /dev/urandom) seeds the guest's random pool: without it getrandom(), and so
# wg genkey, can wait for entropy for minutes under TCG.
timeout "${VM_TIMEOUT:-1500}" qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m "${VM_MEM:-1536}" \
	-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
	-nographic -no-reboot "${net[@]}" -kernel "$kernel" -initrd "$image" \
	-append "console=ttyS0 quiet panic=-1 dstack.run=$run dstack.timeout=${VM_SCRIPT_TIMEOUT:-600}" \
	</dev/null 2>&1 | tr -d '\r' | tee "$log" | grep --line-buffered -a -E '^(\[|@@)' || true

passed=$(grep -ac '^@@ RESULT PASS' "$log" || true)
failed=$(grep -ac '^@@ RESULT FAIL' "$log" || true)
echo "run-tests: VM ran $((passed + failed)) of ${#scripts[@]} scripts in $(($(date +%s) - start)) s (log: $log)"
if ! grep -aq '^@@ SUMMARY' "$log"; then
	echo "run-tests: the VM did not finish (timeout or crash); last lines:"
	tail -20 "$log"
	failed=$((failed + ${#scripts[@]} - passed - failed))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
