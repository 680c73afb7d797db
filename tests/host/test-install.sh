#!/bin/bash
# SPDX-License-Identifier: MIT
# Release hygiene, as an installed tree shows it: `make install` puts the agent/CLI, the
# library, header, docs and man pages, and no simulator; every file an installed man page
# names is installed, every page it refers to is installed or belongs to another package
# (wg, wireguard-go, ps); each binary's --version says the release. `make install-sim`
# adds the simulator and its page.
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d /tmp/dstack-p2p-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-install: FAIL: $*"; exit 1; }
make -s install DESTDIR="$tmp" PREFIX=/usr >"$tmp.log" 2>&1 || { cat "$tmp.log"; rm -f "$tmp.log"; fail "make install"; }
rm -f "$tmp.log"
[ "$(ls "$tmp/usr/bin")" = dstack-p2p ] || fail "bin holds: $(ls "$tmp/usr/bin" | tr '\n' ' ')"
! ls "$tmp/usr/share/man/man1" | grep -q dstack-sim || fail "the simulator's page is installed"

check_pages() {
	local page ref
	for page in "$tmp"/usr/share/man/man1/*.1; do
		grep -q 'docs/[A-Za-z]' "$page" && fail "$page names docs/ of the source tree"
		for ref in $(grep -o '/usr/share/doc/dstack-p2p/[A-Za-z0-9_.-]*' "$page" | sed 's/\.$//' | sort -u); do
			[ -f "$tmp$ref" ] || fail "$(basename "$page") names $ref, not installed"
		done
		for ref in $(sed -n 's/^\.BR \([a-z0-9-]*\) (\([1-8]\)).*/\1.\2/p' "$page" | sort -u); do
			case $ref in wg.8 | wireguard-go.8 | ps.1) continue ;; esac
			[ -f "$tmp/usr/share/man/man${ref##*.}/$ref" ] || fail "$(basename "$page") refers to $ref, not installed"
		done
	done
}
check_pages
release=$(cat VERSION)
v=$("$tmp/usr/bin/dstack-p2p" --version)
[[ "$v" == "dstack-p2p $release"* ]] || [[ "$v" =~ ^dstack-p2p\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version says '$v' (VERSION is $release)"
[ "$("$tmp/usr/bin/dstack-p2p" version)" = "$v" ] || fail "version and --version differ"
echo "test-install: make install: $v, $(find "$tmp" -type f | wc -l) files, no simulator"

make -s install-sim DESTDIR="$tmp" PREFIX=/usr >/dev/null 2>&1 || fail "make install-sim"
[ -x "$tmp/usr/bin/dstack-sim" ] && [ -f "$tmp/usr/share/man/man1/dstack-sim.1" ] || fail "install-sim installed no simulator"
check_pages
s=$("$tmp/usr/bin/dstack-sim" --version)
[ "$s" = "dstack-sim ${v#dstack-p2p }" ] || fail "dstack-sim --version says '$s'"
echo "test-install: make install-sim: $s; PASS"
