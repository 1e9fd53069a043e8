"""Differential privacy for federated jobs: clipping, Gaussian noise, the (epsilon, delta) spent.

DP-FedAvg (McMahan et al., 2018) bounds what one contributor's data can do to what is released
by clipping that contributor's *update* (its trained weights minus the global model it started
from) to an L2 norm ``clipping_norm`` = C, then adds Gaussian noise of standard deviation
``noise_multiplier * C`` (sigma * C). Two places can do it:

* **client side** (:func:`privatize_update`, called by the contributor bundle/template before
  upload): the contributor clips and noises its own update, so the guarantee holds against the
  creator and anyone reading the store, whatever the creator does;
* **server side** (:class:`~decentralml.fl.dp_fedavg.DPFedAvg`): the creator clips every update
  and adds noise of standard deviation ``sigma * C / K`` to the mean of K, which protects the
  published global model (cheaper in accuracy, but the creator sees raw updates).

The guarantee is user-level (a contributor's whole data set, not one example) per round, under
*zero-out* adjacency (Kairouz et al., 2021): the neighbouring job is the one in which this
contributor's clipped update is replaced by zero. Participation itself is public on chain, so
that is the honest notion here; for *replace-one* adjacency the sensitivity doubles, which the
accountant takes as a halved noise multiplier (``adjacency="replace-one"``). Rounds compose: a
contributor who works every round of an R-round job is covered by R-fold composition.

The accounting itself is the ``dp-accounting`` library's (Google's, the one TensorFlow Privacy
uses; extra ``[dp]``), privacy-loss-distribution accountant by default, RDP on request: a
hand-written accountant is exactly the kind of code that is wrong in a way no test notices.
Noise is drawn with numpy's generator (as Flower and Opacus' default do), which is not a
cryptographically secure source; floating-point attacks on the Gaussian mechanism are out of scope.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from decentralml.errors import InvalidInput, ModelError

INSTALL_HINT = 'pip install "decentralml[dp]"'

Accountant = Literal["pld", "rdp"]
#: The PLD accountant's grid of privacy-loss values. The library's default (1e-4) is ten times
#: slower and, for the Gaussian jobs here, changes epsilon by less than 1e-6 (relative); the
#: discretization is pessimistic either way (epsilon is never under-reported).
PLD_DISCRETIZATION = 1e-3
#: Below this noise multiplier epsilon is in the thousands and the PLD grid grows without bound.
MIN_ACCOUNTED_NOISE = 0.05
Adjacency = Literal["zero-out", "replace-one"]
ADJACENCY_NOTE = {
    "zero-out": "zero-out: one contributor's clipped update replaced by zero (user-level)",
    "replace-one": "replace-one: one contributor's data replaced by any other (user-level)",
}


def _require_dp_accounting() -> Any:
    try:
        import dp_accounting
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"the privacy accountant needs dp-accounting: {INSTALL_HINT}") from exc
    return dp_accounting


# --- clipping and noise --------------------------------------------------------------------------


def check_dp_params(clipping_norm: float, noise_multiplier: float) -> tuple[float, float]:
    """``(C, sigma)`` as floats if C > 0 and sigma >= 0 are finite; :class:`InvalidInput` else."""
    c = float(clipping_norm)
    s = float(noise_multiplier)
    if not math.isfinite(c) or c <= 0:
        raise InvalidInput("clipping_norm", f"is {clipping_norm}", "> 0, finite")
    if not math.isfinite(s) or s < 0:
        raise InvalidInput("noise_multiplier", f"is {noise_multiplier}", ">= 0, finite")
    return c, s


def update_norm(weights: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """L2 norm of ``weights - reference`` over every array, in float64, one layer at a time."""
    if len(weights) != len(reference):
        raise ModelError(f"{len(weights)} arrays against a reference of {len(reference)}")
    total = 0.0
    for w, r in zip(weights, reference, strict=True):
        d = np.subtract(np.asarray(w), np.asarray(r), dtype=np.float64).reshape(-1)
        total += float(np.dot(d, d))
    return math.sqrt(total)


def clip_factor(norm: float, clipping_norm: float) -> float:
    """The factor that brings an update of L2 norm ``norm`` within ``clipping_norm``."""
    return 1.0 if norm <= clipping_norm else clipping_norm / norm


def privatize_update(trained: Sequence[np.ndarray], global_weights: Sequence[np.ndarray], *,
                     clipping_norm: float, noise_multiplier: float,
                     rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Client-side DP: ``global + clip(trained - global, C) + N(0, (sigma * C)^2)`` per weight.

    Done in float64 and cast back to each array's dtype. ``rng`` defaults to fresh OS entropy;
    pass a seeded one only in tests (a seeded noise is no noise to whoever knows the seed).
    """
    c, sigma = check_dp_params(clipping_norm, noise_multiplier)
    rng = rng if rng is not None else np.random.default_rng()
    scale = clip_factor(update_norm(trained, global_weights), c)
    out = []
    for w, g in zip(trained, global_weights, strict=True):
        w = np.asarray(w)
        if w.dtype.kind != "f":
            raise ModelError(f"cannot privatize a {w.dtype} array; weights must be floating point")
        d = np.subtract(w, np.asarray(g), dtype=np.float64)
        d *= scale
        if sigma > 0:
            d += rng.normal(0.0, sigma * c, size=d.shape)
        d += np.asarray(g, dtype=np.float64)
        out.append(d.astype(w.dtype))
    return out


