#!/usr/bin/python3
# A stand-in for the agent's control socket, for tests/host/test-cli.sh: answers each
# one-line request ("status", "peers") with the contents of DIR/<request>.json, read
# afresh on every connection so a test can change the answer while it runs.
# Usage: fake-control.py SOCKET DIR   (runs until killed; writes DIR/ready when listening)
import os
import socket
import sys

path, docs = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
open(os.path.join(docs, "ready"), "w").close()
while True:
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(2)
        req = b""
        try:
            while b"\n" not in req and len(req) < 64:
                chunk = conn.recv(64)
                if not chunk:
                    break
                req += chunk
        except socket.timeout:
            continue
        name = req.split(b"\n")[0].decode(errors="replace").strip()
        try:
            with open(os.path.join(docs, os.path.basename(name) + ".json"), "rb") as f:
                conn.sendall(f.read())
        except OSError:
            conn.sendall(b'{"error":"unknown request"}')
