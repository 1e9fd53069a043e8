"""Who contributed what: each update's worth on the creator's holdout set, as integer scores.

A task that pays by contribution (docs/protocol.md, ``settle_contributions``) splits its pool by
scores in parts per million. They come from here. The game: the players are the round's updates,
each with a share ``s_i`` of the round, and a coalition ``S`` is worth
``v(S) = loss(global) - loss(global + sum over i in S of s_i * (w_i - global))`` on the holdout
set: the round's aggregate with only ``S``'s changes applied, each at its own share (``v(empty) =
0``). Shares are equal (``weighting="uniform"``, the default) or FedAvg's ``num_examples`` over the
total (``"examples"``). Equal by default because a claim of examples is the contributor's word:
with FedAvg shares, claiming 2**40 examples makes one's own update the whole aggregate and the
others' worth vanish; use ``"examples"`` when the counts are known (shards the creator shipped).
Shares are not renormalised within a coalition on purpose: with renormalised averages, an update
that changes nothing earns by *diluting* a harmful one (leaving it out makes the harmful update
weigh more), so a free rider would be paid whenever someone else sent noise. Here an unchanged
update adds exactly nothing to any coalition, and is worth exactly 0. Two ways to share ``v``:

* ``"loo"`` (default), leave-one-out: update ``i`` is worth ``v(all) - v(all minus i)``, what the
  round would lose without it. K + 1 evaluations.
* ``"shapley"``: the Shapley value, each update's marginal worth averaged over orders of arrival.
  Exact (2**n evaluations) when that costs no more than sampling would; otherwise estimated
  from ``samples`` random permutations, each costing at most n - 1 new evaluations (coalition
  values are cached). Fairer than leave-one-out when updates are redundant (two honest updates
  on similar data each look dispensable to leave-one-out), at a higher price.

Before either, **copies** are taken out: an update whose change to the global model has cosine
similarity ``>= duplicate_cosine`` with the change of an *earlier* update (the caller's order,
which should be the order the results reached the chain) is marked ``duplicate_of`` that update,
scores 0 and is left out of the game, so a copy earns nothing and its original keeps its whole
value. (Scaling a copy does not hide it: cosine ignores length.) Values below 0 (an update that
made the round worse) count as 0; ``ppm_i = floor(1e6 * v_i / sum(v))``, all 0 when nobody helped
(the pallet then splits the pool equally).

Everything is deterministic: permutations come from SHA-256 of the seed (not from a library's RNG
stream, which may change between versions), coalitions are summed in float64 in the caller's
order, and the code's :data:`SCORING_VERSION` is part of the committed
:class:`ScoringSpec`. What can still differ between machines is the holdout loss itself (the
model's own arithmetic); :func:`decentralml.fl.verification.verify_scores` therefore takes a
tolerance in ppm.

pyDVL was considered and is not used: its current release (0.10) requires ``numpy<2`` while the
project runs NumPy 2 (TensorFlow 2.21 needs it), it is LGPL-3.0 in an Apache-2.0 package, and it
would bring pandas, cvxpy, joblib and cloudpickle (pickling between worker processes) for what
is here a few dozen lines; its utilities also value *data points* by refitting a model, while the
players here are finished updates and a coalition's worth is one average and one evaluation.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.base import Update, UpdateKey, Weights, layout_of
from decentralml.fl.fedavg import fedavg_shares

#: Scores are parts per million: the pallet's ``MaxScore``.
PPM = 1_000_000
#: As many updates as a task can have results (the pallet's ``MaxAssignments``).
MAX_UPDATES = 64
#: Most holdout evaluations one scoring may need (LOO needs K + 1, at most 65).
MAX_EVALUATIONS = 4096
#: Most permutations a sampled Shapley estimate may draw.
MAX_SAMPLES = 1000
#: Permutations drawn by default (exact Shapley is used instead when it is cheaper).
DEFAULT_SAMPLES = 30
#: The duplicate threshold by default: a copy with a little noise added is still a copy.
DEFAULT_DUPLICATE_COSINE = 0.999
#: The scoring code's version, committed in :class:`ScoringSpec`: bumped whenever a change here
#: could change a score, so a recomputation by other code is refused rather than mismatched.
SCORING_VERSION = "decentralml.fl.contribution/1"

Method = Literal["loo", "shapley"]
Weighting = Literal["uniform", "examples"]
#: ``evaluate(weights) -> loss`` on the holdout set; lower is better.
Evaluate = Callable[[Weights], float]
UpdateLike = Update | Sequence[np.ndarray]
#: Updates by key, in the order they reached the chain (a sequence is keyed 0, 1, ...).
Updates = (Mapping[int, UpdateLike] | Mapping[str, UpdateLike] | Mapping[UpdateKey, UpdateLike]
           | Sequence[UpdateLike])
#: Scores by key, as read from the chain.
Scores = Mapping[int, int] | Mapping[str, int] | Mapping[UpdateKey, int]


class Contribution(BaseModel):
    """One update's outcome: its worth, whether it copied another, and its score."""

    model_config = ConfigDict(frozen=True)

    key: UpdateKey
    #: Holdout loss improvement credited to the update (negative: it made the round worse).
    value: float
    #: The key of the earlier update this one copies; its value and score are then 0.
    duplicate_of: UpdateKey | None = None
    #: What goes on chain: ``floor(1e6 * max(value, 0) / sum of positive values)``.
    ppm: int


