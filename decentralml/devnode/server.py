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
1009, a vanished client has its subscriptions dropped.

Hostile clients are bounded by :class:`RpcLimits`, the devnode's version of a Substrate node's
``--rpc-max-*`` flags: at most ``max_connections`` sockets (more are closed at once, and one that
does not finish its handshake in ``handshake_timeout`` seconds is closed); at most
``max_subscriptions_per_connection``; a request frame of at most ``max_request_bytes``, and at
most ``max_inbound_total`` bytes of partly received requests over all connections (above it the
connection holding the most is closed); a response (or a batch's responses together) of at most
``max_response_bytes``; and outbound buffers, which grow only for clients that do not read, of
at most ``max_buffer_per_connection`` each and ``max_buffer_total`` together: above either, the
most backlogged client is disconnected, so slow readers are dropped and nobody else waits. A
backlogged client's further requests are not even read until it catches up, so one that does
not read cannot make the node work for it either.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from decentralml.devnode.rpc import INTERNAL_ERROR, PARSE_ERROR, RpcApi

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: jsonrpsee's error codes and texts for its limits (what a Substrate node answers).
OVERSIZED_RESPONSE = -32008
TOO_BIG_BATCH_RESPONSE = -32011
#: A connection whose outbound buffer is above this is *backlogged*: it is then counted in the
#: total buffer bound (below it a client is just between two reads).
BACKLOG_BYTES = 64 * 1024


@dataclass(frozen=True)
class RpcLimits:
    """Bounds of the RPC server; the defaults keep the node within its stated memory budget.

    Worst case under abuse: the node at rest (~70 MiB) plus ``max_buffer_total`` of outbound
    buffers, ``max_inbound_total`` of partly received requests, and the one request being handled
    (a few times ``max_request_bytes`` while it is parsed): under 300 MiB with the defaults,
    however many clients stop reading or upload slowly (docs/devnode.md has the figures).
    """

    #: Sockets served at once (Substrate: ``--rpc-max-connections``, 100).
    max_connections: int = 100
    #: Subscriptions one connection may hold (``--rpc-max-subscriptions-per-connection``, 1024).
    max_subscriptions_per_connection: int = 1024
    #: Largest request frame (``--rpc-max-request-size``, 15 MiB): a block-length extrinsic in
    #: hex fits with room to spare.
    max_request_bytes: int = 16 * MIB
    #: Largest response, or batch of responses (``--rpc-max-response-size``, 15 MiB).
    max_response_bytes: int = 16 * MIB
    #: Bytes queued for one client that does not read before it is disconnected (at least
    #: ``max_response_bytes``, so any single response fits).
    max_buffer_per_connection: int = 20 * MIB
    #: Bytes queued for all backlogged clients together before the worst one is disconnected.
    max_buffer_total: int = 64 * MIB
    #: Bytes of partly received requests over all connections.
    max_inbound_total: int = 64 * MIB
    #: Seconds a new socket has to complete the websocket handshake.
    handshake_timeout: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"RpcLimits.{f.name} must be positive")
        if self.max_buffer_per_connection < self.max_response_bytes:
            raise ValueError("RpcLimits.max_buffer_per_connection must be at least "
                             "max_response_bytes (a response must fit in the buffer)")
        if self.max_inbound_total < self.max_request_bytes:
            raise ValueError("RpcLimits.max_inbound_total must be at least max_request_bytes "
                             "(a request must fit)")


