"""The real runtime as a local websocket node: Chopsticks serving the built wasm from its genesis.

The devnode is this project's Python stand-in for a runtime; the Rust dev runtime
(``runtime/``, built by ``scripts/build_runtime.sh`` into ``.tools/runtime/``) is the real thing.
To run that wasm without building a whole Substrate node, we hand its raw genesis chain spec to
Chopsticks (pinned in ``chain/chopsticks/package-lock.json``), which executes the runtime with
the official Substrate wasm executor and builds one block per transaction ("Instant" mode), like
the devnode's instant seal.

:class:`RuntimeNode` starts it on 127.0.0.1 (Chopsticks listens on every interface unless told
otherwise), waits for the line in which it reports its address, and stops it by killing its
whole process group, so no stray node survives a test session. It is a process manager only:
nothing here knows the protocol, and clients connect to :attr:`RuntimeNode.url` as to any node.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from decentralml.chain._procgroup import end_process_group
from decentralml.errors import ConfigurationError, ConnectionFailed

#: The source checkout this package was installed from (``make install`` installs it editable).
SOURCE_ROOT = Path(__file__).resolve().parents[2]
#: Where ``scripts/build_runtime.sh`` leaves the runtime, relative to the checkout.
DEFAULT_CHAIN_SPEC = SOURCE_ROOT / ".tools" / "runtime" / "chain-spec-raw.json"
#: Where ``npm ci`` in ``chain/chopsticks`` installs the pinned Chopsticks.
DEFAULT_CHOPSTICKS = SOURCE_ROOT / "chain" / "chopsticks" / "node_modules" / "@acala-network" \
    / "chopsticks" / "chopsticks.cjs"

#: Chopsticks' "ready" log line: ``<chain> RPC listening on http://ADDR and ws://ADDR``.
_READY = re.compile(r"RPC listening on http://\S+ and ws://(?P<addr>[^\s\"']+)")


#: Starts of a port-0 Chopsticks that lost the race for its port to another one (see start()).
_PORT_RACE_ATTEMPTS = 5


class RuntimeNode:
    """Chopsticks serving a raw genesis chain spec, a block per transaction, on ``host:port``.

    ``port=0`` lets Chopsticks pick a free port; :attr:`url` is what it actually bound. The
    node's output goes to ``log_path`` (default: a temporary file, removed on :meth:`stop`),
    whose tail is quoted when start-up fails.
    """

    def __init__(self, chain_spec: str | Path = DEFAULT_CHAIN_SPEC, *, host: str = "127.0.0.1",
                 port: int = 0, chopsticks: str | Path = DEFAULT_CHOPSTICKS,
                 node_binary: str = "node", log_path: str | Path | None = None,
                 startup_timeout: float = 120.0, runtime_log_level: int = 0) -> None:
        self.chain_spec = Path(chain_spec)
        self.host = host
        self.port = port
        self.chopsticks = Path(chopsticks)
        self.node_binary = node_binary
        self.startup_timeout = startup_timeout
        self.runtime_log_level = runtime_log_level
        self._own_log = log_path is None
        self.log_path: Path | None = None if log_path is None else Path(log_path)
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The Chopsticks command line (``--port`` left out for 0: it then picks a free one)."""
        node = shutil.which(self.node_binary) or self.node_binary
        argv = [node, str(self.chopsticks), "--genesis", str(self.chain_spec),
                "--build-block-mode", "Instant", "--host", self.host,
                "--runtime-log-level", str(self.runtime_log_level)]
        if self.port:
            argv += ["--port", str(self.port)]
        return argv

    def _check_inputs(self) -> None:
        if not self.chain_spec.is_file():
            raise ConfigurationError(
                f"no runtime chain spec at {self.chain_spec}: build it with "
                f"`bash scripts/build_runtime.sh` (or `make chain`)")
        if not self.chopsticks.is_file():
            raise ConfigurationError(
                f"Chopsticks is not installed at {self.chopsticks}: run "
                f"`npm ci --ignore-scripts --prefix chain/chopsticks` (or `make chopsticks`)")
        if shutil.which(self.node_binary) is None and not Path(self.node_binary).is_file():
            raise ConfigurationError(f"Node.js ({self.node_binary!r}) is not on PATH; "
                                     f"Chopsticks needs Node.js >= 20")

    def start(self) -> RuntimeNode:
        """Start Chopsticks and return once it accepts websocket connections."""
        if self._process is not None:
            return self
        self._check_inputs()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="chopsticks-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        env = {**os.environ, "LOG_LEVEL": "info", "NO_COLOR": "1", "FORCE_COLOR": "0"}
        # With port 0 Chopsticks takes the first free port from 8000 up, which is a check and
        # then a bind: two started at once (parallel test workers) can both pick 8000, and the
        # loser exits with EADDRINUSE. It is simply started again, and then finds the next port.
        for attempt in range(1 if self.port else _PORT_RACE_ATTEMPTS):
            if self._log is not None:
                self._log.close()
            self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
            # A session of its own: stop() signals the whole group (node and what it spawns).
            self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=self._log, stderr=subprocess.STDOUT,
                                             env=env, start_new_session=True)
            try:
                self._url = self._wait_ready()
                return self
            except ConnectionFailed:
                if self.port or attempt + 1 == _PORT_RACE_ATTEMPTS \
                        or "EADDRINUSE" not in self.log_tail():
                    self.stop()
                    raise
                end_process_group(self._process, signal.SIGTERM, 10.0)  # it exited: reap it
            except BaseException:
                self.stop()
                raise
        return self

    def _wait_ready(self) -> str:
        assert self._process is not None and self.log_path is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            text = self.log_path.read_text(errors="replace")
            found = _READY.search(text)
            if found:
                addr = found.group("addr")
                port = addr.rsplit(":", 1)[-1]
                return f"ws://{self.host}:{port}"
            if self._process.poll() is not None:
                raise ConnectionFailed(f"Chopsticks exited with code {self._process.returncode} "
                                       f"before serving: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"Chopsticks did not serve within "
                                       f"{self.startup_timeout:g}s: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Chopsticks printed (for error messages)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is not None:
            end_process_group(process, signal.SIGTERM, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_log and self.log_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
            self.log_path = None
        self._url = None

    def __enter__(self) -> RuntimeNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://host:port`` of the running node."""
        if self._url is None:
            raise ConnectionFailed("the runtime node is not running (call start())")
        return self._url

    @property
    def pid(self) -> int | None:
        """The Chopsticks process id (for measuring its CPU time)."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


__all__ = ["DEFAULT_CHAIN_SPEC", "DEFAULT_CHOPSTICKS", "RuntimeNode"]
