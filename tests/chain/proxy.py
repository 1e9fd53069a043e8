"""A TCP proxy in front of a node that can cut websocket connections at precise moments.

It understands just enough of RFC 6455 to read the client's (masked) text frames, so a test can
say "cut the connection right after the client sends ``author_submitExtrinsic``, before the
node's answer comes back" or "cut it at the next request after that" (mid-watch). The node is
unaware: it sees an ordinary client that went away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass
class _Trigger:
    method: str
    #: "after": forward the matching frame, then cut (the response is lost);
    #: "next": forward it, then cut at the client's next frame (without forwarding that one).
    mode: str
    armed_next: bool = False
    fired: threading.Event | None = None


def _frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Split complete client frames off ``buffer``: (raw bytes, unmasked payload)."""
    out = []
    while len(buffer) >= 2:
        length = buffer[1] & 0x7F
        masked = buffer[1] & 0x80
        pos = 2
        if length == 126:
            if len(buffer) < 4:
                break
            length = int.from_bytes(buffer[2:4], "big")
            pos = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length = int.from_bytes(buffer[2:10], "big")
            pos = 10
        mask = b""
        if masked:
            if len(buffer) < pos + 4:
                break
            mask = bytes(buffer[pos:pos + 4])
            pos += 4
        if len(buffer) < pos + length:
            break
        payload = bytes(buffer[pos:pos + length])
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        out.append((bytes(buffer[:pos + length]), payload))
        del buffer[:pos + length]
    return out


class DropProxy:
    def __init__(self, target_url: str) -> None:
        parsed = urlparse(target_url)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 9944)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._triggers: list[_Trigger] = []
        self.connections = 0
        self.drops = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            self._cut(pair)

    def cut_after(self, method: str) -> threading.Event:
        """Cut the connection right after the client sends ``method`` (its answer is lost)."""
        trigger = _Trigger(method, "after", fired=threading.Event())
        with self._lock:
            self._triggers.append(trigger)
        assert trigger.fired is not None
        return trigger.fired

    def cut_at_next_after(self, method: str) -> threading.Event:
        """Let ``method`` and its answer through, then cut at the client's next request."""
        trigger = _Trigger(method, "next", fired=threading.Event())
        with self._lock:
            self._triggers.append(trigger)
        assert trigger.fired is not None
        return trigger.fired

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()

    def _cut(self, pair: tuple[socket.socket, socket.socket]) -> None:
        self.drops += 1
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.append(pair)
                self.connections += 1
            threading.Thread(target=self._client_to_node, args=(pair,), daemon=True).start()
            threading.Thread(target=self._node_to_client, args=(pair,), daemon=True).start()

    def _node_to_client(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        self._forget(pair)

    def _forget(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            if pair not in self._pairs:
                return
            self._pairs.remove(pair)
        self._cut(pair)

    def _client_to_node(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        handshake = bytearray()
        buffer = bytearray()
        upgraded = False
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if not upgraded:
                    handshake += data
                    end = handshake.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    upstream.sendall(bytes(handshake[:end + 4]))
                    buffer += handshake[end + 4:]
                    upgraded = True
                else:
                    buffer += data
                for raw, payload in _frames(buffer):
                    if self._before_forward(pair):
                        return
                    upstream.sendall(raw)
                    if self._after_forward(pair, payload):
                        return
        except OSError:
            pass
        self._forget(pair)

    def _before_forward(self, pair: tuple[socket.socket, socket.socket]) -> bool:
        with self._lock:
            for trigger in self._triggers:
                if trigger.armed_next:
                    self._triggers.remove(trigger)
                    break
            else:
                return False
        self._forget(pair)
        assert trigger.fired is not None
        trigger.fired.set()
        return True

    def _after_forward(self, pair: tuple[socket.socket, socket.socket], payload: bytes) -> bool:
        with self._lock:
            for trigger in self._triggers:
                if not trigger.armed_next and f'"{trigger.method}"'.encode() in payload:
                    if trigger.mode == "next":
                        trigger.armed_next = True
                        return False
                    self._triggers.remove(trigger)
                    break
            else:
                return False
        # Only the client side goes: the node still gets to process the request and answer
        # (its answer then fails to reach the client, which closes the upstream side too).
        self.drops += 1
        client = pair[0]
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            client.close()
        assert trigger.fired is not None
        trigger.fired.set()
        return True
