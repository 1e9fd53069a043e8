"""Datasets and client partitions for examples, tests and benchmarks; nothing is downloaded.

``partition_*`` return one ``(x, y)`` shard per client; the ``*_indices`` functions underneath
return index arrays, for splitting other arrays the same way. Three regimes, from easy to hard for
federated averaging: IID, Dirichlet(alpha) label skew (smaller alpha, more skew) and by-label
shards (each client sees only a few classes).

:func:`load_mnist` reads a local ``mnist.npz`` with ``allow_pickle=False`` (Keras 3.15 no longer
accepts an absolute path in ``keras.datasets.mnist.load_data``, and would download otherwise) and
falls back to scikit-learn's bundled handwritten digits, which ship with the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from decentralml.errors import InvalidInput, ModelError

INSTALL_HINT = 'pip install "decentralml[tf]" (or "decentralml[tf-cpu]")'


class Dataset(NamedTuple):
    """``((x_train, y_train), (x_test, y_test), source)``, unpackable like Keras' loaders.

    Images are float32 in [0, 1] with a channel axis, labels int64; ``source`` says where the
    data came from (``"mnist"`` or ``"digits"``), since :func:`load_mnist` may fall back.
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    source: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.train[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.train[1].max(), self.test[1].max())) + 1


def _check_clients(num_clients: int, n: int) -> None:
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise InvalidInput("num_clients", f"is {num_clients!r}", ">= 1")
    if num_clients > n:
        raise InvalidInput("num_clients", f"{num_clients} clients for {n} examples",
                           f"<= {n}")


def iid_indices(num_examples: int, num_clients: int, seed: int = 0) -> list[np.ndarray]:
    """A random split into ``num_clients`` parts of (almost) equal size."""
    _check_clients(num_clients, num_examples)
    order = np.random.default_rng(seed).permutation(num_examples)
    return [np.sort(part) for part in np.array_split(order, num_clients)]


def dirichlet_indices(y: np.ndarray, num_clients: int, alpha: float, seed: int = 0,
                      min_size: int = 1) -> list[np.ndarray]:
    """Label-skewed split: each class is spread over clients by Dirichlet(alpha) proportions.

    Redrawn (deterministically from ``seed``) until every client has at least ``min_size``
    examples, since an empty client would have nothing to train on.
    """
    labels = np.asarray(y).reshape(-1)
    _check_clients(num_clients, len(labels))
    if not alpha > 0:
        raise InvalidInput("alpha", f"is {alpha}", "> 0")
    if min_size * num_clients > len(labels):
        raise InvalidInput("min_size", f"{min_size} x {num_clients} clients exceeds "
                           f"{len(labels)} examples")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(num_clients)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(num_clients, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise InvalidInput("alpha", f"no split with >= {min_size} examples per client after 1000 "
                       "draws", "a larger alpha or fewer clients")


def label_indices(y: np.ndarray, num_clients: int, labels_per_client: int | None = None,
                  seed: int = 0) -> list[np.ndarray]:
    """Pathological non-IID split: each client holds only some classes.

    With ``labels_per_client`` unset the classes are dealt out round-robin (each class to one
    client). Otherwise each client gets that many classes, assigned round-robin over a shuffled
    class list, and a class shared by several clients is split evenly among them.
    """
    labels = np.asarray(y).reshape(-1)
    _check_clients(num_clients, len(labels))
    classes = np.random.default_rng(seed).permutation(np.unique(labels))
    if labels_per_client is None:
        owners = {int(c): [i % num_clients] for i, c in enumerate(classes)}
    else:
        if not 1 <= labels_per_client <= len(classes):
            raise InvalidInput("labels_per_client", f"is {labels_per_client}",
                               f"1..={len(classes)}")
        owners = {int(c): [] for c in classes}
        slot = 0
        for k in range(num_clients):
            for _ in range(labels_per_client):
                owners[int(classes[slot % len(classes)])].append(k)
                slot += 1
    parts: list[list[int]] = [[] for _ in range(num_clients)]
    rng = np.random.default_rng(seed + 1)
    for c, who in owners.items():
        if not who:
            continue
        idx = rng.permutation(np.flatnonzero(labels == c))
        for k, chunk in zip(who, np.array_split(idx, len(who)), strict=True):
            parts[k].extend(chunk.tolist())
    if any(len(p) == 0 for p in parts):
        raise InvalidInput("num_clients", f"{num_clients} clients for {len(classes)} classes "
                           "leaves some client without data", "set labels_per_client")
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


Shard = tuple[np.ndarray, np.ndarray]


def _shards(x: np.ndarray, y: np.ndarray, parts: list[np.ndarray]) -> list[Shard]:
    if len(x) != len(y):
        raise InvalidInput("y", f"{len(y)} labels for {len(x)} examples", "same length")
    return [(x[idx], y[idx]) for idx in parts]


def partition_iid(x: np.ndarray, y: np.ndarray, num_clients: int, seed: int = 0
                  ) -> list[Shard]:
    """``num_clients`` (x, y) shards of a random, balanced split (see :func:`iid_indices`)."""
    return _shards(x, y, iid_indices(len(y), num_clients, seed))


def partition_dirichlet(x: np.ndarray, y: np.ndarray, num_clients: int, alpha: float = 0.5,
                        seed: int = 0, min_size: int = 1) -> list[Shard]:
    """(x, y) shards with Dirichlet(alpha) label skew (see :func:`dirichlet_indices`)."""
    return _shards(x, y, dirichlet_indices(y, num_clients, alpha, seed, min_size))


def partition_by_label(x: np.ndarray, y: np.ndarray, num_clients: int,
                       labels_per_client: int | None = None, seed: int = 0) -> list[Shard]:
    """(x, y) shards where each client sees only some classes (see :func:`label_indices`)."""
    return _shards(x, y, label_indices(y, num_clients, labels_per_client, seed))


def load_digits_dataset(test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, bundled, offline), split stratified.

    With the defaults: 1347 train / 450 test images of shape (8, 8, 1).
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - environment without the extra
        raise ImportError(f"scikit-learn is needed for the digits dataset: {INSTALL_HINT}"
                          ) from exc
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed,
                                              stratify=y)
    return Dataset((x_tr, y_tr), (x_te, y_te), "digits")


def default_mnist_path() -> Path:
    """Where Keras keeps ``mnist.npz``: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def load_mnist(path: str | os.PathLike[str] | None = None, *, fallback: bool = True) -> Dataset:
    """MNIST from a local ``mnist.npz`` (``path``, else :func:`default_mnist_path`), else digits.

    The file is read with ``allow_pickle=False`` and must hold ``x_train``, ``y_train``,
    ``x_test`` and ``y_test``. When it is absent and ``fallback`` is true, scikit-learn's bundled
    digits are returned instead (``Dataset.source`` says which); nothing is ever downloaded.
    """
    p = Path(path) if path is not None else default_mnist_path()
    if not p.is_file():
        if path is not None and not fallback:
            raise ModelError(f"{p}: no such file")
        if not fallback:
            raise ModelError(f"no mnist.npz at {p} and fallback is off")
        return load_digits_dataset()
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(f"{p}: not a usable mnist.npz: {exc}") from None

    def images(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / 255.0)[..., None]

    return Dataset((images(arrays["x_train"]), arrays["y_train"].astype(np.int64)),
                   (images(arrays["x_test"]), arrays["y_test"].astype(np.int64)), "mnist")
