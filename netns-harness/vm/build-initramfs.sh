#!/bin/bash
# Builds the test VM's initramfs: busybox, iproute2's ip, wg, our build/ binaries with
# the libraries ldd names, wireguard.ko and its dependencies from the cached kernel,
# the guest scripts, and netns-harness/vm/guest-init.sh as /init. The image is cached
# under a hash of everything that goes into it and rebuilt only when an input changes.
#
#   usage: build-initramfs.sh KERNEL_ROOT [GUEST_SCRIPT...]    prints the image path
#   env:   O=build          build directory
#          EXTRA_BINS="..." more host binaries (absolute paths; copied with their libraries)
#          EXTRA_FILES="SRC:DST ..."  more files, DST absolute inside the guest
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
kroot=$(cd "$1" && pwd)
shift
kver=$(ls "$kroot/lib/modules")
modules="wireguard veth bridge virtio_pci virtio_rng"

# Everything the guest gets, in a stable order: our binaries first. A colleague's make
# may be relinking one right now: wait (bounded) until all are complete and settled.
list_our_bins() {
	our_bins=()
	for f in "$O/dstack-p2p" "$O/dstack-sim" "$O"/bench/* "$O"/tests/vm-helpers/*; do
		case $f in *.d | *.o) continue ;; esac
		if [ -f "$f" ]; then our_bins+=("$f"); fi
	done
}
for attempt in $(seq 1 30); do
	list_our_bins
	settled=1
	for f in "${our_bins[@]}"; do
		if [ ! -x "$f" ] || [ ! -s "$f" ] || [ $(($(date +%s) - $(stat -c %Y "$f"))) -lt 2 ]; then
			settled=0
		fi
	done
	[ "$settled" = 1 ] && break
	[ "$attempt" = 30 ] && echo "build-initramfs: binaries in $O keep changing; using them as they are" >&2
	sleep 1
done
host_bins=(/bin/busybox /usr/sbin/ip /usr/bin/wg)
for b in ${EXTRA_BINS:-}; do host_bins+=("$b"); done
scripts=(netns-harness/vm/*.sh) # guest-init.sh and the guest-side helper libraries
while IFS= read -r f; do scripts+=("$f"); done < <(find tests/vm -type f 2>/dev/null | sort)
for s in "$@"; do scripts+=("$s"); done

mod_paths=$(for m in $modules; do modprobe -d "$kroot" -S "$kver" --show-depends "$m"; done |
	awk '$1 == "insmod" { print $2 }' | sort -u)

stamp=$( {
	echo "$kver $modules ${EXTRA_FILES:-}"
	sha256sum "${our_bins[@]}" "${scripts[@]}" "$0"
	for b in "${host_bins[@]}"; do sha256sum "$(readlink -f "$b")"; done
	for pair in ${EXTRA_FILES:-}; do sha256sum "${pair%%:*}"; done
} | sha256sum | cut -c1-16)
image=$O/vm/initramfs-$stamp.cpio.gz
if [ -s "$image" ]; then
	echo "$image"
	exit 0
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/dstack-p2p-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib64,proc,sys,dev,run,tmp,etc,root,var}
ln -s /run "$root/var/run"

# A binary plus every library ldd resolves for it, at the same paths.
copy_with_libs() {
	local src=$1 dst=$root${2:-$1}
	mkdir -p "$(dirname "$dst")"
	cp -L "$src" "$dst"
	{ ldd "$src" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^[ \t]*\/lib/ { print $1 }' |
	while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

copy_with_libs /bin/busybox /bin/busybox
for applet in $(/bin/busybox --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
rm -f "$root/bin/ip" # iproute2's ip, not busybox's applet
for b in "${host_bins[@]}"; do
	[ "$b" = /bin/busybox ] || copy_with_libs "$b"
done
for b in "${our_bins[@]}"; do copy_with_libs "$b" "/repo/$b"; done
for s in "${scripts[@]}"; do
	mkdir -p "$root/repo/$(dirname "$s")"
	cp "$s" "$root/repo/$s"
done
for pair in ${EXTRA_FILES:-}; do
	mkdir -p "$root$(dirname "${pair#*:}")"
	cp -L "${pair%%:*}" "$root${pair#*:}"
done

for m in $mod_paths; do
	rel=${m#"$kroot"/}
	mkdir -p "$root/$(dirname "$rel")"
	cp "$m" "$root/$rel"
done
cp "$kroot/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

cp netns-harness/vm/guest-init.sh "$root/init"
chmod +x "$root/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

mkdir -p "$O/vm"
# Colleagues may be booting older images right now: only stale ones are removed.
find "$O/vm" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mmin +120 -delete
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$image.tmp.$$"
mv "$image.tmp.$$" "$image"
echo "build-initramfs: $image ($(du -h "$image" | cut -f1), $(echo "$mod_paths" | wc -w) modules)" >&2
echo "$image"
