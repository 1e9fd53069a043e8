"""A peer job's weight layout (peer_layout.json) is read bounded and checked: a hostile bundle
gets an InvalidInput naming the file, never a pickle, a huge allocation or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput
from decentralml.roles.peer_job import LAYOUT_FILE, MAX_LAYOUT_BYTES, read_layout


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / LAYOUT_FILE
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_the_layout_of_a_model(tmp_path: Path) -> None:
    spec = read_layout(_write(tmp_path, {"names": ["0000:dense/kernel", "0001:dense/bias"],
                                         "shapes": [[64, 10], [10]],
                                         "dtypes": ["<f4", "<f4"]}))
    assert spec.names == ("0000:dense/kernel", "0001:dense/bias")
    assert spec.shapes == ((64, 10), (10,)) and spec.dtypes == (np.dtype("float32"),) * 2


@pytest.mark.parametrize("data", [
    "{not json",
    {"names": ["a"], "shapes": [[1]]},                       # no dtypes
    {"names": ["a"], "shapes": [[1]], "dtypes": ["|O"]},     # objects: would need a pickle
    {"names": ["a"], "shapes": [[1]], "dtypes": ["<U4"]},    # not numeric
    {"names": ["a"], "shapes": [[-1]], "dtypes": ["<f4"]},   # negative dimension
    {"names": ["a", "a"], "shapes": [[1], [1]], "dtypes": ["<f4", "<f4"]},  # names repeat
    {"names": ["a"], "shapes": [[1], [2]], "dtypes": ["<f4"]},  # lengths differ
    {"names": "a", "shapes": [[1]], "dtypes": ["<f4"]},
])
def test_a_hostile_layout_is_refused(tmp_path: Path, data: object) -> None:
    with pytest.raises(InvalidInput, match=LAYOUT_FILE):
        read_layout(_write(tmp_path, data))


def test_an_oversized_layout_is_not_parsed(tmp_path: Path) -> None:
    path = _write(tmp_path, " " * (MAX_LAYOUT_BYTES + 1))
    with pytest.raises(InvalidInput, match="larger than"):
        read_layout(path)
