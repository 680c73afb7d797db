#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A hostile WebSocket "RPC" for the netns harness (standard library only).

  ws-hostile.py --listen HOST:PORT --control FILE --log FILE

What it does with each connection is read from the control file (one word, read again
for every connection):

  close   complete the Upgrade, confirm eth_subscribe with a subscription id, then close
  stall   accept the TCP connection and never answer the Upgrade (held 10 s at most)
  flood   complete the Upgrade, confirm eth_subscribe, then send notifications of that
          subscription with invented heads (block number 1), 200 a second, for 60 s
  refuse  close at once

Every connection is logged as "<unix time> <mode>". Bounded: one thread per connection,
at most 64 at once, each at most 60 s.
"""
import argparse
import base64
import hashlib
import json
import socket
import struct
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUB_ID = "0x6869737469656c6521"
slots = threading.BoundedSemaphore(64)


def frame(text):
    data = text.encode()
    n = len(data)
    head = bytes([0x81])
    if n < 126:
        head += bytes([n])
    else:
        head += bytes([126]) + struct.pack(">H", n)
    return head + data


def read_upgrade(conn):
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < 8192:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
    for line in buf.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def accept_upgrade(conn):
    key = read_upgrade(conn)
    if key is None:
        return False
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
    conn.recv(4096)  # the eth_subscribe frame (masked); its id is 1 for the agent
    conn.sendall(frame(json.dumps({"jsonrpc": "2.0", "id": 1, "result": SUB_ID})))
    return True


def serve(conn, mode):
    try:
        conn.settimeout(10)
        if mode == "refuse":
            return
        if mode == "stall":
            time.sleep(10)
            return
        if not accept_upgrade(conn):
            return
        if mode == "flood":
            note = frame(json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                     "params": {"subscription": SUB_ID, "result": {"number": "0x1"}}}))
            end = time.monotonic() + 60
            while time.monotonic() < end:
                conn.sendall(note)
                time.sleep(0.005)
    except OSError:
        pass
    finally:
        conn.close()
        slots.release()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        try:
            with open(args.control) as f:
                mode = f.read().strip() or "close"
        except OSError:
            mode = "close"
        with open(args.log, "a") as f:
            f.write("%.3f %s\n" % (time.time(), mode))
        if not slots.acquire(blocking=False):
            conn.close()
            continue
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
