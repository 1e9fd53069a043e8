"""Deterministic aggregation: the same updates give the same bits, file and digest."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import (
    FedAvg,
    Update,
    aggregate_digest,
    load_update,
    load_weights,
    save_update,
    save_weights,
    strategy_from_name,
)
from decentralml.fl.npz import read_npz

SHAPES = [(30, 20), (20,), (3, 3, 4, 8), ()]


def keyed_updates(seed: int, k: int) -> list[Update]:
    rng = np.random.default_rng(seed)
    # magnitudes spread over decades, so a different summation order really changes the bits
    return [Update([(rng.normal(size=s) * 10.0 ** rng.integers(-4, 4)).astype(np.float32)
                    for s in SHAPES], int(rng.integers(1, 1000)), key=100 + i,
                   source=f"submission {100 + i}")
            for i in range(k)]


def test_fedavg_in_key_order_is_bit_identical_whatever_the_arrival_order() -> None:
    updates = keyed_updates(0, 9)
    digests = set()
    for perm_seed in range(6):
        order = np.random.default_rng(perm_seed).permutation(len(updates))
        digests.add(aggregate_digest(FedAvg().aggregate([updates[i] for i in order])))
    assert len(digests) == 1
    # and it is the average (float64 reference), not just some stable number
    total = sum(u.num_examples for u in updates)
    for got, i in zip(FedAvg().aggregate(updates), range(len(SHAPES)), strict=True):
        want = sum(np.asarray(u.weights[i], np.float64) * (u.num_examples / total)
                   for u in updates)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_unkeyed_updates_show_why_the_order_must_be_fixed() -> None:
    """Without keys the given order is used, and a float32 sum of the same terms in another
    order does change the bits: what the keys (and the float64 default) are for."""
    plain = [Update(list(u.weights), u.num_examples) for u in keyed_updates(1, 9)]
    f32 = FedAvg(accumulator=np.float32)
    digests = {aggregate_digest(f32.aggregate(plain[::step]))
               for step in (1, -1)} | {aggregate_digest(f32.aggregate(plain[1::2] + plain[::2]))}
    assert len(digests) > 1


def test_registry_default_and_server_optimizers_use_the_key_order() -> None:
    updates = keyed_updates(2, 5)
    current = [np.zeros(s, np.float32) for s in SHAPES]
    for name in ("fedavg", "fedavgm", "fedadam"):
        a = strategy_from_name(name).apply(current, updates)
        b = strategy_from_name(name).apply(current, updates[::-1])
        assert aggregate_digest(a) == aggregate_digest(b), name
    assert FedAvg().accumulator == np.float64


def test_keys_must_be_all_or_nothing_and_unique() -> None:
    a, b = keyed_updates(3, 2)
    with pytest.raises(InvalidInput, match=r"key.*no key"):
        FedAvg().aggregate([a, Update(list(b.weights), 3)])
    with pytest.raises(InvalidInput, match="share the key"):
        FedAvg().aggregate([a, Update(list(b.weights), 3, key=a.key)])
    with pytest.raises(InvalidInput, match="key"):
        Update([np.ones(2, np.float32)], key=1.5)  # type: ignore[arg-type]
    # ints before strings: a submission id and a bare CID can be mixed
    mixed = [Update(list(a.weights), 1, key="bafyz"), Update(list(b.weights), 1, key=7)]
    assert aggregate_digest(FedAvg().aggregate(mixed)) == \
        aggregate_digest(FedAvg().aggregate(mixed[::-1]))


def test_digest_sees_every_bit_dtype_and_shape() -> None:
    w = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, np.float32)]
    d = aggregate_digest(w)
    assert len(d) == 64 and d == aggregate_digest([a.copy() for a in w])
    flipped = [w[0].copy(), w[1].copy()]
    flipped[1].view(np.uint32)[0] ^= 1
    assert aggregate_digest(flipped) != d
    assert aggregate_digest([w[0].astype(np.float64), w[1]]) != d
    assert aggregate_digest([w[0].reshape(3, 2), w[1]]) != d
    assert aggregate_digest([w[0], w[1], np.zeros(0, np.float32)]) != d
    assert aggregate_digest([w[0].astype(">f4"), w[1]]) == d        # byte order is storage
    assert aggregate_digest([np.asfortranarray(w[0]), w[1]]) == d  # so is memory layout


_WRITE = """
import sys
import numpy as np
from decentralml.fl import save_update, save_weights
rng = np.random.default_rng(7)
w = {"0000:conv/kernel": rng.normal(size=(3, 3, 1, 4)).astype(np.float32),
     "0001:conv/bias": np.zeros(4, np.float32), "0002:step": np.array(3, np.int64)}
