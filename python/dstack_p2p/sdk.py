# SPDX-License-Identifier: MIT
"""The async client of the node's dstack-p2p agent (control protocol v1).

The agent holds the node's keys and the WireGuard interface; this module only talks to
its control socket: one request line, one JSON reply line; ``watch`` streams a peers
document per line. docs/control-protocol.md is the wire reference.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Union

PROTOCOL_VERSION = 1
#: Environment variable naming the control socket (the agent reads the same one).
ENDPOINT_ENV = "DSTACK_P2P_CONTROL"
#: Where the agent listens when nothing else is said.
DEFAULT_ENDPOINT = "/run/dstack-p2p/control.sock"
#: Longest reply line accepted; the agent's own bound is the same.
MAX_REPLY_BYTES = 1 << 20
MODES = ("wireguard", "tls")
#: Seconds a leader call may take: the agent answers once the transaction is sent (its
#: RPC calls, or one relayer request of at most 5 s), not mined.
ACTION_TIMEOUT = 15.0
#: Seconds watch() waits for the first document of a connection, and for the rest of a
#: line once its first byte arrived (a silent or dripping agent is not waited for forever).
WATCH_FIRST_TIMEOUT = 10.0
WATCH_READ_TIMEOUT = 5.0

_CONTRACT_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_REQUEST_RE = re.compile(r"^[a-z0-9._-]{1,31}$")

PeersCallback = Callable[[List[str]], Union[None, Awaitable[None]]]
DocumentCallback = Callable[["PeersDocument"], Union[None, Awaitable[None]]]


class DStackP2PError(Exception):
    """Base class of every error this package raises."""


class AgentUnavailableError(DStackP2PError, ConnectionError):
    """No agent answers on the control socket (not running, restarting, wrong path)."""


class ProtocolError(DStackP2PError):
    """The agent's reply is malformed or of another protocol version."""


class AgentError(DStackP2PError):
    """The agent answered with an error object ({"error": {"code", "message"}})."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ActionForbiddenError(AgentError):
    """The agent takes leader actions only from the users its operator allows
    (root, its own user, P2P_CONTROL_ACTION_UID / P2P_CONTROL_ACTION_GID): code ``forbidden``."""


class RateLimitedError(AgentError):
    """Leader actions are spaced and capped per hour (P2P_ACTION_SPACING_MS,
    P2P_ACTION_MAX_PER_HOUR): code ``rate_limited``; the message says when to try again."""


class OverCapError(AgentError):
    """The transaction would exceed one of the agent's caps (named in the message:
    max_fee_per_gas, max_gas, max_cost): code ``over_cap``; nothing was sent."""


_AGENT_ERRORS = {"forbidden": ActionForbiddenError, "rate_limited": RateLimitedError,
                 "over_cap": OverCapError}


class ClusterMismatchError(DStackP2PError):
    """The local agent serves another cluster contract or network mode than asked for."""


@dataclass(frozen=True)
class Member:
    """A verified peer: its token, the token's label (``node-2``) and how to reach it."""

    token: int
    label: str
    instance_id: str
    address: str
    connect: str


@dataclass(frozen=True)
class Leader:
    """The cluster's leader as the contract's election says."""

    token: int
    label: str
    instance_id: str
    address: str
    term: int
    expiry: int
    lease_active: bool
    votes: int
    required: int
    is_self: bool


@dataclass(frozen=True)
class PeersDocument:
    """The agent's peers document: this node, its verified peers, the last change, the leader."""

    registered: bool
    contract: str
    mode: str
    token: int
    address: str
    label: str
    instance_id: str
    generation: int
    peers: List[str]
    members: List[Member] = field(default_factory=list)
    added: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    leader: Optional[Leader] = None


def resolve_endpoint(endpoint: Optional[str] = None) -> str:
    """The control socket path: the argument, else $DSTACK_P2P_CONTROL, else the default.

    The same order as the official dstack SDK's endpoint discovery.
    """
    if endpoint:
        return endpoint
    env = os.environ.get(ENDPOINT_ENV)
    return env if env else DEFAULT_ENDPOINT