# --- accounting ------------------------------------------------------------------------------


def _event(dp_accounting: Any, noise_multiplier: float, rounds: int,
           sampling_probability: float) -> Any:
    event = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_probability < 1.0:
        event = dp_accounting.PoissonSampledDpEvent(sampling_probability, event)
    return dp_accounting.SelfComposedDpEvent(event, rounds)


def _fresh(dp_accounting: Any, accountant: Accountant) -> Any:
    if accountant == "pld":
        return dp_accounting.pld.PLDAccountant(
            value_discretization_interval=PLD_DISCRETIZATION)
    if accountant == "rdp":
        return dp_accounting.rdp.RdpAccountant()
    raise InvalidInput("accountant", f"is {accountant!r}", "'pld' or 'rdp'")


def _check_accounting(noise_multiplier: float, rounds: int, delta: float,
                      sampling_probability: float) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InvalidInput("rounds", f"is {rounds!r}", "an integer >= 1")
    if not 0.0 < float(delta) < 1.0:
        raise InvalidInput("delta", f"is {delta}", "0 < delta < 1")
    if not 0.0 < float(sampling_probability) <= 1.0:
        raise InvalidInput("sampling_probability", f"is {sampling_probability}", "(0, 1]")
    if not math.isfinite(noise_multiplier) or noise_multiplier < 0:
        raise InvalidInput("noise_multiplier", f"is {noise_multiplier}", ">= 0, finite")


def effective_noise_multiplier(noise_multiplier: float, adjacency: Adjacency) -> float:
    """The noise multiplier relative to the sensitivity of ``adjacency`` (C or 2C)."""
    if adjacency == "zero-out":
        return float(noise_multiplier)
    if adjacency == "replace-one":
        return float(noise_multiplier) / 2.0
    raise InvalidInput("adjacency", f"is {adjacency!r}", "'zero-out' or 'replace-one'")


def dp_epsilon(noise_multiplier: float, rounds: int, delta: float, *,
               sampling_probability: float = 1.0, accountant: Accountant = "pld",
               adjacency: Adjacency = "zero-out") -> float:
    """The epsilon of ``rounds`` Gaussian releases with ``noise_multiplier`` at ``delta``.

    ``sampling_probability`` < 1 claims amplification by Poisson sampling of contributors, only
    valid if the creator really samples each potential contributor independently with that
    probability (a marketplace does not: contributors choose), so the default is 1.
    Returns ``inf`` for zero noise.
    """
    _check_accounting(noise_multiplier, rounds, delta, sampling_probability)
    sigma = effective_noise_multiplier(noise_multiplier, adjacency)
    if sigma == 0:
        return math.inf
    if sigma < MIN_ACCOUNTED_NOISE:
        raise InvalidInput("noise_multiplier", f"{noise_multiplier} gives no meaningful guarantee"
                           " (epsilon in the thousands) and is too costly to account",
                           f">= {MIN_ACCOUNTED_NOISE} (relative to the sensitivity)")
    dp_accounting = _require_dp_accounting()
    acc = _fresh(dp_accounting, accountant)
    acc.compose(_event(dp_accounting, sigma, rounds, sampling_probability))
    return float(acc.get_epsilon(delta))