save_weights(w, sys.argv[1] + "/aggregate.npz")
save_update(w, sys.argv[1] + "/update", 42, {"loss": 0.25})
"""


def test_two_processes_write_byte_identical_files(tmp_path: Path) -> None:
    outs = []
    for tz in ("UTC", "Asia/Tokyo"):  # different local times: numpy.savez would stamp them
        out = tmp_path / tz.replace("/", "-")
        out.mkdir()
        done = subprocess.run([sys.executable, "-c", _WRITE, str(out)],
                              env={**os.environ, "TZ": tz}, capture_output=True, text=True,
                              check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        outs.append(out)
    for name in ("aggregate.npz", "update/update.npz", "update/update.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    with zipfile.ZipFile(outs[0] / "aggregate.npz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # what is written is what numpy and the checked loaders read back
    with np.load(outs[0] / "aggregate.npz", allow_pickle=False) as data:
        assert data["0002:step"] == 3 and data["0000:conv/kernel"].shape == (3, 3, 1, 4)
    like = {"0000:conv/kernel": np.zeros((3, 3, 1, 4), np.float32),
            "0001:conv/bias": np.zeros(4, np.float32), "0002:step": np.array(0, np.int64)}
    loaded = load_weights(outs[0] / "aggregate.npz", like=like)
    update = load_update(outs[0] / "update", like=like, key=5)
    assert aggregate_digest(loaded) == aggregate_digest(update.arrays())
    assert update.key == 5 and update.num_examples == 42


def test_aggregate_file_round_trips_to_the_same_digest(tmp_path: Path) -> None:
    weights = FedAvg().aggregate(keyed_updates(4, 4))
    path = save_weights(weights, tmp_path / "agg.npz")
    assert aggregate_digest(load_weights(path, like=weights)) == aggregate_digest(weights)
    again = save_weights(weights, tmp_path / "again.npz")
    assert path.read_bytes() == again.read_bytes()


def test_read_npz_is_bounded_and_refuses_surprises(tmp_path: Path) -> None:
    p = save_weights({"x": np.zeros((100, 10), np.float32), "y": np.zeros(100, np.int64)},
                     tmp_path / "d.npz")
    got = read_npz(p, ["x", "y"], max_bytes=10_000)
    assert got["x"].shape == (100, 10) and got["y"].dtype == np.int64
    with pytest.raises(ModelError, match="budget"):
        read_npz(p, ["x", "y"], max_bytes=4_000)
    with pytest.raises(ModelError, match=r"unexpected member 'y\.npy'"):
        read_npz(p, ["x"], max_bytes=10_000)
    with pytest.raises(ModelError, match="missing array 'z'"):
        read_npz(p, ["x", "y", "z"], max_bytes=10_000)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ModelError, match=r"object.*never loaded"):
        read_npz(pickled, ["x", "y"], max_bytes=10_000)
    with pytest.raises(InvalidInput, match="unsupported dtype"):
        save_weights({"x": np.array(["a"])}, tmp_path / "s.npz")
    # a save_update file is readable the same way (same writer)
    save_update([np.ones(3, np.float32)], tmp_path / "u", 1)
    assert read_npz(tmp_path / "u" / "update.npz", ["0000"], max_bytes=12)["0000"].sum() == 3


def test_zero_dimensional_arrays_keep_their_shape(tmp_path: Path) -> None:
    w = [np.array(2.5, np.float32), np.ones((2, 2), np.float32)]
    path = save_weights(w, tmp_path / "w.npz")
    back = load_weights(path, like=w)
    assert back[0].shape == () and back[0] == 2.5
    assert aggregate_digest([np.array(1.0)]) != aggregate_digest([np.ones(1)])


def test_atomically_written_files_get_a_plain_open_mode(tmp_path: Path) -> None:
    """Not mkstemp's 0600: the sandboxed task (another uid under root) must read a shard."""
    import os

    from decentralml.fl.npz import atomic_write

    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "data.npz", lambda f: f.write(b"x"))
    finally:
        os.umask(umask)
    assert (tmp_path / "data.npz").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]  # no temporary left behind
