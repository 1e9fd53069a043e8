"""docs/concepts.md's "Pay by contribution" walkthrough runs as written: three contributors are
scored and paid in one extrinsic, the holdout is revealed, and a contributor's recomputation
matches the chain."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.test_docs import REPO, _checkout_like, _free_port, code_blocks, section
from tests.quiet import assert_quiet, user_env

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.mark.timeout(1800)
def test_pay_by_contribution_walkthrough_runs_as_written(tmp_path: Path) -> None:
    text = section((REPO / "docs" / "concepts.md").read_text(encoding="utf-8"),
                   "Pay by contribution")
    (script,) = code_blocks(text, "sh")
    assert script.count("9944") >= 2
    script = script.replace("9944", str(_free_port()))
    root = _checkout_like(tmp_path)
    env = {k: v for k, v in user_env().items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                           "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1700,
                          check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "30 UNIT in escrow (3 x 10 UNIT)" in out
    settled = re.search(r"3 settled, 0 rejected, 0 left pending; paid (\S+) UNIT of a pool of "
                        r"30 UNIT \(dust (\S+) UNIT\)", out)
    assert settled, out
    assert re.search(r"holdout revealed: \w+", out), out
    assert "every score matches the chain" in out, out
    for name in ("//Bob", "//Charlie", "//Dave"):  # names, not addresses
        assert out.count(name) >= 2, out
    assert re.search(r"task 0 closed in block \d+", out), out
    assert_quiet(done.stdout, done.stderr)
