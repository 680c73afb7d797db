#!/bin/sh
# PID 1 of the test VM: mounts, loads WireGuard, runs each guest script named on the
# kernel command line (dstack.run=a.sh,b.sh; paths relative to /repo) with a time
# limit, prints its output and "@@ RESULT PASS|FAIL name seconds", then powers off.
export PATH=/repo/build:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root VM=1 REPO=/repo O=build
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
# No tmpfs on /tmp: the initramfs root is already in memory, and host binaries copied
# in at their own paths (a checkout under /tmp, EXTRA_BINS) must stay visible.
mkdir -p /run/wireguard
uptime_s() { cut -d' ' -f1 /proc/uptime; }

if ! modprobe wireguard || ! modprobe veth || ! modprobe bridge; then
	echo "@@ FATAL modprobe failed"
	poweroff -f
fi
# Entropy from the host (run-tests.sh adds a virtio-rng device); not fatal without it.
{ modprobe virtio_pci && modprobe virtio_rng; } 2>/dev/null || echo "@@ no virtio_rng: random numbers may wait for entropy"
/usr/sbin/ip link set lo up
echo "@@ VM up: kernel $(uname -r), $(uptime_s) s after boot"

run=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^dstack\.run=//p' | tr ',' ' ')
limit=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^dstack\.timeout=//p')
cd /repo
passed=0
failed=0
for t in $run; do
	name=${t##*/}
	name=${name%.sh}
	t0=$(uptime_s)
	echo "@@ BEGIN $name"
	# Each script in a fresh shell; output streamed, its status kept in a file.
	{ timeout "${limit:-600}" sh "$t" 2>&1; echo $? >/tmp/rc; } | sed "s/^/[$name] /"
	rc=$(cat /tmp/rc)
	secs=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "@@ RESULT PASS $name ${secs}s"
	else
		failed=$((failed + 1))
		echo "@@ RESULT FAIL $name ${secs}s (exit $rc)"
	fi
	# Leave nothing behind for the next script.
	for ns in $(/usr/sbin/ip netns list 2>/dev/null | cut -d' ' -f1); do /usr/sbin/ip netns del "$ns"; done
done
echo "@@ SUMMARY $passed passed, $failed failed"
poweroff -f
