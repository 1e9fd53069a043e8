"""The numpy strategies against float64 references, and against a poisoned update."""

from __future__ import annotations

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import FedAvg, Krum, Median, MultiKrum, TrimmedMean, Update, fedavg_shares

SHAPES = [(3, 4), (4,), (2, 3, 5), ()]


def make_updates(rng: np.random.Generator, k: int, dtype: type = np.float32,
                 nums: list[int] | None = None) -> list[Update]:
    nums = nums or [int(n) for n in rng.integers(1, 1000, size=k)]
    return [Update([rng.normal(size=s).astype(dtype) for s in SHAPES], n, source=f"u{i}")
            for i, n in enumerate(nums)]


def reference_fedavg(updates: list[Update]) -> list[np.ndarray]:
    total = sum(u.num_examples for u in updates)
    out = []
    for i in range(len(SHAPES)):
        acc = np.zeros(SHAPES[i], dtype=np.float64)
        for u in updates:
            acc += np.asarray(u.weights[i], dtype=np.float64) * (u.num_examples / total)
        out.append(acc)
    return out


@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("acc", [np.float32, np.float64])
def test_fedavg_matches_float64_reference(rng: np.random.Generator, k: int, acc: type) -> None:
    updates = make_updates(rng, k)
    got = FedAvg(accumulator=acc).aggregate(updates)
    want = reference_fedavg(updates)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_fedavg_k1_is_the_update(rng: np.random.Generator) -> None:
    (u,) = make_updates(rng, 1)
    for g, w in zip(FedAvg().aggregate([u]), u.weights, strict=True):
        np.testing.assert_array_equal(g, w)


def test_fedavg_float64_weights_keep_precision(rng: np.random.Generator) -> None:
    updates = make_updates(rng, 5, dtype=np.float64)
    got = FedAvg(accumulator=np.float32).aggregate(updates)  # accumulator promoted to float64
    for g, w in zip(got, reference_fedavg(updates), strict=True):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_fedavg_does_not_modify_inputs(rng: np.random.Generator) -> None:
    updates = make_updates(rng, 3)
    before = [[a.copy() for a in u.weights] for u in updates]
    FedAvg().aggregate(updates)
    for u, b in zip(updates, before, strict=True):
        for a, c in zip(u.weights, b, strict=True):
            np.testing.assert_array_equal(a, c)


def test_fedavg_large_arrays_cross_chunks(rng: np.random.Generator) -> None:
    updates = [Update([rng.normal(size=200_003).astype(np.float32)], n) for n in (1, 2, 3)]
    got = FedAvg().aggregate(updates)[0]
    want = sum(u.weights[0].astype(np.float64) * u.num_examples for u in updates) / 6
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fedavg_zero_weight_update_is_ignored(rng: np.random.Generator) -> None:
    updates = make_updates(rng, 3, nums=[10, 0, 30])
    updates[1].weights[0][0, 0] = np.nan  # never read: it contributes nothing
    got = FedAvg().aggregate(updates)
    want = reference_fedavg(updates[::2])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_fedavg_zero_total_is_refused(rng: np.random.Generator) -> None:
    with pytest.raises(ModelError, match="0 examples"):
        FedAvg().aggregate(make_updates(rng, 3, nums=[0, 0, 0]))


def test_absurd_num_examples_is_refused() -> None:
    with pytest.raises(InvalidInput, match="num_examples"):
        Update([np.zeros(3, np.float32)], 10**15)
    with pytest.raises(InvalidInput, match="num_examples"):
        Update([np.zeros(3, np.float32)], -1)
    with pytest.raises(InvalidInput, match="num_examples"):
        Update([np.zeros(3, np.float32)], True)


def test_max_share_caps_a_dominant_claim(rng: np.random.Generator) -> None:
    shares = fedavg_shares([10, 10, 10_000_000], max_share=0.5)
    assert shares == pytest.approx([0.25, 0.25, 0.5])
    assert sum(shares) == pytest.approx(1.0)
    # a cap that cannot be met (3 contributors, 0.2 each) degrades to the plain mean
    assert fedavg_shares([1, 2, 3], max_share=0.2) == pytest.approx([1 / 3] * 3)
    # caps cascade: freeing mass can push another share over the cap
    shares = fedavg_shares([100, 60, 1, 1], max_share=0.4)
    assert max(shares) <= 0.4 + 1e-12 and sum(shares) == pytest.approx(1.0)
    assert fedavg_shares([0, 5], max_share=0.5) == pytest.approx([0.0, 1.0])

    updates = make_updates(rng, 3, nums=[10, 10, 10_000_000])
    got = FedAvg(max_share=0.5).aggregate(updates)
    want = [0.25 * updates[0].weights[i].astype(np.float64)
            + 0.25 * updates[1].weights[i] + 0.5 * updates[2].weights[i]
            for i in range(len(SHAPES))]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("strategy", [FedAvg(), Median(), TrimmedMean(0.2), MultiKrum(f=1)])
def test_non_finite_updates_are_refused(rng: np.random.Generator, bad: float,
                                        strategy: object) -> None:
    updates = make_updates(rng, 5)
    updates[3].weights[2][1, 2, 3] = bad
    with pytest.raises(ModelError, match=r"u3: array 2 holds NaN or inf"):
        strategy.aggregate(updates)  # type: ignore[attr-defined]


