"""What people (and scripts) see: through the CLI as a subprocess, real devnode and store.

One chain per test, several commands each: every CLI start costs seconds, so the checks of one
story share its commands.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.roles.conftest import TINY_BUNDLE, cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(fresh_devnode, tmp_path: Path) -> dict[str, object]:
    return {"url": fresh_devnode.url, "store": tmp_path / "store", "tmp": tmp_path}


def human(env: dict[str, object], account: str, *args: str, check: bool = True,
          columns: int = 200) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it: no --json (the table width of a wide terminal)."""
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    return cli(["--node", str(env["url"]), "--storage", f"local:{env['store']}", "--account",
                account, *args], home=tmp / account.strip("/"), check=check,
               env={"COLUMNS": str(columns)})


def _store_files(env: dict[str, object]) -> list[Path]:
    store = env["store"]
    assert isinstance(store, Path)
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


def test_people_see_units_names_blocks_and_refunds(env: dict[str, object]) -> None:
    created = human(env, "//Alice", "task", "create", "--bundle", str(TINY_BUNDLE),
                    "--question", "count lines", "--reward", "2.5", "--slots", "2")
    assert "5 UNIT in escrow (2 x 2.5 UNIT)" in created.stdout
    assert re.search(r"expires at block \d+ \(in \d+\)", created.stdout)

    listed = human(env, "//Bob", "task", "list").stdout
    assert "2.5 UNIT" in listed and "//Alice" in listed        # amount in UNIT, creator by name
    assert re.search(r"current block \d+", listed)
    assert "planck" not in listed
    raw = human(env, "//Bob", "task", "list", "--planck").stdout  # a global option, after
    assert "2500000000000 planck" in raw

    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    data = tmp / "data"
    data.mkdir()
    (data / "samples.txt").write_text("a\nb\n")
    human(env, "//Bob", "work", "0", "--data", str(data))
    results = human(env, "//Alice", "results", "0").stdout
    assert "//Bob" in results and "lines 2" in results       # worker by name, metrics formatted
    assert "{" not in results

    validated = human(env, "//Alice", "validate", "0", "--policy", "auto")
    out = validated.stdout
    assert "ValidationReport" not in out and "decisions=" not in out  # no Python repr
    assert re.search(r"0\s+│\s+//Bob\s+│\s+accepted", out), out
    assert "1 accepted, 0 rejected, 0 skipped; paid 2.5 UNIT in block" in out

    closed = human(env, "//Alice", "task", "close", "0", "--yes")  # --yes after the subcommand
    assert re.search(r"task 0 closed in block \d+: refunded 2.5 UNIT to //Alice", closed.stdout)

    again = human(env, "//Alice", "validate", "0", "--policy", "auto", check=False)
    assert again.returncode == 4 and "task 0 is closed" in again.stderr


def test_json_everywhere_including_errors_and_after_the_subcommand(
        env: dict[str, object]) -> None:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    base = ["--node", str(env["url"]), "--storage", f"local:{env['store']}"]
    created = cli([*base, "task", "create", "--bundle", str(TINY_BUNDLE), "--question", "q",
                   "--reward", "1", "--json", "--account", "//Alice"], home=tmp / "a")
    assert json.loads(created.stdout)["escrow"] == 10**12      # JSON amounts: exact planck

    missing = cli([*base, "accept", "999", "--account", "//Bob", "--json"], home=tmp / "b",
                  check=False)
    assert missing.returncode == 5
    error = json.loads(missing.stdout)["error"]
    assert error["type"] == "TaskNotFound" and error["exit_code"] == 5
    assert "no task 999" in error["message"]

    usage = cli([*base, "task", "create", "--reward", "1", "--json"], home=tmp / "a",
                check=False)
    assert usage.returncode == 2
    assert "--question" in json.loads(usage.stdout)["error"]["message"]

    closed = cli([*base, "--account", "//Alice", "task", "close", "0", "--yes", "--json"],
                 home=tmp / "a")
    assert json.loads(closed.stdout)["refund"] == 10**12


def test_tables_fold_long_cells_to_the_terminal_width(env: dict[str, object]) -> None:
    human(env, "//Alice", "task", "create", "--bundle", str(TINY_BUNDLE), "--question",
          "a question long enough to need wrapping in a narrow terminal", "--reward", "1")
    shown = human(env, "//Bob", "task", "show", "0", columns=70).stdout
    assert max(len(line) for line in shown.splitlines()) <= 70
    assert "…" not in shown                                  # folded, never cut


def test_publishing_refuses_a_bundle_that_cannot_run(env: dict[str, object]) -> None:
    example = REPO / "examples" / "federated_mnist" / "bundle"
    refused = human(env, "//Alice", "task", "create", "--bundle", str(example), "--question",
                    "q", "--reward", "1", check=False)
    assert refused.returncode == 4
    assert "model.keras" in refused.stderr and "--model" in refused.stderr
    assert "Traceback" not in refused.stderr

    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    broken = tmp / "broken"
    broken.mkdir()
    (broken / "start_task.sh").write_text('here="$(dirname "$0")"\nexec python "$here/run.py"\n')
    no_script = human(env, "//Alice", "task", "create", "--bundle", str(broken), "--question",
                      "q", "--reward", "1", check=False)
    assert no_script.returncode == 4 and "run.py" in no_script.stderr

    template = human(env, "//Alice", "task", "create", "--template", "model_contributor",
                     "--bundle-out", str(tmp / "mc"), "--question", "q", "--reward", "1",
                     check=False)
    assert template.returncode == 4 and "model.keras" in template.stderr

    not_keras = tmp / "model.keras"
    not_keras.write_text("not a model")
    bad_model = human(env, "//Alice", "task", "create", "--template", "model_contributor",
                      "--bundle-out", str(tmp / "mc"), "--model", str(not_keras),
                      "--question", "q", "--reward", "1", check=False)
    assert bad_model.returncode == 4 and "not a Keras .keras file" in bad_model.stderr

    # nothing was stored and nothing was sent
    assert _store_files(env) == []
    assert json.loads(cli(["--node", str(env["url"]), "--json", "task", "list", "--status",
                           "all"], home=tmp / "x").stdout) == []


def test_task_logs_stream_line_by_line(env: dict[str, object]) -> None:
    tmp = env["tmp"]
    assert isinstance(tmp, Path)
    bundle = tmp / "chatty"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text(
        "echo 'epoch 1/2 loss 0.9'\necho 'epoch 2/2 loss 0.4'\nprintf 'no newline at the end'\n"
        "printf '{\"num_examples\": 3}' > \"$DECENTRALML_OUTPUT_DIR/result.json\"\n")
    human(env, "//Alice", "task", "create", "--bundle", str(bundle), "--question", "q",
          "--reward", "1")
    data = tmp / "data"
    data.mkdir()
    ran = human(env, "//Bob", "run", "0", "--data", str(data))
    lines = ran.stderr.splitlines()
    assert "epoch 1/2 loss 0.9" in lines and "epoch 2/2 loss 0.4" in lines  # one line each
    assert "no newline at the end" in lines       # the last line ends too: nothing glues to it
    assert "3 examples" in ran.stdout
