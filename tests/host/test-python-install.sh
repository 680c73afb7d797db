#!/bin/bash
# The Python SDK as a new user installs it (issue 28.10): `pip install ./python` in a fresh
# venv of Debian's python3, in an empty network namespace (no index, no proxy: any fetch
# fails), then the installed package takes the specification's constructor
# (nft_contract_address=...) and mode "wg" as the C API does. Also the sdist and an
# editable install. Parallel-safe: its own temp dir, no network at all.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
T=$(mktemp -d /tmp/test-python-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
[ "$(id -u)" = 0 ] || fail "run as root (unshare -n: a namespace without network)"
offline() { unshare -n env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY "$@"; }

# Build from a copy (pip must not need to write into the checkout either), with exactly
# the documented command: python3 -m venv V && V/bin/pip install ./python
cp -r python "$T/python"
cp -r python "$T/src"
$PY -m venv "$T/venv"
(cd "$T" && offline "$T/venv/bin/pip" install ./python) >"$T/pip.log" 2>&1 ||
	{ cat "$T/pip.log"; fail "pip install ./python in a fresh venv without network"; }
"$T/venv/bin/pip" show dstack-p2p >"$T/show" && grep -qx "Version: 0.1.0" "$T/show" || fail "pip show: not dstack-p2p 0.1.0"
pass "pip install ./python: a fresh venv, no network"

# The installed copy, not the checkout's, from another directory.
(cd "$T" && "$T/venv/bin/python" - "$T/venv") <<'PY' || fail "the installed SDK's constructor"
import sys
import dstack_p2p
from dstack_p2p import DStackP2PClient, DStackP2PSDK

assert dstack_p2p.__file__.startswith(sys.argv[1]), dstack_p2p.__file__
C = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
seed = DStackP2PSDK(nft_contract_address=C, mode="wireguard")
assert seed.contract == C.lower() and seed.mode == "wireguard"
assert DStackP2PSDK(C, "wg").mode == "wireguard"
assert DStackP2PSDK(nft_contract_address=C, mode="wg").mode == "wireguard"
assert DStackP2PClient(nft_contract_address=C, mode="wg").sdk.contract == C.lower()
assert DStackP2PSDK("0x5fbdb2315678afecb367f032d93f642f64180aa3", "tls").mode == "tls"
for bad, kind in (({"contract": C, "nft_contract_address": C}, TypeError),
                  ({"nft_contract_address": "0x123"}, ValueError),
                  ({"mode": "wireguard0"}, ValueError)):
    try:
        DStackP2PSDK(**bad)
    except kind:
        pass
    else:
        raise AssertionError(f"{bad} did not raise {kind.__name__}")
PY
pass "nft_contract_address= and contract=; mode 'wg' = 'wireguard'; both names or a bad one refused"

# An editable install and the sdist, offline too.
$PY -m venv "$T/venv2"
offline "$T/venv2/bin/pip" install --no-cache-dir --disable-pip-version-check -e "$T/src" >"$T/pip2.log" 2>&1 ||
	{ cat "$T/pip2.log"; fail "pip install -e ./python without network"; }
[ "$(cd "$T" && "$T/venv2/bin/python" -c 'import dstack_p2p; print(dstack_p2p.__file__)')" = "$T/src/dstack_p2p/__init__.py" ] ||
	fail "the editable install does not import the tree"
(cd "$T/src" && offline "$PY" -c 'import sys; sys.path.insert(0, "_build"); import backend; print(backend.build_sdist(sys.argv[1]))' "$T") >"$T/sdist.name"
# Listed to a file first: under pipefail, grep -q ending the pipe early kills tar with
# SIGPIPE and the check failed on a good sdist.
tar -tzf "$T/$(cat "$T/sdist.name")" >"$T/sdist.list" || fail "the sdist is not a tar.gz"
grep -qx 'dstack-p2p-0.1.0/dstack_p2p/sdk.py' "$T/sdist.list" || fail "the sdist lacks the package"
offline "$T/venv2/bin/pip" install --no-cache-dir --disable-pip-version-check --force-reinstall "$T/$(cat "$T/sdist.name")" \
	>"$T/pip3.log" 2>&1 || { cat "$T/pip3.log"; fail "pip install of the sdist without network"; }
pass "pip install -e ./python and the sdist, no network"
echo "test-python-install: all passed"
