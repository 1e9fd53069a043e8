"""Pure unit tests of the CLI's shared helpers (no chain, no subprocess)."""

from __future__ import annotations

from decentralml.cli.app import App, format_metrics
from decentralml.cli.main import cli, hoist_global_options


def test_global_options_after_the_subcommand_move_to_the_front() -> None:
    assert hoist_global_options(cli, ["task", "close", "1", "--yes", "--json"]) == \
        ["--yes", "--json", "task", "close", "1"]
    assert hoist_global_options(cli, ["work", "0", "--account", "//Bob", "--data", "d"]) == \
        ["--account", "//Bob", "work", "0", "--data", "d"]
    assert hoist_global_options(cli, ["results", "0", "--node=ws://x"]) == \
        ["--node=ws://x", "results", "0"]
    # before the subcommand: untouched; the subcommand's own --storage stays its own
    assert hoist_global_options(cli, ["--json", "demo", "--storage", "local:/s"]) == \
        ["--json", "demo", "--storage", "local:/s"]
    # `--` ends the options
    assert hoist_global_options(cli, ["run", "0", "--", "--json"]) == ["run", "0", "--", "--json"]


def test_amounts_are_in_the_given_token_or_planck_on_request() -> None:
    """Neither needs a node: the token is given (as a job records it), --planck needs none."""
    from decentralml.amounts import Token

    token = Token(symbol="UNIT", decimals=12)
    assert App(overrides={}).amount(2_500_000_000_000, token) == "2.5 UNIT"
    assert App(overrides={}, planck=True).amount(2_500_000_000_000, token) == \
        "2500000000000 planck"


def test_metrics_read_as_text() -> None:
    assert format_metrics({"accuracy": 0.97772, "loss": 0.1, "train_seconds": 3.27,
                           "lines": 2}) == "accuracy 0.978, loss 0.100, train_seconds 3.3, lines 2"
    assert format_metrics({}) == "" and format_metrics(None) == ""


def test_shell_completion_as_documented() -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "decentralml.cli.main"], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "_DECENTRALML_COMPLETE": "bash_complete",
                               "COMP_WORDS": "decentralml ta", "COMP_CWORD": "1"})
    assert "plain,task" in done.stdout.splitlines()
