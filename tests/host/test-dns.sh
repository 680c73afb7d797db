#!/bin/bash
# SPDX-License-Identifier: MIT
# dns/ against real clients (issue 27.2): the server (bench/dns-serve, the module the agent
# runs with P2P_DNS=on) on 10.0.1.1:53 in a namespace, asked by dig(1) and glibc
# (getent hosts, through the namespace's own resolv.conf) from a second one: A by label
# (any case) and by token, NODATA, NXDOMAIN with the SOA, REFUSED outside the zone, RA
# clear, TCP; malformed, truncated and oversized queries over UDP and TCP get FORMERR or
# nothing and the next dig is answered; a client outside the overlay gets nothing; a flood
# is served a budget per turn while dig still gets its answer.
# Parallel-safe: namespaces and /etc/netns entries carry a per-run prefix, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
case $O in /*) ;; *) O=$PWD/$O ;; esac
make -s O="$O" "$O/bench/dns-serve" >&2
SERVE=$O/bench/dns-serve
T=$(mktemp -d)
for _ in $(seq 1 20); do
	P=dns$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
	ip netns list | grep -q "^${P}" || break
done
S=${P}s C=${P}c
pid=
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }

cleanup() {
	local rc=$?
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "/etc/netns/$C"
	[ "$rc" = 0 ] || { echo "--- server log"; cat "$T/serve.log" 2>/dev/null || true; }
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Server namespace: 10.0.1.1 (the overlay) on a veth; the client: 10.0.1.2 (overlay) and
# 192.168.78.2 (an address outside it, for the stranger).
ip netns add "$S"
ip netns add "$C"
ip -n "$S" link add eth0 type veth peer name eth0 netns "$C"
ip -n "$S" addr add 10.0.1.1/24 dev eth0
ip -n "$S" addr add 192.168.78.1/24 dev eth0
ip -n "$C" addr add 10.0.1.2/24 dev eth0
ip -n "$C" addr add 192.168.78.2/24 dev eth0
for ns in "$S" "$C"; do
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
done
# ip netns exec bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: glibc in
# the client namespace asks our server and nothing else.
mkdir -p "/etc/netns/$C"
printf 'nameserver 10.0.1.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$C/resolv.conf"

ip netns exec "$S" "$SERVE" -a 10.0.1.0/24 -b 16 10.0.1.1:53 \
	1=10.0.1.1=node-1 2=10.0.1.2=web 3=10.0.1.3=Db-Main 7=10.0.1.7 9=10.0.1.9=api.front \
	>"$T/ready" 2>"$T/serve.log" &
pid=$!
for _ in $(seq 1 50); do [ -s "$T/ready" ] && break; sleep 0.1; done
grep -q '^ready 53$' "$T/ready" || fail "dns-serve did not start: $(cat "$T/serve.log")"

c() { ip netns exec "$C" "$@"; }
q() { c dig +time=2 +tries=1 @10.0.1.1 "$@"; }
# status NAME [dig args...]: dig's status word ("NOERROR", "NXDOMAIN", ...)
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

# A records, by label in any case and by token.
[ "$(q +short node-1.p2p.internal A)" = 10.0.1.1 ] || fail "node-1: $(q node-1.p2p.internal A)"
[ "$(q +short DB-MAIN.P2P.Internal A)" = 10.0.1.3 ] || fail "DB-MAIN (case ignored)"
[ "$(q +short 2.p2p.internal A)" = 10.0.1.2 ] || fail "token 2"
[ "$(q +short 7.p2p.internal A)" = 10.0.1.7 ] || fail "token 7 (no label)"
q node-1.p2p.internal A >"$T/a.txt"
grep -q 'flags: qr aa rd;' "$T/a.txt" || fail "flags (authoritative, RD copied, RA clear): $(grep flags "$T/a.txt")"
grep -q 'recursion requested but not available' "$T/a.txt" || fail "dig should see RA clear"
grep -Eq 'node-1\.p2p\.internal\.\s+5\s+IN\s+A\s+10\.0\.1\.1' "$T/a.txt" || fail "answer line: $(cat "$T/a.txt")"
pass "A by label (any case) and by token; aa, no ra, TTL 5"

# NODATA, NXDOMAIN (with the SOA for negative caching), REFUSED.
q node-1.p2p.internal AAAA >"$T/aaaa.txt"
grep -q 'status: NOERROR' "$T/aaaa.txt" && grep -q 'ANSWER: 0, AUTHORITY: 1' "$T/aaaa.txt" ||
	fail "AAAA of a known name: $(cat "$T/aaaa.txt")"
q nobody.p2p.internal A >"$T/nx.txt"
grep -q 'status: NXDOMAIN' "$T/nx.txt" || fail "nobody: $(cat "$T/nx.txt")"
grep -Eq '^p2p\.internal\.\s+5\s+IN\s+SOA\s+p2p\.internal\. hostmaster\.p2p\.internal\. ' "$T/nx.txt" ||
	fail "NXDOMAIN without the zone's SOA: $(cat "$T/nx.txt")"
[ "$(status x.node-1.p2p.internal A)" = NXDOMAIN ] || fail "a name below a label"
[ "$(q +short api.front.p2p.internal A)" = 10.0.1.9 ] || fail "a dotted label"
[ "$(status front.p2p.internal A)" = NOERROR ] || fail "the empty non-terminal of a dotted label"
[ "$(status example.com A)" = REFUSED ] || fail "outside the zone"
[ "$(status p2p.internal SOA)" = NOERROR ] || fail "the apex's SOA"
pass "NODATA, NXDOMAIN with SOA, REFUSED outside the zone, a dotted label and its empty non-terminal"

# TCP, and EDNS with a cookie (dig's default) and without.
q +tcp node-1.p2p.internal A >"$T/tcp.txt"
grep -q '(TCP)' "$T/tcp.txt" && grep -Eq 'IN\s+A\s+10\.0\.1\.1' "$T/tcp.txt" || fail "TCP: $(cat "$T/tcp.txt")"
[ "$(q +short +noedns web.p2p.internal)" = 10.0.1.2 ] || fail "without EDNS"
[ "$(status +edns=1 +noednsneg web.p2p.internal)" = BADVERS ] || fail "EDNS version 1"
pass "TCP; EDNS with and without, BADVERS"

# glibc's stub resolver through the namespace's resolv.conf.
out=$(c getent hosts web.p2p.internal) || fail "getent hosts web.p2p.internal failed"
[ "$(echo "$out" | awk '{print $1}')" = 10.0.1.2 ] || fail "getent: $out"
c getent hosts nobody.p2p.internal >/dev/null && fail "getent found nobody.p2p.internal"
[ "$(c getent hosts api.front.p2p.internal | awk '{print $1}')" = 10.0.1.9 ] || fail "getent api.front"
pass "getent hosts through resolv.conf: $out"

# Malformed input: garbage, truncated and oversized datagrams, bad TCP frames.
c python3 - >"$T/garbage.txt" <<'EOF'
import os, socket, struct
def udp(data, wait=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(wait)
    s.sendto(data, ("10.0.1.1", 53))
    try:
        return s.recv(65535)
    except socket.timeout:
        return None
    finally:
        s.close()
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"\x06node-1\x03p2p\x08internal\x00\x00\x01\x00\x01"
r = udp(q[:5]);                 print("short", r is None)
r = udp(q[:20]);                print("truncated", r is not None and len(r) == 12 and r[3] & 15 == 1)
r = udp(q + os.urandom(3000));  print("oversized", r is not None and len(r) == 12 and r[3] & 15 == 1)
r = udp(q[:2] + b"\x81\x00" + q[4:]);  print("response", r is None)
r = udp(q[:12] + b"\xc0\x0c\x00\x01\x00\x01"); print("pointer", r is not None and r[3] & 15 == 1)
for i in range(300):  # random lengths and bytes: the server stays up (checked below)
    data = os.urandom(i % 600)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(data, ("10.0.1.1", 53))
    s.close()
# TCP: a frame longer than a query, a frame cut short then closed, an empty frame.
for frame in (b"\xff\xff" + os.urandom(100), struct.pack(">H", 200) + os.urandom(50), b"\x00\x00"):
    t = socket.create_connection(("10.0.1.1", 53), timeout=2)
    try:  # the server may have closed (and reset) it before all is sent
        t.sendall(frame)
        t.shutdown(socket.SHUT_WR)
        print("tcp-closed", t.recv(10) == b"")
    except socket.timeout:
        print("tcp-closed", False)
    except OSError:
        print("tcp-closed", True)
    t.close()
EOF
grep -q False "$T/garbage.txt" && fail "malformed queries: $(cat "$T/garbage.txt")"
[ "$(grep -c True "$T/garbage.txt")" = 8 ] || fail "malformed queries: $(cat "$T/garbage.txt")"
kill -0 "$pid" || fail "dns-serve died"
[ "$(q +short node-1.p2p.internal A)" = 10.0.1.1 ] || fail "no answer after the garbage"
[ "$(q +short +tcp node-1.p2p.internal A)" = 10.0.1.1 ] || fail "no TCP answer after the garbage"
pass "short: nothing, truncated/oversized/pointer: FORMERR, bad TCP frames closed; still answering"

# A client outside the overlay: no answer over UDP, its TCP connection closed.
c dig +time=1 +tries=1 -b 192.168.78.2 @10.0.1.1 node-1.p2p.internal >"$T/stranger.txt" 2>&1 &&
	fail "a client outside the overlay got an answer: $(cat "$T/stranger.txt")"
grep -q 'status:' "$T/stranger.txt" && fail "a stranger got a reply"
c dig +time=1 +tries=1 +tcp -b 192.168.78.2 @10.0.1.1 node-1.p2p.internal >"$T/stranger-tcp.txt" 2>&1 &&
	fail "a TCP client outside the overlay got an answer"
grep -q 'status:' "$T/stranger-tcp.txt" && fail "a TCP stranger got a reply"
pass "a client outside the overlay: no answer (UDP, TCP)"

# A flood from the overlay: served a budget per turn; dig's query answered in between.
c python3 tests/host/dns-flood.py 10.0.1.1 3 &
flood=$!
sleep 0.5
ok=0
for _ in 1 2 3; do [ "$(q +short +tries=3 node-1.p2p.internal A)" = 10.0.1.1 ] && ok=$((ok + 1)); done
wait "$flood"
[ "$ok" -ge 1 ] || fail "no answer during a flood"
pass "a flood: dig answered $ok of 3 times during it"

kill "$pid"
wait "$pid" || fail "dns-serve exited $?"
pid=
stats=$(cat "$T/serve.log")
ignored=$(echo "$stats" | sed -n 's/.*ignored \([0-9]*\).*/\1/p')
queries=$(echo "$stats" | sed -n 's/^queries \([0-9]*\).*/\1/p')
[ "${ignored:-0}" -ge 2 ] || fail "the server did not count the stranger: $stats"
pass "server counters: $stats"
echo "test-dns: all passed ($queries queries)"
