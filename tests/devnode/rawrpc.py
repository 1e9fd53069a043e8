"""Hostile-client and crash-test helpers: raw JSON-RPC over a websocket, fast offline signing,
and the devnode as a subprocess that can be ``kill -9``-ed.

substrate-interface decodes the metadata per connection and signs in milliseconds; the crash and
abuse tests need hundreds of connections and thousands of extrinsics, so they speak JSON-RPC
directly and sign with the same sr25519 keys (the signed payload is documented in
decentralml/devnode/extrinsics.py).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from scalecodec.utils.ss58 import ss58_decode
from substrateinterface import Keypair
from websockets.sync.client import ClientConnection, connect

from decentralml.devnode.hashing import blake2_256
from decentralml.devnode.scale import encode_compact

UNIT = 10**12


class RpcFailure(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        self.code = error.get("code")
        super().__init__(json.dumps(error))


class RawClient:
    """JSON-RPC over one websocket; notifications that arrive meanwhile are kept in order."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.ws: ClientConnection = connect(url, max_size=None, open_timeout=timeout,
                                            close_timeout=1)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

    def close(self) -> None:
        self.ws.close()

    def send(self, method: str, params: list[Any] | None = None) -> int:
        req_id = next(self._ids)
        self.ws.send(json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method,
                                 "params": params or []}))
        return req_id

    def recv(self, timeout: float | None = None) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.ws.recv(timeout or self.timeout))
        return message

    def response(self, req_id: int) -> dict[str, Any]:
        """The response to ``req_id`` (notifications before it are kept)."""
        while True:
            message = self.recv()
            if message.get("id") == req_id and "method" not in message:
                return message
            self.notifications.append(message)

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        message = self.response(self.send(method, params))
        if "error" in message:
            raise RpcFailure(message["error"])
        return message.get("result")

    def batch(self, calls: list[tuple[str, list[Any]]], chunk: int = 200) -> list[Any]:
        """Results of many calls, sent as JSON-RPC batches of ``chunk`` (errors raise)."""
        out: list[Any] = []
        for start in range(0, len(calls), chunk):
            part = calls[start:start + chunk]
            first = None
            requests = []
            for method, params in part:
                req_id = next(self._ids)
                first = req_id if first is None else first
                requests.append({"jsonrpc": "2.0", "id": req_id, "method": method,
                                 "params": params})
            self.ws.send(json.dumps(requests))
            while True:
                message: Any = json.loads(self.ws.recv(self.timeout))
                if isinstance(message, list):
                    break
                if "error" in message and "method" not in message:  # the whole batch failed
                    raise RpcFailure(message["error"])
                self.notifications.append(message)
            by_id = {m["id"]: m for m in message}
            for k in range(len(part)):
                m = by_id[first + k] if first is not None else {}
                if "error" in m:
                    raise RpcFailure(m["error"])
                out.append(m.get("result"))
        return out


def account_id(kp: Keypair) -> bytes:
    return bytes.fromhex(ss58_decode(kp.ss58_address))


def account_key(who: bytes) -> str:
    """Storage key of ``System.Account(who)`` (blake2_128_concat)."""
    from decentralml.devnode.hashing import blake2_128, twox_128
    return "0x" + (twox_128(b"System") + twox_128(b"Account") + blake2_128(who) + who).hex()


def free_balance(account_info_hex: str | None) -> int:
    """``data.free`` of an encoded ``AccountInfo`` (nonce, consumers, providers, sufficients:
    four u32, then the u128 free balance)."""
    if account_info_hex is None:
        return 0
    raw = bytes.fromhex(account_info_hex[2:])
    return int.from_bytes(raw[16:32], "little")


@functools.cache
def call_index(pallet: str, name: str) -> bytes:
    """(pallet index, call index) of a call, from the devnode's runtime (never hard-coded)."""
    from decentralml.devnode.runtime import Runtime
    from decentralml.devnode.state import HeadState
    p = Runtime(HeadState()).by_name[pallet]
    return bytes([p.INDEX, p.calls_by_name[name].index])


def transfer_call(dest: bytes, value: int) -> bytes:
    """``Balances.transfer_keep_alive(Id(dest), value)``."""
    return call_index("Balances", "transfer_keep_alive") + b"\x00" + dest + encode_compact(value)


def remark() -> bytes:
    """``System.remark("")``: three bytes."""
    return call_index("System", "remark") + encode_compact(0)


def nested_batch(depth: int, leaf: bytes | None = None) -> bytes:
    """``Utility.batch([batch([... [leaf]]])`` with ``depth`` batches around ``leaf``."""
    call = leaf if leaf is not None else remark()
    for _ in range(depth):
        call = call_index("Utility", "batch") + encode_compact(1) + call
    return call


def remark_batch(count: int) -> bytes:
    """``Utility.batch`` of ``count`` empty ``System.remark`` calls (3 bytes each)."""
    return call_index("Utility", "batch") + encode_compact(count) + remark() * count


def unsigned(call: bytes) -> bytes:
    body = b"\x04" + call
    return encode_compact(len(body)) + body


class Signer:
    """Signs immortal extrinsics offline for one chain (genesis hash and runtime versions)."""

    def __init__(self, genesis: bytes, spec_version: int, tx_version: int) -> None:
        self.genesis = genesis
        self.versions = spec_version.to_bytes(4, "little") + tx_version.to_bytes(4, "little")

    @classmethod
    def of(cls, client: RawClient) -> Signer:
        genesis = bytes.fromhex(client.call("chain_getBlockHash", [0])[2:])
        version = client.call("state_getRuntimeVersion")
        return cls(genesis, int(version["specVersion"]), int(version["transactionVersion"]))

    def sign(self, kp: Keypair, call: bytes, nonce: int, tip: int = 0) -> bytes:
        extra = b"\x00" + encode_compact(nonce) + encode_compact(tip)  # immortal era
        payload = call + extra + self.versions + self.genesis + self.genesis
        if len(payload) > 256:
            payload = blake2_256(payload)
        signature = kp.sign(payload)
        body = (b"\x84" + b"\x00" + account_id(kp) + b"\x01" + signature + extra + call)
        return encode_compact(len(body)) + body


class NodeProcess:
    """``python -m decentralml.devnode`` in a subprocess: started, stopped, or ``kill -9``-ed."""

    def __init__(self, *args: str) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the process
            prefix="devnode-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "decentralml.devnode", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (ws://\S+)", line)
        if match is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"devnode did not start: {line!r}\n{self.stderr()}")
        self.url = match.group(1)
        self.pid = self.proc.pid

    def stderr(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._cleanup()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class SlowReader:
    """A websocket client that sends requests and never reads a byte of what comes back.

    Handshake and framing by websockets' Sans-I/O ``ClientProtocol``, over a plain socket with
    a small receive buffer so that the node's outbound buffer, not the kernel, fills up.
    """

    def __init__(self, url: str) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((uri.host, uri.port))
        self.ws = ClientProtocol(uri)
        self.ws.send_request(self.ws.connect())
        self._write()
        while not self.ws.events_received():  # the handshake response: the last read
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.ws.receive_data(data)
        self._ids = itertools.count(1)

    def _write(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, payload: Any) -> None:
        self.ws.send_text(json.dumps(payload).encode())
        self._write()

    def request(self, method: str, params: list[Any] | None = None) -> None:
        self.send({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                   "params": params or []})

    def disconnected(self, timeout: float = 60.0) -> bool:
        """Whether the node has closed the connection (reads, discarding, until EOF/reset)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()