class ContributionReport(BaseModel):
    """Every update's contribution, in the caller's order, and what computing them cost."""

    model_config = ConfigDict(frozen=True)

    method: Method
    #: For Shapley: True when every coalition was evaluated (no sampling error).
    exact: bool
    #: Holdout evaluations made (the global model's included).
    evaluations: int
    contributions: list[Contribution]

    @property
    def ppm(self) -> dict[UpdateKey, int]:
        """Key -> score in ppm."""
        return {c.key: c.ppm for c in self.contributions}

    def scores(self) -> dict[int, int]:
        """Submission id -> ppm, what ``Client.settle_contributions`` takes (integer keys only)."""
        bad = [c.key for c in self.contributions if isinstance(c.key, str)]
        if bad:
            raise InvalidInput("updates", f"key {bad[0]!r} is not a submission id",
                               "integer keys for settle_contributions")
        return {int(c.key): c.ppm for c in self.contributions}


def contribution_scores(global_weights: Sequence[np.ndarray],
                        updates: Updates,
                        evaluate: Evaluate, *, method: Method = "loo",
                        samples: int = DEFAULT_SAMPLES, seed: int = 0,
                        duplicate_cosine: float = DEFAULT_DUPLICATE_COSINE,
                        weighting: Weighting = "uniform") -> ContributionReport:
    """Score ``updates`` of the model ``global_weights`` by ``evaluate`` (see the module doc).

    ``updates`` maps keys (submission ids) to updates, in the order they reached the chain (a
    sequence is keyed 0, 1, ...); with ``weighting="examples"`` an :class:`Update`'s share is its
    ``num_examples`` over the total of the updates that are not copies (a bare list of arrays
    counts 1), with ``"uniform"`` every share is equal. Bounds are checked
    before the first evaluation (:class:`InvalidInput` naming the field and the limit); an update
    that does not fit the global model, or a non-finite loss, is a :class:`ModelError`.
    """
    spec = ScoringSpec(method=method, samples=samples, seed=seed,
                       duplicate_cosine=duplicate_cosine, weighting=weighting)
    return spec.score(global_weights, updates, evaluate)


