#!/bin/bash
# SPDX-License-Identifier: MIT
# A toy relayer for tests: one HTTP request on stdin/stdout (run it under
# `socat TCP-LISTEN:PORT,fork EXEC:relayer.sh`). It takes the agent's
# {"to":"0x..","data":"0x.."} and sends that transaction from a funded key.
#   env: RELAYER_RPC (cast --rpc-url), RELAYER_KEY (funded key), RELAYER_CAST (cast path)
set -u
len=0
while IFS= read -r -t 5 line; do
	line=${line%$'\r'}
	[ -z "$line" ] && break
	case "${line,,}" in content-length:*) len=${line#*:}; len=${len// /} ;; esac
done
[[ "$len" =~ ^[0-9]+$ ]] && [ "$len" -le 65536 ] || len=0
body=$(head -c "$len")
to=$(sed -n 's/.*"to":"\(0x[0-9a-fA-F]\{40\}\)".*/\1/p' <<<"$body")
data=$(sed -n 's/.*"data":"\(0x[0-9a-fA-F]*\)".*/\1/p' <<<"$body")
reply() { printf 'HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
	"$1" "${#2}" "$2"; }
if [ -z "$to" ] || [ -z "$data" ]; then
	reply "400 Bad Request" "want {\"to\":\"0x...\",\"data\":\"0x...\"}"
elif out=$("$RELAYER_CAST" send --rpc-url "$RELAYER_RPC" --private-key "$RELAYER_KEY" "$to" "$data" 2>&1); then
	reply "200 OK" "sent"
else
	reply "502 Bad Gateway" "$(tail -1 <<<"$out")"
fi
