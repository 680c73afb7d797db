#!/bin/bash
# SPDX-License-Identifier: MIT
# Release hygiene, as an installed tree shows it: `make install` puts the agent/CLI, the
# library, header, docs, man pages, the dashboard's page and the contract artifacts, and no
# simulator; every file an installed man page names is installed, every page it refers to is
# installed or belongs to another package (wg, wireguard-go, ps); each binary's --version says
# the release; the .pc file's paths are ${prefix}-relative. The installed binary, run outside
# the checkout, deploys a stand-in KMS and a cluster on anvil from the installed artifacts
# (read back with cast) and serves the installed page; serve refuses to start without its page.
# `make install-sim` adds the simulator and its page. The PREFIX the tree was built for
# (make check exports PREFIX=/usr; the default is /usr/local), so the checkout's build is
# not rebuilt for another one while other host tests run it.
set -eu
. "$(dirname "$0")/anvil-env.bash" dstack-p2p-install
cd "$ROOT"
fail() { echo "test-install: FAIL: $*"; exit 1; }
P=${PREFIX:-/usr/local}
inst=$tmp/root$P
make -s install DESTDIR="$tmp/root" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; fail "make install"; }
[ "$(ls "$inst/bin")" = dstack-p2p ] || fail "bin holds: $(ls "$inst/bin" | tr '\n' ' ')"
! ls "$inst/share/man/man1" | grep -q dstack-sim || fail "the simulator's page is installed"

