# SPDX-License-Identifier: MIT
"""A blocking facade over DStackP2PSDK for code without an event loop."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Dict, List, Optional

from .sdk import DStackP2PSDK, Leader, Member, PeersDocument


class DStackP2PClient:
    """The same calls as DStackP2PSDK, blocking. Each call runs its own event loop, so
    do not use it from inside a running loop (use DStackP2PSDK there).
    """

    def __init__(self, contract: Optional[str] = None, mode: Optional[str] = None,
                 endpoint: Optional[str] = None, timeout: float = 5.0, *,
                 nft_contract_address: Optional[str] = None) -> None:
        self.sdk = DStackP2PSDK(contract, mode, endpoint, timeout, nft_contract_address=nft_contract_address)

    def register(self, timeout: float = 60.0) -> bool:
        """See DStackP2PSDK.register."""
        return asyncio.run(self.sdk.register(timeout))

    def get_peers(self) -> List[str]:
        """See DStackP2PSDK.get_peers."""
        return asyncio.run(self.sdk.get_peers())

    def get_members(self) -> List[Member]:
        """See DStackP2PSDK.get_members."""
        return asyncio.run(self.sdk.get_members())

    def document(self) -> PeersDocument:
        """See DStackP2PSDK.document."""
        return asyncio.run(self.sdk.document())

    def status(self) -> Dict[str, Any]:
        """See DStackP2PSDK.status."""
        return asyncio.run(self.sdk.status())

    def leader(self) -> Optional[Leader]:
        """See DStackP2PSDK.leader."""
        return asyncio.run(self.sdk.leader())

    def elect(self) -> Dict[str, Any]:
        """See DStackP2PSDK.elect."""
        return asyncio.run(self.sdk.elect())

    def heartbeat(self) -> Dict[str, Any]:
        """See DStackP2PSDK.heartbeat."""
        return asyncio.run(self.sdk.heartbeat())

    def vote_no_confidence(self, target: Optional[int] = None, withdraw: bool = False) -> Dict[str, Any]:
        """See DStackP2PSDK.vote_no_confidence."""
        return asyncio.run(self.sdk.vote_no_confidence(target, withdraw))

    def actions(self) -> List[Dict[str, Any]]:
        """See DStackP2PSDK.actions."""
        return asyncio.run(self.sdk.actions())

    def monitor_peers(self, callback: Callable[[List[str]], Any],
                      stop: Optional[threading.Event] = None, reconnect_delay: float = 1.0) -> None:
        """Block, calling ``callback(peers)`` now and on every change, until ``stop`` is set
        (checked every 0.1 s) or KeyboardInterrupt.
        """
        async def run() -> None:
            done = asyncio.Event()

            async def watch_stop() -> None:
                while stop is not None and not stop.is_set():
                    await asyncio.sleep(0.1)
                if stop is not None:
                    done.set()

            watcher = asyncio.ensure_future(watch_stop())
            try:
                await self.sdk.monitor_peers(callback, done, reconnect_delay)
            finally:
                watcher.cancel()

        asyncio.run(run())
