#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A JSON-RPC proxy for the benchmarks that counts what goes through (standard library only).

  rpc-count-proxy.py HOST PORT UPSTREAM_URL COUNTER

Forwards each POST body to UPSTREAM_URL and, after each exchange, writes
"<request body bytes> <reply body bytes> <requests>" (totals) to COUNTER (atomically).
Bodies are bounded at 64 MiB.
"""
import http.server, os, sys, threading, urllib.request
host, port, upstream, counter = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
totals = [0, 0, 0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n < 0 or n > 64 << 20:
            self.send_error(413)
            return
        body = self.rfile.read(n)
        req = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            reply = r.read(64 << 20)
        with lock:
            totals[0] += len(body); totals[1] += len(reply); totals[2] += 1
            with open(counter + ".tmp", "w") as f:
                f.write("%d %d %d\n" % tuple(totals))
            os.replace(counter + ".tmp", counter)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
http.server.ThreadingHTTPServer((host, port), H).serve_forever()
