"""The websocket transport: JSON-RPC 2.0 requests, batches and subscription notifications.

Built on the Sans-I/O ``websockets.server.ServerProtocol`` (handshake, framing, masking, ping,
close and size limits all come from the websockets library) driven by a plain
``asyncio.Protocol``: every request is handled synchronously as its frame arrives and every
reply or notification is written to the socket at once. No task hops per message keeps the
node's CPU per request far below a client's, and ordering comes for free: a response is always
written before the notifications it causes (the subscription id precedes
``author_extrinsicUpdate``, as substrate-interface requires).

Bad input never reaches the chain as an exception: malformed JSON gets -32700, non-request
objects -32600, unknown methods -32601, bad params -32602; an oversized frame gets close code
1009, a client that stops reading is disconnected, a vanished client has its subscriptions
dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from decentralml.devnode.rpc import INTERNAL_ERROR, PARSE_ERROR, RpcApi

log = logging.getLogger(__name__)

#: Largest accepted message: a block-sized extrinsic in hex plus JSON framing.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Bytes buffered for a client that does not read before it is disconnected.
MAX_WRITE_BUFFER = 64 * 1024 * 1024


class Connection(asyncio.Protocol):
    """One client: websocket state machine, subscriptions, and the RPC session interface."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.ws = ServerProtocol(max_size=MAX_FRAME_BYTES)
        self.transport: asyncio.Transport | None = None
        self.subscriptions: dict[str, Callable[[], None]] = {}
        self._after: list[Callable[[], None]] = []
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
            elif isinstance(event, Frame):
                self._frame(event)
        self.flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self.drop_subscriptions()

    # -- frames -----------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                self._fragments, self._fragments_size = [], 0
            self._fragments.append(bytes(frame.data))
            self._fragments_size += len(frame.data)
            if self._fragments_size > MAX_FRAME_BYTES:
                self.ws.fail(1009, "message too big")
                self._fragments = []
                return
            if frame.fin:
                message = b"".join(self._fragments)
                self._fragments, self._fragments_size = [], 0
                self.server.handle_message(self, message)

    def flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            else:  # end of stream: the websocket is closed
                transport.close()
                return
        if self.ws.close_expected():
            transport.close()
        elif transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("client is not reading; closing its connection")
            transport.abort()

    # -- session interface for the RPC methods ----------------------------------------------

    def push(self, message: Any) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        self.ws.send_text(json.dumps(message, separators=(",", ":")).encode())
        if self.server.corked:  # written in one go when the current request is done
            self.server.dirty.add(self)
        else:
            self.flush()

    def notify(self, method: str, subscription: str, result: Any) -> None:
        self.push({"jsonrpc": "2.0", "method": method,
                   "params": {"subscription": subscription, "result": result}})

    def after_response(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    def run_after(self) -> None:
        actions, self._after = self._after, []
        for action in actions:
            try:
                action()
            except Exception:
                log.exception("post-response action failed")

    def drop_subscriptions(self) -> None:
        subs, self.subscriptions = self.subscriptions, {}
        for cleanup in subs.values():
            try:
                cleanup()
            except Exception:
                log.exception("subscription cleanup failed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RpcServer:
    """Serves an :class:`RpcApi` on ``ws://host:port``."""

    def __init__(self, api: RpcApi) -> None:
        self.api = api
        self._server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        #: While a request is handled, replies and notifications are only queued (one write
        #: per connection afterwards: a watched extrinsic's four messages cost one syscall).
        self.corked = False
        self.dirty: set[Connection] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            await self._server.wait_closed()

    def handle_message(self, conn: Connection, message: bytes) -> None:
        self.corked = True
        try:
            self._handle_message(conn, message)
        finally:
            self.corked = False
            dirty, self.dirty = self.dirty, set()
            for c in dirty:
                c.flush()

    def _handle_message(self, conn: Connection, message: bytes) -> None:
        try:
            request = json.loads(message.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            conn.push({"jsonrpc": "2.0", "id": None,
                       "error": {"code": PARSE_ERROR, "message": "Parse error"}})
            return
        if isinstance(request, list):
            if not request:
                conn.push({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32600, "message": "Invalid request"}})
                return
            responses = [r for r in (self._one(conn, item) for item in request) if r is not None]
            if responses:
                conn.push(responses)
        else:
            response = self._one(conn, request)
            if response is not None:
                conn.push(response)
        conn.run_after()

    def _one(self, conn: Connection, request: Any) -> dict[str, Any] | None:
        try:
            return self.api.handle(conn, request)
        except Exception:
            log.exception("internal error handling %r", request.get("method")
                          if isinstance(request, dict) else request)
            return {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict)
                    else None, "error": {"code": INTERNAL_ERROR, "message": "Internal error"}}
