#!/bin/bash
# net/http.c benchmark: client CPU per https JSON-RPC request with a kept connection
# and with a fresh one (new handle, CA bundle read, full TLS handshake), against a TLS
# server on loopback (Debian's python3 ssl + http.server, HTTP/1.1 keep-alive). The CA
# bundle is the system's plus the test certificate, so a fresh handle reads as much as
# the agent's would. Figures are printed, never asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/build/bench/http-keepalive
[ -x "$BENCH" ] || { echo "http: $BENCH missing (make bench builds it)"; exit 1; }

tmp=$(mktemp -d /tmp/http-bench.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt "$tmp/cert.pem" >"$tmp/ca.pem" 2>/dev/null ||
	cp "$tmp/cert.pem" "$tmp/ca.pem"
cat >"$tmp/server.py" <<'PY'
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'[{"jsonrpc":"2.0","id":1,"result":null},{"jsonrpc":"2.0","id":2,"result":null},{"jsonrpc":"2.0","id":3,"result":[]}]'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
/usr/bin/python3 "$tmp/server.py" "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
echo "http: https on loopback (TLS server: python3 ssl), CA bundle of $(grep -c BEGIN "$tmp/ca.pem") certificates"
"$BENCH" "https://127.0.0.1:$port" "$tmp/ca.pem" "${HTTP_BENCH_REQUESTS:-200}"
