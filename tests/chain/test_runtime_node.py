"""``RuntimeNode`` and ``decentralml node``: Chopsticks serving the runtime on loopback only, found
ready, and stopped with nothing left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from decentralml.chain.client import Client
from decentralml.chain.runtime_node import RuntimeNode
from decentralml.errors import ConfigurationError
from tests.fixtures.chains import runtime_node_at


def _non_loopback_ip() -> str | None:
    """An address of this machine other than 127.0.0.1 (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_missing_chain_spec_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"build_runtime\.sh"):
        RuntimeNode(tmp_path / "nope.json").start()


def test_serves_on_loopback_only_and_stops_its_process_group(
        fresh_runtime_node: RuntimeNode) -> None:
    node = fresh_runtime_node
    assert node.url.startswith("ws://127.0.0.1:")
    port = int(node.url.rsplit(":", 1)[1])
    with Client(node.url, signer="//Alice") as alice:
        assert alice.chain_type == "Development"
        assert alice.token_symbol == "UNIT" and alice.token_decimals == 12
    other = _non_loopback_ip()
    if other is not None:
        with pytest.raises(OSError), socket.create_connection((other, port), timeout=2):
            pass
    pid = node.pid
    assert pid is not None
    node.stop()
    assert not _group_alive(pid)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_node_command_prints_its_url_and_stops_on_sigint(
        tmp_path_factory: pytest.TempPathFactory, fresh_runtime_node: RuntimeNode) -> None:
    spec = runtime_node_at(tmp_path_factory.mktemp("spec")).chain_spec
    fresh_runtime_node.stop()  # only used to check that the runtime is available
    proc = subprocess.Popen([sys.executable, "-m", "decentralml.cli.main", "node", "--port", "0",
                             "--chain-spec", str(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"listening on (ws://127\.0\.0\.1:\d+)", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        with Client(found.group(1), signer="//Alice") as alice:
            assert alice.constant("MaxAssignments") == 64
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "runtime node stopped" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
