#!/bin/bash
# SPDX-License-Identifier: MIT
# Zero trust under a lying or failing RPC (issue 10), in one harness run: node 1's agent
# reads the chain through a misbehaving JSON-RPC proxy (netns-harness/rpc-proxy.py) that
# lies about kmsRoot(), hides our record, replays an older one, truncates getPeers(),
# names another chain id, fails, lags, and (with a second proxy) omits a peer; then kernel
# drift, configuration mistakes and the control socket's limits; then lies only in the
# reads by token that follow a log (a forged key, a TokenHasNoPeer for a live token) and
# invented logs every block (the reads they cost, per poll, counted at the proxy). Every scenario shows
# that no forged peer is ever programmed, no genuine peer is dropped, and the mesh is
# whole again after the fault; figures are printed, never asserted. tests/zt/scenarios.sh
# has the scenarios; ZT_SCENARIOS="1 4" runs a subset.
set -euo pipefail
. "$(dirname "$0")/../../netns-harness/lib.sh"
. "$(dirname "$0")/../zt/scenarios.sh"

h_init zt
zt_setup
zt_run ${ZT_SCENARIOS:-$ZT_ALL}
h_log "all zero-trust scenarios passed"