class ScoringSpec(BaseModel):
    """The scoring method a creator commits to at task creation (``TaskTerms.scoring_commitment``).

    ``samples`` and ``seed`` only matter to ``"shapley"``; ``weighting`` is how coalitions weigh
    updates (see the module docstring); ``version`` is the scoring code's
    (:data:`SCORING_VERSION`). Out-of-bounds values are an :class:`InvalidInput` naming the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method = "loo"
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    duplicate_cosine: float = DEFAULT_DUPLICATE_COSINE
    weighting: Weighting = "uniform"
    version: str = SCORING_VERSION

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _invalid(exc) from None

    @field_validator("samples")
    @classmethod
    def _samples(cls, v: int) -> int:
        if isinstance(v, bool) or not 1 <= v <= MAX_SAMPLES:
            raise ValueError(f"is {v} (limit: 1..={MAX_SAMPLES})")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if isinstance(v, bool) or not 0 <= v < 2**64:
            raise ValueError(f"is {v} (limit: 0..2^64)")
        return v

    @field_validator("duplicate_cosine")
    @classmethod
    def _cosine(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:  # also false for NaN
            raise ValueError(f"is {v} (limit: (0, 1])")
        return v

    @classmethod
    def from_json(cls, text: str | bytes) -> ScoringSpec:
        """The spec from its JSON (:meth:`canonical_json` or any equivalent), validated."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("spec", f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("spec", "must be a JSON object")
        return cls(**data)

    def canonical_json(self) -> bytes:
        """Sorted keys, no spaces, ASCII: the bytes the commitment is taken over."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=True, allow_nan=False).encode("ascii")

    def commitment(self) -> bytes:
        """SHA-256 of :meth:`canonical_json`: ``TaskTerms.scoring_commitment``."""
        return hashlib.sha256(self.canonical_json()).digest()

    def score(self, global_weights: Sequence[np.ndarray],
              updates: Updates,
              evaluate: Evaluate) -> ContributionReport:
        """:func:`contribution_scores` with this spec."""
        if self.version != SCORING_VERSION:
            raise InvalidInput("version", f"the spec is for {self.version!r}, this code is "
                               f"{SCORING_VERSION!r}", SCORING_VERSION)
        keys, players = _players(updates)
        current = [np.asarray(w) for w in global_weights]
        layout_of([Update(current, source="the global model"), *players])
        originals = _duplicates(current, players, self.duplicate_cosine)
        kept = [i for i, o in enumerate(originals) if o is None]
        game = _Game(current, [players[i] for i in kept], evaluate, self.weighting)
        if self.method == "loo":
            exact, values = True, game.leave_one_out()
        else:
            exact, values = game.shapley(self.samples, self.seed)
        value = dict(zip(kept, values, strict=True))
        credited = {i: max(v, 0.0) for i, v in value.items()}
        total = math.fsum(credited.values())
        out = []
        for i, key in enumerate(keys):
            original = originals[i]
            ppm = 0
            if original is None and total > 0.0:
                ppm = min(PPM, math.floor(PPM * credited[i] / total))
            out.append(Contribution(key=key, value=value.get(i, 0.0), ppm=ppm,
                                    duplicate_of=None if original is None else keys[original]))
        return ContributionReport(method=self.method, exact=exact, evaluations=game.evaluations,
                                  contributions=out)


def _invalid(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "spec"
    return InvalidInput(field, str(first["msg"]).removeprefix("Value error, "))


def _players(updates: Updates) -> tuple[list[UpdateKey], list[Update]]:
    """Keys and unkeyed copies of the updates (so coalitions are summed in the caller's order)."""
    if isinstance(updates, Mapping):
        items = list(updates.items())
    elif isinstance(updates, Sequence):
        items = list(enumerate(updates))
    else:
        raise InvalidInput("updates", f"is a {type(updates).__name__}",
                           "a mapping of key -> update, or a sequence")
    if not 1 <= len(items) <= MAX_UPDATES:
        raise InvalidInput("updates", f"{len(items)} updates", f"1..={MAX_UPDATES}")
    keys: list[UpdateKey] = []
    players: list[Update] = []
    for key, u in items:
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise InvalidInput("updates", f"key {key!r} is not an int or a str")
        label = f"update {key!r}"
        if isinstance(u, Update):
            source = label if u.source == "<memory>" else u.source
            players.append(Update(u.weights, u.num_examples, source=source))
        else:
            players.append(Update([np.asarray(w) for w in u], source=label))
        keys.append(key)
    return keys, players


def _duplicates(current: Sequence[np.ndarray], players: Sequence[Update],
                threshold: float) -> list[int | None]:
    """For each update, the index of the earlier kept update it copies, or None.

    Cosine similarities of the changes ``w_i - global`` come from their Gram matrix, built one
    layer at a time (K copies of one layer in memory, never K models). Two unchanged updates (free
    riders) are identical, hence copies; an unchanged update copies nothing else.
    """
    k = len(players)
    gram = np.zeros((k, k))
    for index, base in enumerate(current):
        rows = np.stack([np.asarray(p.weights[index], dtype=np.float64).reshape(-1)
                         for p in players])
        rows -= np.asarray(base, dtype=np.float64).reshape(-1)
        gram += rows @ rows.T
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    originals: list[int | None] = []
    for i in range(k):
        original = None
        for j in range(i):
            if originals[j] is not None:
                continue
            if norms[i] == 0.0 or norms[j] == 0.0:
                similar = norms[i] == norms[j]
            else:
                similar = gram[i, j] / (norms[i] * norms[j]) >= threshold
            if similar:
                original = j
                break
        originals.append(original)
    return originals


class _Game:
    """Coalition values of the kept updates, each evaluated at most once."""

    def __init__(self, current: list[np.ndarray], players: list[Update], evaluate: Evaluate,
                 weighting: Weighting) -> None:
        self.current = current
        self.players = players
        self.evaluate = evaluate
        self.evaluations = 0
        self._loss: dict[tuple[int, ...], float] = {}
        claims = [p.num_examples for p in players]
        if weighting == "uniform":
            self.shares = [1.0 / len(players)] * len(players)
        else:  # everyone claiming 0 examples: no shares, every coalition is the global model
            self.shares = fedavg_shares(claims) if sum(claims) else [0.0] * len(players)

    def weights(self, coalition: tuple[int, ...]) -> Weights:
        """``global + sum of share_i * (w_i - global)`` over the coalition, summed in float64
        in the caller's order and cast back to the model's dtypes."""
        members = [i for i in coalition if self.shares[i] > 0.0]
        if not members:
            return self.current
        out = []
        for index, base in enumerate(self.current):
            base64 = np.asarray(base, dtype=np.float64)
            acc = base64.copy()
            for i in members:
                change = np.asarray(self.players[i].weights[index], dtype=np.float64) - base64
                acc += self.shares[i] * change
            out.append(acc.astype(base.dtype))
        return out

    def loss(self, coalition: tuple[int, ...]) -> float:
        """Holdout loss of the coalition's aggregate (of the global model when empty)."""
        cached = self._loss.get(coalition)
        if cached is not None:
            return cached
        if self.evaluations >= MAX_EVALUATIONS:  # unreachable: budgets are checked up front
            raise InvalidInput("samples", "the evaluation budget is spent",
                               f"<= {MAX_EVALUATIONS} evaluations")
        loss = float(self.evaluate(self.weights(coalition)))
        self.evaluations += 1
        if not math.isfinite(loss):
            what = "the global model" if not coalition else f"coalition {list(coalition)}"
            raise ModelError(f"evaluate returned {loss} for {what}; a loss must be finite")
        self._loss[coalition] = loss
        return loss

    def value(self, coalition: tuple[int, ...]) -> float:
        return self.loss(()) - self.loss(coalition) if coalition else 0.0

    def leave_one_out(self) -> list[float]:
        n = len(self.players)
        everyone = tuple(range(n))
        full = self.loss(everyone)
        return [self.loss(tuple(j for j in everyone if j != i)) - full for i in range(n)]

    def shapley(self, samples: int, seed: int) -> tuple[bool, list[float]]:
        n = len(self.players)
        sampled_cost = 2 + samples * max(n - 1, 0)
        exact_cost = 2 ** n
        if min(sampled_cost, exact_cost) > MAX_EVALUATIONS:
            raise InvalidInput("samples", f"{samples} permutations of {n} updates need up to "
                               f"{sampled_cost} evaluations",
                               f"<= {MAX_EVALUATIONS} evaluations: fewer samples")
        if exact_cost <= sampled_cost:
            return True, self._exact()
        return False, self._sampled(samples, seed)

    def _exact(self) -> list[float]:
        n = len(self.players)
        weight = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
                  for s in range(n)]
        phi = []
        for i in range(n):
            terms = []
            for mask in range(2 ** n):
                if mask >> i & 1:
                    continue
                without = tuple(j for j in range(n) if mask >> j & 1)
                with_i = tuple(sorted((*without, i)))
                terms.append(weight[len(without)] * (self.value(with_i) - self.value(without)))
            phi.append(math.fsum(terms))
        return phi

    def _sampled(self, samples: int, seed: int) -> list[float]:
        n = len(self.players)
        marginals: list[list[float]] = [[] for _ in range(n)]
        for t in range(samples):
            prefix: tuple[int, ...] = ()
            before = 0.0
            for i in _permutation(seed, t, n):
                prefix = tuple(sorted((*prefix, i)))
                after = self.value(prefix)
                marginals[i].append(after - before)
                before = after
        return [math.fsum(m) / samples for m in marginals]


def _permutation(seed: int, sample: int, n: int) -> list[int]:
    """Permutation ``sample`` of ``range(n)`` for ``seed``: players sorted by a SHA-256 draw.

    Defined by the hash alone, so every machine and every NumPy version draws the same orders.
    """
    def draw(i: int) -> bytes:
        return hashlib.sha256(f"{SCORING_VERSION}:{seed}:{sample}:{i}".encode()).digest()

    return sorted(range(n), key=draw)


def holdout_evaluator(model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256
                      ) -> Evaluate:
    """``evaluate(weights) -> loss`` for a Keras ``model``'s architecture on ``(x, y)``.

    The model is cloned once; each call loads the weights into the clone and returns the mean
    sparse categorical cross-entropy (:func:`decentralml.fl.evaluate`).
    """
    from decentralml.fl.keras import clone_model, set_weights
    from decentralml.fl.scoring import evaluate

    clone = clone_model(model)

    def loss(weights: Weights) -> float:
        set_weights(clone, weights)
        return evaluate(clone, x, y, batch_size)["loss"]

    return loss
