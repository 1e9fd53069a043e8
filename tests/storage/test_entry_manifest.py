"""The Python entry point in the manifest and ``template.json``: what is refused before anything is
packed, and what the code hash a warm host is keyed on covers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decentralml.chain.types import TaskType
from decentralml.errors import BundleError, InvalidInput
from decentralml.storage.bundle import build_manifest
from decentralml.storage.preflight import DEFAULT_ROUND_FILES, declared_entry


def _bundle(root: Path, **files: str) -> Path:
    root.mkdir()
    (root / "start_task.sh").write_text("exec python train.py\n")
    for name, text in files.items():
        (root / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (root / name.replace("__", "/")).write_text(text)
    return root


@pytest.mark.parametrize("entry", ["train", "train:", ":fit", "train:fit()", "../x:fit",
                                   "train:fit:x", "tr ain:fit", "1train:fit"])
def test_malformed_entries_are_refused(tmp_path: Path, entry: str) -> None:
    root = _bundle(tmp_path / "b", **{"train.py": "def fit(t): pass\n",
                                      "template.json": json.dumps({"entry": entry})})
    with pytest.raises(InvalidInput, match="entry"):
        declared_entry(root)
    with pytest.raises(BundleError, match="module:function"):
        build_manifest(root, task_type=TaskType.ModelContributor, entry=entry)


def test_entry_module_must_be_in_the_bundle(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b", **{"template.json": json.dumps({"entry": "train:fit"})})
    with pytest.raises(InvalidInput, match=r"train\.py"):
        declared_entry(root)
    with pytest.raises(BundleError, match=r"train\.py is not one of the files"):
        build_manifest(root, task_type=TaskType.ModelContributor, entry="train:fit")
    pkg = _bundle(tmp_path / "p", **{"pkg__sub__init__.py": "", "pkg__sub__mod.py": "x = 1\n"})
    manifest = build_manifest(pkg, task_type=TaskType.ModelContributor, entry="pkg.sub.mod:fit")
    assert manifest.python_entry == "pkg.sub.mod:fit"


def test_round_files_cannot_be_code(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b", **{"train.py": "def fit(t): pass\n"})
    with pytest.raises(BundleError, match="Python code"):
        build_manifest(root, task_type=TaskType.ModelContributor, entry="train:fit",
                       round_files=("train.py",))


def test_declared_entry_defaults_and_absence(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b", **{"train.py": "", "template.json": json.dumps(
        {"entry": "train:fit"})})
    assert declared_entry(root) == ("train:fit", DEFAULT_ROUND_FILES)
    plain = _bundle(tmp_path / "plain", **{"template.json": json.dumps({"needs": []})})
    assert declared_entry(plain) == (None, ())


def test_code_hash_ignores_round_files_only(tmp_path: Path) -> None:
    def manifest(name: str, code: str, config: str, model: str) -> object:
        root = _bundle(tmp_path / name, **{"train.py": code, "config.json": config,
                                           "model.keras": model})
        return build_manifest(root, task_type=TaskType.ModelContributor, entry="train:fit",
                              round_files=("config.json", "model.keras"))

    base = manifest("a", "def fit(t): pass\n", "{}", "w1")
    next_round = manifest("b", "def fit(t): pass\n", '{"r": 2}', "w2")
    other_code = manifest("c", "def fit(t): return None\n", "{}", "w1")
    assert base.code_hash() == next_round.code_hash()  # type: ignore[attr-defined]
    assert base.code_hash() != other_code.code_hash()  # type: ignore[attr-defined]
    shell = build_manifest(tmp_path / "a", task_type=TaskType.ModelContributor)
    assert shell.code_hash() != base.code_hash()  # type: ignore[attr-defined]
    # a manifest without an entry point keeps its old bytes (and CID)
    assert b"python_entry" not in shell.to_json() and b"round_files" not in shell.to_json()
