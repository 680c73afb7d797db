# SPDX-License-Identifier: MIT
"""The Python SDK against a live 3-node harness mesh: what it reports is checked against
`cast call` (the contract) and `wg show` (the devices). Tests run in file order on one mesh."""
from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Callable, List

import pytest

from dstack_p2p import (AgentUnavailableError, ClusterMismatchError, DStackP2PClient, DStackP2PSDK,
                        PeersDocument)


def addr(token: int) -> str:
    return f"10.0.1.{token}"


def wait_until(pred: Callable[[], bool], bound: float = 90.0) -> bool:
    """Poll pred until it holds; the bound only stops a hung test, it asserts nothing on time."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def raw_request(path: str, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def test_register_and_get_peers_match_the_devices(mesh):
    sdk = DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(1))
    assert asyncio.run(sdk.register(timeout=60)) is True
    peers = asyncio.run(sdk.get_peers())
    assert sorted(peers) == sorted(addr(mesh.tokens[i]) for i in (2, 3))
    assert sorted(peers) == mesh.wg_allowed(1)


def test_document_names_this_node_and_labels_from_the_contract(mesh):
    sdk = DStackP2PSDK(endpoint=mesh.control(2))

    def labelled() -> bool:  # labels are read from the contract after the first sync
        doc = asyncio.run(sdk.document())
        return doc.label != "" and all(m.label for m in doc.members)

    wait_until(labelled)
    d: PeersDocument = asyncio.run(sdk.document())
    assert d.token == mesh.tokens[2]
    assert d.address == addr(mesh.tokens[2])
    assert d.label == json.loads(mesh.call("labelOf(uint256)(string)", str(mesh.tokens[2])))
    assert d.label == "node-2"
    for m in d.members:
        assert m.label == json.loads(mesh.call("labelOf(uint256)(string)", str(m.token)))
        assert m.address == addr(m.token) == m.connect
    assert sorted(m.token for m in d.members) == sorted(mesh.tokens[i] for i in (1, 3))


def test_endpoint_from_the_environment_and_sync_facade(mesh, monkeypatch):
    monkeypatch.setenv("DSTACK_P2P_CONTROL", mesh.control(3))
    client = DStackP2PClient(mesh.contract, "wireguard")
    assert client.sdk.endpoint == mesh.control(3)
    assert client.register(timeout=30) is True
    assert sorted(client.get_peers()) == mesh.wg_allowed(3)


def test_another_cluster_or_mode_is_refused(mesh):
    with pytest.raises(ClusterMismatchError):
        asyncio.run(DStackP2PSDK("0x" + "ab" * 20, None, mesh.control(1)).get_peers())
    with pytest.raises(ClusterMismatchError):
        asyncio.run(DStackP2PSDK(mesh.contract, "tls", mesh.control(1)).register(timeout=1))
    with pytest.raises(ValueError):
        DStackP2PSDK("0x123", "wireguard")


def test_no_agent_is_a_clear_error(mesh, tmp_path):
    with pytest.raises(AgentUnavailableError):
        asyncio.run(DStackP2PSDK(endpoint=str(tmp_path / "none.sock")).register(timeout=0.5))


def test_protocol_versions(mesh):
    ok = raw_request(mesh.control(1), b'{"version":1,"request":"peers"}\n')
    assert ok["version"] == 1 and ok["registered"] is True
    bad = raw_request(mesh.control(1), b'{"version":2,"request":"peers"}\n')
    assert bad["error"]["code"] == "unsupported_version"
    assert bad["error"]["supported"] == [1]
    unknown = raw_request(mesh.control(1), b"launch\n")
    assert unknown["error"]["code"] == "unknown_request"
    status = raw_request(mesh.control(1), b"status\n")
    assert status["version"] == 1 and status["token"] == mesh.tokens[1]


def test_monitor_sees_a_join_a_burn_and_an_agent_restart(mesh):
    """One monitor on node 1 the whole time: a node joins, a token is burnt, node 1's agent
    restarts, and a change after the restart still arrives."""
    lists: List[List[str]] = []
    docs: List[PeersDocument] = []
    sdk = DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(1), timeout=5)

    async def on_peers(peers: List[str]) -> None:  # an async callback
        lists.append(sorted(peers))

    def on_document(d: PeersDocument) -> None:  # a plain one
        docs.append(d)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        monitors = asyncio.gather(sdk.monitor_peers(on_peers, stop, reconnect_delay=0.2),
                                  sdk.monitor(on_document, stop, reconnect_delay=0.2))

        async def until(pred: Callable[[], bool]) -> None:
            ok = await loop.run_in_executor(None, wait_until, pred)
            assert ok

        base = sorted(addr(mesh.tokens[i]) for i in (2, 3))
        await until(lambda: bool(lists) and lists[-1] == base)
        assert lists[0] == base  # the current list comes first

        t4 = await loop.run_in_executor(None, mesh.add, 4)
        joined = sorted(base + [addr(t4)])
        await until(lambda: lists[-1] == joined)
        await until(lambda: any(addr(t4) in d.added for d in docs))

        await loop.run_in_executor(None, mesh.do, "burn 2")
        burnt = sorted(addr(mesh.tokens[i]) for i in (3, 4))
        await until(lambda: lists[-1] == burnt)
        await until(lambda: any(addr(mesh.tokens[2]) in d.removed for d in docs))
        assert json.loads(mesh.call("instanceIsRegistered(address)(bool)",
                                    "0x" + docs[-1].members[0].instance_id)) is True

        # The agent restarts under the monitor: its generation starts over, and the
        # monitor follows the new agent (a later burn arrives).
        gen_before = docs[-1].generation
        await loop.run_in_executor(None, mesh.do, "stop 1")
        await loop.run_in_executor(None, mesh.do, "start 1")
        await until(lambda: docs[-1].generation < gen_before)
        await loop.run_in_executor(None, mesh.do, "burn 4")
        await until(lambda: lists[-1] == [addr(mesh.tokens[3])])
        assert lists[-1] == mesh.wg_allowed(1) or await loop.run_in_executor(
            None, wait_until, lambda: mesh.wg_allowed(1) == lists[-1])

        stop.set()
        await monitors

    asyncio.run(scenario())
    # Every list the callback saw was a real change (no repeats in a row).
    assert all(a != b for a, b in zip(lists, lists[1:]))


def test_leader_elect_heartbeat_and_vote_move_the_leader_on_chain(mesh):
    """Node 1 takes the lease, another node is refused it, node 1 extends it, and
    requiredVotes() votes of no confidence of the others move it to the next token.
    Every step is checked with `cast call` on the contract."""
    from dstack_p2p import AgentError

    s1 = DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(1))
    d1 = asyncio.run(s1.document())
    live = {1: mesh.tokens[1]}
    live.update({i: t for i, t in mesh.tokens.items() if any(m.token == t for m in d1.members)})
    others = sorted(i for i in live if i != 1)
    sdk = {i: DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(i)) for i in live}
    inst = {i: "0x" + asyncio.run(sdk[i].document()).instance_id for i in live}
    other = others[0]

    def on_chain() -> str:
        return mesh.call("currentLeader()(address)").lower()

    def expiry() -> int:
        return int(mesh.call("leadershipExpiry()(uint64)").split()[0])

    assert on_chain() == "0x" + "0" * 40
    assert asyncio.run(s1.leader()) is None

    reply = asyncio.run(s1.elect())
    assert reply["tx"].startswith("0x") and reply["relayed"] is False
    assert on_chain() == inst[1]

    # The action is answered once sent (state "pending"): the agent learns the new leader
    # at its next read of the chain, not before it answers.
    def node_1_sees_itself_lead() -> bool:
        lead = asyncio.run(s1.leader())
        return lead is not None and lead.token == mesh.tokens[1] and lead.is_self and lead.label == "node-1"

    assert wait_until(node_1_sees_itself_lead), asyncio.run(s1.leader())
    def other_sees_node_1_lead() -> bool:
        # One read per try: the other node's agent learns the leader at its next block.
        seen = asyncio.run(sdk[other].leader())
        return seen is not None and seen.token == mesh.tokens[1] and not seen.is_self

    assert wait_until(other_sees_node_1_lead)

    # The lease is held: another node cannot take it; the contract's reason comes back.
    with pytest.raises(AgentError) as refused:
        asyncio.run(sdk[other].elect())
    assert refused.value.code == "refused" and "LeaderStillActive" in refused.value.message
    assert on_chain() == inst[1]

    # Each agent spaces its actions (P2P_ACTION_SPACING_MS, 2 s; a refused one counts too):
    # a caller that asks too soon is told so and asks again, as an app would.
    from dstack_p2p import RateLimitedError

    def spaced(action):
        for _ in range(3):
            try:
                return asyncio.run(action())
            except RateLimitedError:
                time.sleep(2.1)
        return asyncio.run(action())

    mesh.cast("rpc", "evm_increaseTime", "30")
    before = expiry()
    spaced(s1.heartbeat)
    assert expiry() > before
    with pytest.raises(AgentError) as not_leader:
        spaced(sdk[other].heartbeat)
    assert "NotCurrentLeader" in not_leader.value.message

    # f+1 votes of no confidence: the next registered token after the leader's takes over.
    required = int(mesh.call("requiredVotes()(uint256)").split()[0])
    assert 1 <= required <= len(others)
    for i in others[:required]:
        assert on_chain() == inst[1]
        spaced(sdk[i].vote_no_confidence)
    above = sorted(t for i, t in live.items() if t > mesh.tokens[1])
    successor = above[0] if above else min(t for i, t in live.items() if i != 1)
    node = next(i for i, t in live.items() if t == successor)
    assert on_chain() == inst[node]
    assert wait_until(lambda: getattr(asyncio.run(s1.leader()), "token", None) == successor)
    d = asyncio.run(s1.document())
    assert d.leader is not None and d.leader.token == successor and not d.leader.is_self

    # The CLI asks the same agent.
    from conftest import ROOT
    import subprocess
    out = subprocess.run([str(ROOT / "build/dstack-p2p"), "leader", "--control", mesh.control(1)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"leader: token {successor} (node-{node}) {addr(successor)}"), out.stdout


def test_on_change_environment_and_hosts_file(mesh):
    """The on-change command runs at once with the initial list, then on every change of
    the list and of the leader, with our address, token, label, the change and the leader
    in its environment; the hosts file names every node by its token's label."""
    from dstack_p2p import AgentError  # noqa: F401

    def read_env(gen: int, event: str) -> dict:
        path = mesh.run / f"env1.{gen}-{event}"
        try:
            return dict(line.split("=", 1) for line in path.read_text().splitlines())
        except (FileNotFoundError, ValueError):  # not there yet, or being written
            return {}

    def env(gen: int, event: str, **want: str) -> dict:
        """The on-change environment of that run; with want, of the run that saw those
        values (a later run of the same generation and event rewrites the file: two
        leader changes while the list stays the same)."""
        assert wait_until(lambda: read_env(gen, event) and
                          all(read_env(gen, event).get(k) == v for k, v in want.items())), \
            f"no on-change run for generation {gen} ({event}) with {want}: {read_env(gen, event)}"
        return read_env(gen, event)

    s1 = DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(1))
    before = asyncio.run(s1.document())
    others = sorted(m.token for m in before.members)
    mesh.do("appstart 1")
    assert asyncio.run(s1.register(timeout=60))
    first = env(1, "peers")
    t1 = mesh.tokens[1]
    assert first["DSTACK_P2P_ADDRESS"] == addr(t1) and first["DSTACK_P2P_TOKEN"] == str(t1)
    assert first["DSTACK_P2P_LABEL"] == "node-1" and first["DSTACK_P2P_GENERATION"] == "1"
    assert sorted(first["DSTACK_P2P_PEERS"].split()) == sorted(addr(t) for t in others)
    assert sorted(first["DSTACK_P2P_ADDED"].split()) == sorted(addr(t) for t in others)
    assert first["DSTACK_P2P_REMOVED"] == ""
    leader_token = int(mesh.call("currentLeaderTokenId()(uint256)").split()[0])
    assert first["DSTACK_P2P_LEADER_TOKEN"] == str(leader_token)
    assert first["DSTACK_P2P_LEADER"] == (addr(leader_token) if leader_token else "")
    assert first["DSTACK_P2P_IS_LEADER"] == str(int(leader_token == t1))

    hosts = sorted((mesh.run / "hosts1").read_text().splitlines())
    want = sorted([f"{addr(t1)} node-1"] + [
        f"{addr(t)} {json.loads(mesh.call('labelOf(uint256)(string)', str(t)))}" for t in others])
    assert hosts == want

    t5 = mesh.add(5)
    joined = env(2, "peers")
    assert joined["DSTACK_P2P_ADDED"] == addr(t5) and joined["DSTACK_P2P_REMOVED"] == ""
    assert f"{addr(t5)} node-5" in (mesh.run / "hosts1").read_text().splitlines()
    mesh.do("burn 5")
    burnt = env(3, "peers")
    assert burnt["DSTACK_P2P_REMOVED"] == addr(t5) and burnt["DSTACK_P2P_ADDED"] == ""
    assert f"{addr(t5)} node-5" not in (mesh.run / "hosts1").read_text().splitlines()

    # A change of leader (the list unchanged) runs the command too, with DSTACK_P2P_EVENT=leader.
    lead = asyncio.run(s1.leader())
    if lead is None:
        asyncio.run(s1.elect())
    elif not lead.is_self and int(mesh.call("requiredVotes()(uint256)").split()[0]) == 1:
        asyncio.run(s1.vote_no_confidence())
    else:
        return
    now = int(mesh.call("currentLeaderTokenId()(uint256)").split()[0])
    changed = env(3, "leader", DSTACK_P2P_LEADER_TOKEN=str(now))
    assert changed["DSTACK_P2P_LEADER_TOKEN"] == str(now) and changed["DSTACK_P2P_LEADER"] == addr(now)
    assert changed["DSTACK_P2P_IS_LEADER"] == str(int(now == t1))
    assert changed["DSTACK_P2P_ADDED"] == "" and changed["DSTACK_P2P_REMOVED"] == addr(t5)


