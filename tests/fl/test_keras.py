"""Keras side: safe architecture exchange, updates against a real model, scoring, a real round."""

from __future__ import annotations

import json
import sys
import types
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from decentralml.chain.types import Submission, SubmissionStatus
from decentralml.errors import IntegrityError, ModelError, StorageError
from decentralml.fl import (
    FedAvg,
    HoldoutScorer,
    Median,
    clone_model,
    evaluate,
    federated_contributors_model,
    get_weights,
    load_architecture,
    load_contributor_models,
    load_update,
    make_digits_cnn,
    partition_iid,
    save_architecture,
    save_update,
    set_weights,
    train_local,
)

pytestmark = pytest.mark.tf


@pytest.fixture(scope="session")
def template(keras: ModuleType) -> Any:
    return make_digits_cnn((8, 8, 1), 10, seed=0)


def test_reference_model(template: Any) -> None:
    assert template.count_params() == 151_306
    names = [f"{i:04d}:{v.path}" for i, v in enumerate(template.weights)]
    assert names[:2] == ["0000:conv1/kernel", "0001:conv1/bias"]
    again = make_digits_cnn((8, 8, 1), 10, seed=0)
    for a, b in zip(get_weights(template), get_weights(again), strict=True):
        np.testing.assert_array_equal(a, b)


def test_architecture_round_trip_is_uncompiled(tmp_path: Path, template: Any,
                                               keras: ModuleType) -> None:
    model = clone_model(template)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = save_architecture(model, tmp_path / "model.keras")
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    assert not config.get("compile_config")
    loaded = load_architecture(path)
    assert not loaded.compiled
    for a, b in zip(get_weights(loaded), get_weights(template), strict=True):
        np.testing.assert_array_equal(a, b)


def _lambda_model(keras: ModuleType) -> Any:
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Lambda(lambda t: t * 2, name="sneaky")(h)
    return keras.Model(inputs, keras.layers.Dense(10)(h))


def test_lambda_layer_model_is_refused(tmp_path: Path, keras: ModuleType) -> None:
    path = tmp_path / "evil.keras"
    _lambda_model(keras).save(path)
    with pytest.raises(ModelError, match="layer 'sneaky' is a Lambda layer") as err:
        load_architecture(path)
    assert "safe_mode" not in str(err.value)


