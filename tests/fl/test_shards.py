"""One shard per slot: a seeded, stratified split and a file a contributor can open safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import load_shard, save_shard, shard_file_name, split_shards, write_shards
from decentralml.fl.shards import MAX_SHARDS


def labelled(n: int = 1000, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n).astype(np.int64)
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # x[i, 0] == i
    return x, y


def test_split_is_a_balanced_stratified_partition() -> None:
    x, y = labelled()
    shards = split_shards(x, y, 7, seed=3)
    sizes = [len(ys) for _, ys in shards]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(y)
    seen = np.sort(np.concatenate([xs[:, 0] for xs, _ in shards]).astype(np.int64))
    assert np.array_equal(seen, np.arange(len(y)))               # every example exactly once
    for xs, ys in shards:
        assert np.array_equal(y[xs[:, 0].astype(np.int64)], ys)  # labels travel with examples
        assert np.all(np.diff(xs[:, 0]) > 0)                     # original order kept
    for c in range(10):
        per_shard = [int((ys == c).sum()) for _, ys in shards]
        assert max(per_shard) - min(per_shard) <= 1, (c, per_shard)


def test_split_is_reproducible_from_the_seed() -> None:
    x, y = labelled()
    a = split_shards(x, y, 4, seed=1)
    b = split_shards(x, y, 4, seed=1)
    c = split_shards(x, y, 4, seed=2)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c, strict=True))


def test_non_class_labels_are_split_without_strata() -> None:
    x, _ = labelled(100)
    y = np.linspace(0, 1, 100)                                   # a regression target
    shards = split_shards(x, y, 3, seed=0)
    assert sorted(len(s[1]) for s in shards) == [33, 33, 34]
    plain = split_shards(*labelled(100), 3, seed=0, stratify=False)
    assert sum(len(s[1]) for s in plain) == 100


def test_bad_splits_name_the_field_and_the_limit() -> None:
    x, y = labelled(50)
    with pytest.raises(InvalidInput, match=r"n: is 0 for 50 examples \(limit: 1..=50\)"):
        split_shards(x, y, 0)
    with pytest.raises(InvalidInput, match=r"limit: 1..=50"):
        split_shards(x, y, 51)
    big_x, big_y = labelled(1000)
    with pytest.raises(InvalidInput, match=rf"limit: 1..={MAX_SHARDS}"):
        split_shards(big_x, big_y, MAX_SHARDS + 1)
    with pytest.raises(InvalidInput, match="y: 49 labels for 50 examples"):
        split_shards(x, y[:-1], 2)
    with pytest.raises(InvalidInput, match="n: must be an integer"):
        split_shards(x, y, 2.0)  # type: ignore[arg-type]


def test_shard_files_round_trip_and_are_byte_reproducible(tmp_path: Path) -> None:
    x, y = labelled(200)
    paths = write_shards(tmp_path / "a", x, y, 4, seed=5)
    again = write_shards(tmp_path / "b", x, y, 4, seed=5)
    assert [p.name for p in paths] == [shard_file_name(i) for i in range(4)] == [
        "shard-0000.npz", "shard-0001.npz", "shard-0002.npz", "shard-0003.npz"]
    for p, q, (xs, ys) in zip(paths, again, split_shards(x, y, 4, seed=5), strict=True):
        assert p.read_bytes() == q.read_bytes()
        lx, ly = load_shard(p)
        assert np.array_equal(lx, xs) and np.array_equal(ly, ys) and ly.dtype == np.int64
        with np.load(p, allow_pickle=False) as data:             # what a bundle's train.py does
            assert np.array_equal(data["y"], ys)
    with pytest.raises(InvalidInput, match=r"directory: .*shard-0000\.npz already exists"):
        write_shards(tmp_path / "a", x, y, 4, seed=5)


def test_hostile_shard_files_are_refused(tmp_path: Path) -> None:
    x, y = labelled(100)
    good = save_shard(tmp_path / "good.npz", x, y)
    with pytest.raises(ModelError, match="budget"):
        load_shard(good, max_bytes=1000)                         # refused before allocating
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([object()], dtype=object), y=np.zeros(1))
    with pytest.raises(ModelError, match="never loaded"):
        load_shard(pickled)
    extra = tmp_path / "extra.npz"
    np.savez(extra, x=x, y=y, z=y)
    with pytest.raises(ModelError, match=r"unexpected member 'z\.npy'"):
        load_shard(extra)
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, x=x, y=y[:-1])
    with pytest.raises(ModelError, match="same number of examples"):
        load_shard(uneven)
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(forged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "x.npy":                          # claim a terabyte of rows
                data = data.replace(b"(100, 3)", b"(99999999999, 3)", 1)
                end = data.index(b"\n")                          # same header length: eat
                data = data[:end - 8] + data[end:]                # 8 bytes of its padding
            dst.writestr(info, data)
    with pytest.raises(ModelError, match="budget"):
        load_shard(forged)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"not a valid \.npz"):
        load_shard(junk)
    with pytest.raises(InvalidInput, match="x: a shard needs at least one example"):
        save_shard(tmp_path / "empty.npz", x[:0], y[:0])
