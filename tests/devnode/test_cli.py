"""``decentralml devnode`` / ``python -m decentralml.devnode`` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from decentralml.devnode.cli import devnode_command
from tests.devnode.helpers import Client

pytestmark = pytest.mark.timeout(120)


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(devnode_command, ["--help"])
    assert result.exit_code == 0
    for opt in ("--port", "--host", "--base-path", "--tmp", "--block-time"):
        assert opt in result.output


def test_tmp_and_base_path_conflict(tmp_path: Path) -> None:
    result = CliRunner().invoke(devnode_command, ["--tmp", "--base-path", str(tmp_path)])
    assert result.exit_code != 0
    assert "mutually exclusive" in result.output


def test_registered_in_the_main_cli() -> None:
    from decentralml.cli.main import cli

    assert "devnode" in cli.commands


def test_run_serve_and_stop_with_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "decentralml.devnode", "--port", "0", "--base-path",
         str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on ws://127.0.0.1:" in line, line + (proc.stderr.read()
                                                             if proc.stderr else "")
        url = line.split("listening on ")[1].split()[0]
        c = Client(url)
        assert c.si.chain == "decentralml-devnode"
        assert c.fund(10**12)
        c.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "chain.sqlite").exists()


def test_rpc_limit_flags_are_listed_and_checked() -> None:
    result = CliRunner().invoke(devnode_command, ["--help"])
    for opt in ("--rpc-max-connections", "--rpc-max-subscriptions-per-connection",
                "--rpc-max-request-size", "--rpc-max-response-size",
                "--rpc-max-buffer-per-connection", "--rpc-max-buffer-total",
                "--rpc-max-inbound-total", "--rpc-handshake-timeout"):
        assert opt in result.output
    bad = CliRunner().invoke(devnode_command, ["--rpc-max-buffer-per-connection", "1"])
    assert bad.exit_code == 2
    assert "--rpc-max-buffer-per-connection must be at least --rpc-max-response-size" \
        in bad.output
    assert CliRunner().invoke(devnode_command, ["--rpc-max-connections", "0"]).exit_code == 2


def test_rpc_limit_flags_reach_the_server() -> None:
    from tests.devnode.rawrpc import NodeProcess, RawClient, RpcFailure

    node = NodeProcess("--rpc-max-subscriptions-per-connection", "2")
    try:
        c = RawClient(node.url)
        c.call("chain_subscribeNewHeads")
        c.call("chain_subscribeNewHeads")
        with pytest.raises(RpcFailure) as info:
            c.call("chain_subscribeNewHeads")
        assert info.value.error["data"] == "Exceeded max limit of 2"
        c.close()
    finally:
        node.stop()
