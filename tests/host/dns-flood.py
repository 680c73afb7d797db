#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# dns-flood.py ADDR SECONDS: A queries for node-1.p2p.internal to ADDR:53 over UDP as fast
# as one process sends, for SECONDS (bounded); replies are not read. For the DNS tests'
# hostile caller (tests/host/test-dns.sh, test-mesh-dns.sh).
import socket
import struct
import sys
import time

QUERY = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x06node-1\x03p2p\x08internal\x00\x00\x01\x00\x01"
addr, seconds = sys.argv[1], min(float(sys.argv[2]), 30)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + seconds
while time.time() < end:
    for _ in range(200):
        try:
            s.sendto(QUERY, (addr, 53))
        except OSError:
            pass
