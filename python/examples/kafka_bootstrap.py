#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Kafka: keep bootstrap.servers in a client properties file current.

On every change the peers become host:9092 entries of bootstrap.servers in --out
(other lines of the file are kept), written atomically. --once prints the line and exits.

    DSTACK_P2P_CONTROL=/run/dstack-p2p/control.sock ./kafka_bootstrap.py --once
"""
import argparse
import asyncio
import os
import sys
from typing import Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from dstack_p2p import DStackP2PSDK, write_atomically  # noqa: E402


def bootstrap(peers: List[str], port: int) -> str:
    return ",".join(f"{peer}:{port}" for peer in peers)


def update_properties(path: str, kafka_config: Dict[str, str]) -> None:
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = [line.rstrip("\n") for line in f if not line.startswith("bootstrap.servers=")]
    lines += [f"{k}={v}" for k, v in kafka_config.items()]
    write_atomically(path, "\n".join(lines) + "\n")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contract", default=os.environ.get("CLUSTER_CONTRACT"))
    ap.add_argument("--mode", default="wireguard")
    ap.add_argument("--port", type=int, default=9092)
    ap.add_argument("--out", default="client.properties")
    ap.add_argument("--once", action="store_true", help="print bootstrap.servers and exit")
    args = ap.parse_args()

    sdk = DStackP2PSDK(args.contract, args.mode)
    if not await sdk.register(timeout=120):
        sys.exit("not registered after 120 s")
    if args.once:
        print(f"bootstrap.servers={bootstrap(await sdk.get_peers(), args.port)}")
        return
    kafka_config: Dict[str, str] = {}

    async def update_kafka_config(peer_list: List[str]) -> None:
        kafka_config["bootstrap.servers"] = bootstrap(peer_list, args.port)
        update_properties(args.out, kafka_config)
        print(f"bootstrap.servers={kafka_config['bootstrap.servers']}", flush=True)

    await sdk.monitor_peers(update_kafka_config)


if __name__ == "__main__":
    asyncio.run(main())