@pytest.mark.parametrize("strategy", [FedAvg(), Median(), TrimmedMean(0.2), Krum(f=1)])
def test_mismatched_updates_are_refused(rng: np.random.Generator, strategy: object) -> None:
    updates = make_updates(rng, 5)
    wrong_shape = Update([*updates[0].weights[:1], np.zeros(5, np.float32),
                          *updates[0].weights[2:]], 1, source="bad")
    with pytest.raises(ModelError, match=r"bad: array 1 has shape \(5,\), expected \(4,\)"):
        strategy.aggregate([*updates[:4], wrong_shape])  # type: ignore[attr-defined]
    too_few = Update(updates[0].weights[:2], 1, source="short")
    with pytest.raises(ModelError, match="short has 2 arrays, expected 4"):
        strategy.aggregate([*updates[:4], too_few])  # type: ignore[attr-defined]
    wrong_dtype = Update([w.astype(np.float64) for w in updates[0].weights], 1, source="f64")
    with pytest.raises(ModelError, match="f64: array 0 has dtype float64"):
        strategy.aggregate([*updates[:4], wrong_dtype])  # type: ignore[attr-defined]
    ints = Update([np.zeros(s, np.int32) for s in SHAPES], 1, source="ints")
    with pytest.raises(ModelError, match="only floating-point"):
        strategy.aggregate([ints])  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="nothing to aggregate"):
        strategy.aggregate([])  # type: ignore[attr-defined]


def test_median_and_trimmed_mean_match_numpy(rng: np.random.Generator) -> None:
    for k in (1, 4, 7):
        updates = make_updates(rng, k)
        stacked = [np.stack([u.weights[i].astype(np.float64) for u in updates])
                   for i in range(len(SHAPES))]
        for g, s in zip(Median().aggregate(updates), stacked, strict=True):
            np.testing.assert_allclose(g, np.median(s, axis=0), rtol=1e-6)
        t = int(np.floor(0.2 * k))
        for g, s in zip(TrimmedMean(0.2).aggregate(updates), stacked, strict=True):
            ref = np.sort(s, axis=0)[t:k - t].mean(axis=0)
            np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-7)
        for g, s in zip(TrimmedMean(0.0).aggregate(updates), stacked, strict=True):
            np.testing.assert_allclose(g, s.mean(axis=0), rtol=1e-5, atol=1e-7)


def test_krum_picks_the_central_update(rng: np.random.Generator) -> None:
    base = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    updates = [Update([b + 0.01 * i * np.ones_like(b) for b in base], 1, source=f"u{i}")
               for i in (-2, -1, 0, 1, 2)]
    updates.append(Update([b + 50 for b in base], 1, source="evil"))
    (best,) = Krum(f=1).select(updates)
    assert best in (1, 2, 3)  # the middle ones tie on 3 nearest neighbours
    for g, b in zip(Krum(f=1).aggregate(updates), base, strict=True):
        np.testing.assert_allclose(g, b, atol=0.011)
    chosen = MultiKrum(f=1).select(updates)
    assert 5 not in chosen and len(chosen) == 5
    mk = MultiKrum(f=1, m=3).aggregate(updates)
    for g, b in zip(mk, base, strict=True):
        np.testing.assert_allclose(g, b, atol=1e-5)


def test_krum_needs_enough_updates(rng: np.random.Generator) -> None:
    with pytest.raises(InvalidInput, match="2f \\+ 3"):
        Krum(f=1).aggregate(make_updates(rng, 4))
    with pytest.raises(InvalidInput):
        MultiKrum(f=-1)
    with pytest.raises(InvalidInput):
        TrimmedMean(0.5)
    with pytest.raises(InvalidInput):
        FedAvg(max_share=0.0)
    with pytest.raises(InvalidInput):
        FedAvg(accumulator=np.int32)


def test_robust_strategies_resist_a_scaled_malicious_update(rng: np.random.Generator) -> None:
    """An attacker sends -100x the honest direction and claims a huge dataset: FedAvg is ruined,
    the robust strategies stay close to the honest mean."""
    truth = [rng.normal(size=s) for s in SHAPES]
    honest = [Update([(t + 0.05 * rng.normal(size=t.shape)).astype(np.float32) for t in truth],
                     100, source=f"h{i}") for i in range(6)]
    evil = Update([(-100 * t).astype(np.float32) for t in truth], 100_000, source="evil")
    updates = [*honest[:3], evil, *honest[3:]]
    honest_mean = [np.mean([u.weights[i] for u in honest], axis=0) for i in range(len(SHAPES))]

    def error(weights: list[np.ndarray]) -> float:
        num = sum(float(np.sum((w - m) ** 2)) for w, m in zip(weights, honest_mean, strict=True))
        den = sum(float(np.sum(m ** 2)) for m in honest_mean)
        return (num / den) ** 0.5

    assert error(FedAvg().aggregate(updates)) > 50
    assert error(FedAvg(max_share=0.2).aggregate(updates)) > 10  # a cap alone is not enough
    for strategy in (Median(), TrimmedMean(0.2), Krum(f=1), MultiKrum(f=1)):
        assert error(strategy.aggregate(updates)) < 0.1, strategy
