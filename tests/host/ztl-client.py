#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Control-socket client for tests/host/test-zero-trust-local.sh (standard library only).

  ztl-client.py ask SOCKET REQUEST             one request, the reply on stdout
  ztl-client.py repeat SOCKET N GAP REQUEST... N rounds of the requests, GAP s apart;
                                               prints one line per reply's outcome
                                               ("sent <state>", or the error code); at
                                               most 40 s
  ztl-client.py latency SOCKET N GAP           N "status" requests GAP s apart (for at
                                               most 40 s); prints "p50 p99 max" in ms, as
                                               this client timed them (connect to the last
                                               byte; a failed request counts as 5000 ms)
Every exchange is bounded (5 s).
"""
import json
import socket
import sys
import time


def ask(path, request, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(request.encode() + b"\n")
        data = b""
        while len(data) < (4 << 20):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").strip()
    finally:
        s.close()


def outcome(reply):
    try:
        doc = json.loads(reply)
    except ValueError:
        return "unparsable"
    if "error" in doc:
        return (doc["error"] or {}).get("code", "error")
    return "sent %s" % doc.get("state", "?")


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "ask":
        print(ask(path, sys.argv[3]))
    elif mode == "repeat":
        n, gap = int(sys.argv[3]), float(sys.argv[4])
        end = time.monotonic() + 40.0
        for _ in range(min(n, 1000)):
            if time.monotonic() > end:
                break
            for req in sys.argv[5:]:
                try:
                    print(outcome(ask(path, req)), flush=True)
                except OSError as e:
                    print("oserror %s" % e, flush=True)
            time.sleep(gap)
    elif mode == "latency":
        n, gap, ms = int(sys.argv[3]), float(sys.argv[4]), []
        end = time.monotonic() + 40.0
        for _ in range(min(n, 5000)):
            if time.monotonic() > end:
                break
            t0 = time.monotonic()
            try:
                ask(path, "status")
                ms.append((time.monotonic() - t0) * 1000.0)
            except OSError:
                ms.append(5000.0)
            time.sleep(gap)
        ms.sort()
        p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
        print("%.1f %.1f %.1f" % (p(0.50), p(0.99), ms[-1]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
