"""docs/bundles.md's entry point example runs as written: cold, then warm round after round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from decentralml.chain.types import TaskType
from decentralml.fl import load_update
from decentralml.storage.bundle import MANIFEST_NAME, build_manifest, load_bundle
from decentralml.storage.runner import RunLimits, run_bundle
from decentralml.storage.task_host import TaskHostPool
from tests.docs.test_docs import REPO, code_blocks, section

BUNDLES_MD = REPO / "docs" / "bundles.md"


def _bundle(root: Path, code: str, weights: np.ndarray, step: float) -> object:
    root.mkdir(parents=True)
    (root / "train.py").write_text(code)
    (root / "start_task.sh").write_text("exec python train.py\n")
    np.save(root / "weights.npy", weights)
    (root / "config.json").write_text(json.dumps({"step": step}))
    manifest = build_manifest(root, task_type=TaskType.ModelContributor, entry="train:fit",
                              round_files=("weights.npy", "config.json"))
    (root / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(root, cid=f"bafy{root.name}")


def test_the_documented_entry_point_runs_cold_and_warm(tmp_path: Path) -> None:
    text = section(BUNDLES_MD.read_text(encoding="utf-8"), "The Python entry point")
    code = next(b for b in code_blocks(text, "python") if "def fit" in b)
    data = tmp_path / "data"
    data.mkdir()
    x = np.arange(12, dtype="float32").reshape(4, 3)
    np.savez(data / "data.npz", x=x)
    spec = {"0000:w": np.zeros(3, dtype="float32")}
    limits = RunLimits(timeout=120)

    cold = run_bundle(_bundle(tmp_path / "b0", code, np.zeros(3, "float32"), 0.5), task_id=1,
                      submission_id=1, data_dir=data, workdir=tmp_path / "cold", limits=limits)
    update = load_update(cold.output_dir, like=spec)
    assert np.allclose(update.weights[0], 0.5 * x.mean(axis=0))
    assert cold.num_examples == 4 and cold.metrics == {"round": 1.0}

    with TaskHostPool(tmp_path / "hosts") as pool:
        for r in (1, 2, 3):
            start = np.full(3, float(r), dtype="float32")
            result = pool.run(_bundle(tmp_path / f"b{r}", code, start, 0.1 * r), creator="a",
                              job="doc", task_id=r, submission_id=r, data_dir=data,
                              workdir=tmp_path / f"warm-{r}", limits=limits)
            update = load_update(result.output_dir, like=spec)
            assert np.allclose(update.weights[0], start + 0.1 * r * x.mean(axis=0))
            assert result.metrics == {"round": float(r)}  # one process ran all three
        assert [event for event, _job in pool.events] == ["started", "reused", "reused"]