def noise_multiplier_for(epsilon: float, rounds: int, delta: float, *,
                         sampling_probability: float = 1.0, accountant: Accountant = "pld",
                         adjacency: Adjacency = "zero-out") -> float:
    """The smallest noise multiplier whose ``rounds``-round job stays within ``epsilon``."""
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise InvalidInput("epsilon", f"is {epsilon}", "> 0, finite")
    _check_accounting(1.0, rounds, delta, sampling_probability)
    dp_accounting = _require_dp_accounting()

    def eps(s: float) -> float:
        return dp_epsilon(s, rounds, delta, sampling_probability=sampling_probability,
                          accountant=accountant)

    # Bracket by doubling from 1 first: a tiny noise multiplier makes the PLD accountant's
    # privacy-loss grid explode (hundreds of GiB), so the search never goes far below the answer.
    lo, hi = 1.0, 1.0
    while eps(hi) > epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e6:
            raise InvalidInput("epsilon", f"{epsilon} needs a noise multiplier above 1e6")
    while lo == hi or (lo >= 0.1 and eps(lo) <= epsilon):
        hi, lo = lo, lo / 2
    sigma = dp_accounting.calibrate_dp_mechanism(
        lambda: _fresh(dp_accounting, accountant),
        lambda s: _event(dp_accounting, s, rounds, sampling_probability),
        epsilon, delta, bracket_interval=dp_accounting.ExplicitBracketInterval(lo, hi),
        tol=1e-4)
    factor = 2.0 if adjacency == "replace-one" else 1.0
    return float(sigma) * factor


def accountant_version() -> str:
    """``dp-accounting X.Y.Z``, for reports."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"dp-accounting {version('dp-accounting')}"
    except PackageNotFoundError:  # pragma: no cover
        return "dp-accounting (version unknown)"


class PrivacyGuarantee(BaseModel):
    """The (epsilon, delta) a federated job gives each contributor, and how it was derived.

    Written into each round's task metadata and the job report, so both sides can read what was
    promised. ``epsilon`` covers all ``rounds``; ``epsilon_per_round`` one round.
    """

    model_config = ConfigDict(frozen=True)

    side: Literal["client", "server"]
    mechanism: str = "gaussian"
    clipping_norm: float
    noise_multiplier: float
    delta: float
    rounds: int
    epsilon: float
    epsilon_per_round: float
    sampling_probability: float = 1.0
    adjacency: str = Field(default=ADJACENCY_NOTE["zero-out"])
    accountant: str


def privacy_guarantee(*, side: Literal["client", "server"], clipping_norm: float,
                      noise_multiplier: float, rounds: int, delta: float,
                      sampling_probability: float = 1.0, accountant: Accountant = "pld",
                      adjacency: Adjacency = "zero-out") -> PrivacyGuarantee:
    """The guarantee of a ``rounds``-round job with these DP parameters (see :func:`dp_epsilon`)."""
    check_dp_params(clipping_norm, noise_multiplier)
    if noise_multiplier == 0:
        raise InvalidInput("noise_multiplier", "is 0: without noise there is no guarantee", "> 0")
    kwargs: dict[str, Any] = {"sampling_probability": sampling_probability,
                              "accountant": accountant, "adjacency": adjacency}
    return PrivacyGuarantee(
        side=side, clipping_norm=float(clipping_norm), noise_multiplier=float(noise_multiplier),
        delta=float(delta), rounds=rounds,
        epsilon=dp_epsilon(noise_multiplier, rounds, delta, **kwargs),
        epsilon_per_round=dp_epsilon(noise_multiplier, 1, delta, **kwargs),
        sampling_probability=float(sampling_probability), adjacency=ADJACENCY_NOTE[adjacency],
        accountant=f"{accountant_version()} {accountant.upper()}")
