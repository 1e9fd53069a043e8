"""The creator's data, cut into one shard per slot, in a file a contributor can open safely.

For compute rental the creator ships its own data: a task with ``shards = max_assignments`` (see
docs/protocol.md, ``TaskTerms``) carries one shard per slot and the chain assigns each worker one of
them. :func:`split_shards` cuts ``(x, y)`` reproducibly (seeded; stratified by label when the
labels are integer classes, so every shard sees every class in about the same proportion and no
contributor's update is skewed by its shard alone); :func:`write_shards` writes them as
``shard-0000.npz``, ``shard-0001.npz``... (index = the chain's shard number).

A shard file is an ``.npz`` holding exactly the arrays ``x`` and ``y`` (the ``data.npz`` every
training bundle already reads), written byte-reproducibly (:mod:`decentralml.fl.npz`), so the same
split always gives the same files and CIDs. :func:`load_shard` is the contributor's side: it never
unpickles, accepts no other member and refuses more than ``max_bytes`` of data before allocating
it. The creator's holdout set uses the same format (:func:`decentralml.fl.holdout_commitment`
hashes that file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.npz import read_npz, save_npz

#: The arrays of a shard file, in order.
SHARD_ARRAYS = ("x", "y")
#: As many shards as a task can have slots (the pallet's ``MaxAssignments``).
MAX_SHARDS = 64
#: Default bound on a shard's (or a holdout's) data when loading: 1 GiB.
MAX_SHARD_BYTES = 1 << 30
#: Labels with more distinct values than this are not treated as classes when stratifying.
MAX_STRATA = 10_000

Shard = tuple[np.ndarray, np.ndarray]


def shard_file_name(index: int) -> str:
    """``shard-0003.npz`` for shard 3: zero-padded so a directory listing is in shard order."""
    return f"shard-{index:04d}.npz"


def split_shards(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0, *,
                 stratify: bool = True) -> list[Shard]:
    """``n`` ``(x_i, y_i)`` shards of (almost) equal size, reproducible from ``seed``.

    With ``stratify`` and integer 1-D labels, each class is shuffled and dealt round-robin, the
    deal continuing from where the previous class stopped, so shard sizes differ by at most one
    and class counts per shard by at most one. Otherwise the examples are shuffled and cut. Each
    shard keeps its examples in their original relative order.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise InvalidInput("n", f"must be an integer, got {type(n).__name__}")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise InvalidInput("y", f"{len(y)} labels for {len(x)} examples", "same length")
    if not 1 <= int(n) <= min(MAX_SHARDS, len(y)):
        raise InvalidInput("n", f"is {n} for {len(y)} examples",
                           f"1..={min(MAX_SHARDS, len(y))}")
    n = int(n)
    rng = np.random.default_rng(seed)
    owner = np.empty(len(y), dtype=np.int64)
    classes = np.unique(y) if _stratifiable(y, stratify) else None
    if classes is None:
        order = rng.permutation(len(y))
        owner[order] = np.arange(len(y)) % n
    else:
        dealt = 0
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            owner[idx] = (dealt + np.arange(len(idx))) % n
            dealt += len(idx)
    return [(x[owner == i], y[owner == i]) for i in range(n)]


def _stratifiable(y: np.ndarray, stratify: bool) -> bool:
    return (stratify and y.ndim == 1 and y.dtype.kind in "iub"
            and len(np.unique(y)) <= MAX_STRATA)


def save_shard(path: str | os.PathLike[str], x: np.ndarray, y: np.ndarray) -> Path:
    """Write one shard file (arrays ``x`` and ``y``) atomically and byte-reproducibly."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise InvalidInput("y", f"{len(y)} labels for {len(x)} examples", "same length")
    if len(y) == 0:
        raise InvalidInput("x", "a shard needs at least one example", ">= 1")
    return save_npz(path, {"x": x, "y": y})


def write_shards(directory: str | os.PathLike[str], x: np.ndarray, y: np.ndarray, n: int,
                 seed: int = 0, *, stratify: bool = True) -> list[Path]:
    """:func:`split_shards`, each shard saved as ``directory/shard-NNNN.npz``; the paths."""
    out = Path(directory)
    paths = [out / shard_file_name(i) for i in range(int(n))] if isinstance(n, int) else []
    existing = [p for p in paths if p.exists()]
    if existing:
        raise InvalidInput("directory", f"{existing[0]} already exists",
                           "a new or empty directory")
    shards = split_shards(x, y, n, seed, stratify=stratify)
    return [save_shard(p, xs, ys) for p, (xs, ys) in zip(paths, shards, strict=True)]


def load_shard(path: str | os.PathLike[str], *, max_bytes: int = MAX_SHARD_BYTES) -> Shard:
    """``(x, y)`` of a shard (or holdout) file, checked: see the module docstring."""
    arrays = read_npz(path, SHARD_ARRAYS, max_bytes=max_bytes)
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ModelError(f"{path}: x has shape {x.shape} and y {y.shape}; they must hold the "
                         "same number of examples")
    if len(y) == 0:
        raise ModelError(f"{path}: holds no examples")
    return x, y