def _get(obj: Dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = obj.get(key, default)
    # bool is an int in Python; the agent never sends one for the other.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"the agent's reply: {key!r} is not a {kind.__name__}")
    return value


def _strings(obj: Dict[str, Any], key: str) -> List[str]:
    items = _get(obj, key, list, [])
    if len(items) > 254 or not all(isinstance(s, str) for s in items):
        raise ProtocolError(f"the agent's reply: {key!r} is not a list of at most 254 strings")
    return list(items)


def _check_version(doc: Dict[str, Any]) -> None:
    version = doc.get("version", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"the agent speaks control protocol version {version!r}; this SDK speaks {PROTOCOL_VERSION}")
    err = doc.get("error")
    if err is not None:
        if not isinstance(err, dict):
            raise ProtocolError("the agent's reply: 'error' is not an object")
        code = str(err.get("code", "unknown"))
        raise _AGENT_ERRORS.get(code, AgentError)(code, str(err.get("message", "")))


def parse_leader(value: Any) -> Optional[Leader]:
    """A leader object of a reply, or None for ``null``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError("the agent's reply: 'leader' is not an object")
    return Leader(token=_get(value, "token", int), label=_get(value, "label", str, ""),
                  instance_id=_get(value, "instance_id", str), address=_get(value, "address", str),
                  term=_get(value, "term", int), expiry=_get(value, "expiry", int),
                  lease_active=_get(value, "lease_active", bool), votes=_get(value, "votes", int),
                  required=_get(value, "required", int), is_self=_get(value, "self", bool))


def parse_peers_document(doc: Dict[str, Any]) -> PeersDocument:
    """Check and convert a decoded peers document; ProtocolError when it is malformed."""
    _check_version(doc)
    members = []
    for m in _get(doc, "members", list, []):
        if not isinstance(m, dict):
            raise ProtocolError("the agent's reply: a member is not an object")
        members.append(Member(token=_get(m, "token", int), label=_get(m, "label", str, ""),
                              instance_id=_get(m, "instance_id", str), address=_get(m, "address", str),
                              connect=_get(m, "connect", str)))
    return PeersDocument(
        registered=_get(doc, "registered", bool), contract=_get(doc, "contract", str, ""),
        mode=_get(doc, "mode", str, ""), token=_get(doc, "token", int, 0),
        address=_get(doc, "address", str, ""), label=_get(doc, "label", str, ""),
        instance_id=_get(doc, "instance_id", str, ""), generation=_get(doc, "generation", int, 0),
        peers=_strings(doc, "peers"), members=members, added=_strings(doc, "added"),
        removed=_strings(doc, "removed"), leader=parse_leader(doc.get("leader")))


def _decode_line(line: bytes) -> Dict[str, Any]:
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"the agent's reply is not JSON: {e}") from None
    except RecursionError:
        raise ProtocolError("the agent's reply is nested too deeply to be a control document") from None
    if not isinstance(doc, dict):
        raise ProtocolError("the agent's reply is not a JSON object")
    return doc


async def _call_maybe_async(callback: Callable[..., Any], *args: Any) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class DStackP2PSDK:
    """Peers of this node's dstack-p2p cluster, for apps (async).

    Args:
        contract: the cluster contract (0x + 40 hex digits); None accepts whichever the
            agent serves. Every reply is checked against it.
        mode: ``"wireguard"`` (also ``"wg"``, as the C API and P2P_MODE take it) or
            ``"tls"``; None accepts the agent's.
        endpoint: the agent's control socket; None: $DSTACK_P2P_CONTROL, then
            /run/dstack-p2p/control.sock.
        timeout: seconds one request may take.
        nft_contract_address: the specification's name for ``contract``
            (``DStackP2PSDK(nft_contract_address=..., mode=...)``); give one of the two.

    Nothing is contacted until a method is awaited. Raises ValueError for a malformed
    contract or an unknown mode, TypeError for both contract and nft_contract_address.
    """

    def __init__(self, contract: Optional[str] = None, mode: Optional[str] = None,
                 endpoint: Optional[str] = None, timeout: float = 5.0, *,
                 nft_contract_address: Optional[str] = None) -> None:
        if nft_contract_address is not None:
            if contract is not None:
                raise TypeError("give the cluster contract once: contract or nft_contract_address")
            contract = nft_contract_address
        if mode == "wg":
            mode = "wireguard"
        if contract is not None and not _CONTRACT_RE.match(contract):
            raise ValueError(f"contract {contract!r} is not 0x and 40 hex digits")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.contract = contract.lower() if contract else None
        self.mode = mode
        self.endpoint = resolve_endpoint(endpoint)
        self.timeout = timeout

    # ---- one request -----------------------------------------------------------------

    async def _open(self) -> "tuple[asyncio.StreamReader, asyncio.StreamWriter]":
        try:
            return await asyncio.wait_for(
                asyncio.open_unix_connection(self.endpoint, limit=MAX_REPLY_BYTES + 1), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise AgentUnavailableError(
                f"no dstack-p2p agent answers on {self.endpoint}: {e or 'timed out'}") from None

    @staticmethod
    def _request_line(name: str, fields: Dict[str, Any]) -> bytes:
        if not _REQUEST_RE.match(name):
            raise ValueError(f"request {name!r} is not a request name")
        body = {"version": PROTOCOL_VERSION, "request": name, **fields}
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"

    async def request(self, name: str, timeout: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        """Send one request (``peers``, ``status``, ``leader``, ...) and return its reply.

        ``timeout`` (default: the handle's) bounds the wait for the reply. Raises
        AgentUnavailableError, AgentError (an error object), ProtocolError.
        """
        line = self._request_line(name, fields)
        wait = self.timeout if timeout is None else timeout
        reader, writer = await self._open()
        try:
            writer.write(line)
            await asyncio.wait_for(writer.drain(), self.timeout)
            reply = await asyncio.wait_for(reader.readline(), wait)
        except asyncio.TimeoutError:
            raise AgentUnavailableError(f"the agent on {self.endpoint} did not answer in time") from None
        except ValueError:  # longer than the limit
            raise ProtocolError(f"the agent's reply is longer than {MAX_REPLY_BYTES} bytes") from None
        except OSError as e:
            raise AgentUnavailableError(f"talking to the agent on {self.endpoint}: {e}") from None
        finally:
            writer.close()
        if not reply.endswith(b"\n"):
            raise AgentUnavailableError(f"the agent on {self.endpoint} closed without a reply")
        doc = _decode_line(reply)
        _check_version(doc)
        return doc

    def _check_cluster(self, d: PeersDocument) -> PeersDocument:
        if self.contract and d.contract.lower() != self.contract:
            raise ClusterMismatchError(f"the local agent serves contract {d.contract}, not {self.contract}")
        if self.mode and d.mode != self.mode:
            raise ClusterMismatchError(f"the local agent runs {d.mode} mode, not {self.mode}")
        return d

    # ---- the three calls apps need ---------------------------------------------------

    async def document(self) -> PeersDocument:
        """The whole peers document: this node's token, address and label, the peers, the leader."""
        return self._check_cluster(parse_peers_document(await self.request("peers")))

    async def register(self, timeout: float = 60.0) -> bool:
        """Wait until this instance is registered in the cluster (the agent registers it).

        Returns True once registered, False when ``timeout`` seconds pass first while the
        agent answers. Raises AgentUnavailableError when no agent answered at all, and
        ClusterMismatchError when it serves another cluster or mode.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        answered = False
        while True:
            try:
                if (await self.document()).registered:
                    return True
                answered = True
            except AgentUnavailableError:
                if loop.time() >= deadline and not answered:
                    raise
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(0.2, max(deadline - loop.time(), 0.0)))

    async def get_peers(self) -> List[str]:
        """The peers' connection strings: ``10.0.1.t`` (wireguard) or gateway URLs (tls).

        This node is not in the list.
        """
        return (await self.document()).peers

    async def get_members(self) -> List[Member]:
        """The peers with token, label and address."""
        return (await self.document()).members

    async def status(self) -> Dict[str, Any]:
        """The agent's status document (dstack-p2p status --json), as decoded JSON."""
        return await self.request("status")

    async def leader(self) -> Optional[Leader]:
        """The cluster's current leader, or None when there is none."""
        return parse_leader((await self.request("leader")).get("leader"))

    async def watch(self, reconnect_delay: float = 1.0, first_timeout: float = WATCH_FIRST_TIMEOUT,
                    read_timeout: float = WATCH_READ_TIMEOUT) -> AsyncIterator[PeersDocument]:
        """Every peers document the agent streams: the current one, then one per change.

        Reconnects (every ``reconnect_delay`` s) when the agent restarts; after a
        reconnection the current document comes first again. Runs until cancelled.
        Raises AgentUnavailableError when a connection's first document does not come
        within ``first_timeout`` s or a line, once begun, does not end within
        ``read_timeout`` s; ProtocolError for a document that does not parse.
        """
        while True:
            try:
                reader, writer = await self._open()
            except AgentUnavailableError:
                await asyncio.sleep(reconnect_delay)
                continue
            try:
                writer.write(self._request_line("watch", {}))
                await asyncio.wait_for(writer.drain(), self.timeout)
                first = True
                while True:
                    line = await self._watch_line(reader, first, first_timeout, read_timeout)
                    if not line.endswith(b"\n"):
                        break  # the agent went away
                    first = False
                    doc = _decode_line(line)
                    if "error" in doc:
                        break  # e.g. busy: try again later
                    yield self._check_cluster(parse_peers_document(doc))
            except AgentUnavailableError:
                raise  # a silent or dripping agent (an OSError too): said, not retried
            except OSError:
                pass
            finally:
                writer.close()
            await asyncio.sleep(reconnect_delay)

    async def _watch_line(self, reader: asyncio.StreamReader, first: bool, first_timeout: float,
                          read_timeout: float) -> bytes:
        """One line of the watch stream: the first within first_timeout; later ones may
        wait for a change as long as it takes, then must end within read_timeout."""
        try:
            if first:
                return await asyncio.wait_for(reader.readline(), first_timeout)
            head = await reader.read(1)
            if not head:
                return b""
            if head == b"\n":
                return head
            return head + await asyncio.wait_for(reader.readline(), read_timeout)
        except asyncio.TimeoutError:
            raise AgentUnavailableError(
                f"the agent on {self.endpoint} sent no {'first ' if first else ''}document in time "
                f"(watch: {first_timeout if first else read_timeout} s)") from None
        except ValueError:  # longer than the limit
            raise ProtocolError(f"the agent's reply is longer than {MAX_REPLY_BYTES} bytes") from None

    async def monitor(self, callback: DocumentCallback, stop: Optional[asyncio.Event] = None,
                      reconnect_delay: float = 1.0) -> None:
        """Call ``callback(document)`` for every peers document (leader changes too).

        The callback may be a plain function or a coroutine function. Returns when
        ``stop`` is set; otherwise runs until cancelled.
        """
        async def follow() -> None:
            async for d in self.watch(reconnect_delay):
                await _call_maybe_async(callback, d)

        await self._until(follow(), stop)

    async def monitor_peers(self, callback: PeersCallback, stop: Optional[asyncio.Event] = None,
                            reconnect_delay: float = 1.0) -> None:
        """Call ``callback(peers)`` with the current list, then on every change of it.

        ``peers`` is what get_peers() returns. The callback may be a plain function or a
        coroutine function; calls never overlap. The monitor follows the agent across
        restarts. Returns when ``stop`` is set; otherwise runs until cancelled.
        """
        last: Optional[List[str]] = None

        async def on_document(d: PeersDocument) -> None:
            nonlocal last
            if d.peers != last:
                last = d.peers
                await _call_maybe_async(callback, list(d.peers))

        await self.monitor(on_document, stop, reconnect_delay)

    @staticmethod
    async def _until(work: Awaitable[None], stop: Optional[asyncio.Event]) -> None:
        task = asyncio.ensure_future(work)
        if stop is None:
            await task
            return
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stopper):
            if t not in done:
                t.cancel()
                try:
                    await t
                except asyncio.CancelledError:
                    pass
        if task in done:
            task.result()  # re-raise the callback's exception

    # ---- leader election as a service ------------------------------------------------

    async def elect(self) -> Dict[str, Any]:
        """Ask the agent to take the leadership for this node (the lease must be free or expired).

        The agent signs with the node key and sends through its funded key or relayer;
        returns the agent's reply once the transaction is sent, not mined:
        ``{"action", "tx", "state": "pending", "relayed", "leader"}``;
        action_state(tx) follows it. Raises ActionForbiddenError (this user may not
        act), RateLimitedError, OverCapError, or AgentError with code ``refused`` (the
        contract reverts or the relayer refused, the reason in the message),
        ``not_registered``, ``no_sender`` or ``chain``.
        """
        return await self.request("leader.elect", timeout=max(self.timeout, ACTION_TIMEOUT))

    async def heartbeat(self) -> Dict[str, Any]:
        """As the leader, extend the lease."""
        return await self.request("leader.heartbeat", timeout=max(self.timeout, ACTION_TIMEOUT))

    async def vote_no_confidence(self, target: Optional[int] = None, withdraw: bool = False) -> Dict[str, Any]:
        """Vote no confidence in the leader (``target``: its token; None: the current one).

        ``withdraw=True`` takes a standing vote back.
        """
        fields: Dict[str, Any] = {"no_confidence": not withdraw}
        if target is not None:
            fields["target"] = int(target)
        return await self.request("leader.vote", timeout=max(self.timeout, ACTION_TIMEOUT), **fields)

    async def actions(self) -> List[Dict[str, Any]]:
        """The agent's last leader actions, newest first: ``{"action", "tx", "state",
        "relayed"[, "block"]}`` with state ``pending``, ``confirmed``, ``reverted`` or
        ``unknown`` (docs/control-protocol.md)."""
        items = _get(await self.request("leader"), "actions", list, [])
        if not all(isinstance(x, dict) for x in items):
            raise ProtocolError("the agent's reply: an action is not an object")
        return list(items)

    async def action_state(self, tx: str) -> Optional[str]:
        """The state of the action sent as transaction ``tx``, or None if the agent no
        longer lists it."""
        for x in await self.actions():
            if isinstance(x.get("tx"), str) and x["tx"].lower() == tx.lower():
                return str(x.get("state"))
        return None
