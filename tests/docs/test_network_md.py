"""docs/network.md is executable: its ``bash`` blocks (the consortium walk-through, two
validators on one machine) run in order in one shell, as a reader would paste them (on free ports
instead of the fixed ones), and must end with GRANDPA finalizing; the ``make`` targets of its
``sh`` blocks exist. Part of the node tier."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from decentralml.chain.substrate_node import free_port
from tests.docs.test_docs import code_blocks
from tests.fixtures.chains import node_binary, require_node_tier

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "network.md"


def test_the_walkthrough_runs_and_finalizes(tmp_path: Path) -> None:
    require_node_tier()
    binary = node_binary()
    blocks = code_blocks(DOC.read_text(encoding="utf-8"), "bash")
    assert len(blocks) >= 5, "keys, public keys, chain spec, start, check, stop"
    stop = blocks[-1]
    script = "\n".join(blocks[:-1])
    # the one edit: its fixed ports (p2p and RPC of A and B) become free ones, so the walkthrough
    # never meets another node of this test run (or of a parallel one) on this machine
    for fixed in ("30333", "30334", "9971", "9972"):
        assert fixed in script, f"the walkthrough no longer uses port {fixed}"
        script = script.replace(fixed, str(free_port()))
    env = {**os.environ, "WORK": str(tmp_path), "DECENTRALML_NODE_BIN": str(binary)}
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("*.log"))
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:], logs)
        assert "finalized #" in done.stdout
        assert int(done.stdout.rsplit("finalized #", 1)[1].split()[0]) >= 2, logs
    finally:
        subprocess.run(["bash", "-c", stop], cwd=REPO, env=env, capture_output=True,
                       check=False, timeout=60)


def test_make_targets_exist() -> None:
    targets = set()
    for block in code_blocks(DOC.read_text(encoding="utf-8"), "sh"):
        for line in block.splitlines():
            argv = shlex.split(line.split("#", 1)[0])
            if argv[:1] == ["make"]:
                targets.add(argv[1])
    assert {"node", "chain", "network", "network-stop"} <= targets
    for target in sorted(targets):
        done = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"make {target}: {done.stderr}"