check_pages() {
	local page ref
	for page in "$inst"/share/man/man1/*.1; do
		grep -q 'docs/[A-Za-z]' "$page" && fail "$page names docs/ of the source tree"
		for ref in $(grep -o "$P/share/doc/dstack-p2p/[A-Za-z0-9_.-]*" "$page" | sed 's/\.$//' | sort -u); do
			[ -f "$tmp/root$ref" ] || fail "$(basename "$page") names $ref, not installed"
		done
		for ref in $(sed -n 's/^\.BR \([a-z0-9-]*\) (\([1-8]\)).*/\1.\2/p' "$page" | sort -u); do
			case $ref in wg.8 | wireguard-go.8 | ps.1) continue ;; esac
			[ -f "$inst/share/man/man${ref##*.}/$ref" ] || fail "$(basename "$page") refers to $ref, not installed"
		done
	done
}
check_pages
release=$(cat VERSION)
v=$("$inst/bin/dstack-p2p" --version)
[[ "$v" == "dstack-p2p $release"* ]] || [[ "$v" =~ ^dstack-p2p\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version says '$v' (VERSION is $release)"
[ "$("$inst/bin/dstack-p2p" version)" = "$v" ] || fail "version and --version differ"
echo "test-install: make install: $v, $(find "$tmp/root" -type f | wc -l) files, no simulator"

# ---- the .pc file: paths under the prefix follow it (pkg-config --define-prefix moves them)
pc=$inst/lib/pkgconfig/dstack-p2p.pc
grep -qx 'libdir=${prefix}/lib' "$pc" && grep -qx 'includedir=${prefix}/include' "$pc" ||
	fail "the .pc file hard-codes its paths: $(grep dir= "$pc" | tr '\n' ' ')"
[ "$(PKG_CONFIG_PATH=$inst/lib/pkgconfig pkg-config --variable=libdir dstack-p2p)" = $P/lib ] || fail "pkg-config libdir"
[ "$(PKG_CONFIG_PATH=$inst/lib/pkgconfig pkg-config --define-prefix --variable=libdir dstack-p2p)" = "$inst/lib" ] ||
	fail "pkg-config --define-prefix does not move libdir"
ok "the .pc file: libdir=\${prefix}/lib, includedir=\${prefix}/include (relocatable)"

# ---- the installed binary, away from the checkout: deploy-kms and deploy from the installed
# artifacts, read back with cast
for f in DstackClusterNFT LocalDstackKms; do
	[ -f "$inst/share/dstack-p2p/contracts/$f.json" ] || fail "no $f.json installed"
done
anvil_start
umask 077
echo "$OWNER_SK" >"$tmp/owner.key"
KMS_SK=$(rand32)
echo "${KMS_SK#0x}" >"$tmp/kms-root.key"
cd "$tmp"
ib() { env -u DSTACK_P2P_ARTIFACT PATH=/usr/bin:/bin "$inst/bin/dstack-p2p" "$@"; }
export DSTACK_P2P_KEY_FILE=$tmp/owner.key
ib cluster deploy-kms --kms-root-key-file "$tmp/kms-root.key" --json >"$tmp/kms.json" 2>"$tmp/err" ||
	fail "deploy-kms from the installed binary: $(cat "$tmp/err")"
KMS=$(jq -r .kms "$tmp/kms.json")
ib cluster deploy --kms "$KMS" --max-nodes 4 --json >"$tmp/deploy.json" 2>"$tmp/err" ||
	fail "deploy from the installed binary: $(cat "$tmp/err")"
CONTRACT=$(jq -r .contract "$tmp/deploy.json")
[ "$("$CAST" call "$CONTRACT" 'kmsRoot()(address)' | tr A-F a-f)" = "$(addr "$KMS_SK")" ] || fail "deployed kmsRoot per cast"
[ "$("$CAST" call "$CONTRACT" 'maxNodes()(uint256)')" = 4 ] || fail "deployed maxNodes per cast"
ib cluster register-app --kms "$KMS" --contract "$CONTRACT" >/dev/null || fail "register-app"
[ "$("$CAST" call "$KMS" 'registeredApps(address)(bool)' "$CONTRACT")" = true ] || fail "registeredApps per cast"
ok "installed binary in $tmp: deploy-kms, deploy and register-app from $P/share/dstack-p2p/contracts (per cast)"

# ---- serve: the installed page by default; no page, no start
web=$(free_port)
env -u DSTACK_P2P_ARTIFACT PATH=/usr/bin:/bin "$inst/bin/dstack-p2p" cluster serve --contract "$CONTRACT" --listen 127.0.0.1:$web >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$web/" >"$tmp/index.html" 2>/dev/null && break; sleep 0.1; done
grep -q '<script src="app.js">' "$tmp/index.html" || fail "the installed serve gave no page: $(cat "$tmp/serve.log")"
grep -q "page from $inst/bin/../share/dstack-p2p/web" "$tmp/serve.log" || fail "serve names no page folder: $(cat "$tmp/serve.log")"
rc=0; ib cluster serve --contract "$CONTRACT" --listen 127.0.0.1:0 --web-dir "$tmp/nowhere" 2>"$tmp/err" || rc=$?
[ $rc = 2 ] && grep -q "page is missing: $tmp/nowhere/index.html" "$tmp/err" || fail "serve without its page: exit $rc, $(cat "$tmp/err")"
ok "serve: the installed page by default; without one it exits 2 at start: $(cut -c1-90 "$tmp/err")"
cd "$ROOT"

make -s install-sim DESTDIR="$tmp/root" >/dev/null 2>&1 || fail "make install-sim"
[ -x "$inst/bin/dstack-sim" ] && [ -f "$inst/share/man/man1/dstack-sim.1" ] || fail "install-sim installed no simulator"
check_pages
s=$("$inst/bin/dstack-sim" --version)
[ "$s" = "dstack-sim ${v#dstack-p2p }" ] || fail "dstack-sim --version says '$s'"
make -s uninstall DESTDIR="$tmp/root" >/dev/null 2>&1 || fail "make uninstall"
left=$(find "$tmp/root" -type f | grep -v '/bin/dstack-sim$\|/man1/dstack-sim.1$' || true)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "test-install: make install-sim: $s; uninstall leaves nothing; PASS"
