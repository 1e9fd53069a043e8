"""The websocket transport: JSON-RPC 2.0 requests, batches and subscription notifications.

Every connection has one outgoing queue drained by one writer task, so a response is always
sent before the notifications it causes (the subscription id precedes ``author_extrinsicUpdate``,
as substrate-interface requires), whatever connection triggered the block. Bad input never
reaches the chain as an exception: malformed JSON gets -32700, non-request objects -32600,
unknown methods -32601, bad params -32602; an oversized frame or a client that stops reading
gets its socket closed; a vanished client just has its subscriptions dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from decentralml.devnode.rpc import INTERNAL_ERROR, PARSE_ERROR, RpcApi

log = logging.getLogger(__name__)

#: Largest accepted frame: a block-sized extrinsic in hex plus JSON framing.
MAX_FRAME_BYTES = 16 * 1024 * 1024
#: Messages queued for a client that does not read before it is disconnected.
MAX_PENDING_MESSAGES = 50_000


class Connection:
    """A client session: subscriptions and the ordered outgoing queue."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.subscriptions: dict[str, Callable[[], None]] = {}
        self._after: list[Callable[[], None]] = []
        self.closed = False

    def push(self, message: Any) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_PENDING_MESSAGES:
            log.warning("client is not reading; closing its connection")
            self.close()
            return
        self.queue.put_nowait(json.dumps(message, separators=(",", ":")))

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

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.drop_subscriptions()
        self.queue.put_nowait(None)
        asyncio.get_running_loop().create_task(self.ws.close(1008, "not reading"))

    def drop_subscriptions(self) -> None:
        subs, self.subscriptions = self.subscriptions, {}
        for cleanup in subs.values():
            try:
                cleanup()
            except Exception:
                log.exception("subscription cleanup failed")

    async def writer(self) -> None:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            try:
                await self.ws.send(message)
            except ConnectionClosed:
                return


class RpcServer:
    """Serves an :class:`RpcApi` on ``ws://host:port``."""

    def __init__(self, api: RpcApi) -> None:
        self.api = api
        self._server: Server | None = None
        self.connections: set[Connection] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0)."""
        self._server = await serve(self._handle, host, port, max_size=MAX_FRAME_BYTES,
                                   max_queue=64, ping_interval=None, compression=None)
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(ws)
        self.connections.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            async for message in ws:
                self.handle_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(conn)
            conn.closed = True
            conn.drop_subscriptions()
            conn.queue.put_nowait(None)
            try:
                await asyncio.wait_for(writer, timeout=5)
            except (asyncio.TimeoutError, ConnectionClosed):
                writer.cancel()

    def handle_message(self, conn: Connection, message: str | bytes) -> None:
        try:
            text = message.decode("utf-8") if isinstance(message, bytes) else message
            request = json.loads(text)
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
