# SPDX-License-Identifier: MIT
"""examples/counter: what other nodes send the counter (appends, prepares) and what Redis
answers redis_follow.py, in process with a stand-in agent; no mesh. The failover itself
is tests/host/test-counter.sh (netns-harness/demo-counter.sh)."""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
from pathlib import Path
from typing import Any, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples/counter" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


counter_mod = load("counter")
redis_follow = load("redis_follow")
from dstack_p2p import Leader, Member, PeersDocument  # noqa: E402  (on the path via counter.py)

LEADER = "10.0.1.1"


def leader(term: int, token: int = 1) -> Leader:
    return Leader(token=token, label=f"node-{token}", instance_id="00" * 20, address=f"10.0.1.{token}", term=term,
                  expiry=0, lease_active=True, votes=0, required=2, is_self=False)


class FakeAgent:
    """Answers leader() like an agent whose contract is at `term` with token 1 leading."""

    def __init__(self, term: int) -> None:
        self.term = term
        self.calls = 0

    def leader(self) -> Optional[Leader]:
        self.calls += 1
        return leader(self.term)


def follower(term: int = 3) -> Any:
    args = argparse.Namespace(port=8080, control="/nonexistent", agent_interval=0.25, probe_interval=1.0,
                              probe_failures=3, heartbeat_ms=500, write_timeout=0.2, recover_timeout=1.0,
                              elect_stagger=1.0)
    c = counter_mod.Counter(args)
    c.agent = FakeAgent(term)
    c.doc = PeersDocument(registered=True, contract="0x" + "00" * 20, mode="wireguard", token=2, address="10.0.1.2",
                          label="node-2", instance_id="11" * 20, generation=1, peers=["10.0.1.1", "10.0.1.3"],
                          members=[Member(1, "node-1", "22" * 20, "10.0.1.1", "10.0.1.1"),
                                   Member(3, "node-3", "33" * 20, "10.0.1.3", "10.0.1.3")],
                          leader=leader(term))
    c.term, c.role = term, "follower"
    return c


def append(c: Any, sender: str, term: int, prev: int, entries: List[list], commit: int, prev_term: int = 0) -> Any:
    return c.on_append(sender, {"term": term, "prev": prev, "prev_term": prev_term, "entries": entries,
                                "commit": commit})


def test_append_only_from_the_contracts_leader_of_that_term():
    c = follower(term=3)
    e = [[3, "a1", "10.0.1.1"], [3, "a2", "10.0.1.3"]]
    assert append(c, "10.0.1.3", 3, 0, e, 2)[0] == 403          # a follower forging an append
    assert append(c, LEADER, 4, 0, e, 2)[0] == 403              # a term the contract has not reached
    assert append(c, LEADER, 2, 0, e, 2)[0] == 403              # an older term
    assert c.log == [] and c.commit == 0
    status, doc = append(c, LEADER, 3, 0, e, 1)
    assert (status, doc["ok"]) == (200, True) and c.log == e and c.commit == 1 and c.accepted_term == 3
    # Promised term 3: once the contract moved on, the old leader's append is refused.
    c.agent.term = 4
    c.doc = PeersDocument(**{**c.doc.__dict__, "leader": leader(4)})
    assert c.on_prepare(LEADER, {"term": 4})[0] == 200 and c.promised == 4
    c.agent.term, c.doc = 3, PeersDocument(**{**c.doc.__dict__, "leader": leader(3)})
    status, doc = append(c, LEADER, 3, 2, [[3, "late", LEADER]], 3, prev_term=3)
    assert status == 409 and doc["term"] == 4 and len(c.log) == 2


def test_append_makes_the_log_a_prefix_of_the_leaders():
    c = follower(term=5)
    old = [[2, "a1", LEADER], [2, "a2", LEADER], [4, "x1", LEADER]]  # x1: never acknowledged
    assert append(c, LEADER, 5, 0, old, 2)[1]["ok"]
    # The new leader's log diverges at index 3: a mismatch at prev 3 gives a hint, then the
    # append from prev 2 replaces x1 and nothing of it remains.
    status, doc = append(c, LEADER, 5, 3, [[5, "b1", LEADER]], 2, prev_term=5)
    assert doc["ok"] is False and doc["length"] == 2
    status, doc = append(c, LEADER, 5, 2, [[5, "b1", LEADER]], 3, prev_term=2)
    assert doc["ok"] and [e[1] for e in c.log] == ["a1", "a2", "b1"] and c.commit == 3
    assert c.ids == {"a1": 0, "a2": 1, "b1": 2}
    # A keep-alive at the leader's end drops a tail the leader does not have.
    c.log.append([4, "stale", LEADER])
    assert append(c, LEADER, 5, 3, [], 3, prev_term=5)[1]["ok"] and len(c.log) == 3


