#!/bin/bash
# Gas of register, update, burn and the getPeers view at 10, 100 and 254 peers (anvil).
exec "$(dirname "$0")/../contracts/gas-report.sh"
