"""Weights-only updates: written by contributors, loaded by the creator trusting nothing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import (
    SIDECAR_FILE,
    UPDATE_FILE,
    FedAvg,
    NpzWeights,
    WeightSpec,
    load_update,
    save_update,
)

NAMES = ["0000:conv/kernel", "0001:conv/bias", "0002:dense/kernel"]


@pytest.fixture
def weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {NAMES[0]: rng.normal(size=(3, 3, 1, 4)).astype(np.float32),
            NAMES[1]: rng.normal(size=(4,)).astype(np.float32),
            NAMES[2]: rng.normal(size=(16, 10)).astype(np.float32)}


@pytest.fixture
def spec(weights: dict[str, np.ndarray]) -> WeightSpec:
    return WeightSpec.of(weights)


def write_npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_round_trip(tmp_path: Path, weights: dict[str, np.ndarray], spec: WeightSpec) -> None:
    path = save_update(weights, tmp_path / "out", 123, {"loss": 0.5, "note": "ok"})
    assert path == tmp_path / "out" / UPDATE_FILE
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted([UPDATE_FILE, SIDECAR_FILE])
    assert json.loads((tmp_path / "out" / SIDECAR_FILE).read_text()) == {
        "num_examples": 123, "metrics": {"loss": 0.5, "note": "ok"}}
    for lazy in (False, True):
        u = load_update(tmp_path / "out", like=spec, lazy=lazy)
        assert u.num_examples == 123 and u.metrics["loss"] == 0.5
        assert u.names == NAMES
        for got, want in zip(u.arrays(), weights.values(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert isinstance(load_update(path, like=spec, lazy=True).weights, NpzWeights)


def test_list_of_arrays_uses_index_names(tmp_path: Path, weights: dict[str, np.ndarray]) -> None:
    arrays = list(weights.values())
    save_update(arrays, tmp_path, 5)
    u = load_update(tmp_path, like=arrays)
    assert u.names == ["0000", "0001", "0002"]
    with pytest.raises(ModelError, match="missing variable 0000:conv/kernel"):
        load_update(tmp_path, like=weights)


def test_save_refuses_bad_input(tmp_path: Path, weights: dict[str, np.ndarray]) -> None:
    bad = dict(weights)
    bad[NAMES[1]] = np.array([1.0, np.nan, 0, 0], np.float32)
    with pytest.raises(InvalidInput, match="NaN"):
        save_update(bad, tmp_path, 1)
    with pytest.raises(InvalidInput, match="num_examples"):
        save_update(weights, tmp_path, -3)
    with pytest.raises(InvalidInput, match="metrics"):
        save_update(weights, tmp_path, 3, {"loss": float("inf")})
    with pytest.raises(InvalidInput, match="dtype"):
        save_update({"a": np.array([object()])}, tmp_path, 3)
    assert not (tmp_path / UPDATE_FILE).exists()


@pytest.mark.parametrize("lazy", [False, True])
def test_streaming_fedavg_over_files(tmp_path: Path, rng: np.random.Generator,
                                     spec: WeightSpec, lazy: bool) -> None:
    updates = []
    for k, n in enumerate((10, 20, 70)):
        arrays = {name: rng.normal(size=shape).astype(np.float32)
                  for name, shape in zip(spec.names, spec.shapes, strict=True)}
        save_update(arrays, tmp_path / str(k), n)
        updates.append((arrays, n))
    loaded = [load_update(tmp_path / str(k), like=spec, lazy=lazy) for k in range(3)]
    got = FedAvg().aggregate(loaded)
    for i, name in enumerate(spec.names):
        want = sum(a[name].astype(np.float64) * n for a, n in updates) / 100
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)


def _sidecar(tmp_path: Path, text: str = '{"num_examples": 10, "metrics": {}}') -> None:
    (tmp_path / SIDECAR_FILE).write_text(text)


def test_wrong_shape_names_the_variable(tmp_path: Path, weights: dict[str, np.ndarray],
                                        spec: WeightSpec) -> None:
    bad = dict(weights)
    bad[NAMES[2]] = np.zeros((10, 16), np.float32)
    save_update(bad, tmp_path, 1)
    with pytest.raises(ModelError, match=r"variable 0002:dense/kernel has shape \(10, 16\), "
                                         r"the model expects \(16, 10\)"):
        load_update(tmp_path, like=spec)


def test_wrong_dtype_names_the_variable(tmp_path: Path, weights: dict[str, np.ndarray],
                                        spec: WeightSpec) -> None:
    bad = dict(weights)
    bad[NAMES[1]] = bad[NAMES[1]].astype(np.float64)
    save_update(bad, tmp_path, 1)
    with pytest.raises(ModelError, match="variable 0001:conv/bias has dtype float64"):
        load_update(tmp_path, like=spec)
    bad[NAMES[1]] = weights[NAMES[1]].astype(">f4")
    save_update(bad, tmp_path, 1)
    with pytest.raises(ModelError, match="variable 0001:conv/bias has dtype >f4"):
        load_update(tmp_path, like=spec)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("lazy", [False, True])
def test_non_finite_values_are_refused(tmp_path: Path, weights: dict[str, np.ndarray],
                                       spec: WeightSpec, bad: float, lazy: bool) -> None:
    members = {f"{k}.npy": npy_bytes(v) for k, v in weights.items()}
    poisoned = weights[NAMES[0]].copy()
    poisoned[0, 0, 0, 1] = bad
    members[f"{NAMES[0]}.npy"] = npy_bytes(poisoned)
    write_npz(tmp_path / UPDATE_FILE, members)
    _sidecar(tmp_path)
    with pytest.raises(ModelError, match="variable 0000:conv/kernel holds NaN or inf"):
        load_update(tmp_path, like=spec, lazy=lazy)


def test_missing_and_extra_members(tmp_path: Path, weights: dict[str, np.ndarray],
                                   spec: WeightSpec) -> None:
    members = {f"{k}.npy": npy_bytes(v) for k, v in weights.items()}
    _sidecar(tmp_path)
    write_npz(tmp_path / UPDATE_FILE, {k: v for k, v in members.items() if "bias" not in k})
    with pytest.raises(ModelError, match="missing variable 0001:conv/bias"):
        load_update(tmp_path, like=spec)
    write_npz(tmp_path / UPDATE_FILE, {**members, "backdoor.npy": members[f"{NAMES[1]}.npy"]})
    with pytest.raises(ModelError, match=r"unexpected member 'backdoor.npy'"):
        load_update(tmp_path, like=spec)


def test_pickled_object_array_is_never_loaded(tmp_path: Path, weights: dict[str, np.ndarray],
                                              spec: WeightSpec) -> None:
    members = {f"{k}.npy": npy_bytes(v) for k, v in weights.items()}
    evil = np.empty(4, dtype=object)
    evil[:] = [print, "x", 1, None]
    members[f"{NAMES[1]}.npy"] = npy_bytes(evil, allow_pickle=True)
    write_npz(tmp_path / UPDATE_FILE, members)
    _sidecar(tmp_path)
    with pytest.raises(ModelError, match=r"0001:conv/bias.*object dtype"):
        load_update(tmp_path, like=spec)


def test_forged_or_truncated_data(tmp_path: Path, weights: dict[str, np.ndarray],
                                  spec: WeightSpec) -> None:
    members = {f"{k}.npy": npy_bytes(v) for k, v in weights.items()}
    _sidecar(tmp_path)
    # a header announcing a huge array is refused before anything is allocated
    huge = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        huge, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    write_npz(tmp_path / UPDATE_FILE, {**members, f"{NAMES[1]}.npy": huge.getvalue()})
    with pytest.raises(ModelError, match=r"0001:conv/bias has shape \(1000000000000,\)"):
        load_update(tmp_path, like=spec)
    # right header, missing data
    write_npz(tmp_path / UPDATE_FILE,
              {**members, f"{NAMES[2]}.npy": members[f"{NAMES[2]}.npy"][:-8]})
    with pytest.raises(ModelError, match=r"0002:dense/kernel.*bytes"):
        load_update(tmp_path, like=spec)
    # trailing junk
    write_npz(tmp_path / UPDATE_FILE,
              {**members, f"{NAMES[2]}.npy": members[f"{NAMES[2]}.npy"] + b"junk"})
    with pytest.raises(ModelError, match=r"0002:dense/kernel.*bytes"):
        load_update(tmp_path, like=spec)
    # not a zip at all
    (tmp_path / UPDATE_FILE).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelError, match=r"not a valid .npz"):
        load_update(tmp_path, like=spec)
    (tmp_path / UPDATE_FILE).unlink()
    with pytest.raises(ModelError, match="missing update file"):
        load_update(tmp_path, like=spec)


@pytest.mark.parametrize(("text", "match"), [
    ('{"num_examples": NaN, "metrics": {}}', "not valid JSON"),
    ('{"metrics": {}}', "num_examples is missing"),
    ('{"num_examples": true}', "must be an integer"),
    ('{"num_examples": 2.5}', "must be an integer"),
    ('{"num_examples": 1e400}', "must be an integer"),
    ('{"num_examples": 100000000000000000000}', "limit"),
    ('{"num_examples": -1}', "limit"),
    ('{"num_examples": 3, "metrics": [1]}', "metrics must be a JSON object"),
    ('{"num_examples": 3, "metrics": {"loss": 1e400}}', "finite number, got inf"),
    ('{"num_examples": 3, "metrics": {"loss": -1e400}}', "finite number, got -inf"),
    ('{"num_examples": 3, "metrics": {"loss": 1' + "0" * 400 + '}}', "finite number"),
    ('{"num_examples": 3, "metrics": {"loss": NaN}}', "NaN is not allowed"),
    ("[1, 2]", "must be a JSON object"),
    ("\xff\xfe", "not valid JSON"),
])
def test_bad_sidecars(tmp_path: Path, weights: dict[str, np.ndarray], spec: WeightSpec,
                      text: str, match: str) -> None:
    save_update(weights, tmp_path, 1)
    _sidecar(tmp_path, text)
    with pytest.raises(ModelError, match=match):
        load_update(tmp_path, like=spec)


def test_missing_or_huge_sidecar(tmp_path: Path, weights: dict[str, np.ndarray],
                                 spec: WeightSpec) -> None:
    save_update(weights, tmp_path, 1)
    (tmp_path / SIDECAR_FILE).write_text('{"num_examples": 1, "pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(ModelError, match="too large"):
        load_update(tmp_path, like=spec)
    (tmp_path / SIDECAR_FILE).unlink()
    with pytest.raises(ModelError, match="missing sidecar"):
        load_update(tmp_path, like=spec)
