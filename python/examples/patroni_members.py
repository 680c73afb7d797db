#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Patroni: keep a Patroni/PostgreSQL member list in step with the mesh.

On every change the peers become postgres:// URLs, written atomically to a JSON file that
a Patroni callback or a config template reads; --reload-cmd runs after each write (e.g.
"patronictl reload mycluster --force"). --once prints the current list and exits.

    DSTACK_P2P_CONTROL=/run/dstack-p2p/control.sock ./patroni_members.py --once
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from dstack_p2p import DStackP2PSDK, write_atomically  # noqa: E402


def members(peers: List[str]) -> List[str]:
    return [f"postgres://postgres@{peer}:5432/postgres" for peer in peers]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contract", default=os.environ.get("CLUSTER_CONTRACT"))
    ap.add_argument("--mode", default="wireguard")
    ap.add_argument("--out", default="patroni-members.json")
    ap.add_argument("--reload-cmd", default="")
    ap.add_argument("--once", action="store_true", help="print the member list and exit")
    args = ap.parse_args()

    sdk = DStackP2PSDK(args.contract, args.mode)
    if not await sdk.register(timeout=120):
        sys.exit("not registered after 120 s")
    if args.once:
        print(json.dumps({"members": members(await sdk.get_peers())}))
        return

    async def update_patroni_cluster(peer_list: List[str]) -> None:
        write_atomically(args.out, json.dumps({"members": members(peer_list)}, indent=2) + "\n")
        print(f"{len(peer_list)} members -> {args.out}", flush=True)
        if args.reload_cmd:
            subprocess.run(args.reload_cmd, shell=True, check=False)

    await sdk.monitor_peers(update_patroni_cluster)


if __name__ == "__main__":
    asyncio.run(main())
