"""The digits example's files, written for a creator and its contributors to use by hand.

The quickstart's by-hand story needs three things nobody has on a fresh clone: the creator's
initial model (the round-0 global model every contributor trains, so FedAvg averages updates of
the *same* model), a holdout set the creator keeps for validation, and one private data shard per
contributor. All of it comes from scikit-learn's bundled 8x8 digits: nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from decentralml.errors import InvalidInput

#: The most shards the digits training split (1347 images) is cut into: below ~50 images a
#: shard cannot train the CNN to anything useful, and the split would mostly be noise.
MAX_SHARDS = 26


class DigitsExample(BaseModel):
    """Where :func:`write_digits_example` put each file, and how many examples each holds."""

    out: Path
    model: Path
    holdout: Path
    holdout_examples: int
    shards: list[Path]
    shard_examples: list[int]

    def holdout_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``holdout.npz`` (read without pickles, bounded)."""
        from decentralml.fl.shards import load_shard

        return load_shard(self.holdout)


def write_digits_example(out: Path, *, shards: int = 3, seed: int = 0) -> DigitsExample:
    """Write ``model.keras``, ``holdout.npz`` and ``shard-1/data.npz``... into ``out``.

    * ``model.keras``: :func:`~decentralml.fl.make_digits_cnn` with ``seed``, uncompiled (what
      ``task create --model`` ships as the task's initial model);
    * ``holdout.npz``: the test split (450 images, arrays ``x`` and ``y``) for ``validate
      --holdout`` and ``federate --holdout``;
    * ``shard-N/data.npz``: an IID split of the training images, one directory per contributor
      (what ``work --data`` takes).

    Refuses an ``out`` that already holds any of these files, so a second run never silently
    mixes shards of two splits.
    """
    from decentralml.fl.data import load_digits_dataset, partition_iid
    from decentralml.fl.keras import save_model
    from decentralml.fl.models import make_digits_cnn
    from decentralml.fl.shards import save_shard

    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput("shards", f"is {shards!r}", f"1..{MAX_SHARDS}")
    out = Path(out)
    model_path, holdout_path = out / "model.keras", out / "holdout.npz"
    shard_dirs = [out / f"shard-{i}" for i in range(1, shards + 1)]
    existing = [p for p in (model_path, holdout_path, *(d / "data.npz" for d in shard_dirs))
                if p.exists()]
    if existing:
        raise InvalidInput("out", f"{existing[0]} already exists",
                           "an empty or new directory (remove the old example first)")
    (x_train, y_train), (x_test, y_test), _source = load_digits_dataset(seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    save_model(make_digits_cnn(x_train.shape[1:], 10, seed=seed), model_path)
    save_shard(holdout_path, x_test, y_test)  # byte-reproducible: its hash can be committed
    counts: list[int] = []
    for directory, (xs, ys) in zip(shard_dirs, partition_iid(x_train, y_train, shards, seed=seed),
                                   strict=True):
        directory.mkdir(exist_ok=True)
        save_shard(directory / "data.npz", xs, ys)
        counts.append(len(ys))
    return DigitsExample(out=out, model=model_path, holdout=holdout_path,
                         holdout_examples=len(y_test), shards=shard_dirs, shard_examples=counts)
