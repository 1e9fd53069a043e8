"""Federated averaging (McMahan et al., 2017): the mean of the updates weighted by examples.

Streaming on purpose: updates are visited one after the other and, inside an update, one array at
a time, so the memory needed is the accumulator plus one layer of one update, not K models
(``bench/aggregate.py`` measures it). The weighted add ``acc += c * w`` is done in cache-sized
chunks through a small scratch buffer, which keeps it as memory-bound as a plain ``acc += w``.

Weights are normalised shares computed up front from the claimed ``num_examples``: a claim is
untrusted, so ``max_share`` can cap what any single contributor gets (the excess is handed to the
others in proportion to their claims), and a zero total is refused instead of dividing by zero.

Deterministic on purpose: keyed updates (:attr:`~decentralml.fl.base.Update.key`) are added in key
order, the sum is kept in float64 by default, and every step is an element-wise IEEE operation
(a multiply, an add: correctly rounded, no reduction whose order depends on the CPU's vector
width), so the same updates give bit-identical weights on any machine. That is what lets peers
without a coordinator agree on an aggregate by its hash (:func:`decentralml.fl.aggregate_digest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.base import (
    Aggregator,
    Layout,
    Update,
    Weights,
    check_array,
    in_key_order,
    layout_of,
    validate_fraction,
)

#: Elements per chunk of the weighted add: 64 Ki float64 is 512 KiB, inside a 1 MiB L2 cache.
CHUNK = 1 << 16


def fedavg_shares(num_examples: Sequence[int], max_share: float | None = None) -> list[float]:
    """Each update's share of the average: ``n_k / sum(n)``, with no share above ``max_share``.

    Capping is water-filling: shares above the cap are set to it and the freed mass is spread over
    the others in proportion to their claims, until none exceed it. A cap below ``1/m`` (m
    contributors with examples) cannot be met and is raised to ``1/m``, i.e. a plain mean.
    """
    nums = [int(n) for n in num_examples]
    if any(n < 0 for n in nums):
        raise InvalidInput("num_examples", "must not be negative", ">= 0")
    total = sum(nums)
    if total == 0:
        raise ModelError("FedAvg: every update claims 0 examples; nothing to weigh")
    shares = [n / total for n in nums]
    if max_share is None:
        return shares
    positive = [i for i, n in enumerate(nums) if n > 0]
    cap = max(float(max_share), 1.0 / len(positive))
    capped: set[int] = set()
    while True:
        over = [i for i in positive if i not in capped and shares[i] > cap]
        if not over:
            return shares
        capped.update(over)
        free = [i for i in positive if i not in capped]
        rest = 1.0 - cap * len(capped)
        free_total = sum(nums[i] for i in free)
        for i in capped:
            shares[i] = cap
        for i in free:
            shares[i] = rest * nums[i] / free_total if free_total else 0.0


class FedAvg(Aggregator):
    """Weighted mean of the updates, streaming.

    ``max_share`` (in (0, 1], default none) caps any single contributor's share of the average;
    ``accumulator`` is the dtype the sum is kept in: ``float64`` by default, so the order of the
    K terms barely matters and the mean is rounded once, when cast back to the updates' dtype;
    the price is one float64 model of memory. ``float32`` halves that for very large models;
    it is just as deterministic for a fixed order, only less precise. Updates that carry a
    ``key`` are summed in key order (:func:`~decentralml.fl.base.in_key_order`).
    """

    name = "fedavg"

    def __init__(self, max_share: float | None = None,
                 accumulator: str | np.dtype[Any] | type = np.float64) -> None:
        if max_share is not None:
            max_share = validate_fraction("max_share", max_share, low=0.0, high=1.0,
                                          include_low=False, include_high=True)
        acc = np.dtype(accumulator)
        if acc.kind != "f":
            raise InvalidInput("accumulator", f"is {acc}", "a floating-point dtype")
        self.max_share = max_share
        self.accumulator = acc

    def __repr__(self) -> str:
        return f"FedAvg(max_share={self.max_share}, accumulator={self.accumulator.name})"

    def shares(self, updates: Sequence[Update]) -> list[float]:
        """The share each update gets (see :func:`fedavg_shares`)."""
        return fedavg_shares([u.num_examples for u in updates], self.max_share)

    def aggregate(self, updates: Sequence[Update]) -> Weights:
        updates = in_key_order(updates)
        layout = layout_of(updates)
        acc = self.accumulate(updates, layout)
        return [a if a.dtype == dtype else a.astype(dtype)
                for a, dtype in zip(acc, layout.dtypes, strict=True)]

    def accumulate(self, updates: Sequence[Update], layout: Layout | None = None) -> Weights:
        """The weighted mean in the accumulator's dtype, not cast back.

        The server optimizers take their pseudo-gradient (mean minus the current model) from
        this, in float64, so the small difference is not lost to a float32 rounding of the mean.
        """
        updates = in_key_order(updates)
        layout = layout or layout_of(updates)
        shares = self.shares(updates)
        acc = [np.zeros(shape, dtype=np.result_type(self.accumulator, dtype))
               for shape, dtype in zip(layout.shapes, layout.dtypes, strict=True)]
        scratch: dict[np.dtype[Any], np.ndarray] = {}
        for u, share in zip(updates, shares, strict=True):
            if share == 0.0:
                continue  # contributes nothing: not even read
            for i in range(len(layout)):
                w = check_array(u, i, u.weights[i], layout, check_finite=False)
                buf = scratch.get(acc[i].dtype)
                if buf is None:
                    buf = scratch[acc[i].dtype] = np.empty(CHUNK, dtype=acc[i].dtype)
                _axpy(acc[i].reshape(-1), w.reshape(-1), share, buf)
                del w
        # NaN/inf survive a convex sum, so one check of the accumulator per array is enough to
        # refuse a poisoned update; only then are the updates re-read to name the culprit.
        flags = np.empty(CHUNK, dtype=bool)
        for i, a in enumerate(acc):
            if not _all_finite(a.reshape(-1), flags):
                raise _culprit(updates, shares, i, layout)
        return acc


def _axpy(acc: np.ndarray, w: np.ndarray, share: float, buf: np.ndarray) -> None:
    """``acc += share * w`` in place, through ``buf`` so no model-sized temporary is made."""
    n = acc.size
    step = buf.size
    for start in range(0, n, step):
        stop = min(start + step, n)
        t = buf[: stop - start]
        np.multiply(w[start:stop], share, out=t, dtype=acc.dtype)
        a = acc[start:stop]
        np.add(a, t, out=a)


def _all_finite(flat: np.ndarray, flags: np.ndarray) -> bool:
    step = flags.size
    for start in range(0, flat.size, step):
        stop = min(start + step, flat.size)
        f = flags[: stop - start]
        np.isfinite(flat[start:stop], out=f)
        if not f.all():
            return False
    return True


def _culprit(updates: Sequence[Update], shares: Sequence[float], index: int,
             layout: Layout) -> ModelError:
    for u, share in zip(updates, shares, strict=True):
        if share == 0.0:
            continue
        try:
            check_array(u, index, u.weights[index], layout)
        except ModelError as exc:
            return exc
    return ModelError(f"FedAvg: array {index} of the average is not finite")
