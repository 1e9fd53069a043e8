"""docs/concepts.md's compute-rental walkthrough runs as written (a ``sh`` block, against the
devnode it starts, on a free port): three machines with no data of their own train on the three
shards the creator shipped, one each, and all three results pass the holdout policy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.test_docs import REPO, _checkout_like, _free_port, code_blocks, section
from tests.quiet import assert_quiet, user_env

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.mark.timeout(1800)
def test_the_compute_rental_walkthrough_runs_as_written(tmp_path: Path) -> None:
    text = section((REPO / "docs" / "concepts.md").read_text(encoding="utf-8"),
                   "Renting compute")
    blocks = code_blocks(text, "sh")
    assert len(blocks) == 1, "the walkthrough is one sh block"
    script = blocks[0]
    assert script.count("9944") == 2
    script = script.replace("9944", str(_free_port()))
    root = _checkout_like(tmp_path)
    env = {k: v for k, v in user_env().items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "160"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                           "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1700,
                          check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "30 UNIT in escrow (3 x 10 UNIT, one data shard per slot)" in out, out
    shards = re.findall(r"PendingValidation \(stages run: fetched, ran, uploaded, submitted; "
                        r"sandbox: \w+; on the creator's shard (\d)\)", out)
    assert len(shards) == 2 and len(set(shards)) == 2, out  # Bob's and Charlie's, different
    assert "3 accepted, 0 rejected, 0 skipped; paid 30 UNIT" in out, out
    assert "loaded 449 examples" in done.stderr  # a shard of example digits, not all of it
    assert_quiet(done.stdout, done.stderr)
