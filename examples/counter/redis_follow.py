#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Point this node's Redis at the contract's leader: an off-the-shelf Redis primary/replica
over the mesh, configured only from what the node's agent publishes (no change to Redis,
no client library).

- This node is the leader: ``REPLICAOF NO ONE`` (it is the primary).
- Another node is the leader: ``REPLICAOF 10.0.1.<leader> <port>`` (a replica of it).
- No leader: Redis is left as it is.

It follows the agent's peers documents (SDK ``monitor``: the leader's changes come as
they happen) and re-asserts the setting every --every seconds, so a restarted Redis is
set again. REPLICAOF to the master a replica already follows is a no-op for Redis.
Only single-line replies (+OK / -ERR) are read, each at most 512 bytes.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))  # the SDK from the checkout
from dstack_p2p import DStackP2PError, DStackP2PSDK, PeersDocument  # noqa: E402

Target = Optional[Tuple[str, int]]  # None: primary


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} redis-follow: {msg}", flush=True)


def resp(*words: str) -> bytes:
    """A Redis command as a RESP array of bulk strings."""
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        b = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def redis_command(host: str, port: int, *words: str, timeout: float = 2.0) -> str:
    """Send one command, return its one-line reply ("+OK ..."); OSError when Redis does not answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=512), timeout)
    except asyncio.TimeoutError:
        raise OSError(f"redis {host}:{port}: no connection in {timeout} s") from None
    try:
        writer.write(resp(*words))
        await asyncio.wait_for(writer.drain(), timeout)
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (asyncio.TimeoutError, ValueError) as e:
        raise OSError(f"redis {host}:{port}: {e or 'timed out'}") from None
    finally:
        writer.close()
    if not line.endswith(b"\r\n"):
        raise OSError(f"redis {host}:{port}: closed without a reply")
    return line[:-2].decode("ascii", "replace")


class Follower:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host, port = args.redis.rsplit(":", 1)
        self.port = int(port)
        self.want: Optional[Target] = None  # unset until the agent names a leader
        self.known = False
        self.applied: Optional[Target] = None
        self.applied_at = 0.0
        self.changed = asyncio.Event()

    def on_document(self, d: PeersDocument) -> None:
        lead = d.leader
        if lead is None or not lead.address:
            return
        want: Target = None if lead.is_self else (lead.address, self.args.peer_port)
        if not self.known or want != self.want:
            log(f"leader token {lead.token} ({lead.address}, term {lead.term}): this node is "
                + ("the primary" if want is None else f"a replica of {lead.address}:{self.args.peer_port}"))
            self.want, self.known = want, True
            self.changed.set()

    async def apply(self) -> None:
        words = ("REPLICAOF", "NO", "ONE") if self.want is None else \
            ("REPLICAOF", self.want[0], str(self.want[1]))
        try:
            reply = await redis_command(self.host, self.port, *words)
        except OSError as e:
            log(str(e))
            return
        if reply.startswith("+"):
            if self.applied != self.want or not self.applied_at:
                log(f"{' '.join(words)}: {reply[1:]}")
            self.applied, self.applied_at = self.want, time.monotonic()
        else:
            log(f"{' '.join(words)}: refused: {reply[:200]}")

    async def keep_applied(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.changed.wait(), self.args.every)
            except asyncio.TimeoutError:
                pass
            self.changed.clear()
            if self.known:
                await self.apply()


async def run(args: argparse.Namespace) -> int:
    sdk = DStackP2PSDK(endpoint=args.control)
    f = Follower(args)
    if args.once:
        try:
            f.on_document(await sdk.document())
        except DStackP2PError as e:
            log(str(e))
            return 1
        if f.known:
            await f.apply()
        return 0 if f.applied_at else 1
    await asyncio.gather(sdk.monitor(f.on_document), f.keep_applied())
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description="Make this node's Redis the primary when it leads, else a replica of the leader.")
    p.add_argument("--control", default=None, help="the agent's control socket ($DSTACK_P2P_CONTROL)")
    p.add_argument("--redis", default="127.0.0.1:6379", help="this node's Redis, HOST:PORT (127.0.0.1:6379)")
    p.add_argument("--peer-port", type=int, default=6379, help="the Redis port on the other nodes (6379)")
    p.add_argument("--every", type=float, default=5.0, help="s between re-assertions (5)")
    p.add_argument("--once", action="store_true", help="apply the current leader once and exit")
    args = p.parse_args()
    host, _, port = args.redis.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or not 0 < args.peer_port < 65536 \
            or not 0.1 <= args.every <= 3600:
        print("redis-follow: --redis HOST:PORT, --peer-port 1..65535, --every 0.1..3600", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