def test_prepare_checks_the_sender_and_answers_the_log():
    c = follower(term=7)
    assert c.on_prepare("10.0.1.3", {"term": 7})[0] == 403
    assert c.on_prepare(LEADER, {"term": 0})[0] == 400
    assert c.on_prepare(LEADER, {"term": True})[0] == 400
    status, doc = c.on_prepare(LEADER, {"term": 7})
    assert status == 200 and doc["accepted_term"] == 0 and doc["log"] == []


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["int", "neg", "big", "str", "bool", "none", "float"] + (["list", "dict"] if depth < 3 else [])
    k = rng.choice(kinds)
    if k == "int":
        return rng.randint(0, 12)
    if k == "neg":
        return -rng.randint(1, 5)
    if k == "big":
        return rng.choice([2 ** 63, 10 ** 30, 8192, 8193])
    if k == "str":
        return rng.choice(["", "a1", "x" * 65, "../x", "10.0.1.1", "\u00e9", "a b"])
    if k == "bool":
        return rng.random() < 0.5
    if k == "none":
        return None
    if k == "float":
        return rng.choice([1.5, float("inf"), -0.0])
    if k == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["term", "prev", "entries", "x"]): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_body(rng: random.Random, term: int, length: int) -> dict:
    body: dict = {"term": term, "prev": rng.randint(0, length + 1), "prev_term": rng.choice([0, term, term - 1]),
                  "entries": [[term, f"r{rng.randint(0, 50)}", LEADER] for _ in range(rng.randint(0, 3))],
                  "commit": rng.randint(0, length + 3)}
    for key in rng.sample(sorted(body), rng.randint(0, 3)):  # spoil some fields
        body[key] = random_value(rng)
    if rng.random() < 0.2:
        body["entries"] = [random_value(rng) for _ in range(rng.randint(0, 3))]
    return body


def test_random_appends_and_prepares_never_break_the_log():
    """5000 random bodies, most of them malformed, from the leader's own address: every one
    answers a status and a JSON object, and the log stays well formed and bounded."""
    rng = random.Random(17)
    c = follower(term=3)
    for _ in range(5000):
        body = random_body(rng, 3, len(c.log))
        fn = c.on_append if rng.random() < 0.85 else c.on_prepare
        status, doc = fn(LEADER, body)
        assert status in (200, 400, 403, 409) and isinstance(doc, dict)
        json.dumps(doc)  # always serialisable
        assert all(counter_mod.valid_entry(e) for e in c.log)
        assert 0 <= c.commit <= len(c.log) <= counter_mod.MAX_LOG
        assert c.ids == {e[1]: i for i, e in enumerate(c.log)} or len(set(e[1] for e in c.log)) < len(c.log)
    assert len(c.log) > 0  # some were well formed


def test_an_increment_without_a_leader_is_not_acknowledged():
    c = follower(term=3)
    c.doc = PeersDocument(**{**c.doc.__dict__, "leader": None})
    status, doc = c.increment("i1", "10.0.1.2", forwarded=False)
    assert status == 503 and doc["ok"] is False and c.log == []


def test_redis_follow_speaks_resp_and_reads_one_bounded_line():
    assert redis_follow.resp("REPLICAOF", "NO", "ONE") == b"*3\r\n$9\r\nREPLICAOF\r\n$2\r\nNO\r\n$3\r\nONE\r\n"

    async def scenario(reply: bytes) -> Any:
        got: List[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got.append(await reader.read(200))
            writer.write(reply)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await redis_follow.redis_command("127.0.0.1", port, "REPLICAOF", "10.0.1.2", "6379"), got
        except OSError as e:
            return e, got
        finally:
            server.close()

    line, got = asyncio.run(scenario(b"+OK\r\n"))
    assert line == "+OK" and got == [redis_follow.resp("REPLICAOF", "10.0.1.2", "6379")]
    line, _ = asyncio.run(scenario(b"-ERR nope\r\n"))
    assert line == "-ERR nope"
    err, _ = asyncio.run(scenario(b"+" + b"x" * 2000 + b"\r\n"))
    assert isinstance(err, OSError)                       # longer than 512 bytes
    err, _ = asyncio.run(scenario(b"+OK"))
    assert isinstance(err, OSError)                       # closed without a full line


@pytest.mark.parametrize("doc_leader,want", [(None, "unset"), ("self", None), ("other", ("10.0.1.1", 6379))])
def test_redis_follow_targets_the_contracts_leader(doc_leader: Optional[str], want: Any):
    f = redis_follow.Follower(argparse.Namespace(redis="127.0.0.1:6379", peer_port=6379, every=5.0))
    lead = None if doc_leader is None else Leader(1, "node-1", "00" * 20, "10.0.1.1", 2, 0, True, 0, 2,
                                                   doc_leader == "self")
    f.on_document(PeersDocument(registered=True, contract="0x" + "00" * 20, mode="wireguard", token=2,
                                address="10.0.1.2", label="node-2", instance_id="11" * 20, generation=1,
                                peers=[], leader=lead))
    assert (f.want if f.known else "unset") == want