def test_seed_examples_run_against_the_mesh(mesh, tmp_path):
    """python/examples: the seed's Patroni, Redis and Kafka snippets as runnable scripts."""
    import subprocess
    import threading
    from conftest import ROOT

    ex = ROOT / "python/examples"
    env = {"PATH": "/usr/bin:/bin", "DSTACK_P2P_CONTROL": mesh.control(1), "CLUSTER_CONTRACT": mesh.contract}
    peers = mesh.wg_allowed(1)
    assert peers

    def run(*args: str) -> str:
        out = subprocess.run(["/usr/bin/python3", *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    members = json.loads(run(str(ex / "patroni_members.py"), "--once"))["members"]
    assert sorted(members) == sorted(f"postgres://postgres@{p}:5432/postgres" for p in peers)
    line = run(str(ex / "kafka_bootstrap.py"), "--once").strip()
    assert sorted(line.split("=", 1)[1].split(",")) == sorted(f"{p}:9092" for p in peers)

    # Redis: a stand-in server on loopback records what the example sends.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    got: List[bytes] = []

    def serve() -> None:
        srv.settimeout(30)
        for _ in peers:
            c, _ = srv.accept()
            with c:
                got.append(c.recv(512))
                c.sendall(b"+OK\r\n")

    t = threading.Thread(target=serve)
    t.start()
    out = run(str(ex / "redis_cluster.py"), "--once", "--apply", "--redis", f"127.0.0.1:{srv.getsockname()[1]}")
    t.join(30)
    srv.close()
    assert sorted(out.splitlines()) == sorted(f"CLUSTER MEET {p} 6379 -> +OK" for p in peers)
    assert sorted(got) == sorted(f"*4\r\n$7\r\nCLUSTER\r\n$4\r\nMEET\r\n${len(p)}\r\n{p}\r\n$4\r\n6379\r\n".encode()
                                 for p in peers)

    # Monitor mode: the Kafka script writes the file now and keeps running.
    props = tmp_path / "client.properties"
    props.write_text("security.protocol=PLAINTEXT\n")
    p = subprocess.Popen(["/usr/bin/python3", str(ex / "kafka_bootstrap.py"), "--out", str(props)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: "bootstrap.servers=" in props.read_text(), 60)
    finally:
        p.terminate()
        p.wait(30)
    lines = props.read_text().splitlines()
    assert "security.protocol=PLAINTEXT" in lines
    assert f"bootstrap.servers={','.join(f'{x}:9092' for x in sorted(peers, key=lambda a: int(a.rsplit('.', 1)[1])))}" in lines


def test_pip_installs_the_package_without_pypi(tmp_path):
    """pip install ./python works offline (Debian's pip and setuptools, no index)."""
    import subprocess
    from conftest import ROOT

    src = tmp_path / "src"
    import shutil
    shutil.copytree(ROOT / "python", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    out = subprocess.run(["/usr/bin/python3", "-m", "pip", "install", "--no-build-isolation", "--no-index",
                          "--target", str(tmp_path / "site"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    check = subprocess.run(["/usr/bin/python3", "-c", "import dstack_p2p, sys; print(dstack_p2p.__file__); "
                            "print(dstack_p2p.DStackP2PSDK.register.__doc__.split(chr(10))[0])"],
                           capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
                           env={"PYTHONPATH": str(tmp_path / "site")})
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(str(tmp_path / "site" / "dstack_p2p"))
    assert (tmp_path / "site" / "dstack_p2p" / "py.typed").exists()


def test_leader_call_through_the_relayer(mesh):
    """A node without a funded key: its agent hands the signed call to the relayer, which
    pays; the contract checks the node key's signature, not the sender."""
    mesh.do("relaystart 3")
    s3 = DStackP2PSDK(mesh.contract, "wireguard", endpoint=mesh.control(3))
    assert asyncio.run(s3.register(timeout=60))
    d3 = asyncio.run(s3.document())
    live = [d3.token] + [m.token for m in d3.members]
    leader = int(mesh.call("currentLeaderTokenId()(uint256)").split()[0])
    required = int(mesh.call("requiredVotes()(uint256)").split()[0])
    if leader == 0:
        reply = asyncio.run(s3.elect())
    elif leader == d3.token:
        mesh.cast("rpc", "evm_increaseTime", "30")
        before = int(mesh.call("leadershipExpiry()(uint64)").split()[0])
        reply = asyncio.run(s3.heartbeat())
        assert int(mesh.call("leadershipExpiry()(uint64)").split()[0]) > before
    else:
        assert required == 1 and len(live) == 2, "the test expects nodes 1 and 3 left"
        reply = asyncio.run(s3.vote_no_confidence())
    # The relayer names its transaction; the agent's reply carries it (pending until mined).
    assert reply["relayed"] is True and reply["tx"].startswith("0x") and len(reply["tx"]) == 66
    assert reply["state"] == "pending"
    assert mesh.call("currentLeader()(address)").lower() == "0x" + d3.instance_id
    nonce = int(mesh.call("leaderActionNonce(uint256)(uint256)", str(d3.token)).split()[0])
    assert nonce >= 1
