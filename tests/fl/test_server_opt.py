"""Server optimizers against float64 references of the published rules, over several rounds,
and a job that resumes from saved state with identical results."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedYogi,
    ServerOptimizer,
    Update,
)

SHAPES = [(3, 4), (4,), (2, 3, 5), ()]
ROUNDS = 6


def rounds_of_updates(rng: np.random.Generator, dtype: type = np.float64,
                      k: int = 4) -> list[list[Update]]:
    """ROUNDS rounds of k updates each (independent of the model: the rules do not care)."""
    return [[Update([rng.normal(size=s).astype(dtype) for s in SHAPES],
                    int(rng.integers(1, 100)), source=f"r{r}u{i}") for i in range(k)]
            for r in range(ROUNDS)]


def initial(rng: np.random.Generator, dtype: type = np.float64) -> list[np.ndarray]:
    return [rng.normal(size=s).astype(dtype) for s in SHAPES]


# --- float64 references, written from the papers' pseudo-code, one coordinate list at a time ---

def ref_mean(updates: list[Update]) -> list[np.ndarray]:
    total = sum(u.num_examples for u in updates)
    return [sum(np.asarray(u.weights[i], np.float64) * (u.num_examples / total)
                for u in updates) for i in range(len(SHAPES))]


def ref_fedavgm(x0: list[np.ndarray], rounds: list[list[Update]], eta: float,
                momentum: float) -> list[list[np.ndarray]]:
    """Hsu et al. 2019 / Reddi et al. 2021 Alg. 1 with server SGD-momentum."""
    x = [a.astype(np.float64) for a in x0]
    m = [np.zeros_like(a) for a in x]
    out = []
    for updates in rounds:
        d = [mu - xi for mu, xi in zip(ref_mean(updates), x, strict=True)]
        m = [momentum * mi + di for mi, di in zip(m, d, strict=True)]
        x = [xi + eta * mi for xi, mi in zip(x, m, strict=True)]
        out.append(x)
    return out


def ref_adaptive(rule: str, x0: list[np.ndarray], rounds: list[list[Update]], eta: float,
                 beta_1: float, beta_2: float, tau: float) -> list[list[np.ndarray]]:
    """Reddi et al. 2021, Algorithm 2 (FedAdagrad / FedYogi / FedAdam), v_{-1} = tau^2."""
    x = [a.astype(np.float64) for a in x0]
    m = [np.zeros_like(a) for a in x]
    v = [np.full_like(a, tau * tau) for a in x]
    out = []
    for updates in rounds:
        d = [mu - xi for mu, xi in zip(ref_mean(updates), x, strict=True)]
        m = [beta_1 * mi + (1 - beta_1) * di for mi, di in zip(m, d, strict=True)]
        if rule == "adagrad":
            v = [vi + di**2 for vi, di in zip(v, d, strict=True)]
        elif rule == "yogi":
            v = [vi - (1 - beta_2) * di**2 * np.sign(vi - di**2) for vi, di in zip(v, d,
                                                                                     strict=True)]
        else:
            v = [beta_2 * vi + (1 - beta_2) * di**2 for vi, di in zip(v, d, strict=True)]
        x = [xi + eta * mi / (np.sqrt(vi) + tau) for xi, mi, vi in zip(x, m, v, strict=True)]
        out.append(x)
    return out


CASES: list[tuple[str, Callable[[], ServerOptimizer], Callable[..., Any]]] = [
    ("fedavgm", lambda: FedAvgM(eta=0.7, momentum=0.8),
     lambda x0, rs: ref_fedavgm(x0, rs, 0.7, 0.8)),
    ("fedadam", lambda: FedAdam(eta=0.03, beta_1=0.85, beta_2=0.97, tau=0.02),
     lambda x0, rs: ref_adaptive("adam", x0, rs, 0.03, 0.85, 0.97, 0.02)),
    ("fedyogi", lambda: FedYogi(eta=0.05, beta_1=0.8, beta_2=0.9, tau=0.5),
     lambda x0, rs: ref_adaptive("yogi", x0, rs, 0.05, 0.8, 0.9, 0.5)),
    ("fedadagrad", lambda: FedAdagrad(eta=0.1, beta_1=0.5, tau=0.1),
     lambda x0, rs: ref_adaptive("adagrad", x0, rs, 0.1, 0.5, 0.0, 0.1)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "make", "ref"), CASES, ids=IDS)
def test_matches_the_published_rule_over_rounds(rng: np.random.Generator, name: str,
                                                make: Callable[[], ServerOptimizer],
                                                ref: Callable[..., Any]) -> None:
    x0 = initial(rng)
    rounds = rounds_of_updates(rng)
    want = ref(x0, rounds)
    opt = make()
    x = x0
    for r, updates in enumerate(rounds):
        x = opt.apply(x, updates)
        for got, exp in zip(x, want[r], strict=True):
            assert got.dtype == np.float64
            np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
    assert opt.steps == ROUNDS
    assert int(opt.get_state()["step"]) == ROUNDS


@pytest.mark.parametrize(("name", "make", "ref"), CASES, ids=IDS)
def test_float32_models_stay_float32_and_close(rng: np.random.Generator, name: str,
                                               make: Callable[[], ServerOptimizer],
                                               ref: Callable[..., Any]) -> None:
    x0 = initial(rng, np.float32)
    rounds = rounds_of_updates(rng, np.float32)
    want = ref(x0, rounds)[-1]
    opt = make()
    x = x0
    for updates in rounds:
        x = opt.aggregate(updates) if opt.weights is not None else opt.apply(x, updates)
    for got, exp in zip(x, want, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-5)


def test_aggregate_continues_from_the_kept_weights(rng: np.random.Generator) -> None:
    x0 = initial(rng)
    rounds = rounds_of_updates(rng)
    by_apply, by_aggregate = FedAdam(), FedAdam(initial=x0)
    x = x0
    for updates in rounds:
        x = by_apply.apply(x, updates)
        y = by_aggregate.aggregate(updates)
        for a, b in zip(x, y, strict=True):
            np.testing.assert_array_equal(a, b)


def test_fedavgm_without_momentum_is_fedavg(rng: np.random.Generator) -> None:
    x0 = initial(rng)
    updates = rounds_of_updates(rng)[0]
    got = FedAvgM(eta=1.0, momentum=0.0).apply(x0, updates)
    want = FedAvg(accumulator=np.float64).aggregate(updates)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_the_result_is_a_copy(rng: np.random.Generator) -> None:
    x0 = initial(rng)
    opt = FedAdam()
    out = opt.apply(x0, rounds_of_updates(rng)[0])
    out[0][...] = 1e6  # a caller scribbling on the result must not change the optimizer
    assert opt.weights is not None and float(np.abs(opt.weights[0]).max()) < 1e3


@pytest.mark.parametrize(("name", "make", "ref"), CASES, ids=IDS)
def test_resume_from_saved_state_gives_identical_rounds(rng: np.random.Generator,
                                                        tmp_path: Path, name: str,
                                                        make: Callable[[], ServerOptimizer],
                                                        ref: Callable[..., Any]) -> None:
    x0 = initial(rng, np.float32)
    rounds = rounds_of_updates(rng, np.float32)
    straight = make()
    x = x0
    history = []
    for updates in rounds:
        x = straight.apply(x, updates)
        history.append(x)

    first = make()
    y = x0
    for updates in rounds[:3]:
        y = first.apply(y, updates)
    path = tmp_path / "state.npz"
    np.savez(path, allow_pickle=False, **first.get_state())
    del first  # the "restart": only the file survives

    resumed = make()
    with np.load(path, allow_pickle=False) as saved:
        resumed.set_state({k: saved[k] for k in saved.files})
    assert resumed.steps == 3
    for r, updates in enumerate(rounds[3:], start=3):
        y = resumed.aggregate(updates)
        for a, b in zip(y, history[r], strict=True):
            np.testing.assert_array_equal(a, b)
    for key, value in straight.get_state().items():
        np.testing.assert_array_equal(resumed.get_state()[key], value)


def test_state_is_plain_arrays(rng: np.random.Generator) -> None:
    opt = FedYogi()
    opt.apply(initial(rng, np.float32), rounds_of_updates(rng, np.float32)[0])
    state = opt.get_state()
    assert state["step"].shape == () and state["step"].dtype == np.int64
    assert sorted({k.split(".")[0] for k in state}) == ["m", "step", "v", "weights"]
    assert all(isinstance(v, np.ndarray) and not v.dtype.hasobject for v in state.values())
    assert state["weights.0000"].dtype == np.float32 and state["m.0000"].dtype == np.float64


def test_state_before_any_round(rng: np.random.Generator) -> None:
    opt = FedAdam()
    assert list(opt.get_state()) == ["step"]
    opt.set_state(opt.get_state())
    with pytest.raises(ModelError, match="needs the current global weights"):
        opt.aggregate(rounds_of_updates(rng)[0])


def test_bad_state_is_refused_before_anything_changes(rng: np.random.Generator) -> None:
    opt = FedAdam()
    opt.apply(initial(rng), rounds_of_updates(rng)[0])
    good = opt.get_state()
    bad_cases: list[dict[str, np.ndarray]] = [
        {k: v for k, v in good.items() if k != "step"},
        {**good, "step": np.array(-1)},
        {**good, "step": np.array([1, 2])},
        {**good, "momentum.0000": good["m.0000"]},
        {**good, "m.0000": np.array(["x"])},
        {**good, "v.0001": np.full(4, np.nan)},
        {k: v for k, v in good.items() if k != "m.0001"},
        {**good, "m.0000": np.zeros((9, 9))},
    ]
    for bad in bad_cases:
        with pytest.raises(InvalidInput, match="state"):
            opt.set_state(bad)
        for key, value in opt.get_state().items():
            np.testing.assert_array_equal(value, good[key])
    with pytest.raises(InvalidInput, match="unknown entry"):
        FedAvgM().set_state(good)  # FedAdam's state has a v; FedAvgM has no such slot


def test_state_of_another_model_is_refused(rng: np.random.Generator) -> None:
    opt = FedAdam()
    opt.apply(initial(rng), rounds_of_updates(rng)[0])
    other = [Update([rng.normal(size=(2, 2))], 1)]
    with pytest.raises(ModelError):
        opt.aggregate(other)
    with pytest.raises(ModelError):
        opt.apply([np.zeros((2, 2))], other)  # fresh weights, but the moments are for SHAPES


def test_bad_hyperparameters() -> None:
    for make in (lambda: FedAdam(eta=0), lambda: FedAdam(tau=-1), lambda: FedYogi(beta_1=1.0),
                 lambda: FedAdam(beta_2=float("nan")), lambda: FedAvgM(momentum=1.5),
                 lambda: FedAdagrad(eta=float("inf"))):
        with pytest.raises(InvalidInput):
            make()


def test_divergence_is_an_error_not_a_model(rng: np.random.Generator) -> None:
    opt = FedAvgM(eta=1e308, momentum=0.0)
    with pytest.raises(ModelError, match="not finite"):
        opt.apply(initial(rng), rounds_of_updates(rng)[0])


def test_non_finite_updates_are_refused_naming_the_culprit(rng: np.random.Generator) -> None:
    updates = rounds_of_updates(rng)[0]
    updates[2].weights[1][0] = np.inf
    with pytest.raises(ModelError, match="r0u2"):
        FedAdam().apply(initial(rng), updates)


class _Generated(Sequence[np.ndarray]):
    """Weights made on access, like file-backed ones: nothing is held between reads."""

    def __init__(self, seed: int, size: int) -> None:
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: Any) -> Any:
        return np.random.default_rng([self.seed, i]).normal(size=self.size).astype(np.float32)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(2))


def test_memory_does_not_grow_with_contributors() -> None:
    size = 250_000  # two arrays: a 2 MB float32 model
    model_bytes = 2 * size * 4
    x0 = [np.zeros(size, np.float32), np.zeros(size, np.float32)]
    opt = FedAdam(initial=x0)
    updates = [Update(_Generated(k, size), 10) for k in range(60)]
    tracemalloc.start()
    try:
        opt.aggregate(updates)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the accumulator, m and v (float64) and the weights: about 10 models, never 60
    assert peak < 16 * model_bytes, peak / model_bytes
