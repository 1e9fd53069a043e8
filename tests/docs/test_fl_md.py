"""docs/fl.md is executable: each Python block runs as written, in a fresh interpreter (as a reader
pasting it would), quietly, and prints what its comments say it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.test_docs import code_blocks, section
from tests.quiet import assert_quiet, user_env

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "fl.md"


def _run(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_quiet(done.stdout, done.stderr)
    assert done.stderr == "", done.stderr[-3000:]
    return done.stdout


def _block(heading: str) -> str:
    (block,) = code_blocks(section(DOC.read_text(encoding="utf-8"), heading), "python")
    return block


@pytest.mark.parametrize("index", range(len(code_blocks(DOC.read_text(encoding="utf-8"),
                                                         "python"))))
def test_every_python_block_runs(index: int, tmp_path: Path) -> None:
    block = code_blocks(DOC.read_text(encoding="utf-8"), "python")[index]
    if "noise_multiplier_for" in block:
        pytest.importorskip("dp_accounting")  # the [dp] extra
    _run(block, tmp_path)


def test_deterministic_aggregation_block_prints_what_it_says(tmp_path: Path) -> None:
    assert _run(_block("Deterministic aggregation"), tmp_path) == "True\nTrue\nTrue\n"


def test_contribution_block_scores_the_five_contributors(tmp_path: Path) -> None:
    lines = _run(_block("Contribution scores"), tmp_path).splitlines()
    rows = [line.split() for line in lines[:5]]
    ppm = {int(k): int(p) for k, p, _ in rows}
    assert {int(k): d for k, _, d in rows}[3] == "1"                 # the copy
    assert ppm[0] == 0 and ppm[2] <= 10_000 and ppm[3] == 0
    assert ppm[1] >= 100_000 and ppm[4] >= 100_000 and ppm[1] + ppm[4] >= 990_000
    assert lines[5] == "True"
    assert lines[6] == f"[(2, 500000, {ppm[2]})]"


def test_shards_block_shows_a_stratified_shard(tmp_path: Path) -> None:
    lines = _run(_block("Shards"), tmp_path).splitlines()
    assert lines[0] == str([f"shard-000{i}.npz" for i in range(4)])
    count, _, classes = lines[1].partition(" ")
    assert count in ("22", "23") and len(classes.strip("[]").split()) == 3
