"""docs/cli.md's peer-job walkthrough runs as written: three peers over two rounds on a devnode
that seals a block every half second, every round agreed, nobody in the minority."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.test_docs import REPO, _checkout_like, _free_port, code_blocks
from tests.quiet import assert_quiet, user_env

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def peer_section() -> str:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    start = text.index("### Peer jobs")
    return text[start:text.index("\n### ", start + 4)]


@pytest.mark.timeout(900)
def test_the_peer_job_walkthrough_runs_as_written(tmp_path: Path) -> None:
    (script,) = code_blocks(peer_section(), "sh")
    assert script.count("9944") == 2
    script = script.replace("9944", str(_free_port()))
    root = _checkout_like(tmp_path)
    env = {k: v for k, v in user_env().items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "400"  # wide enough that no CID is folded in the tables checked below
    done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                           "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
                          cwd=root, env=env, capture_output=True, text=True, timeout=880,
                          check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out, err = done.stdout, done.stderr
    assert re.search(r"peer job 0: 2 round\(s\) of 150 \+ 30 blocks from block \d+", out), out
    logs = [err, (root / "bob.log").read_text(), (root / "charlie.log").read_text()]
    agreed: dict[int, set[str]] = {0: set(), 1: set()}
    for log in logs:
        for r, cid in re.findall(r"round (\d): agreed; agreed (\S+)", log):
            agreed[int(r)].add(cid)
    # each peer saw both rounds agreed, on one CID per round, and round 1 built on round 0
    assert all(len(cids) == 1 for cids in agreed.values()), (agreed, logs)
    assert all(log.count(": agreed; agreed ") == 2 for log in logs), logs
    assert f"training from agreed model {next(iter(agreed[0]))}" in err
    status = out[out.index("peer job 0 by //Alice"):]
    assert "ended at block" in status, status
    for r in (0, 1):
        row = next(line for line in status.splitlines()
                   if re.match(rf"│ {r} +│ over ", line))
        assert "//Bob //Charlie //Dave" in row and next(iter(agreed[r])) in row, row
        assert row.count("│ -") == 2, row  # nobody disagreed, nobody stayed silent
    assert_quiet(out, *logs)