class Connection(asyncio.Protocol):
    """One client: websocket state machine, subscriptions, and the RPC session interface."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.limits = server.limits
        self.ws = ServerProtocol(max_size=self.limits.max_request_bytes)
        self.transport: asyncio.Transport | None = None
        self.subscriptions: dict[str, Callable[[], None]] = {}
        self._after: list[Callable[[], None]] = []
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._handshake_timer: asyncio.TimerHandle | None = None
        #: Parsed events not handled yet: requests wait here while the client is not reading
        #: its replies (backpressure: a client that does not read gets no more work done).
        self._events: deque[Request | Frame] = deque()
        self._events_size = 0
        self.paused = False
        #: Bytes of partly received requests held for this client (see RpcServer.inbound).
        self.inbound = 0
        self.closed = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's transport
        self.transport = transport
        server = self.server
        if len(server.connections) >= self.limits.max_connections:
            server.refused += 1
            if server.refused in (1, 10, 100) or server.refused % 1000 == 0:
                log.warning("refusing a connection: %d connections already (max_connections); "
                            "%d refused so far", len(server.connections), server.refused)
            self.closed = True
            transport.abort()
            return
        server.connections.add(self)
        transport.set_write_buffer_limits(high=BACKLOG_BYTES)
        self._handshake_timer = asyncio.get_running_loop().call_later(
            self.limits.handshake_timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                self._events_size += len(event.data)
                self._events.append(event)
            elif isinstance(event, Request):
                self._events.append(event)
        self._process()

    def _process(self) -> None:
        """Handle queued events until none is left or the client stops reading its replies."""
        events = self._events
        while events and not self.closed and not self.paused:
            event = events.popleft()
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
                if self._handshake_timer is not None:
                    self._handshake_timer.cancel()
                    self._handshake_timer = None
            else:
                self._events_size -= len(event.data)
                self._frame(event)
        self.flush()
        if not self.closed:
            # websockets' reader buffers a frame until it is complete (15.0.1: reader.buffer)
            self.server.set_inbound(self, len(self.ws.reader.buffer) + self._fragments_size
                                    + self._events_size)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.server.forget(self)
        self.drop_subscriptions()
        self._after = []
        self._fragments = []
        self._events.clear()
        self._events_size = 0

    def pause_writing(self) -> None:
        """The transport buffers more than BACKLOG_BYTES: the client is behind. Stop reading
        its requests until it catches up (notifications still go out, within the bounds)."""
        self.server.backlogged.add(self)
        self.paused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.server.backlogged.discard(self)
        self.paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            self._process()

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.ws.state is State.CONNECTING:
            log.info("closing a connection that did not complete its handshake")
            self.abort()

    # -- frames -----------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                self._fragments, self._fragments_size = [], 0
            self._fragments.append(bytes(frame.data))
            self._fragments_size += len(frame.data)
            if self._fragments_size > self.limits.max_request_bytes:
                self.ws.fail(1009, "message too big")
                self._fragments, self._fragments_size = [], 0
                return
            if frame.fin:
                message = (self._fragments[0] if len(self._fragments) == 1
                           else b"".join(self._fragments))
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
        elif self in self.server.backlogged:
            self.server.bound_outbound(self)

    def buffered(self) -> int:
        """Bytes written for this client that it has not read yet (in this process)."""
        transport = self.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    # -- session interface for the RPC methods ----------------------------------------------

    def push(self, message: Any) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        self.send_encoded(json.dumps(message, separators=(",", ":")).encode())

    def send_encoded(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            return
        self.ws.send_text(data)
        if self.server.corked:  # written in one go when the current request is done
            self.server.dirty.add(self)
        else:
            self.flush()

    def notify(self, method: str, subscription: str, result: Any) -> None:
        data = json.dumps({"jsonrpc": "2.0", "method": method,
                           "params": {"subscription": subscription, "result": result}},
                          separators=(",", ":")).encode()
        if len(data) > self.limits.max_response_bytes:
            log.warning("dropping a %d-byte %s notification (max_response_bytes)", len(data),
                        method)
            return
        self.send_encoded(data)

    def after_response(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    def run_after(self) -> None:
        actions, self._after = self._after, []
        for action in actions:
            if self.closed:
                return
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

    def abort(self) -> None:
        """Disconnect at once, discarding what is buffered (a client that does not read)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RpcServer:
    """Serves an :class:`RpcApi` on ``ws://host:port`` within :class:`RpcLimits`."""

    def __init__(self, api: RpcApi, limits: RpcLimits | None = None) -> None:
        self.api = api
        self.limits = limits or RpcLimits()
        self._server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        #: Connections with more than BACKLOG_BYTES unread (see Connection.pause_writing).
        self.backlogged: set[Connection] = set()
        #: Bytes of partly received requests, over all connections.
        self.inbound = 0
        #: Counters for logs, tests and the bench.
        self.refused = 0
        self.dropped_slow = 0
        self.dropped_inbound = 0
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

    # -- bounds -------------------------------------------------------------------------------

    def forget(self, conn: Connection) -> None:
        """Release everything the server holds for a connection that ended."""
        self.connections.discard(conn)
        self.backlogged.discard(conn)
        self.dirty.discard(conn)
        self.inbound -= conn.inbound
        conn.inbound = 0

    def set_inbound(self, conn: Connection, size: int) -> None:
        self.inbound += size - conn.inbound
        conn.inbound = size
        while self.inbound > self.limits.max_inbound_total:
            worst = max(self.connections, key=lambda c: c.inbound)
            if worst.inbound <= 0:  # nothing left to shed (cannot happen: sums agree)
                self.inbound = sum(c.inbound for c in self.connections)
                break
            log.warning("partly received requests hold %d bytes (max_inbound_total); "
                        "disconnecting the client sending %d of them", self.inbound, worst.inbound)
            self.dropped_inbound += 1
            self.inbound -= worst.inbound
            worst.inbound = 0
            worst.abort()

    def bound_outbound(self, conn: Connection) -> None:
        """After a write to a backlogged connection: enforce both outbound buffer bounds."""
        size = conn.buffered()
        if size > self.limits.max_buffer_per_connection:
            self._drop_slow(conn, size, "max_buffer_per_connection")
            return
        total = sum(c.buffered() for c in self.backlogged)
        while total > self.limits.max_buffer_total and self.backlogged:
            worst = max(self.backlogged, key=lambda c: c.buffered())
            size = worst.buffered()
            self._drop_slow(worst, size, "max_buffer_total")
            total -= size

    def _drop_slow(self, conn: Connection, size: int, limit: str) -> None:
        log.warning("client is not reading (%d bytes unread, %s); disconnecting it", size, limit)
        self.dropped_slow += 1
        self.backlogged.discard(conn)
        conn.abort()

    # -- requests -----------------------------------------------------------------------------

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
            request = json.loads(message)
        except (UnicodeDecodeError, ValueError, RecursionError):
            conn.push({"jsonrpc": "2.0", "id": None,
                       "error": {"code": PARSE_ERROR, "message": "Parse error"}})
            return
        limit = self.limits.max_response_bytes
        if isinstance(request, list):
            if not request:
                conn.push({"jsonrpc": "2.0", "id": None,
                           "error": {"code": -32600, "message": "Invalid request"}})
                return
            parts: list[bytes] = []
            size = 0
            for item in request:
                if conn.closed:
                    return
                response = self._one(conn, item)
                if response is None:
                    continue
                part = _encode(response)
                size += len(part) + 1
                if size > limit:  # the rest is not run: the batch's answer is this error
                    conn.push({"jsonrpc": "2.0", "id": None, "error": {
                        "code": TOO_BIG_BATCH_RESPONSE,
                        "message": "The batch response was too large",
                        "data": f"Exceeded max limit of {limit}"}})
                    break
                parts.append(part)
            else:
                if parts:
                    conn.send_encoded(b"[" + b",".join(parts) + b"]")
        else:
            response = self._one(conn, request)
            if response is not None:
                data = _encode(response)
                if len(data) > limit:
                    data = _encode({"jsonrpc": "2.0", "id": response.get("id"), "error": {
                        "code": OVERSIZED_RESPONSE, "message": "Response is too big",
                        "data": f"Exceeded max limit of {limit}"}})
                conn.send_encoded(data)
        conn.run_after()

    def _one(self, conn: Connection, request: Any) -> dict[str, Any] | None:
        try:
            return self.api.handle(conn, request)
        except Exception:
            log.exception("internal error handling %r", request.get("method")
                          if isinstance(request, dict) else request)
            return {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict)
                    else None, "error": {"code": INTERNAL_ERROR, "message": "Internal error"}}


def _encode(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()
