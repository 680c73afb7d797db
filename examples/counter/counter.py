#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A distributed counter: one per node, on the dstack-p2p SDK, standard library only.

An app that only uses what an app gets: its peers' 10.0.1.x addresses and the contract's
leader through the node's agent (the SDK), and no keys. README.md next to this file
describes the protocol; in short:

- The contract names the leader (term = the contract's leaderTerm). The leader heartbeats
  its lease through the agent; followers probe it over the mesh and vote no confidence
  through the agent when it does not answer, and withdraw the vote when it answers again.
- A new leader first collects the logs of a majority (itself included; each follower
  promises to refuse older terms), adopts the most recent one (highest term it was
  accepted in, then longest), then serves writes: an increment is appended to its log and
  acknowledged once a majority holds it (commit). Followers are fed from the leader's log
  (catch-up after a gap is the same path) and serve reads of their committed replica.
- Followers forward writes to the leader. Retrying an increment with the same id never
  counts it twice.

State is in memory: a restarted counter rejoins as an empty follower and catches up.
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))  # the SDK from the checkout
from dstack_p2p import AgentError, DStackP2PClient, DStackP2PError, PeersDocument  # noqa: E402

MAX_BODY = 1 << 20          # any request or reply body between nodes
MAX_CLIENT_BODY = 4096      # POST /increment
MAX_LOG = 8192              # entries; a full log refuses writes (no compaction in this example)
MAX_BATCH = 1024            # entries per append
MAX_HANDLERS = 64           # concurrent HTTP requests; more are refused
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
ADDR_RE = re.compile(r"^10\.0\.1\.([0-9]{1,3})$")

Entry = List[Any]  # [term, id, via]


def now() -> float:
    return time.monotonic()


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {msg}", flush=True)


