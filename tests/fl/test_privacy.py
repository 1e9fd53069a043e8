"""Differential privacy: clipping bounds every update, the noise has the stated scale, and the
accountant's numbers are the library's and agree with the Gaussian mechanism's exact curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from decentralml.errors import InvalidInput
from decentralml.fl import (
    DPFedAvg,
    Update,
    dp_epsilon,
    noise_multiplier_for,
    privacy_guarantee,
    privatize_update,
    update_norm,
)
from decentralml.fl.privacy import PLD_DISCRETIZATION

dp_accounting = pytest.importorskip("dp_accounting")

SHAPES = [(20, 30), (30,), ()]


def model(rng: np.random.Generator, dtype: type = np.float32) -> list[np.ndarray]:
    return [rng.normal(size=s).astype(dtype) for s in SHAPES]


def moved(rng: np.random.Generator, x: list[np.ndarray], norm: float) -> list[np.ndarray]:
    """``x`` plus a random direction of L2 norm ``norm`` (float64, so norms are exact)."""
    d = [rng.normal(size=a.shape) for a in x]
    scale = norm / math.sqrt(sum(float(np.sum(di * di)) for di in d))
    return [np.asarray(a, np.float64) + di * scale for a, di in zip(x, d, strict=True)]


# --- clipping --------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [0.0, 0.3, 0.999, 1.0, 1.5, 40.0, 1e6])
def test_client_clipping_bounds_the_update(rng: np.random.Generator, norm: float) -> None:
    x = model(rng, np.float64)
    trained = moved(rng, x, norm)
    out = privatize_update(trained, x, clipping_norm=1.0, noise_multiplier=0.0)
    got = update_norm(out, x)
    assert got <= 1.0 + 1e-9
    if norm <= 1.0:  # within the bound: untouched
        for a, b in zip(out, trained, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    else:  # scaled onto the sphere, direction kept
        assert got == pytest.approx(1.0, rel=1e-9)
        for a, b, c in zip(out, trained, x, strict=True):
            np.testing.assert_allclose(a - c, (b - c) / norm, rtol=1e-9, atol=1e-12)


def test_server_clips_every_update_then_averages(rng: np.random.Generator) -> None:
    x = model(rng, np.float64)
    norms = [0.2, 0.9, 3.0, 50.0, 7.5]
    updates = [Update(moved(rng, x, n), num_examples=10**i, source=f"u{i}")
               for i, n in enumerate(norms)]
    c = 1.0
    dp = DPFedAvg(clipping_norm=c, noise_multiplier=0.0)
    out = dp.apply(x, updates)
    assert dp.last_norms == pytest.approx(norms, rel=1e-9)
    # reference: unweighted mean of the clipped deltas (claims of num_examples do not count)
    want = [np.zeros(s) for s in SHAPES]
    for u in updates:
        d = [np.asarray(w) - xi for w, xi in zip(u.weights, x, strict=True)]
        n = math.sqrt(sum(float(np.sum(di * di)) for di in d))
        for acc, di in zip(want, d, strict=True):
            clipped = di * min(1.0, c / n)
            assert math.sqrt(float(np.sum(clipped * clipped))) <= c * (1 + 1e-9) or n > c
            acc += clipped / len(updates)
    for o, xi, w in zip(out, x, want, strict=True):
        np.testing.assert_allclose(o - xi, w, rtol=1e-9, atol=1e-12)
    # no single contributor moved the model by more than C / K
    lone = DPFedAvg(clipping_norm=c, noise_multiplier=0.0).apply(x, updates[3:4])
    assert update_norm(lone, x) == pytest.approx(c, rel=1e-9)


# --- noise -----------------------------------------------------------------------------------

N_NOISE = 400_000  # sample std has relative s.e. 1/sqrt(2N) ~ 0.0011; the tolerance is 1%


def _check_gaussian(sample: np.ndarray, std: float) -> None:
    sample = sample.reshape(-1)
    assert sample.size >= N_NOISE
    assert abs(float(sample.mean())) < 5 * std / math.sqrt(sample.size)
    assert float(sample.std()) == pytest.approx(std, rel=0.01)
    # Gaussian, not e.g. uniform or Laplace of the same variance: excess kurtosis ~ 0
    z = (sample - sample.mean()) / sample.std()
    assert abs(float(np.mean(z**4)) - 3.0) < 0.05


def test_server_noise_has_std_sigma_c_over_k(rng: np.random.Generator) -> None:
    x = [np.zeros(N_NOISE, np.float64)]
    k, c, sigma = 4, 0.7, 1.3
    updates = [Update([np.zeros(N_NOISE)], 1, source=f"u{i}") for i in range(k)]
    out = DPFedAvg(clipping_norm=c, noise_multiplier=sigma, seed=7).apply(x, updates)
    # sigma*C/K = 0.2275; sigma*C/sqrt(K) (0.455) or sigma*C (0.91) would fail by far
    _check_gaussian(out[0], sigma * c / k)


def test_client_noise_has_std_sigma_c(rng: np.random.Generator) -> None:
    x = [np.zeros(N_NOISE, np.float64)]
    out = privatize_update(x, x, clipping_norm=0.5, noise_multiplier=1.1,
                           rng=np.random.default_rng(3))
    _check_gaussian(out[0], 0.55)


def test_server_noise_is_fresh_each_round_and_reproducible_with_a_seed(tmp_path: Path) -> None:
    size = 50_000
    x = [np.zeros(size)]
    same = [Update([np.zeros(size)], 1)]

    def run(rounds: int, state: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        dp = DPFedAvg(clipping_norm=1.0, noise_multiplier=1.0, seed=11)
        if state is not None:
            dp.set_state(state)
        outs = []
        for _ in range(rounds):
            outs.append(dp.aggregate(same) if dp.weights is not None else dp.apply(x, same))
        run.state = dp.get_state()  # type: ignore[attr-defined]
        return outs

    straight = run(3)
    r1, r2 = straight[0][0], straight[1][0] - straight[0][0]
    assert abs(float(np.corrcoef(r1, r2)[0, 1])) < 0.05  # independent draws
    run(1)
    saved = dict(run.state)  # type: ignore[attr-defined]
    np.savez(tmp_path / "s.npz", allow_pickle=False, **saved)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        resumed = run(2, {k: f[k] for k in f.files})
    np.testing.assert_array_equal(resumed[-1][0], straight[-1][0])
    unseeded = [DPFedAvg(clipping_norm=1.0, noise_multiplier=1.0).apply(x, same)[0]
                for _ in range(2)]
    assert not np.array_equal(unseeded[0], unseeded[1])


def test_bad_dp_parameters() -> None:
    for kwargs in ({"clipping_norm": 0.0, "noise_multiplier": 1.0},
                   {"clipping_norm": float("inf"), "noise_multiplier": 1.0},
                   {"clipping_norm": 1.0, "noise_multiplier": -0.1}):
        with pytest.raises(InvalidInput):
            DPFedAvg(**kwargs)
    with pytest.raises(InvalidInput, match="delta"):
        dp_epsilon(1.0, 3, delta=0.0)
    with pytest.raises(InvalidInput, match="rounds"):
        dp_epsilon(1.0, 0, delta=1e-5)
    with pytest.raises(InvalidInput, match="noise_multiplier"):
        privacy_guarantee(side="server", clipping_norm=1.0, noise_multiplier=0.0, rounds=1,
                          delta=1e-5)
    assert dp_epsilon(0.0, 3, 1e-5) == math.inf


# --- accounting ------------------------------------------------------------------------------


def exact_gaussian_epsilon(sigma: float, delta: float) -> float:
    """The exact epsilon of the Gaussian mechanism (sensitivity 1, std sigma) at delta
    (Balle & Wang 2018, Thm. 8): delta(eps) = Phi(1/2s - eps s) - e^eps Phi(-1/2s - eps s)."""
    def phi(t: float) -> float:
        return 0.5 * math.erfc(-t / math.sqrt(2))

    def delta_of(eps: float) -> float:
        return phi(0.5 / sigma - eps * sigma) - math.exp(eps) * phi(-0.5 / sigma - eps * sigma)

    lo, hi = 0.0, 200.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if delta_of(mid) > delta else (lo, mid)
    return hi


@pytest.mark.parametrize(("sigma", "rounds"), [(1.0, 1), (1.0, 4), (2.5, 10), (0.8, 3)])
def test_pld_matches_the_exact_gaussian_curve(sigma: float, rounds: int) -> None:
    delta = 1e-5
    # R rounds of the Gaussian mechanism are exactly one Gaussian with sigma / sqrt(R)
    exact = exact_gaussian_epsilon(sigma / math.sqrt(rounds), delta)
    pld = dp_epsilon(sigma, rounds, delta, accountant="pld")
    rdp = dp_epsilon(sigma, rounds, delta, accountant="rdp")
    assert exact * (1 - 1e-3) <= pld <= exact * 1.01  # tight, and never optimistic
    assert rdp >= pld  # RDP is an upper bound, looser
    assert rdp <= exact * 1.5


def test_numbers_are_the_librarys() -> None:
    event = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(1.1), 5)
    rdp = dp_accounting.rdp.RdpAccountant()
    rdp.compose(event)
    assert dp_epsilon(1.1, 5, 1e-6, accountant="rdp") == rdp.get_epsilon(1e-6)
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)
    pld.compose(event)
    assert dp_epsilon(1.1, 5, 1e-6) == pld.get_epsilon(1e-6)
    sampled = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(1.1)), 5)
    pld = dp_accounting.pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)
    pld.compose(sampled)
    assert dp_epsilon(1.1, 5, 1e-6, sampling_probability=0.1) == pld.get_epsilon(1e-6)


def test_replace_one_costs_twice_the_sensitivity() -> None:
    assert dp_epsilon(2.0, 3, 1e-5, adjacency="replace-one") == dp_epsilon(1.0, 3, 1e-5)


def test_calibration_reaches_the_target() -> None:
    sigma = noise_multiplier_for(8.0, 4, 1e-5)
    eps = dp_epsilon(sigma, 4, 1e-5)
    assert eps <= 8.0 and eps == pytest.approx(8.0, abs=0.02)
    assert dp_epsilon(sigma * 0.98, 4, 1e-5) > 8.0


def test_guarantee_per_round_and_for_the_job() -> None:
    g = privacy_guarantee(side="client", clipping_norm=1.0, noise_multiplier=1.5, rounds=4,
                          delta=1e-5)
    assert g.epsilon == dp_epsilon(1.5, 4, 1e-5)
    assert g.epsilon_per_round == dp_epsilon(1.5, 1, 1e-5)
    assert g.epsilon_per_round < g.epsilon < 4 * g.epsilon_per_round
    assert "dp-accounting" in g.accountant and "zero-out" in g.adjacency
    dp = DPFedAvg(clipping_norm=1.0, noise_multiplier=1.5)
    assert dp.guarantee(4).epsilon == g.epsilon and dp.guarantee(4).side == "server"
