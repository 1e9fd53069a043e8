"""``decentralml federate --strategy NAME[:k=v,...]``: a bad name or parameter is refused with
the known names, before the node or the store is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from decentralml.cli.app import ExitCode
from tests.roles.conftest import cli


@pytest.mark.parametrize(("spec", "says"), [
    ("fedsgd", "one of fedavg, fedavgm, fedadam, fedyogi, fedadagrad"),
    ("fedadam:lr=0.1", "has no parameter 'lr'"),
    ("dp-fedavg", "needs clipping_norm, noise_multiplier"),
    ("fedadam:eta", "key=value"),
])
def test_bad_strategy_is_refused_before_any_io(tmp_path: Path, spec: str, says: str) -> None:
    # port 9 (discard): nothing listens there, so reaching the node would fail differently
    done = cli(["--node", "ws://127.0.0.1:9", "--storage", f"local:{tmp_path / 's'}",
                "federate", "0", "--strategy", spec, "--out", str(tmp_path / "m.keras")],
               home=tmp_path / "home", check=False)
    assert done.returncode == ExitCode.INVALID_INPUT, done.stderr
    assert says in done.stderr + done.stdout
    assert not (tmp_path / "m.keras").exists() and not (tmp_path / "s").exists()


def test_help_lists_the_strategies(tmp_path: Path) -> None:
    done = cli(["federate", "--help"], home=tmp_path / "home")
    assert "fedadam" in done.stdout and "dp-fedavg" in done.stdout