def http_json(host: str, port: int, method: str, path: str, body: Optional[dict] = None,
              timeout: float = 1.5, headers: Optional[Dict[str, str]] = None) -> Tuple[int, dict]:
    """One bounded HTTP request to another node; (status, decoded JSON). OSError on failure."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise OSError(f"reply from {host} longer than {MAX_BODY} bytes")
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise OSError(f"reply from {host} is not JSON") from None
        if not isinstance(doc, dict):
            raise OSError(f"reply from {host} is not a JSON object")
        return resp.status, doc
    except (http.client.HTTPException, ValueError) as e:
        raise OSError(str(e)) from None
    finally:
        conn.close()


def valid_entry(e: Any) -> bool:
    return (isinstance(e, list) and len(e) == 3 and isinstance(e[0], int) and not isinstance(e[0], bool)
            and e[0] > 0 and isinstance(e[1], str) and ID_RE.match(e[1]) is not None
            and isinstance(e[2], str) and len(e[2]) <= 64)


class Counter:
    """The replicated log and everything the node knows about the cluster."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = args.port
        self.agent = DStackP2PClient(endpoint=args.control, timeout=3.0)
        self.cond = threading.Condition()
        # The replicated state.
        self.log: List[Entry] = []
        self.ids: Dict[str, int] = {}   # id -> index in log (0-based)
        self.commit = 0                  # entries known committed
        self.promised = 0                # highest term promised to (refuse older leaders)
        self.accepted_term = 0           # term of the leader whose log this is a prefix of
        # What the agent says.
        self.doc: Optional[PeersDocument] = None
        self.agent_ok_at = 0.0
        self.agent_error = ""
        # Role.
        self.role = "starting"           # starting, follower, recovering, leader
        self.term = 0                    # the contract's term as last seen
        self.ready_term = 0              # term whose recovery finished (leader serves writes)
        self.match: Dict[str, int] = {}  # leader: follower -> entries it holds
        self.next: Dict[str, int] = {}
        self.recovering_term = 0
        self.replicators: set = set()    # (follower, term) with a running replicate thread
        # Health of the leader as seen from here.
        self.probe_failures = 0
        self.leader_reachable: Optional[bool] = None
        self.vote_term = 0               # term in which our no-confidence vote stands
        self.leaderless_since: Optional[float] = None
        self.lease_len = 0.0
        self.last_heartbeat = 0.0
        self.stopping = threading.Event()

    # ---- small helpers (call with self.cond held) --------------------------------------

    def me(self) -> str:
        return self.doc.address if self.doc else ""

    def peers(self) -> List[str]:
        return [m.address for m in self.doc.members if ADDR_RE.match(m.address)] if self.doc else []

    def majority(self) -> int:
        return (len(self.peers()) + 1) // 2 + 1

    def leader_addr(self) -> str:
        return self.doc.leader.address if self.doc and self.doc.leader else ""

    def is_ready_leader(self) -> bool:
        return self.role == "leader" and self.ready_term == self.term and self.term > 0

    def advance_commit(self) -> None:
        if not self.is_ready_leader():
            return
        held = sorted([len(self.log)] + [self.match.get(p, 0) for p in self.peers()], reverse=True)
        c = held[self.majority() - 1]
        if c > self.commit:
            self.commit = c
            self.cond.notify_all()

    def adopt(self, entries: List[Entry]) -> None:
        self.log = entries
        self.ids = {e[1]: i for i, e in enumerate(entries)}
        self.commit = min(self.commit, len(entries))

    # ---- following the agent ------------------------------------------------------------

    def follow_agent(self) -> None:
        """Every --agent-interval s: read the agent's document, act on the leadership."""
        while not self.stopping.wait(self.args.agent_interval):
            try:
                doc = self.agent.document()
            except DStackP2PError as e:
                with self.cond:
                    if self.agent_error != str(e):
                        log(f"agent: {e}")
                    self.agent_error = str(e)
                continue
            self.on_document(doc)
            self.maybe_elect_or_heartbeat(doc)

    def on_document(self, doc: PeersDocument) -> None:
        with self.cond:
            self.doc, self.agent_ok_at, self.agent_error = doc, now(), ""
            lead = doc.leader
            term = lead.term if lead else 0
            if term != self.term:
                log(f"contract: term {term}, leader " +
                    (f"token {lead.token} {lead.address}{' (this node)' if lead.is_self else ''}" if lead else "none"))
                self.term = term
                self.probe_failures, self.leader_reachable = 0, None
            if lead and lead.is_self:
                if not (self.role == "recovering" and self.recovering_term == term) \
                        and not (self.role == "leader" and self.ready_term == term):
                    self.start_recovery(term)
                elif self.is_ready_leader():
                    for p in self.peers():  # a member that joined since the recovery
                        if (p, term) not in self.replicators:
                            self.start_replicator(p, term)
            elif self.role != "follower":
                if self.role != "starting":
                    log(f"role follower (term {term})")
                self.role = "follower"
                self.cond.notify_all()
            self.leaderless_since = (self.leaderless_since or now()) if not (lead and lead.lease_active) else None

    def maybe_elect_or_heartbeat(self, doc: PeersDocument) -> None:
        lead = doc.leader
        if not doc.registered or doc.token == 0:
            return
        if lead is None or not lead.lease_active:
            # No leader or its lease ran out: the lowest tokens try first.
            waited = now() - (self.leaderless_since or now())
            if waited >= self.args.elect_stagger * (doc.token - 1):
                try:
                    r = self.agent.elect()
                    log(f"elect: sent ({r.get('tx', '')})")
                except AgentError as e:
                    log(f"elect: {e.code}: {e.message}")
                except DStackP2PError as e:
                    log(f"elect: {e}")
            return
        if lead.is_self:
            remaining = lead.expiry - time.time()
            if self.lease_len <= 0 or remaining > self.lease_len:
                self.lease_len = max(remaining, 1.0)
            if remaining < self.lease_len / 2 and now() - self.last_heartbeat > 2.0:
                self.last_heartbeat = now()
                try:
                    self.agent.heartbeat()
                    self.lease_len = 0.0
                except DStackP2PError as e:
                    log(f"heartbeat: {e}")

    # ---- a new leader: collect a majority's logs, adopt the most recent ------------------

    def start_recovery(self, term: int) -> None:
        self.role, self.recovering_term = "recovering", term
        self.replicators = {r for r in self.replicators if r[1] == term}
        self.promised = max(self.promised, term)
        log(f"role leader of term {term}: collecting the logs of a majority")
        threading.Thread(target=self.recover, args=(term,), daemon=True).start()

    def recover(self, term: int) -> None:
        answers: Dict[str, Tuple[int, List[Entry]]] = {}
        deadline = now() + self.args.recover_timeout
        while now() < deadline and not self.stopping.is_set():
            with self.cond:
                if self.term != term or self.role != "recovering":
                    return
                answers[self.me()] = (self.accepted_term, list(self.log))
                todo = [p for p in self.peers() if p not in answers]
                need = self.majority()
            if len(answers) >= need:
                break
            # Ask every missing peer at once; go on as soon as a majority answered (a
            # peer cut off the mesh costs nothing but its thread's 2 s timeout).
            results: Dict[str, Tuple[int, List[Entry]]] = {}
            enough = threading.Event()
            for p in todo:
                threading.Thread(target=self.prepare_one, args=(p, term, results, enough, need - len(answers)),
                                 daemon=True).start()
            enough.wait(2.5)
            with self.cond:
                answers.update(results)
            if len(answers) < need:
                self.stopping.wait(0.3)
        with self.cond:
            if self.term != term or self.role != "recovering":
                return
            if len(answers) < self.majority():
                log(f"term {term}: only {len(answers)} of {self.majority()} logs; trying again")
                self.role = "follower"  # on_document starts a new recovery
                return
            best_addr, (best_term, best_log) = max(answers.items(), key=lambda kv: (kv[1][0], len(kv[1][1])))
            self.adopt(best_log)
            self.accepted_term = term
            self.match = {p: 0 for p in self.peers()}
            self.next = {p: len(self.log) for p in self.peers()}
            self.role, self.ready_term = "leader", term
            log(f"term {term}: adopted the log of {best_addr} ({len(best_log)} entries, accepted in term "
                f"{best_term}) from {len(answers)} nodes; serving writes")
            for p in self.peers():
                self.start_replicator(p, term)
            self.cond.notify_all()

    def start_replicator(self, peer: str, term: int) -> None:
        self.replicators.add((peer, term))
        threading.Thread(target=self.replicate, args=(peer, term), daemon=True).start()

    def prepare_one(self, peer: str, term: int, out: Dict[str, Tuple[int, List[Entry]]],
                    enough: threading.Event, need: int) -> None:
        try:
            status, doc = http_json(peer, self.port, "POST", "/internal/prepare", {"term": term}, timeout=2.0)
        except OSError:
            return
        entries = doc.get("log")
        at = doc.get("accepted_term")
        if status == 200 and doc.get("ok") is True and isinstance(at, int) and isinstance(entries, list) \
                and len(entries) <= MAX_LOG and all(valid_entry(e) for e in entries):
            with self.cond:
                out[peer] = (at, entries)
                if len(out) >= need:
                    enough.set()

    # ---- the leader feeds each follower from its log -----------------------------------

    def replicate(self, peer: str, term: int) -> None:
        try:
            self.feed(peer, term)
        finally:
            with self.cond:
                self.replicators.discard((peer, term))

    def feed(self, peer: str, term: int) -> None:
        """One thread per follower and term: send what it lacks, then keep it fed (and
        tell it the commit) every --heartbeat-ms; ends when the term or the role changes."""
        backoff = 0.0
        while not self.stopping.is_set():
            with self.cond:
                if self.term != term or not self.is_ready_leader() or peer not in self.peers():
                    return
                nxt = self.next.setdefault(peer, len(self.log))
                if backoff == 0.0 and nxt >= len(self.log) and self.match.get(peer, 0) >= self.commit:
                    self.cond.wait(self.args.heartbeat_ms / 1000.0)
                elif backoff:
                    self.cond.wait(backoff)
                if self.term != term or not self.is_ready_leader():
                    return
                nxt = min(self.next.get(peer, len(self.log)), len(self.log))
                entries = self.log[nxt:nxt + MAX_BATCH]
                body = {"term": term, "prev": nxt, "prev_term": self.log[nxt - 1][0] if nxt else 0,
                        "entries": entries, "commit": self.commit}
            try:
                status, doc = http_json(peer, self.port, "POST", "/internal/append", body)
            except OSError:
                backoff = 0.3
                continue
            backoff = 0.0
            with self.cond:
                if self.term != term:
                    return
                if status == 200 and doc.get("ok") is True:
                    self.match[peer] = max(self.match.get(peer, 0), nxt + len(entries))
                    self.next[peer] = nxt + len(entries)
                    self.advance_commit()
                    continue
                their = doc.get("term")
                if isinstance(their, int) and their > term:
                    return  # a newer leader exists; the agent will tell us
                length = doc.get("length")
                if isinstance(length, int) and length >= 0:
                    self.next[peer] = max(0, min(nxt - 1, length))
                else:
                    backoff = 0.5

    # ---- requests ----------------------------------------------------------------------

    def check_sender(self, sender: str, term: int) -> Optional[str]:
        """None when sender is the contract's leader of term as our agent says; else why not."""
        with self.cond:
            lead = self.doc.leader if self.doc else None
            known = lead.term if lead else 0
        if term > known:  # our agent may lag a block behind: ask it now
            try:
                fresh = self.agent.leader()
            except DStackP2PError as e:
                return f"cannot ask the agent: {e}"
            lead = fresh
        if lead is None or lead.term != term:
            return f"term {term} is not the contract's current term"
        if lead.address != sender:
            return f"{sender} is not the leader of term {term} ({lead.address})"
        return None

    def on_prepare(self, sender: str, req: dict) -> Tuple[int, dict]:
        term = req.get("term")
        if not isinstance(term, int) or isinstance(term, bool) or term <= 0:
            return 400, {"error": "term must be a positive integer"}
        why = self.check_sender(sender, term)
        if why:
            return 403, {"ok": False, "error": why}
        with self.cond:
            if term < self.promised:
                return 409, {"ok": False, "term": self.promised, "error": "promised a newer term"}
            self.promised = term
            return 200, {"ok": True, "accepted_term": self.accepted_term, "log": self.log, "commit": self.commit}

    def on_append(self, sender: str, req: dict) -> Tuple[int, dict]:
        term, prev, prev_term = req.get("term"), req.get("prev"), req.get("prev_term")
        entries, commit = req.get("entries"), req.get("commit")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in (term, prev, prev_term, commit)) or not isinstance(entries, list) \
                or len(entries) > MAX_BATCH or prev + len(entries) > MAX_LOG \
                or not all(valid_entry(e) for e in entries):
            return 400, {"error": "malformed append"}
        why = self.check_sender(sender, term)
        if why:
            return 403, {"ok": False, "error": why}
        with self.cond:
            if term < self.promised:
                return 409, {"ok": False, "term": self.promised, "length": len(self.log)}
            self.promised = term
            if prev > len(self.log) or (prev > 0 and self.log[prev - 1][0] != prev_term):
                return 200, {"ok": False, "length": min(len(self.log), max(prev - 1, 0))}
            if self.role != "follower":
                self.role = "follower"
            # Our log becomes exactly a prefix of the leader's: what follows is dropped.
            self.adopt(self.log[:prev] + entries)
            self.accepted_term = term
            self.commit = max(self.commit, min(commit, len(self.log)))
            self.cond.notify_all()
            return 200, {"ok": True, "length": len(self.log)}

    def increment(self, req_id: str, via: str, forwarded: bool) -> Tuple[int, dict]:
        with self.cond:
            if not self.is_ready_leader():
                leader = self.leader_addr()
                role = self.role
            else:
                leader = ""
                role = "leader"
                if req_id in self.ids:
                    idx = self.ids[req_id]
                else:
                    if len(self.log) >= MAX_LOG:
                        return 507, {"error": f"the log is full ({MAX_LOG} entries)"}
                    self.log.append([self.term, req_id, via])
                    idx = len(self.log) - 1
                    self.ids[req_id] = idx
                    self.cond.notify_all()
                term = self.term
                deadline = now() + self.args.write_timeout
                while self.commit <= idx and self.term == term and self.is_ready_leader() and now() < deadline:
                    self.cond.wait(max(0.0, deadline - now()))
                if self.commit > idx and idx < len(self.log) and self.log[idx][1] == req_id:
                    return 200, {"ok": True, "id": req_id, "index": idx + 1, "value": idx + 1,
                                 "term": self.log[idx][0], "leader": self.me()}
                return 503, {"ok": False, "id": req_id, "error": "not acknowledged: no majority holds it "
                             "in time (retry with the same id)", "leader": self.me()}
        if forwarded or role == "recovering" or not leader or leader == self.me():
            return 503, {"ok": False, "id": req_id, "error": f"no leader serving writes (this node: {role})",
                         "leader": leader}
        try:
            status, doc = http_json(leader, self.port, "POST", "/increment", {"id": req_id},
                                    timeout=self.args.write_timeout + 1.0, headers={"X-Forwarded-By": via})
        except OSError as e:
            return 503, {"ok": False, "id": req_id, "error": f"the leader {leader} does not answer: {e}",
                         "leader": leader}
        doc["forwarded_to"] = leader
        return status, doc

    def status(self) -> dict:
        with self.cond:
            d, lead = self.doc, (self.doc.leader if self.doc else None)
            return {
                "node": d.label if d else "", "token": d.token if d else 0, "address": self.me(),
                "role": self.role, "term": self.term, "serving_writes": self.is_ready_leader(),
                "leader": None if lead is None else {
                    "token": lead.token, "label": lead.label, "address": lead.address, "term": lead.term,
                    "lease_active": lead.lease_active, "votes": lead.votes, "required": lead.required},
                "health": {"agent": "ok" if not self.agent_error and d else (self.agent_error or "no answer yet"),
                           "agent_age_s": round(now() - self.agent_ok_at, 3) if self.agent_ok_at else None,
                           "leader_reachable": self.leader_reachable, "probe_failures": self.probe_failures,
                           "voted_no_confidence_in_term": self.vote_term},
                "log_length": len(self.log), "commit": self.commit, "value": self.commit,
                "promised_term": self.promised, "accepted_term": self.accepted_term}

    # ---- followers watch the leader ----------------------------------------------------

    def probe_leader(self) -> None:
        """Every --probe-interval s a follower asks the leader's /status over the mesh;
        --probe-failures misses in a row: a vote of no confidence; an answer: withdraw it."""
        while not self.stopping.wait(self.args.probe_interval):
            with self.cond:
                lead = self.doc.leader if self.doc else None
                if lead is None or lead.is_self or self.role != "follower" or not ADDR_RE.match(lead.address):
                    continue
                term = lead.term
            try:
                status, _ = http_json(lead.address, self.port, "GET", "/status", timeout=self.args.probe_interval)
                ok = status == 200
            except OSError:
                ok = False
            with self.cond:
                if self.term != term:
                    continue
                self.leader_reachable = ok
                self.probe_failures = 0 if ok else self.probe_failures + 1
                vote = not ok and self.probe_failures >= self.args.probe_failures and self.vote_term != term
                withdraw = ok and self.vote_term == term
            if vote or withdraw:
                self.vote(lead.token, term, withdraw)

    def vote(self, target: int, term: int, withdraw: bool) -> None:
        what = "withdraws its vote against" if withdraw else "votes no confidence in"
        try:
            r = self.agent.vote_no_confidence(target=target, withdraw=withdraw)
            lead = r.get("leader") if isinstance(r.get("leader"), dict) else {}
            log(f"vote: this node {what} leader token {target} (term {term}); on chain now: "
                f"votes {lead.get('votes')}/{lead.get('required')}, leader token {lead.get('token')}")
            with self.cond:
                self.vote_term = 0 if withdraw else term
        except AgentError as e:
            log(f"vote: {what} token {target}: {e.code}: {e.message}")
            if e.code == "refused" and not withdraw:
                with self.cond:
                    self.vote_term = term  # e.g. the leader already changed: do not repeat
        except DStackP2PError as e:
            log(f"vote: {e}")

    def members(self) -> dict:
        with self.cond:
            d = self.doc
            if d is None:
                return {"members": []}
            lead = d.leader.token if d.leader else 0
            rows = [{"token": d.token, "label": d.label, "address": d.address, "instance_id": d.instance_id,
                     "self": True, "leader": d.token == lead}]
            rows += [{"token": m.token, "label": m.label, "address": m.address, "instance_id": m.instance_id,
                      "self": False, "leader": m.token == lead} for m in d.members]
            return {"members": sorted(rows, key=lambda r: r["token"]), "generation": d.generation}

    def log_view(self, start: int, limit: int) -> dict:
        with self.cond:
            end = min(self.commit, start + limit)
            return {"commit": self.commit, "length": len(self.log), "from": start,
                    "entries": [{"index": i + 1, "term": self.log[i][0], "id": self.log[i][1],
                                 "via": self.log[i][2], "value": i + 1} for i in range(start, end)]}


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "dstack-p2p-counter"
    timeout = 10  # seconds a client may take to send its request
    counter: Counter

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the counter logs its own events
        pass

    def reply(self, status: int, doc: dict) -> None:
        data = json.dumps(doc).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self, limit: int) -> Optional[dict]:
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > limit:
            self.reply(413, {"error": f"a body of at most {limit} bytes, with Content-Length"})
            return None
        raw = self.rfile.read(n) if n else b"{}"
        try:
            doc = json.loads(raw or b"{}")
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            self.reply(400, {"error": "the body is not a JSON object"})
            return None
        return doc

    def do_GET(self) -> None:
        c = self.counter
        url = urlparse(self.path)
        if url.path == "/counter":
            s = c.status()
            self.reply(200, {"value": s["value"], "role": s["role"], "term": s["term"], "node": s["address"]})
        elif url.path == "/status":
            self.reply(200, c.status())
        elif url.path == "/members":
            self.reply(200, c.members())
        elif url.path == "/log":
            q = parse_qs(url.query)
            try:
                start = max(0, int(q.get("from", ["0"])[0]))
                limit = min(MAX_LOG, max(0, int(q.get("limit", [str(MAX_LOG)])[0])))
            except ValueError:
                self.reply(400, {"error": "from and limit are integers"})
                return
            self.reply(200, c.log_view(start, limit))
        else:
            self.reply(404, {"error": "GET /counter, /log, /status, /members"})

    def do_POST(self) -> None:
        c = self.counter
        sender = self.client_address[0]
        if self.path == "/increment":
            req = self.body(MAX_CLIENT_BODY)
            if req is None:
                return
            req_id = req.get("id", uuid.uuid4().hex)
            if not isinstance(req_id, str) or not ID_RE.match(req_id):
                self.reply(400, {"error": "id: 1 to 64 of [A-Za-z0-9._:-]"})
                return
            fwd = self.headers.get("X-Forwarded-By")
            via = fwd if fwd and ADDR_RE.match(fwd) and fwd == sender else (c.me() or "?")
            self.reply(*c.increment(req_id, via, forwarded=fwd is not None))
        elif self.path in ("/internal/prepare", "/internal/append"):
            if not ADDR_RE.match(sender):
                self.reply(403, {"error": "only over the mesh"})
                return
            req = self.body(MAX_BODY)
            if req is None:
                return
            fn = c.on_prepare if self.path == "/internal/prepare" else c.on_append
            self.reply(*fn(sender, req))
        else:
            self.reply(404, {"error": "POST /increment"})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: Tuple[str, int], handler: type) -> None:
        super().__init__(addr, handler)
        self.slots = threading.BoundedSemaphore(MAX_HANDLERS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: refuse, never queue without bound
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def main() -> int:
    p = argparse.ArgumentParser(description="A distributed counter on dstack-p2p (one per node).")
    p.add_argument("--port", type=int, default=8080, help="HTTP port, the same on every node (8080)")
    p.add_argument("--listen", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    p.add_argument("--control", default=None, help="the agent's control socket ($DSTACK_P2P_CONTROL)")
    p.add_argument("--agent-interval", type=float, default=0.25, help="s between reads of the agent (0.25)")
    p.add_argument("--probe-interval", type=float, default=1.0, help="s between probes of the leader (1)")
    p.add_argument("--probe-failures", type=int, default=3, help="missed probes before a vote (3)")
    p.add_argument("--heartbeat-ms", type=int, default=500, help="leader -> follower keep-alive (500)")
    p.add_argument("--write-timeout", type=float, default=5.0, help="s an increment waits for a majority (5)")
    p.add_argument("--recover-timeout", type=float, default=10.0, help="s a new leader collects logs (10)")
    p.add_argument("--elect-stagger", type=float, default=1.0,
                   help="s between the tokens' election attempts when there is no leader (1)")
    args = p.parse_args()
    bad = [n for n, ok in (("--port", 0 < args.port < 65536), ("--agent-interval", 0.05 <= args.agent_interval <= 60),
                           ("--probe-interval", 0.1 <= args.probe_interval <= 60),
                           ("--probe-failures", 1 <= args.probe_failures <= 100),
                           ("--heartbeat-ms", 50 <= args.heartbeat_ms <= 60000),
                           ("--write-timeout", 0.1 <= args.write_timeout <= 600),
                           ("--recover-timeout", 1 <= args.recover_timeout <= 600),
                           ("--elect-stagger", 0 <= args.elect_stagger <= 60)) if not ok]
    if bad:
        print(f"counter: out of range: {', '.join(bad)} (see --help)", file=sys.stderr)
        return 2
    counter = Counter(args)
    Handler.counter = counter
    try:
        server = Server((args.listen, args.port), Handler)
    except OSError as e:
        print(f"counter: cannot listen on {args.listen}:{args.port}: {e}", file=sys.stderr)
        return 2
    log(f"counter: listening on {args.listen}:{args.port}, agent {counter.agent.sdk.endpoint}")
    for fn in (counter.follow_agent, counter.probe_leader):
        threading.Thread(target=fn, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        counter.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
