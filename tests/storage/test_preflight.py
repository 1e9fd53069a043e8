"""Publishing's check that a bundle holds what it needs to run (pure, on temp directories)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decentralml.errors import InvalidInput
from decentralml.storage.preflight import check_bundle_runs, missing_files, script_references

REPO = Path(__file__).resolve().parents[2]


def test_script_references_are_the_bundles_own_files() -> None:
    script = ('#!/usr/bin/env bash\n'
              'here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"\n'
              'exec python "$here/train.py" --config config.json  # not: notes.txt\n'
              'python ./prep.py < "$DECENTRALML_DATA_DIR/data.npz"\n'
              'cp out.json "$DECENTRALML_OUTPUT_DIR/result.json"\n')
    assert script_references(script) == ["train.py", "config.json", "prep.py", "out.json"]


def test_missing_files_come_from_needs_and_the_script(tmp_path: Path) -> None:
    (tmp_path / "start_task.sh").write_text("exec python train.py\n")
    (tmp_path / "template.json").write_text(json.dumps({"needs": ["model.keras"]}))
    assert missing_files(tmp_path) == ["model.keras", "train.py"]
    with pytest.raises(InvalidInput, match=r"no model\.keras.*also missing: train\.py.*--model"):
        check_bundle_runs(tmp_path)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "model.keras").write_text("")
    check_bundle_runs(tmp_path)


def test_no_entry_point_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"start_task\.sh"):
        check_bundle_runs(tmp_path)


@pytest.mark.parametrize("template", ["data_annotator", "model_engineer"])
def test_the_shipped_templates_pass(template: str) -> None:
    check_bundle_runs(REPO / "asset_templates" / template)


def test_the_example_bundle_needs_the_creators_model() -> None:
    assert missing_files(REPO / "examples" / "federated_mnist" / "bundle") == ["model.keras"]
    assert missing_files(REPO / "asset_templates" / "model_contributor") == ["model.keras"]
