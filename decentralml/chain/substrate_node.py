"""``decentralml-node`` processes: one dev validator, or a network of validators on loopback.

``decentralml-node`` (the Rust crate ``node/``, built by ``scripts/build_runtime.sh --node``) is a
real Substrate node for the runtime: Aura authoring in one-second slots, GRANDPA finality, p2p
networking, the standard transaction pool and JSON-RPC server, ParityDB. This module only
manages its processes, like :mod:`decentralml.chain.runtime_node` does for Chopsticks: nothing
here knows the protocol, and clients connect to :attr:`NodeProcess.url` as to any node.

* :class:`NodeProcess`: one node (``--dev``, or one validator of a chain spec), in a process
  group of its own so that :meth:`NodeProcess.kill` is a real ``kill -9`` of the node.
* :class:`LocalNetwork`: validators of the ``local`` chain (//Alice, //Bob, //Charlie, //Dave
  in the runtime's ``local_testnet`` preset), each with its own base path, p2p port and RPC
  port, all bootstrapping from each other (their node keys, and so their peer ids, are derived
  from their names).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import base58
from substrateinterface import Keypair, KeypairType

from decentralml.chain._procgroup import end_process_group
from decentralml.errors import ConfigurationError, ConnectionFailed

#: The source checkout this package was installed from (``make install`` installs it editable).
SOURCE_ROOT = Path(__file__).resolve().parents[2]
#: Where ``scripts/build_runtime.sh --node`` leaves the binary (cargo's target dir is outside
#: the clone, see that script).
NODE_BIN_ENV = "DECENTRALML_NODE_BIN"
CARGO_TARGET_ENV = "DECENTRALML_CARGO_TARGET_DIR"

#: The validators of the ``local`` chain spec, in authority order.
LOCAL_VALIDATORS = ("alice", "bob", "charlie", "dave")


def default_node_binary() -> Path:
    """``$DECENTRALML_NODE_BIN``, else ``decentralml-node`` in the cargo target dir."""
    explicit = os.environ.get(NODE_BIN_ENV)
    if explicit:
        return Path(explicit)
    target = os.environ.get(CARGO_TARGET_ENV) or str(
        Path.home() / ".cache" / "decentralml" / "cargo-target")
    return Path(target) / "debug" / "decentralml-node"


def free_port() -> int:
    """A TCP port nothing listens on right now (on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_key(name: str) -> str:
    """A node's libp2p secret (ed25519 seed, hex), derived from its name: fixed peer ids let
    every validator be given the others as bootnodes before any of them runs. For a local test
    network only: anyone who knows the name knows the key."""
    return hashlib.sha256(f"decentralml-local-network/{name}".encode()).hexdigest()


def peer_id(secret_hex: str) -> str:
    """The libp2p peer id of an ed25519 node key: base58 of the identity multihash of the
    protobuf-encoded public key."""
    public = Keypair.create_from_seed(secret_hex, crypto_type=KeypairType.ED25519).public_key
    encoded = bytes([0x08, 0x01, 0x12, 0x20]) + public
    return str(base58.b58encode(bytes([0x00, len(encoded)]) + encoded).decode())


def rpc_call(port: int, method: str, params: list[Any] | None = None,
             timeout: float = 5.0) -> Any:
    """One JSON-RPC call over HTTP to the node on ``127.0.0.1:port``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                       "params": params or []}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise ConnectionFailed(f"{method} on port {port}: {reply['error']}")
    return reply["result"]


#: The node's start-up line naming the addresses its JSON-RPC server is bound to.
_RPC_LINE = re.compile(rb"Running JSON-RPC server: addr=127\.0\.0\.1:(\d+)")


@dataclass
class NodeConfig:
    """How one node is started. A port of 0 lets the OS choose one as the node binds it (no
    window in which another process could take a port picked beforehand); the RPC port it got
    is read from the node's log and kept, so a restart serves the same URL."""

    base_path: Path
    rpc_port: int
    p2p_port: int
    chain: str = "dev"
    #: ``alice``, ``bob``, ... : a validator with that dev key (``--alice``); None for --dev.
    validator: str | None = None
    bootnodes: tuple[str, ...] = ()
    key: str | None = None
    extra_args: tuple[str, ...] = ()


class NodeProcess:
    """One ``decentralml-node`` process; its output goes to ``<base_path>/node.log``."""

    def __init__(self, config: NodeConfig, *, binary: str | Path | None = None,
                 startup_timeout: float = 120.0) -> None:
        self.config = config
        self.binary = Path(binary) if binary is not None else default_node_binary()
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def log_path(self) -> Path:
        return self.config.base_path / "node.log"

    def command(self) -> list[str]:
        c = self.config
        argv = [str(self.binary)]
        if c.chain == "dev" and c.validator is None:
            argv += ["--dev"]
        else:
            argv += ["--chain", c.chain, f"--{c.validator}" if c.validator else "--validator"]
        argv += ["--base-path", str(c.base_path), "--database", "paritydb",
                 "--state-pruning", "archive", "--blocks-pruning", "archive",
                 "--rpc-port", str(c.rpc_port), "--rpc-cors", "all",
                 "--listen-addr", f"/ip4/127.0.0.1/tcp/{c.p2p_port}",
                 "--no-prometheus", "--no-telemetry", "--no-mdns"]
        if c.key is not None:
            argv += ["--node-key", c.key]
        for bootnode in c.bootnodes:
            argv += ["--bootnodes", bootnode]
        return argv + list(c.extra_args)

    def start(self, wait: bool = True) -> NodeProcess:
        """Start the node; with ``wait``, return once its RPC server answers."""
        if self.running:
            return self
        if not self.binary.is_file():
            raise ConfigurationError(
                f"decentralml-node is not built ({self.binary}): run "
                f"`bash scripts/build_runtime.sh --node`, or set {NODE_BIN_ENV} to the binary")
        self.config.base_path.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self._log_start = self._log.tell()
        # A session of its own: kill() and stop() signal the node and nothing else.
        self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if wait:
            try:
                self.wait_rpc()
            except BaseException:
                self.stop()
                raise
        return self

    def wait_rpc(self) -> None:
        """Block until the RPC server answers (or the node exits, or the start-up times out)."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.config.rpc_port == 0:
                self.config.rpc_port = self._bound_rpc_port()
            try:
                if self.config.rpc_port:
                    rpc_call(self.config.rpc_port, "system_health", timeout=2.0)
                    return
            except (OSError, urllib.error.URLError, ConnectionFailed, ValueError):
                pass
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ConnectionFailed(f"decentralml-node exited with code {code} before "
                                       f"serving RPC: {self.log_tail()}")
            if time.monotonic() > deadline:
                where = self.config.rpc_port or "(not bound yet)"
                raise ConnectionFailed(f"decentralml-node did not serve RPC on port {where} within "
                                       f"{self.startup_timeout:g}s: {self.log_tail()}")
            time.sleep(0.2)

    def _bound_rpc_port(self) -> int:
        """The port the node's RPC server bound in this run (0 until it says so in its log)."""
        if not self.log_path.is_file():
            return 0
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            found = _RPC_LINE.search(log.read())
        return int(found.group(1)) if found else 0

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc_call(self.config.rpc_port, method, params)

    def best_number(self) -> int:
        return int(self.rpc("chain_getHeader")["number"], 16)

    def finalized_number(self) -> int:
        head = self.rpc("chain_getFinalizedHead")
        return int(self.rpc("chain_getHeader", [head])["number"], 16)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the node printed (for error messages)."""
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """``kill -9`` the node: no shutdown, no flush (the fault tests' crash)."""
        self._signal_and_reap(signal.SIGKILL, timeout=10.0)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the node shuts down cleanly), SIGKILL after ``timeout``."""
        self._signal_and_reap(signal.SIGTERM, timeout=timeout)

    def _signal_and_reap(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is not None:
            end_process_group(process, sig, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.config.rpc_port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


def dev_node(base_path: Path, *, rpc_port: int = 0, binary: str | Path | None = None
             ) -> NodeProcess:
    """A ``--dev`` node (one validator, //Alice) on ``rpc_port`` (0: one the OS chooses, known
    once it started), with its chain in ``base_path`` and a p2p port of the OS's choosing: any
    number of them run side by side (the test workers each start one)."""
    return NodeProcess(NodeConfig(base_path=base_path, rpc_port=rpc_port, p2p_port=0),
                       binary=binary)


class LocalNetwork:
    """The ``local`` chain's validators on loopback, ``base_dir/<name>`` each."""

    def __init__(self, base_dir: Path, *, validators: tuple[str, ...] = LOCAL_VALIDATORS,
                 rpc_ports: list[int] | None = None, p2p_ports: list[int] | None = None,
                 binary: str | Path | None = None, chain: str = "local") -> None:
        self.base_dir = Path(base_dir)
        rpc = rpc_ports or [free_port() for _ in validators]
        p2p = p2p_ports or [free_port() for _ in validators]
        keys = [node_key(name) for name in validators]
        addrs = [f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id(key)}"
                 for port, key in zip(p2p, keys, strict=True)]
        self.nodes = [
            NodeProcess(NodeConfig(
                base_path=self.base_dir / name, rpc_port=rpc[i], p2p_port=p2p[i], chain=chain,
                validator=name, key=keys[i],
                bootnodes=tuple(a for j, a in enumerate(addrs) if j != i)), binary=binary)
            for i, name in enumerate(validators)]

    def start(self, finality_timeout: float = 180.0) -> LocalNetwork:
        """Start every validator and wait until GRANDPA has finalized a block on all of them."""
        try:
            for node in self.nodes:
                node.start(wait=False)
            for node in self.nodes:
                node.wait_rpc()
            self.wait_finalized(1, timeout=finality_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_finalized(self, number: int, timeout: float = 120.0,
                       nodes: list[NodeProcess] | None = None) -> None:
        """Block until every (running) node reports block ``number`` or later as finalized."""
        deadline = time.monotonic() + timeout
        for node in nodes or [n for n in self.nodes if n.running]:
            while True:
                try:
                    if node.finalized_number() >= number:
                        break
                except (OSError, urllib.error.URLError, ConnectionFailed, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise ConnectionFailed(
                        f"GRANDPA did not finalize block #{number} on {node.url} within "
                        f"{timeout:g}s: {node.log_tail()}")
                time.sleep(0.25)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalNetwork:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]


__all__ = ["LOCAL_VALIDATORS", "LocalNetwork", "NodeConfig", "NodeProcess", "default_node_binary",
           "dev_node", "free_port", "node_key", "peer_id", "rpc_call"]
