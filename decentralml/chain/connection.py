"""One websocket to a node, shared safely by every thread of a client, that survives drops.

substrate-interface's websocket transport is not thread-safe (one socket, one message queue, a
request counter) and only reconnects when a *send* fails. This wrapper serializes every use of the
``SubstrateInterface`` behind one re-entrant lock, gives every read a socket timeout, and
reconnects (with backoff, up to a deadline) whenever the socket breaks. Reads are retried after a
reconnect because they are idempotent; a request that must not be repeated blindly (submitting an
extrinsic) is reported as :class:`ConnectionLost` so its caller can find out what happened first.

It also caches what never changes for a given block hash: a block's extrinsic hashes and its
decoded events, so many waiters following the same blocks fetch each block once.

Several nodes of one chain can be given as one comma-separated URL (``ws://a:9944,ws://b:9944``,
e.g. in ``DECENTRALML_NODE_URL``): the connection uses the first that answers and, when its
socket breaks, moves on to the next (round robin) instead of waiting for the dead one, after
checking that the new node has the same genesis hash. The submission path's rules above make a
switch safe: a transaction in flight is looked up on the new node and only ever re-sent as the
identical bytes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, TypeVar

from substrateinterface import SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websocket import WebSocketException

from decentralml.chain.errors import register_metadata_errors, rpc_error
from decentralml.errors import ConnectionFailed, PalletError

T = TypeVar("T")

#: What a broken or stalled socket raises (timeouts and resets are OSError subclasses).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (WebSocketException, OSError, EOFError)

_CACHE_SIZE = 512


class ConnectionLost(ConnectionFailed):
    """The socket broke while a non-repeatable request was in flight; it may or may not have
    reached the node. The connection has been re-established when this is raised."""


@dataclass(frozen=True)
class BlockInfo:
    """A block as far as finding extrinsics goes: its number, hash and extrinsic hashes in order."""

    number: int
    hash: str
    extrinsic_hashes: tuple[str, ...]


def extrinsic_hash_of(encoded_hex: str) -> str:
    """Substrate's extrinsic hash: blake2-256 of the SCALE-encoded extrinsic (length prefix
    included), exactly what ``author_submitExtrinsic`` returns."""
    raw = bytes.fromhex(encoded_hex[2:] if encoded_hex.startswith("0x") else encoded_hex)
    return "0x" + blake2b(raw, digest_size=32).hexdigest()


class Connection:
    """A locked, self-healing ``SubstrateInterface``. Use :meth:`run` for anything touching it."""

    def __init__(self, url: str, *, timeout: float = 30.0, reconnect_timeout: float = 30.0) -> None:
        self.urls = [u.strip() for u in url.split(",") if u.strip()]
        if not self.urls:
            raise ConnectionFailed(f"no node URL in {url!r}")
        self._current = 0
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self.lock = threading.RLock()
        self.reconnects = 0
        self._closed = False
        self._blocks: OrderedDict[str, BlockInfo] = OrderedDict()
        self._events: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._genesis: str | None = None
        self._chain_type: str | None = None
        self._substrate = self._open()
        self._error_table: dict[tuple[int, int], type[PalletError]] = {}
        self._error_table_version: Any = None
        self._load_metadata()
        if len(self.urls) > 1:
            _ = self.genesis_hash  # known before any failover, to check the next node against

    # -- connection management -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The node in use (one of :attr:`urls`)."""
        return self.urls[self._current]

    def _open(self) -> SubstrateInterface:
        failures = []
        for index, url in enumerate(self.urls):
            try:
                substrate = SubstrateInterface(url=url, ws_options={"timeout": self.timeout},
                                               auto_reconnect=False)
            except CONNECTION_ERRORS as exc:
                failures.append(f"{url}: {exc}")
                continue
            except SubstrateRequestException as exc:
                raise rpc_error(exc.args[0] if exc.args else exc) from exc
            self._current = index
            return substrate
        raise ConnectionFailed(f"cannot reach {self._nodes_phrase()} ({'; '.join(failures)}): "
                               f"start the node or point DECENTRALML_NODE_URL at a running one")

    def _nodes_phrase(self) -> str:
        return (f"a node at {self.urls[0]}" if len(self.urls) == 1
                else f"any of the nodes {', '.join(self.urls)}")

    def _load_metadata(self) -> None:
        """Load the runtime (metadata, type registry) and build the pallet error classes from it."""
        def load(si: SubstrateInterface) -> None:
            si.init_runtime()
            self._error_table = register_metadata_errors(si.metadata)
            self._error_table_version = si.runtime_version
        self.run(load)

    @property
    def error_table(self) -> dict[tuple[int, int], type[PalletError]]:
        """(pallet index, error index) -> class, rebuilt after a runtime upgrade."""
        with self.lock:
            if self._substrate.runtime_version != self._error_table_version:
                self._load_metadata()
            return self._error_table

    def _reconnect(self) -> None:
        """Replace the socket: the other nodes first (if several were given), then all of them
        again with backoff, until ``reconnect_timeout``."""
        self._drop_socket()
        lost = self.url
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        failures: dict[str, str] = {}
        while not self._closed:
            for step in range(1, len(self.urls) + 1):
                index = (self._current + step) % len(self.urls)
                try:
                    self._connect_to(index)
                    self.reconnects += 1
                    return
                except CONNECTION_ERRORS as exc:
                    failures[self.urls[index]] = str(exc)
                except ConnectionFailed as exc:  # another chain: never use it
                    failures[self.urls[index]] = str(exc)
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        detail = "; ".join(f"{u}: {e}" for u, e in failures.items())
        raise ConnectionFailed(f"lost the connection to {lost} and could not reach "
                               f"{self._nodes_phrase()} within {self.reconnect_timeout:g}s "
                               f"({detail}): check that the node is running and reachable")

    def _connect_to(self, index: int) -> None:
        """Open the socket to ``urls[index]``; a node of another chain is refused."""
        url = self.urls[index]
        self._substrate.url = url
        transport = getattr(self._substrate, "transport", None)
        if transport is not None and hasattr(transport, "url"):
            transport.url = url  # the socket is opened from the transport's own copy of the URL
        self._substrate.connect_websocket()
        if len(self.urls) > 1 and self._genesis is not None:
            genesis = self._substrate.rpc_request("chain_getBlockHash", [0]).get("result")
            if genesis != self._genesis:
                self._drop_socket()
                raise ConnectionFailed(f"{url} serves another chain (genesis {genesis}, "
                                       f"expected {self._genesis})")
        self._current = index

    def _drop_socket(self) -> None:
        ws = self._substrate.websocket
        if ws is None:
            return
        try:
            ws.close(timeout=0.1)
        except Exception:  # the socket is being thrown away: nothing to report
            ws.shutdown()

    def run(self, fn: Callable[[SubstrateInterface], T], *, retry: bool = True) -> T:
        """Call ``fn`` with the interface under the lock, mapping node errors to our classes.

        On a broken socket: reconnect, then retry ``fn`` (``retry=True``, for idempotent reads) or
        raise :class:`ConnectionLost` (``retry=False``, for submissions).
        """
        if self._closed:
            raise ConnectionFailed(f"the connection to {self.url} is closed")
        with self.lock:
            attempts = 0
            while True:
                try:
                    return fn(self._substrate)
                except SubstrateRequestException as exc:
                    raise rpc_error(exc.args[0] if exc.args else str(exc)) from exc
                except CONNECTION_ERRORS as exc:
                    attempts += 1
                    self._reconnect()
                    if not retry:
                        raise ConnectionLost(f"connection to {self.url} dropped mid-request: "
                                             f"{exc}") from exc
                    if attempts >= 5:
                        raise ConnectionFailed(f"connection to {self.url} keeps failing: "
                                               f"{exc}") from exc

    def rpc(self, method: str, params: list[Any], *, retry: bool = True) -> Any:
        """A raw JSON-RPC call; returns its ``result``."""
        def call(si: SubstrateInterface) -> Any:
            response = si.rpc_request(method, params)
            if "error" in response:
                raise SubstrateRequestException(response["error"])
            return response.get("result")
        return self.run(call, retry=retry)

    def close(self) -> None:
        with self.lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._substrate.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- chain facts ---------------------------------------------------------------------------

    @property
    def genesis_hash(self) -> str:
        if self._genesis is None:
            self._genesis = str(self.rpc("chain_getBlockHash", [0]))
        return self._genesis

    @property
    def chain_type(self) -> str:
        """``system_chainType``: Development, Local, Live or a custom name."""
        if self._chain_type is None:
            value = self.rpc("system_chainType", [])
            if isinstance(value, dict) and len(value) == 1:
                value = next(iter(value.values()))
            self._chain_type = str(value)
        return self._chain_type

    def head_number(self) -> int:
        header = self.rpc("chain_getHeader", [])
        return int(header["number"], 16) if isinstance(header["number"], str) \
            else int(header["number"])

    def finalized_number(self) -> int:
        """The number of the last finalized block (GRANDPA's, on a node with a finality gadget)."""
        header = self.rpc("chain_getHeader", [self.rpc("chain_getFinalizedHead", [])])
        return int(header["number"], 16) if isinstance(header["number"], str) \
            else int(header["number"])

    def block_hash(self, number: int) -> str | None:
        value = self.rpc("chain_getBlockHash", [number])
        return None if value is None else str(value)

    def block(self, number: int) -> BlockInfo | None:
        """Block ``number`` of the best chain, or None if it does not exist yet."""
        block_hash = self.block_hash(number)
        if block_hash is None:
            return None
        with self.lock:
            cached = self._blocks.get(block_hash)
        if cached is not None:
            return cached
        body = self.rpc("chain_getBlock", [block_hash])
        if body is None:
            return None
        info = BlockInfo(number=number, hash=block_hash, extrinsic_hashes=tuple(
            extrinsic_hash_of(x) for x in body["block"]["extrinsics"]))
        with self.lock:
            self._blocks[block_hash] = info
            while len(self._blocks) > _CACHE_SIZE:
                self._blocks.popitem(last=False)
        return info

    def events(self, block_hash: str) -> list[dict[str, Any]]:
        """The decoded ``System.Events`` of a block (cached by hash)."""
        with self.lock:
            cached = self._events.get(block_hash)
            if cached is not None:
                return cached
            records = self.run(lambda si: [record.value for record in
                                           si.get_events(block_hash=block_hash)])
            self._events[block_hash] = records
            while len(self._events) > _CACHE_SIZE:
                self._events.popitem(last=False)
            return records
