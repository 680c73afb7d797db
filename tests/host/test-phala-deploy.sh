#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/phala/deploy.mjs against a local stand-in of the Phala Cloud API on loopback
# (deploy/phala/deploy.test.mjs, node's test runner): request sequence and bodies, the
# sealed env, --dry-run, exit codes. Phala's real API is not reachable from here.
set -eu
cd "$(dirname "$0")/../.."
[ -d node_modules/@phala/cloud ] || { echo "test-phala-deploy: @phala/cloud missing (make deps)" >&2; exit 1; }
node --test deploy/phala/
