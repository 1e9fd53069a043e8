"""New blocks as the node announces them: a ``chain_subscribeNewHeads`` subscription on a websocket
of its own.

The client's connection is one non-thread-safe websocket shared by every query, so a
subscription cannot live on it (it would monopolize it). :class:`HeadWatch` opens a second,
read-only websocket that carries nothing but the subscription, and wakes whoever waits on it at
each new best block: a worker takes a new task's slot within the block that created it, and a
creator sees submitted results in the block that holds them, with no polling.

When the subscription drops (node restart, network), :attr:`HeadWatch.subscribed` turns false
and the callers fall back to polling at their own interval until it is back; it reconnects with
a growing pause (capped at :data:`MAX_BACKOFF`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

#: Longest pause between two attempts to subscribe again, in seconds.
MAX_BACKOFF = 10.0
#: Seconds to wait for the node to answer the subscription request.
SUBSCRIBE_TIMEOUT = 10.0


class HeadWatch:
    """Follows the node's new best blocks in a background thread until :meth:`stop`.

    ``on_head(number)`` is called from that thread for each announced block (keep it short: set
    an event). :meth:`wait_beyond` blocks until a block after a given one is announced.
    """

    def __init__(self, url: str, *, on_head: Callable[[int], None] | None = None) -> None:
        self.url = url
        self._on_head = on_head
        self._cond = threading.Condition()
        self._head = -1
        self._subscribed = False
        self._stop = threading.Event()
        self._socket: Any = None
        self._thread = threading.Thread(target=self._run, name="decentralml-heads", daemon=True)

    def __enter__(self) -> HeadWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._cond:
            self._subscribed = False
            self._cond.notify_all()

    @property
    def subscribed(self) -> bool:
        """Whether the subscription is live now (False: poll)."""
        return self._subscribed

    @property
    def head(self) -> int:
        """The last block number announced (-1 before the first)."""
        return self._head

    def wait_beyond(self, number: int, timeout: float) -> int | None:
        """The first announced head above ``number``, or None after ``timeout`` seconds or when
        the subscription is not live (the caller polls then)."""
        with self._cond:
            self._cond.wait_for(lambda: self._head > number or not self._subscribed
                                or self._stop.is_set(), timeout=timeout)
            return self._head if self._head > number else None

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
                backoff = 0.5
            except Exception:  # any socket or protocol failure: polling covers the gap
                pass
            with self._cond:
                self._subscribed = False
                self._cond.notify_all()
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _follow(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=SUBSCRIBE_TIMEOUT, max_size=2**20) as sock:
            self._socket = sock
            if self._stop.is_set():
                return
            sock.send(json.dumps({"jsonrpc": "2.0", "id": 1,
                                  "method": "chain_subscribeNewHeads", "params": []}))
            reply = json.loads(sock.recv(timeout=SUBSCRIBE_TIMEOUT))
            if not isinstance(reply, dict) or "result" not in reply:
                raise ConnectionError(f"the node refused chain_subscribeNewHeads: {reply!r}")
            with self._cond:
                self._subscribed = True
                self._cond.notify_all()
            for raw in sock:
                message = json.loads(raw)
                params = message.get("params") if isinstance(message, dict) else None
                result = params.get("result") if isinstance(params, dict) else None
                number = result.get("number") if isinstance(result, dict) else None
                if not isinstance(number, str):
                    continue
                head = int(number, 16)
                with self._cond:
                    self._head = max(self._head, head)
                    self._cond.notify_all()
                if self._on_head is not None:
                    self._on_head(head)
