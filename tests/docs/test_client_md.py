"""docs/client.md's protocol-2 section is executable: each of its Python blocks runs as written in
a fresh interpreter (it starts its own devnode), prints nothing on stderr, and prints what the
section says it shows: shards assigned, payouts that spend the whole pool, the agreed model and
the minority."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.test_docs import code_blocks, section

REPO = Path(__file__).resolve().parents[2]
SECTION = "Protocol 2: task terms, pay by contribution, peer jobs"


def _blocks() -> list[str]:
    text = section((REPO / "docs" / "client.md").read_text(encoding="utf-8"), SECTION)
    return code_blocks(text, "python")


def _run(code: str, cwd: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", "the example prints no noise"
    return done.stdout.splitlines()


def test_the_section_has_the_two_examples() -> None:
    assert len(_blocks()) == 2


@pytest.mark.timeout(300)
def test_pay_by_contribution_example(tmp_path: Path) -> None:
    out = _run(_blocks()[0], tmp_path)
    assert out[0] == "terms: ByContribution"
    assert sorted(line.split()[1] for line in out if line.startswith("shard")) == ["0", "1"]
    payouts_line = next(line for line in out if line.startswith("payouts:"))
    payouts = ast.literal_eval(payouts_line.split("payouts: ")[1].split(" paid:")[0])
    unit = 10**12
    floor = unit // 10
    split = (unit - floor) * 2
    assert sorted(payouts.values()) == sorted([floor + split * 750_000 // 1_000_000,
                                               floor + split * 250_000 // 1_000_000])
    assert payouts_line.endswith(f"paid: {2 * unit} dust: 0")
    assert out[-1].endswith("= 750000")


@pytest.mark.timeout(300)
def test_peer_job_example(tmp_path: Path) -> None:
    out = _run(_blocks()[1], tmp_path)
    assert out[0] == "updates: 3"
    votes = [line.rsplit("agreed: ", 1)[1] for line in out if " voted " in line]
    assert votes == ["None", "bafyagreed", "None"]
    agreed, minority = out[-1].split("agreed model: ")[1].split(" minority: ")
    assert agreed == "bafyagreed" and len(ast.literal_eval(minority)) == 1
