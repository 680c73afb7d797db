# SPDX-License-Identifier: MIT
"""dstack-p2p for apps: peers of a dstack TEE mesh, through the node's agent.

    sdk = DStackP2PSDK("0x5fbd...0aa3", "wireguard")
    await sdk.register()
    peers = await sdk.get_peers()      # ["10.0.1.2", "10.0.1.3"]
    await sdk.monitor_peers(callback)  # now, and on every change

DStackP2PClient is the same without asyncio. Standard library only.
"""
from .sdk import (DEFAULT_ENDPOINT, ENDPOINT_ENV, PROTOCOL_VERSION, ActionForbiddenError, AgentError,
                  AgentUnavailableError, ClusterMismatchError, DStackP2PError, DStackP2PSDK,
                  Leader, Member, OverCapError, PeersDocument, ProtocolError, RateLimitedError,
                  resolve_endpoint)
from .files import write_atomically
from .sync import DStackP2PClient

__all__ = [
    "DStackP2PSDK", "DStackP2PClient", "PeersDocument", "Member", "Leader",
    "DStackP2PError", "AgentUnavailableError", "AgentError", "ProtocolError",
    "ClusterMismatchError", "ActionForbiddenError", "RateLimitedError", "OverCapError",
    "resolve_endpoint", "PROTOCOL_VERSION", "ENDPOINT_ENV",
    "DEFAULT_ENDPOINT", "write_atomically",
]