def test_keras_safe_mode_is_the_second_line(tmp_path: Path, keras: ModuleType,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With the config scan out of the way, Keras' safe mode still refuses the Lambda."""
    import decentralml.fl.keras as fk

    path = tmp_path / "evil.keras"
    _lambda_model(keras).save(path)
    monkeypatch.setattr(fk, "scan_architecture", lambda p: {})
    with pytest.raises(ModelError, match="refused or unreadable") as err:
        load_architecture(path)
    assert "safe_mode=False" not in str(err.value)


def test_foreign_modules_and_junk_are_refused(tmp_path: Path, template: Any) -> None:
    good = save_architecture(template, tmp_path / "good.keras")
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["module"] = "os"
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(evil, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, json.dumps(config) if name == "config.json" else data)
    with pytest.raises(ModelError, match="layer 'conv1' uses 'Conv2D' from module 'os'"):
        load_architecture(evil)
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a valid"):
        load_architecture(junk)
    with pytest.raises(ModelError, match=r"\.keras files only"):
        load_architecture(tmp_path / "model.h5")


def test_zip_bomb_weights_are_refused_before_keras_opens_them(
        tmp_path: Path, template: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small .keras file whose weights member inflates to far more than it stores."""
    import decentralml.fl.keras as fk

    good = save_architecture(template, tmp_path / "good.keras")
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name.endswith(".h5"):
                # 64 MiB of zeros deflate to ~64 KiB; the same shape at 2 GiB is the attack
                with zf.open(name, "w", force_zip64=True) as out:
                    block = bytes(1 << 20)
                    for _ in range(64):
                        out.write(block)
            else:
                zf.writestr(name, data)
    assert bomb.stat().st_size < 1 << 20
    opened: list[Path] = []
    monkeypatch.setattr(fk, "require_keras", lambda: types.SimpleNamespace(saving=types.
                        SimpleNamespace(load_model=lambda p, **kw: opened.append(p))))
    with pytest.raises(ModelError, match=r"model\.weights\.h5.*expands from \d+ to 67108864 "
                                         r"bytes.*zip bomb"):
        load_architecture(bomb)
    assert opened == []  # Keras never saw it
    monkeypatch.setattr(fk, "MAX_MODEL_BYTES", 1 << 16)  # and a plain oversized total
    with pytest.raises(ModelError, match="limit: 65536"):
        load_architecture(good)


def test_update_against_a_model_names_the_layer(tmp_path: Path, template: Any,
                                                keras: ModuleType) -> None:
    save_update(template, tmp_path / "ok", 7, {"accuracy": 0.5})
    u = load_update(tmp_path / "ok", like=template)
    assert u.names is not None and u.names[-1] == "0007:logits/bias"
    other = make_digits_cnn((8, 8, 1), 5)
    save_update(other, tmp_path / "other", 7)
    with pytest.raises(ModelError, match=r"variable 0006:logits/kernel has shape \(128, 5\), "
                                         r"the model expects \(128, 10\)"):
        load_update(tmp_path / "other", like=template)
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    assert [f"{i:04d}" for i in range(2)] == [n[:4] for n in
                                               load_update(save_update(seq, tmp_path / "s", 1),
                                                           like=seq).names or []]
    assert (load_update(tmp_path / "s", like=seq).names or [])[0] == "0000:d/kernel"


def _shards(digits: Any, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    (x, y), _test, _source = digits
    return partition_iid(x, y, k, seed=0)


def test_federated_round_approaches_central(tmp_path: Path, digits: Any,
                                            template: Any) -> None:
    """K=3 IID clients, 5 rounds of 2 epochs, through real update files and FedAvg."""
    (x, y), (x_test, y_test), _ = digits
    rounds, epochs = 5, 2
    central = clone_model(template)
    train_local(central, x, y, epochs=rounds * epochs, batch_size=32, seed=0)
    central_acc = evaluate(central, x_test, y_test)["accuracy"]

    model = clone_model(template)
    clients = [clone_model(template) for _ in range(3)]  # reused: compiled (traced) once
    for r in range(rounds):
        paths = []
        for k, (xs, ys) in enumerate(_shards(digits, 3)):
            local = clients[k]
            set_weights(local, get_weights(model))
            history = train_local(local, xs, ys, epochs=epochs, batch_size=32, seed=100 * r + k)
            paths.append(save_update(local, tmp_path / f"r{r}" / f"c{k}", len(ys),
                                     {"train_accuracy": history["accuracy"][-1]}))
        model = federated_contributors_model(model, paths, FedAvg())
    fed_acc = evaluate(model, x_test, y_test)["accuracy"]
    assert fed_acc >= 0.93, (fed_acc, central_acc)
    assert abs(central_acc - fed_acc) <= 0.05, (fed_acc, central_acc)

    # the global model scores as a contribution, and a useless one is refused
    scorer = HoldoutScorer(template, x_test, y_test, min_accuracy=0.9, min_improvement=0.1)
    good = scorer(get_weights(model))
    assert good.accepted and good.accuracy == pytest.approx(fed_acc)
    assert good.improvement is not None and good.improvement > 0.5
    bad = scorer(get_weights(template))
    assert not bad.accepted and "below" in bad.reason
    assert HoldoutScorer(model, x_test, y_test, min_improvement=0.0)(
        get_weights(template)).accepted is False


def test_holdout_scorer_rejects_broken_updates(tmp_path: Path, digits: Any,
                                               template: Any) -> None:
    _train, (x_test, y_test), _ = digits
    scorer = HoldoutScorer(template, x_test, y_test, min_accuracy=0.0)
    weights = get_weights(template)
    weights[3] = np.full_like(weights[3], np.nan)
    score = scorer(weights)
    assert not score.accepted and "NaN" in score.reason and np.isnan(score.accuracy)
    score = scorer(tmp_path / "nothing-here")
    assert not score.accepted and "invalid update" in score.reason
    assert scorer(get_weights(template)).accepted


class FakeStore:
    """Serves result bundles from a dict of directories, like a verified fetch would."""

    def __init__(self, bundles: dict[str, Path], broken: dict[str, Exception]) -> None:
        self.bundles = bundles
        self.broken = broken


def _fake_bundle_module() -> ModuleType:
    import shutil

    module = types.ModuleType("decentralml.storage.bundle")

    class Bundle:
        def __init__(self, path: Path) -> None:
            self.path = path

    def fetch_bundle(store: FakeStore, cid: str, dest: Path) -> Bundle:
        if cid in store.broken:
            raise store.broken[cid]
        shutil.copytree(store.bundles[cid], dest)
        return Bundle(dest)

    module.fetch_bundle = fetch_bundle  # type: ignore[attr-defined]
    return module


def _submission(sid: int, cid: str | None, num_examples: int | None = None) -> Submission:
    result = b"{}" if num_examples is None else json.dumps({"num_examples": num_examples}).encode()
    return Submission(submission_id=sid, task_id=1, worker="w", status=SubmissionStatus.Accepted,
                      result=result, result_cid=cid, result_storage=None, assigned_block=1,
                      submitted_block=2, validated_block=3)


def test_load_contributor_models_skips_bad_contributions(
        tmp_path: Path, template: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "decentralml.storage.bundle", _fake_bundle_module())
    rng = np.random.default_rng(0)
    base = get_weights(template)
    bundles: dict[str, Path] = {}
    good = []
    for k, n in enumerate((100, 300)):
        w = [a + rng.normal(scale=0.01, size=a.shape).astype(a.dtype) for a in base]
        bundles[f"Qmgood{k}"] = tmp_path / f"good{k}"
        save_update(w, bundles[f"Qmgood{k}"], n,
                    names=[f"{i:04d}:{v.path}" for i, v in enumerate(template.weights)])
        good.append((w, n))
    names = [f"{i:04d}:{v.path}" for i, v in enumerate(template.weights)]
    nan = [a.copy() for a in base]
    nan[2][0, 0] = np.nan
    bundles["Qmnan"] = tmp_path / "nan"
    save_update(base, bundles["Qmnan"], 10, names=names)
    np.savez(bundles["Qmnan"] / "update.npz", **dict(zip(names, nan, strict=True)))
    bundles["Qmindex"] = tmp_path / "index"
    save_update(base, bundles["Qmindex"], 10)  # index names: not this model's
    bundles["Qmgood2"] = tmp_path / "good2"
    save_update(base, bundles["Qmgood2"], 10, names=names)
    bundles["Qmshape"] = tmp_path / "shape"
    save_update(make_digits_cnn((8, 8, 1), 4), bundles["Qmshape"], 10)
    store = FakeStore(bundles, {"Qmgone": StorageError("unreachable"),
                                "Qmtampered": IntegrityError("hash mismatch")})
    items = [_submission(1, "Qmgood0", 100), _submission(2, None), _submission(3, "Qmnan"),
             "Qmshape", _submission(4, "Qmgone"), "Qmtampered", "../../etc",
             _submission(5, "Qmgood1", 300), _submission(6, "Qmgood0"),
             _submission(7, "Qmgood2", 999), "Qmindex"]
    loaded = load_contributor_models(items, store, like=template, workdir=tmp_path / "work")
    assert [u.source for u in loaded] == ["submission 1 (Qmgood0)", "submission 5 (Qmgood1)"]
    reasons = {r.source: r for r in loaded.rejected}
    assert "no result CID" in reasons["submission 2"].reason
    assert "0002:conv2/kernel holds NaN" in reasons["submission 3 (Qmnan)"].reason
    assert "missing variable 0000:conv1/kernel" in reasons["Qmindex"].reason
    assert "0006:logits/kernel has shape (128, 4)" in reasons["Qmshape"].reason
    assert reasons["submission 4 (Qmgone)"].retryable
    assert not reasons["Qmtampered"].retryable and "hash mismatch" in reasons["Qmtampered"].reason
    assert "not a plain" in reasons["../../etc"].reason
    assert "same content" in reasons["submission 6 (Qmgood0)"].reason
    assert "999 on chain" in reasons["submission 7 (Qmgood2)"].reason

    federated = federated_contributors_model(template, loaded, FedAvg(accumulator=np.float64))
    for got, *pair in zip(get_weights(federated), good[0][0], good[1][0], strict=True):
        want = (pair[0].astype(np.float64) * 100 + pair[1].astype(np.float64) * 300) / 400
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert federated is not template
    robust = federated_contributors_model(template, loaded, Median())
    assert len(get_weights(robust)) == len(base)

    with pytest.raises(StorageError, match="unreachable"):
        load_contributor_models([_submission(4, "Qmgone")], store, like=template,
                                workdir=tmp_path / "work2", on_error="raise")
    with pytest.raises(ModelError, match="no accepted updates"):
        federated_contributors_model(template, [])
