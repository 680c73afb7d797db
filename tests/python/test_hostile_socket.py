# SPDX-License-Identifier: MIT
"""The SDK against a hostile control socket (no mesh needed): a silent agent, one that
drips its document, and replies that do not parse (deep nesting included) end in the
SDK's own errors within the SDK's bounds, never a hang or a RecursionError."""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from dstack_p2p import (ActionForbiddenError, AgentUnavailableError, DStackP2PSDK, OverCapError,
                        ProtocolError, RateLimitedError)

DOC = (b'{"version":1,"registered":true,"contract":"0x' + b"1" * 40 + b'","mode":"wireguard",'
       b'"token":1,"peers":[]}\n')


class FakeAgent:
    """A unix socket that answers every connection with `behave(conn)` on a thread."""

    def __init__(self, tmp_path, behave) -> None:
        self.path = str(tmp_path / "ctl.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(8)
        self.behave = behave
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        try:
            conn.recv(1024)
            self.behave(conn)
        except OSError:
            pass
        finally:
            time.sleep(0.1)
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.srv.close()
        os.unlink(self.path)


async def documents(sdk: DStackP2PSDK, n: int, **kw):
    async for _ in sdk.watch(**kw):
        n -= 1
        if not n:
            return


def run_watch(tmp_path, behave, n=1, **kw):
    agent = FakeAgent(tmp_path, behave)
    try:
        t0 = time.monotonic()
        with pytest.raises(Exception) as e:
            asyncio.run(asyncio.wait_for(documents(DStackP2PSDK(endpoint=agent.path), n, **kw), 10))
        return e, time.monotonic() - t0
    finally:
        agent.close()


def test_watch_gives_up_on_a_silent_agent(tmp_path):
    e, took = run_watch(tmp_path, lambda c: time.sleep(5), first_timeout=0.5)
    assert e.type is AgentUnavailableError and "first document" in str(e.value)
    assert took < 3


def test_watch_gives_up_on_a_dripping_agent(tmp_path):
    def drip(conn):
        conn.sendall(DOC)  # the first document, whole
        for b in DOC[:40]:  # then one byte every 0.2 s, never a whole line
            conn.sendall(bytes([b]))
            time.sleep(0.2)

    e, took = run_watch(tmp_path, drip, n=2, first_timeout=2, read_timeout=0.5)
    assert e.type is AgentUnavailableError and "in time" in str(e.value)
    assert took < 4


@pytest.mark.parametrize("reply", [b"[" * 100000 + b"\n", b"{\"version\":1,\"peers\":" + b"[" * 50000 + b"\n",
                                   b"\xff\xfe\n", b"not json\n", b"[1,2]\n"],
                         ids=["deep-array", "deep-member", "not-utf8", "not-json", "not-an-object"])
def test_watch_maps_every_parse_failure_to_protocol_error(tmp_path, reply):
    e, _ = run_watch(tmp_path, lambda c: c.sendall(reply))
    assert e.type is ProtocolError


def test_request_maps_deep_nesting_and_action_refusals(tmp_path):
    replies = iter([b"[" * 100000 + b"\n",
                    b'{"version":1,"error":{"code":"forbidden","message":"uid 65534 may read"}}\n',
                    b'{"version":1,"error":{"code":"rate_limited","message":"try again in 900 ms"}}\n',
                    b'{"version":1,"error":{"code":"over_cap","message":"max_cost"}}\n'])
    agent = FakeAgent(tmp_path, lambda c: c.sendall(next(replies)))
    try:
        sdk = DStackP2PSDK(endpoint=agent.path)
        with pytest.raises(ProtocolError):
            asyncio.run(sdk.status())
        with pytest.raises(ActionForbiddenError) as forbidden:
            asyncio.run(sdk.elect())
        assert forbidden.value.code == "forbidden"
        with pytest.raises(RateLimitedError):
            asyncio.run(sdk.heartbeat())
        with pytest.raises(OverCapError):
            asyncio.run(sdk.vote_no_confidence())
    finally:
        agent.close()
