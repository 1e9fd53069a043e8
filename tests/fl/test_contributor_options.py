"""FedProx and client-side DP as a contributor runs them: the template and the example bundle,
executed by the real runner with ``config.json`` options written by the creator's helper."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from decentralml.chain.types import TaskType
from decentralml.fl import ClientDP, TaskOptions, update_norm, write_task_options
from decentralml.storage.bundle import MANIFEST_NAME, Bundle, build_manifest, load_bundle
from decentralml.storage.runner import RunLimits, TaskFailed, run_bundle

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "asset_templates"
EXAMPLE_BUNDLE = ROOT / "examples" / "federated_mnist" / "bundle"

# a numpy "model" [w, b], trained by adding 1 to w and 0.5 to b: a delta of norm sqrt(6.5)
HOOKS = '''
def load_data(data_dir):
    import numpy as np
    with np.load(data_dir / "data.npz", allow_pickle=False) as d:
        return d["x"], d["y"]


def load_model(task_dir, x, y):
    import numpy as np
    return [np.full((x.shape[1], 2), 0.25, dtype="float32"), np.zeros(2, dtype="float32")]


def train_model(model, x, y):
    w, b = model
    return [w + 1.0, b + 0.5], {"accuracy": 0.25}
'''


def _setup_task() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dml_setup_task_fl",
                                                  TEMPLATES / "model_creator" / "setup_task.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_bundle(directory: Path, outputs: tuple[str, ...] = ("update.npz", "update.json")) -> Bundle:
    manifest = build_manifest(directory, task_type=TaskType.ModelContributor, requirements=(),
                              outputs=outputs)
    (directory / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(directory, cid="bafytest")


def data_dir(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    np.savez(d / "data.npz", x=x, y=y)
    return d


def arrays(output: Path) -> list[np.ndarray]:
    with np.load(output / "update.npz", allow_pickle=False) as f:
        return [f[k] for k in sorted(f.files)]


def template_task(tmp_path: Path, options: TaskOptions) -> Bundle:
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS)
    dest = tmp_path / "task"
    _setup_task().main(["new", "model_contributor", str(dest), "--hooks", str(hooks)])
    write_task_options(dest, options)
    return as_bundle(dest)


def test_template_clips_the_update_and_drops_data_metrics(tmp_path: Path) -> None:
    bundle = template_task(tmp_path, TaskOptions(dp=ClientDP(clipping_norm=0.5,
                                                             noise_multiplier=0.0)))
    data = data_dir(tmp_path, np.ones((10, 3), "float32"), np.zeros(10, "int64"))
    result = run_bundle(bundle, task_id=1, submission_id=2, data_dir=data,
                        workdir=tmp_path / "work", limits=RunLimits(timeout=120))
    w, b = sorted(arrays(result.output_dir), key=lambda a: a.ndim)[::-1]
    start = [np.full((3, 2), 0.25), np.zeros(2)]
    assert update_norm([w, b], start) == pytest.approx(0.5, rel=1e-6)
    factor = 0.5 / math.sqrt(6.5)
    np.testing.assert_allclose(w, 0.25 + factor, rtol=1e-6)
    np.testing.assert_allclose(b, 0.5 * factor, rtol=1e-6)
    assert result.metrics == {}  # the hooks' accuracy is about the data: not released


def test_template_without_options_is_unchanged(tmp_path: Path) -> None:
    bundle = template_task(tmp_path, TaskOptions())
    data = data_dir(tmp_path, np.ones((10, 3), "float32"), np.zeros(10, "int64"))
    result = run_bundle(bundle, task_id=1, submission_id=2, data_dir=data,
                        workdir=tmp_path / "work", limits=RunLimits(timeout=120))
    w, _b = sorted(arrays(result.output_dir), key=lambda a: a.ndim)[::-1]
    np.testing.assert_array_equal(w, np.full((3, 2), 1.25, "float32"))
    assert result.metrics == {"accuracy": 0.25}


def test_template_refuses_bad_options_before_training(tmp_path: Path) -> None:
    bundle_dir = tmp_path / "task"
    template_task(tmp_path, TaskOptions())
    (bundle_dir / "config.json").write_text('{"dp": {"clipping_norm": -1, "noise_multiplier": 1}}')
    bundle = as_bundle(bundle_dir)
    data = data_dir(tmp_path, np.ones((10, 3), "float32"), np.zeros(10, "int64"))
    with pytest.raises(TaskFailed):
        run_bundle(bundle, task_id=1, submission_id=2, data_dir=data,
                   workdir=tmp_path / "work", limits=RunLimits(timeout=120))
    assert "dp.clipping_norm" in (tmp_path / "work" / "task.log").read_text()


@pytest.mark.tf
@pytest.mark.slow
def test_example_bundle_trains_with_fedprox_and_clips(tmp_path: Path, digits: Any) -> None:
    from decentralml.fl import get_weights, load_model, make_digits_cnn, save_model

    (x, y), _test, _source = digits
    task = tmp_path / "task"
    shutil.copytree(EXAMPLE_BUNDLE, task)
    model = make_digits_cnn(x.shape[1:], 10, seed=0)
    save_model(model, task / "model.keras")
    write_task_options(task, TaskOptions(proximal_mu=0.1,
                                         dp=ClientDP(clipping_norm=0.05, noise_multiplier=0.0)))
    bundle = as_bundle(task)
    data = data_dir(tmp_path, x[:200], y[:200])
    result = run_bundle(bundle, task_id=1, submission_id=2, data_dir=data,
                        workdir=tmp_path / "work", limits=RunLimits(timeout=600),
                        env_extra={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})
    start = get_weights(load_model(task / "model.keras"))
    with np.load(result.output_dir / "update.npz", allow_pickle=False) as f:
        update = [f[k] for k in f.files]
    # two epochs of Adam move 151k weights far more than 0.05: the update was clipped to C
    assert update_norm(update, start) == pytest.approx(0.05, rel=1e-4)
    assert set(result.metrics) == {"train_seconds"}
