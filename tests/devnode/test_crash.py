"""``kill -9`` under load: nothing a client was told is final is ever lost.

Three clients submit transfers to a ``--base-path`` devnode subprocess, which is killed with
SIGKILL at a random moment (seeded, so a failure can be replayed), restarted, and asked again for
every block, extrinsic and balance any client received a ``finalized`` status or a finalized
head for (see tests/devnode/crash.py). bench/devnode_abuse.py runs more kills for the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.devnode.crash import crash_rounds

pytestmark = pytest.mark.timeout(900)

KILLS = 20
SEED = 12


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_final(tmp_path: Path) -> None:
    report = crash_rounds(tmp_path / "chain", KILLS, clients=3, seed=SEED)
    print(f"\n{report.kills} kills in {report.seconds:.0f}s: {report.submitted} submitted, "
          f"{report.final_txs} extrinsics in {report.final_blocks} blocks told final, "
          f"{report.unfinal_lost} in-block-only extrinsics rolled back by a kill")
    assert report.lost == [], f"seed {SEED}: told final, then lost: {report.lost[:10]}"
    assert report.errors == []
    assert report.kills == KILLS
    # the test means something only if clients were told a lot was final, across the kills
    assert report.final_txs >= KILLS
