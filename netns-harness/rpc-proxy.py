#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A misbehaving JSON-RPC proxy for the netns harness (standard library only).

Sits between one agent and anvil and does, as its control file says at the moment of
each request, one or more of: pass through, lie about kmsRoot(), hide records from
getPeers() and getPeerByToken() (a TokenHasNoPeer revert for a live token), inject
records, serve an older record recorded earlier (replay), forge a record's WireGuard key,
truncate or corrupt the ABI data of getPeers() and getPeerByToken(), invent contract logs
(eth_getLogs), answer with another chain id, lag (pin every read to an old block), or
fail (HTTP 500, time out, garbage, fuzzed replies). The record lies apply to both reads
of records (the whole set, getPeers(); one token's, getPeerByToken(), which an agent
following the logs uses) unless "on" names one.

  rpc-proxy.py --listen HOST:PORT --upstream URL --control FILE --log FILE [--records DIR]

The control file is one JSON object, read again whenever it changes (write it to a temp
file and rename). Every key is optional; an empty object means pass-through:

  kms_root      "0x<40 hex>"   kmsRoot() returns this address
  chain_id      "0x<hex>"      eth_chainId returns this
  on            "getPeers" | "getPeerByToken"  the record lies below (hide, replace, wg_key,
                               inject, truncate, corrupt_sigs) apply only to that read
                               (default: both; getPeer() and instanceIsRegistered() follow
                               hide whatever "on" says)
  hide          ["0x<instance>", ...]  records left out of getPeers(), getPeerByToken()
                                      reverts TokenHasNoPeer(token), getPeer() reverts,
                                      instanceIsRegistered() is false
  hide_every    N              hide only in every Nth getPeers() reply (2: shown, hidden,
                               shown, ...: a flapping RPC)
  inject        ["<hex of a Peer tuple, without the leading 0x20 word>", ...]  added to
                               getPeers(); getPeerByToken(t) answers the first one of token t
  replace       {"0x<instance>": "<hex of a Peer tuple>"}  served instead of the real one
  wg_key        {"0x<instance>": "<64 hex>"}  the record as it is but with this WireGuard
                               key (a forged key: its node signature no longer matches)
  invent_logs   [token, ...]   every eth_getLogs reply also has a PeerUpdated log of each
                               token, made up, at the current head
  invent_removed true          the invented logs say "removed": true (a reorg that was not)
  lag_block     N              eth_blockNumber says N; calls, logs and blocks at "latest"
                               (or above N) are read at N
  truncate      N              the next N record replies lose their second half
  corrupt_sigs  N              the next N record replies have every nodeSignature flipped
  fail          "http500" | "timeout" | "garbage" | "close" | "fuzz"
  fail_count    N              only the next N requests fail (default: every one)
  fail_methods  ["eth_call", ...]  only these methods fail (default: all)
  fail_selectors ["36bf1f0c", ...]  only eth_calls of these functions fail (4-byte
                               selectors; labelOf(uint256) is 36bf1f0c)
  timeout_s     S              how long "timeout" holds a request (default 5, at most 30)
  seed          N              the fuzzer's seed (default 1)
  priority_fee  "0x<hex>"      eth_maxPriorityFeePerGas answers this (wei; a lying fee
                               suggestion: the agent's caps must hold)
  oversize      N              every eth_blockNumber and eth_getBlockByNumber reply carries
                               N bytes of padding (at
                               most 12 MiB) in an extra member: replies the agent reads
                               and drops (its buffers must shrink again afterwards)

One-shot counters (truncate, corrupt_sigs, fail_count) restart when the file changes.
Every request is logged as "<unix time> <method> <what was done>" (an eth_call of
getPeers() as "getPeers ...", of getPeerByToken() as "getPeerByToken <token> ...", so a
test counts the reads per eth_getLogs, i.e. per poll). Every record seen is kept as DIR/<instance>-<nonce>.hex (the tuple, for a later "replace").
Bounded everywhere: request and reply sizes, records per reply, the fuzzer's edits.
"""
import argparse
import http.server
import json
import os
import random
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.request

SEL_GET_PEERS = "cd559561"       # getPeers()
SEL_KMS_ROOT = "afc38307"        # kmsRoot()
SEL_GET_PEER = "e7b6dd16"        # getPeer(address)
SEL_IS_REGISTERED = "5d14504c"   # instanceIsRegistered(address)
SEL_GET_PEER_BY_TOKEN = "fa7584d2"  # getPeerByToken(uint256)
ERR_TOKEN_HAS_NO_PEER = "c9b1ff04"  # TokenHasNoPeer(uint256)
# keccak256("PeerUpdated(uint256,address,bytes32,string,uint8,uint64)")
TOPIC_PEER_UPDATED = "0x493b4797bb7afc6e0afe6cb701628251052cbb984b35b737cf571e1c1cba1e7e"
MAX_INVENTED = 64
MAX_BODY = 1 << 20
MAX_REPLY = 16 << 20
MAX_RECORDS = 1024
W = 32


class Control:
    """The control file, re-read when its mtime or size changes; one-shot counters."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.cfg = {}
        self.counters = {}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if stamp != self.stamp:
                self.stamp = stamp
                try:
                    with open(self.path, encoding="utf-8") as f:
                        cfg = json.loads(f.read(MAX_BODY) or "{}")
                    self.cfg = cfg if isinstance(cfg, dict) else {}
                except (OSError, ValueError):
                    self.cfg = {}
                self.counters = {k: int(self.cfg[k]) for k in ("truncate", "corrupt_sigs", "fail_count")
                                 if isinstance(self.cfg.get(k), int)}
            return dict(self.cfg)

    def take(self, name):
        """True if the one-shot counter NAME has a use left (and uses it)."""
        with self.lock:
            left = self.counters.get(name, 0)
            if left <= 0:
                return False
            self.counters[name] = left - 1
            return True

    def bump(self, name):
        """Counts NAME since the file last changed; returns the new count."""
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1
            return self.counters[name]

    def left(self, name):
        with self.lock:
            return self.counters.get(name)


def word(n):
    return n.to_bytes(W, "big")


def split_peers(data):
    """getPeers() return data -> list of tuple bodies, or None if it does not decode."""
    if len(data) < 2 * W or int.from_bytes(data[0:W], "big") != W:
        return None
    n = int.from_bytes(data[W:2 * W], "big")
    base = 2 * W
    if n > MAX_RECORDS or len(data) < base + n * W:
        return None
    offs = [int.from_bytes(data[base + i * W:base + (i + 1) * W], "big") for i in range(n)]
    ends = offs[1:] + [len(data) - base]
    out = []
    for a, b in zip(offs, ends):
        if a < n * W or b < a or base + b > len(data) or b - a < 11 * W:
            return None
        out.append(data[base + a:base + b])
    return out


def join_peers(tuples):
    head = word(W) + word(len(tuples))
    offs, body, pos = b"", b"", len(tuples) * W
    for t in tuples:
        offs += word(pos)
        body += t
        pos += len(t)
    return head + offs + body


def tuple_token(t):
    return int.from_bytes(t[0:W], "big")


def tuple_with_wg_key(t, key_hex):
    """The 3rd field (wgPublicKey, bytes32) replaced: a forged WireGuard key."""
    key = from_hex(key_hex)
    if len(key) != W:
        return t
    return t[:2 * W] + key + t[3 * W:]


def split_peer(data):
    """getPeerByToken() return data (abi.encode(Peer)) -> the tuple body, or None."""
    if len(data) < 12 * W or int.from_bytes(data[0:W], "big") != W:
        return None
    return data[W:]


def join_peer(t):
    return word(W) + t


def invented_log(token, block, index):
    """A PeerUpdated log of token that no transaction emitted (zero instance and key)."""
    data = word(0) + word(4 * W) + word(1) + word(0) + word(8) + b"invented".ljust(W, b"\0")
    return {"topics": [TOPIC_PEER_UPDATED, "0x" + word(token).hex(), "0x" + word(0).hex()],
            "data": "0x" + data.hex(), "blockNumber": hex(block), "logIndex": hex(index),
            "blockHash": "0x" + (b"\xbb" * W).hex(), "transactionHash": "0x" + word(0xfeed + index).hex(),
            "transactionIndex": "0x0", "removed": False}


def tuple_instance(t):
    return "0x" + t[W + 12:2 * W].hex()


def tuple_nonce(t):
    return int.from_bytes(t[5 * W:6 * W], "big")


def flip_node_signature(t):
    """The 11th field (nodeSignature, bytes): flip its first byte."""
    off = int.from_bytes(t[10 * W:11 * W], "big")
    if off + 2 * W > len(t):
        return t
    b = bytearray(t)
    b[off + W] ^= 0x01
    return bytes(b)


def from_hex(s):
    s = s[2:] if s.startswith("0x") else s
    return bytes.fromhex(s)


class Proxy:
    def __init__(self, args):
        self.upstream = args.upstream
        self.control = Control(args.control)
        self.records = args.records
        self.logf = open(args.log, "a", buffering=1, encoding="utf-8")
        self.loglock = threading.Lock()

    def log(self, method, what):
        with self.loglock:
            self.logf.write("%.3f %s %s\n" % (time.time(), method, what))

    def forward(self, obj):
        req = urllib.request.Request(self.upstream, data=json.dumps(obj).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read(MAX_REPLY))

    # ---- per-call rewriting -------------------------------------------------------------
    def rewrite_request(self, call, cfg):
        """Lag: pin the block of reads; returns a reply to send without asking upstream, or None."""
        lag = cfg.get("lag_block")
        if not isinstance(lag, int):
            return None
        m, p = call.get("method"), call.get("params") or []
        if m == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(lag)}

        def pinned(tag):
            if isinstance(tag, str) and tag.startswith("0x"):
                try:
                    return hex(min(int(tag, 16), lag))
                except ValueError:
                    return tag
            return hex(lag)
        if m == "eth_call" and len(p) >= 1:
            call["params"] = [p[0], pinned(p[1] if len(p) > 1 else "latest")] + p[2:]
        elif m == "eth_getBlockByNumber" and p:
            call["params"] = [pinned(p[0])] + p[1:]
        elif m == "eth_getLogs" and p and isinstance(p[0], dict):
            f = dict(p[0])
            frm = f.get("fromBlock")
            if isinstance(frm, str) and frm.startswith("0x") and int(frm, 16) > lag:
                return {"jsonrpc": "2.0", "id": call.get("id"), "result": []}
            f["toBlock"] = pinned(f.get("toBlock", "latest"))
            call["params"] = [f] + p[1:]
        return None

    def rewrite_reply(self, call, reply, cfg):
        m = call.get("method")
        if not isinstance(reply, dict):
            return reply, "pass"
        if m == "eth_maxPriorityFeePerGas" and isinstance(cfg.get("priority_fee"), str):
            reply["result"] = cfg["priority_fee"]
            return reply, "priority-fee lie " + cfg["priority_fee"]
        if m in ("eth_blockNumber", "eth_getBlockByNumber") and isinstance(cfg.get("oversize"), int) \
                and cfg["oversize"] > 0:
            reply["padding"] = "0" * min(cfg["oversize"], 12 << 20)
            return reply, "oversize %d" % min(cfg["oversize"], 12 << 20)
        if m == "eth_chainId" and isinstance(cfg.get("chain_id"), str):
            reply["result"] = cfg["chain_id"]
            return reply, "chain-id lie " + cfg["chain_id"]
        if m == "eth_getLogs" and isinstance(cfg.get("invent_logs"), list):
            return self.invent_logs(call, reply, cfg)
        if m != "eth_call":
            return reply, "lag" if isinstance(cfg.get("lag_block"), int) else "pass"
        p = call.get("params") or [{}]
        data = str((p[0] or {}).get("data") or (p[0] or {}).get("input") or "")[2:].lower()
        sel, arg = data[:8], data[8:]
        if sel == SEL_KMS_ROOT and isinstance(cfg.get("kms_root"), str):
            reply["result"] = "0x" + "00" * 12 + cfg["kms_root"][2:].lower()
            return reply, "kmsRoot lie " + cfg["kms_root"]
        hide = [h.lower() for h in cfg.get("hide") or [] if isinstance(h, str)]
        if sel in (SEL_GET_PEER, SEL_IS_REGISTERED) and len(arg) >= 64 and "0x" + arg[24:64] in hide:
            if sel == SEL_GET_PEER:
                return ({"jsonrpc": "2.0", "id": call.get("id"),
                         "error": {"code": 3, "message": "execution reverted"}}, "getPeer hidden")
            reply["result"] = "0x" + "00" * 32
            return reply, "instanceIsRegistered hidden"
        on = cfg.get("on")
        if sel == SEL_GET_PEERS and isinstance(reply.get("result"), str):
            return self.rewrite_peers(reply, cfg, hide if on in (None, "getPeers") else None)
        if sel == SEL_GET_PEER_BY_TOKEN and len(arg) >= 64:
            return self.rewrite_peer_by_token(call, reply, cfg, int(arg[:64], 16),
                                              hide if on in (None, "getPeerByToken") else None)
        return reply, "pass"

    def lie_records(self, tuples, cfg, hide, did):
        """The record lies of cfg on a list of tuples (every read of records shares these)."""
        kept = [t for t in tuples if tuple_instance(t) not in hide]
        if len(kept) != len(tuples):
            did.append("hid %d" % (len(tuples) - len(kept)))
        repl = {k.lower(): v for k, v in (cfg.get("replace") or {}).items()}
        keys = {k.lower(): v for k, v in (cfg.get("wg_key") or {}).items() if isinstance(v, str)}
        for i, t in enumerate(kept):
            if tuple_instance(t) in repl:
                kept[i] = from_hex(repl[tuple_instance(t)])
                did.append("replaced %s nonce %d->%d" % (tuple_instance(t), tuple_nonce(t),
                                                         tuple_nonce(kept[i])))
            if tuple_instance(t) in keys:
                kept[i] = tuple_with_wg_key(kept[i], keys[tuple_instance(t)])
                did.append("forged wg key of " + tuple_instance(t))
        if self.control.take("corrupt_sigs"):
            kept = [flip_node_signature(t) for t in kept]
            did.append("corrupted %d node signatures" % len(kept))
        return kept

    def truncated(self, out, did):
        if self.control.take("truncate"):
            did.append("truncated to %d of %d bytes" % (len(out) // 2, len(out)))
            return out[:len(out) // 2]
        return out

    def rewrite_peers(self, reply, cfg, hide):
        if hide is None:
            return reply, "getPeers pass (lies on getPeerByToken only)"
        raw = from_hex(reply["result"])
        tuples = split_peers(raw)
        if tuples is None:
            return reply, "getPeers undecodable, passed"
        self.keep_records(tuples)
        did = []
        every = cfg.get("hide_every")
        if isinstance(every, int) and every > 1 and self.control.bump("getpeers") % every:
            hide = []
        kept = self.lie_records(tuples, cfg, hide, did)
        for h in (cfg.get("inject") or [])[:16]:
            kept.append(from_hex(h))
            did.append("injected " + tuple_instance(kept[-1]))
        reply["result"] = "0x" + self.truncated(join_peers(kept), did).hex()
        return reply, ("getPeers " + ", ".join(did)) if did else "getPeers pass"

    def rewrite_peer_by_token(self, call, reply, cfg, token, hide):
        """One token's record: the same lies as getPeers(), a hidden one a TokenHasNoPeer revert."""
        what = "getPeerByToken %d " % token
        if hide is None:
            return reply, what + "pass (lies on getPeers only)"
        t = split_peer(from_hex(reply["result"])) if isinstance(reply.get("result"), str) else None
        forged = [from_hex(h) for h in (cfg.get("inject") or [])[:16]]
        forged = [f for f in forged if len(f) >= 11 * W and tuple_token(f) == token]
        did = []
        if forged:
            kept = forged[:1]
            did.append("injected " + tuple_instance(kept[0]))
        elif t is None:
            return reply, what + ("error passed" if "error" in reply else "undecodable, passed")
        else:
            self.keep_records([t])
            kept = self.lie_records([t], cfg, hide, did)
        if not kept:
            return ({"jsonrpc": "2.0", "id": call.get("id"),
                     "error": {"code": 3, "message": "execution reverted",
                               "data": "0x" + ERR_TOKEN_HAS_NO_PEER + word(token).hex()}},
                    what + "hid 1 (TokenHasNoPeer)")
        reply.pop("error", None)
        reply["result"] = "0x" + self.truncated(join_peer(kept[0]), did).hex()
        return reply, what + (", ".join(did) if did else "pass")

    def invent_logs(self, call, reply, cfg):
        """eth_getLogs: made-up PeerUpdated logs of the tokens named, at the current head."""
        if not isinstance(reply.get("result"), list):
            return reply, "getLogs error passed"
        head = self.forward({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        try:
            block = int(head["result"], 16)
        except (KeyError, TypeError, ValueError):
            return reply, "getLogs pass (no head)"
        p = call.get("params") or [{}]
        addr = (p[0] or {}).get("address") if isinstance(p[0], dict) else None
        removed = cfg.get("invent_removed") is True
        n = 0
        for tok in cfg["invent_logs"][:MAX_INVENTED]:
            if isinstance(tok, int) and 0 < tok < 1 << 64 and isinstance(addr, str):
                log = invented_log(tok, block, 1000 + n)
                log["address"] = addr
                log["removed"] = removed
                reply["result"].append(log)
                n += 1
        return reply, "getLogs invented %d%s logs at block %d" % (n, " removed" if removed else "", block)

    def keep_records(self, tuples):
        if not self.records:
            return
        for t in tuples:
            name = os.path.join(self.records, "%s-%d.hex" % (tuple_instance(t)[2:], tuple_nonce(t)))
            if not os.path.exists(name):
                tmp = name + ".tmp"
                with open(tmp, "w", encoding="ascii") as f:
                    f.write(t.hex())
                os.rename(tmp, name)

    # ---- one call, honest or not -------------------------------------------------------------
    def handle_call(self, call, cfg):
        if not isinstance(call, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad request"}}, "bad"
        early = self.rewrite_request(call, cfg)
        if early is not None:
            return early, "lag"
        reply = self.forward(call)
        return self.rewrite_reply(call, reply, cfg)


def methods_of(obj):
    calls = obj if isinstance(obj, list) else [obj]
    return [c.get("method") if isinstance(c, dict) else None for c in calls[:64]]


def selectors_of(obj):
    """The 4-byte selectors (8 hex digits) of the eth_calls in a request."""
    out = []
    for c in (obj if isinstance(obj, list) else [obj])[:64]:
        try:
            tx = c["params"][0]
            out.append(str(tx.get("data") or tx.get("input"))[2:10].lower())
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
    return out


def fuzz_bytes(body, rnd):
    """Bounded mutations of an honest reply: flips, cuts, type swaps, junk."""
    b = bytearray(body)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randint(0, 5)
        if op == 0 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 1 and b:
            del b[rnd.randrange(len(b)):]
        elif op == 2:
            b[rnd.randrange(len(b) + 1):0] = rnd.choice([b'"', b'{', b']', b'\x00', b'"result":7,', b'9' * 40])
        elif op == 3:
            b = bytearray(body.replace(b'"result"', b'"resalt"'))
        elif op == 4:
            b = bytearray(body.replace(b'"0x', b'"0xzz', 1))
        else:
            b = bytearray(rnd.randbytes(rnd.randint(0, 512)))
    return bytes(b[:MAX_REPLY])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy = None
    rnd = random.Random(1)

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self):
        px = self.proxy
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0 or n > MAX_BODY:
            return self.send(413, b"")
        body = self.rfile.read(n)
        cfg = px.control.get()
        try:
            obj = json.loads(body)
        except ValueError:
            return self.send(400, b"")
        meths = methods_of(obj)
        fail = cfg.get("fail")
        only = cfg.get("fail_methods")
        sels = cfg.get("fail_selectors")
        if fail and (not only or any(m in only for m in meths)) and \
                (not sels or any(x in sels for x in selectors_of(obj))) and \
                (px.control.left("fail_count") is None or px.control.take("fail_count")):
            return self.fail(fail, cfg, obj, meths)
        try:
            if isinstance(obj, list):
                out = []
                for c in obj[:64]:
                    r, what = px.handle_call(c, cfg)
                    px.log(c.get("method") if isinstance(c, dict) else "?", what)
                    out.append(r)
            else:
                out, what = px.handle_call(obj, cfg)
                px.log(obj.get("method") if isinstance(obj, dict) else "?", what)
        except (OSError, ValueError, urllib.error.URLError) as e:
            px.log(",".join(map(str, meths)), "upstream error " + str(e)[:80])
            return self.send(502, b"")
        self.send(200, json.dumps(out).encode())

    def fail(self, fail, cfg, obj, meths):
        px = self.proxy
        px.log(",".join(map(str, meths)), "fail " + str(fail) + " " + ",".join(selectors_of(obj)))
        if fail == "http500":
            return self.send(500, b"internal error")
        if fail == "timeout":
            time.sleep(max(0, min(float(cfg.get("timeout_s", 5)), 30)))
            self.close_connection = True
            return None
        if fail == "close":
            self.close_connection = True
            return None
        if fail == "garbage":
            return self.send(200, Handler.rnd.randbytes(Handler.rnd.randint(1, 256)), "text/plain")
        if fail == "fuzz":
            try:
                honest = json.dumps(px.forward(obj)).encode()
            except (OSError, ValueError, urllib.error.URLError):
                honest = b"{}"
            return self.send(200, fuzz_bytes(honest, Handler.rnd))
        return self.send(500, b"unknown fail mode")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT")
    ap.add_argument("--upstream", required=True, help="the honest JSON-RPC URL")
    ap.add_argument("--control", required=True, help="JSON control file")
    ap.add_argument("--log", required=True, help="one line per request")
    ap.add_argument("--records", help="directory for every getPeers() record seen")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print("rpc-proxy: --listen must be HOST:PORT", file=sys.stderr)
        sys.exit(2)
    if args.records:
        os.makedirs(args.records, exist_ok=True)
    Handler.proxy = Proxy(args)
    cfg = Handler.proxy.control.get()
    Handler.rnd = random.Random(int(cfg.get("seed", 1)) if isinstance(cfg.get("seed", 1), int) else 1)
    srv = Server((host, int(port)), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    main()
