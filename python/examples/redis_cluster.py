#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Redis Cluster: CLUSTER MEET every peer when the mesh changes.

Sends CLUSTER MEET <peer> 6379 to the local Redis (--redis HOST:PORT, RESP over TCP,
standard library only) for each peer added; without --apply it prints the commands.
In wireguard mode the peers are overlay addresses; in tls mode gateway URLs, whose
host and port (through the dstack gateway) are used instead. --once prints and exits.

    DSTACK_P2P_CONTROL=/run/dstack-p2p/control.sock ./redis_cluster.py --once
"""
import argparse
import asyncio
import os
import socket
import sys
from typing import List, Set, Tuple
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from dstack_p2p import DStackP2PSDK  # noqa: E402


def node_of(peer: str, port: int) -> Tuple[str, int]:
    if peer.startswith("https://"):
        u = urlsplit(peer)
        return u.hostname or "", u.port or 443
    return peer, port


def resp(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for w in words:
        out.append(f"${len(w.encode())}\r\n{w}\r\n".encode())
    return b"".join(out)


def cluster_meet(redis: str, host: str, port: int) -> str:
    rhost, rport = redis.rsplit(":", 1)
    with socket.create_connection((rhost, int(rport)), timeout=5) as s:
        s.sendall(resp("CLUSTER", "MEET", host, str(port)))
        return s.recv(512).decode(errors="replace").strip()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contract", default=os.environ.get("CLUSTER_CONTRACT"))
    ap.add_argument("--mode", default=None, help="wireguard or tls (default: the agent's)")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--redis", default="127.0.0.1:6379", help="the local Redis")
    ap.add_argument("--apply", action="store_true", help="send CLUSTER MEET (else print it)")
    ap.add_argument("--once", action="store_true", help="print the commands for the current peers and exit")
    args = ap.parse_args()

    sdk = DStackP2PSDK(args.contract, args.mode)
    if not await sdk.register(timeout=120):
        sys.exit("not registered after 120 s")
    met: Set[str] = set()

    def update_redis_cluster(peer_list: List[str]) -> None:
        for peer in peer_list:
            if peer in met:
                continue
            host, port = node_of(peer, args.port)
            line = f"CLUSTER MEET {host} {port}"
            print(f"{line} -> {cluster_meet(args.redis, host, port)}" if args.apply else line, flush=True)
            met.add(peer)
        met.intersection_update(peer_list)

    if args.once:
        update_redis_cluster(await sdk.get_peers())
        return
    await sdk.monitor_peers(update_redis_cluster)


if __name__ == "__main__":
    asyncio.run(main())
