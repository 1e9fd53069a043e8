"""Client partitions and the offline dataset loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import (
    dirichlet_indices,
    iid_indices,
    label_indices,
    load_mnist,
    partition_by_label,
    partition_dirichlet,
    partition_iid,
)

LABELS = np.repeat(np.arange(10), 50)


def _is_partition(parts: list[np.ndarray], n: int) -> bool:
    joined = np.concatenate(parts)
    return len(joined) == n and len(np.unique(joined)) == n


def test_iid_is_balanced_and_seeded() -> None:
    parts = iid_indices(500, 3, seed=1)
    assert _is_partition(parts, 500) and sorted(len(p) for p in parts) == [166, 167, 167]
    assert all((a == b).all() for a, b in zip(parts, iid_indices(500, 3, seed=1), strict=True))
    with pytest.raises(InvalidInput):
        iid_indices(2, 3)


def test_dirichlet_skews_labels() -> None:
    skewed = dirichlet_indices(LABELS, 5, alpha=0.1, seed=0)
    flat = dirichlet_indices(LABELS, 5, alpha=1000.0, seed=0)
    assert _is_partition(skewed, 500) and _is_partition(flat, 500)

    def max_fraction(parts: list[np.ndarray]) -> float:
        return float(np.mean([np.bincount(LABELS[p], minlength=10).max() / len(p)
                              for p in parts]))

    assert max_fraction(skewed) > 2 * max_fraction(flat)
    with pytest.raises(InvalidInput):
        dirichlet_indices(LABELS, 5, alpha=0.0)


def test_by_label() -> None:
    parts = label_indices(LABELS, 5)
    assert _is_partition(parts, 500)
    assert all(len(np.unique(LABELS[p])) == 2 for p in parts)
    parts = label_indices(LABELS, 4, labels_per_client=3, seed=2)
    assert all(len(np.unique(LABELS[p])) == 3 for p in parts)
    with pytest.raises(InvalidInput):
        label_indices(LABELS[:100][LABELS[:100] < 2], 3)


def test_shards_follow_the_indices() -> None:
    x = np.arange(500)[:, None].astype(np.float32)
    for shards in (partition_iid(x, LABELS, 3), partition_dirichlet(x, LABELS, 3, 0.5),
                   partition_by_label(x, LABELS, 5)):
        for xs, ys in shards:
            assert (LABELS[xs[:, 0].astype(int)] == ys).all()


def test_load_mnist_reads_a_local_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 20), x_test=rng.integers(0, 256, (5, 28, 28),
                                                                  dtype=np.uint8),
             y_test=rng.integers(0, 10, 5))
    (x, _), (_, yt), source = load_mnist(path)
    assert source == "mnist" and x.shape == (20, 28, 28, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and yt.shape == (5,)
    evil = tmp_path / "evil.npz"
    np.savez(evil, x_train=np.array([object()]), y_train=[1], x_test=[1], y_test=[1])
    with pytest.raises(ModelError, match=r"not a usable mnist\.npz"):
        load_mnist(evil)


@pytest.mark.tf
def test_load_mnist_falls_back_to_digits(tmp_path: Path, keras: object) -> None:
    data = load_mnist(tmp_path / "absent.npz")
    (x, _), (xt, _), source = data
    assert source == "digits" and x.shape == (1347, 8, 8, 1) and xt.shape == (450, 8, 8, 1)
    assert data.input_shape == (8, 8, 1) and data.num_classes == 10
