"""asset_templates/: every template is a valid bundle layout, packs, and runs under the runner.

The runs swap in trivial hooks through ``model_creator/setup_task.py --hooks`` (the same path a
creator uses), so they need neither TensorFlow nor a GPU; the default Keras hooks of the
model-contributor template are exercised once under the ``tf`` marker.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from decentralml.chain.types import TaskType
from decentralml.storage.bundle import (
    MANIFEST_NAME,
    Bundle,
    build_manifest,
    fetch_bundle,
    load_bundle,
)
from decentralml.storage.preflight import declared_entry
from decentralml.storage.runner import RunLimits, TaskFailed, run_bundle

ROOT = Path(__file__).resolve().parents[2] / "asset_templates"
ROLES = ("model_contributor", "model_engineer", "data_annotator")


def _setup_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dml_setup_task",
                                                  ROOT / "model_creator" / "setup_task.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_task = _setup_module()


def as_bundle(directory: Path) -> Bundle:
    """A template directory turned into a verified on-disk bundle (no store needed)."""
    spec = setup_task.read_template(directory)
    entry, round_files = declared_entry(directory)  # the Python entry point, when it has one
    manifest = build_manifest(directory, task_type=TaskType(spec["task_type"]),
                              requirements=(), outputs=spec["outputs"], entry=entry,
                              round_files=round_files)
    (directory / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(directory, cid="bafytemplate")


def new_task(tmp_path: Path, role: str, hooks: str) -> Path:
    hooks_file = tmp_path / f"{role}_hooks.py"
    hooks_file.write_text(hooks)
    dest = tmp_path / role
    setup_task.main(["new", role, str(dest), "--hooks", str(hooks_file)])
    return dest


def run(bundle: Bundle, tmp_path: Path, data: Path | None, **kwargs: Any) -> Any:
    return run_bundle(bundle, task_id=1, submission_id=2, data_dir=data,
                      workdir=tmp_path / "work", limits=RunLimits(timeout=120), **kwargs)


# --------------------------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("role", ROLES)
def test_template_structure(role: str) -> None:
    directory = ROOT / role
    spec = setup_task.read_template(directory)
    assert TaskType(spec["task_type"])
    assert (directory / spec.get("entrypoint", "start_task.sh")).is_file()
    assert spec["outputs"] and spec.get("description")
    script = setup_task.hook_script(directory)
    text = script.read_text()
    assert text.count(setup_task.BEGIN) == 1 and text.count(setup_task.END) == 1
    assert "def main()" in text.split(setup_task.END, 1)[1]
    # importing the template does no work and needs no TensorFlow
    before = set(sys.modules)
    spec_obj = importlib.util.spec_from_file_location(f"tpl_{role}", script)
    assert spec_obj is not None and spec_obj.loader is not None
    spec_obj.loader.exec_module(importlib.util.module_from_spec(spec_obj))
    assert not {"tensorflow", "keras"} & (set(sys.modules) - before)
    manifest = build_manifest(directory, task_type=TaskType(spec["task_type"]),
                              requirements=spec["requirements"], outputs=spec["outputs"])
    assert manifest.entrypoint == "start_task.sh"
    assert manifest.entry("start_task.sh").executable
    assert not any("__pycache__" in e.path for e in manifest.files)


def test_setup_task_lists_and_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup_task.list_templates() == sorted(ROLES)
    setup_task.main(["list"])
    assert "model_contributor" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        setup_task.copy_template("nope", tmp_path / "x")
    setup_task.copy_template("data_annotator", tmp_path / "d", description="Label reviews")
    assert setup_task.read_template(tmp_path / "d")["description"] == "Label reviews"
    with pytest.raises(SystemExit, match="exists"):
        setup_task.copy_template("data_annotator", tmp_path / "d")


@pytest.mark.parametrize("role", ROLES)
def test_template_packs_and_fetches(role: str, tmp_path: Path,
                                   request: pytest.FixtureRequest) -> None:
    try:
        store = request.getfixturevalue("local_store")
    except pytest.FixtureLookupError:
        pytest.skip("local_store fixture not available yet")
    task = setup_task.copy_template(role, tmp_path / role)
    packed = setup_task.pack(task, store)
    spec = setup_task.read_template(task)
    assert packed.manifest.task_type is TaskType(spec["task_type"])
    assert list(packed.manifest.requirements) == spec["requirements"]
    assert packed.manifest.metadata["description"] == spec["description"]
    fetched = fetch_bundle(store, packed.cid, tmp_path / "fetched")
    assert fetched.manifest == packed.manifest


# --------------------------------------------------------------------------------------------
# running with trivial hooks


CONTRIBUTOR_HOOKS = '''
def load_data(data_dir):
    import numpy as np
    with np.load(data_dir / "data.npz", allow_pickle=False) as d:
        return d["x"], d["y"]


def load_model(task_dir, x, y):
    import numpy as np
    return [np.zeros((x.shape[1], 2), dtype="float32"), np.zeros(2, dtype="float32")]


def train_model(model, x, y):
    w, b = model
    return [w + 1.0, b + 0.5], {"accuracy": 0.25}
'''


def test_model_contributor_runs_with_overridden_hooks(tmp_path: Path) -> None:
    task = new_task(tmp_path, "model_contributor", CONTRIBUTOR_HOOKS)
    assert "keras.Sequential" not in (task / "train.py").read_text()
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "data.npz", x=np.ones((10, 3), dtype="float32"), y=np.zeros(10, dtype="int64"))
    result = run(as_bundle(task), tmp_path, data)
    assert result.num_examples == 10 and result.metrics == {"accuracy": 0.25}
    assert sorted(p.name for p in result.output_dir.iterdir()) == ["update.json", "update.npz"]
    with np.load(result.output_dir / "update.npz", allow_pickle=False) as update:
        arrays = [update[k] for k in update.files]
    assert sorted(a.shape for a in arrays) == [(2,), (3, 2)]


def test_model_contributor_without_data_fails_clearly(tmp_path: Path) -> None:
    task = new_task(tmp_path, "model_contributor", CONTRIBUTOR_HOOKS)
    with pytest.raises(TaskFailed, match="status"):
        run(as_bundle(task), tmp_path, None)
    assert "DECENTRALML_DATA_DIR is not set" in (tmp_path / "work" / "task.log").read_text()


ENGINEER_HOOKS = '''
def load_data(data_dir):
    import numpy as np
    x = np.zeros((6, 2))
    return x, np.array([0, 1, 0, 1, 0, 1]), x[:2], np.array([0, 1])


def build_model(input_shape, num_classes):
    return {"input_shape": list(input_shape), "classes": num_classes}


def train_model(model, x, y, x_val, y_val):
    return {"val_accuracy": 0.5}


def save_model(model, path):
    import json
    path.write_text(json.dumps(model))
'''


def test_model_engineer_runs_with_overridden_hooks(tmp_path: Path) -> None:
    task = new_task(tmp_path, "model_engineer", ENGINEER_HOOKS)
    result = run(as_bundle(task), tmp_path, None)
    assert (result.num_examples, result.metrics) == (6, {"val_accuracy": 0.5})
    assert json.loads((result.output_dir / "model.keras").read_text()) == {
        "input_shape": [2], "classes": 2}


def test_data_annotator_runs_on_an_answers_file(tmp_path: Path) -> None:
    task = setup_task.copy_template("data_annotator", tmp_path / "annot")
    data = tmp_path / "answers"
    data.mkdir()
    (data / "labels.json").write_text(json.dumps({"s1": "positive", "s2": "negative",
                                                  "s3": "neutral", "s5": ""}))
    result = run(as_bundle(task), tmp_path, data)
    out = json.loads((result.output_dir / "annotations.json").read_text())
    assert out == {"schema": "sentiment",
                   "annotations": {"s1": "positive", "s2": "negative", "s3": "neutral"}}
    assert result.num_examples == 3 and result.metrics == {"coverage": 0.6}


def test_data_annotator_refuses_labels_outside_the_schema(tmp_path: Path) -> None:
    task = setup_task.copy_template("data_annotator", tmp_path / "annot")
    data = tmp_path / "answers"
    data.mkdir()
    (data / "labels.csv").write_text("id,label\ns1,positive\ns2,furious\n")
    with pytest.raises(TaskFailed):
        run(as_bundle(task), tmp_path, data)
    log = (tmp_path / "work" / "task.log").read_text()
    assert "furious" in log and not (tmp_path / "work" / "output" / "annotations.json").exists()


@pytest.mark.tf
@pytest.mark.slow
def test_model_contributor_default_hooks_train_keras(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    task = setup_task.copy_template("model_contributor", tmp_path / "mc")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    np.savez(data / "data.npz", x=x, y=(x[:, 0] > 0).astype("int64"))
    # the template trains the creator's model (task create --model ships it as model.keras)
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(task / "model.keras")
    result = run(as_bundle(task), tmp_path, data, env_extra={"KERAS_BACKEND": "tensorflow"})
    assert result.num_examples == 64 and "accuracy" in result.metrics
    assert (result.output_dir / "update.npz").is_file()
