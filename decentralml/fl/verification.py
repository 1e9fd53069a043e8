"""A contributor's check of the chain's contribution scores, once the creator reveals the holdout.

At task creation the creator commits, in ``TaskTerms``, the SHA-256 of its holdout file
(:func:`holdout_commitment`) and of its :class:`~decentralml.fl.contribution.ScoringSpec`; after
settlement it reveals the holdout. :func:`verify_scores` is then everything a contributor needs:
it refuses a holdout that does not hash to the commitment (before parsing it, and without
computing anything on it), checks the spec against its commitment, recomputes the scores with the
same code and lists every submission whose on-chain score differs. A mismatch is a typed result,
not an exception: it is the answer the contributor asked for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from decentralml.errors import InvalidInput
from decentralml.fl.base import UpdateKey
from decentralml.fl.contribution import (
    PPM,
    ContributionReport,
    Scores,
    ScoringSpec,
    Updates,
    holdout_evaluator,
)
from decentralml.fl.shards import MAX_SHARD_BYTES, load_shard


def holdout_commitment(path: str | os.PathLike[str]) -> bytes:
    """SHA-256 of the holdout file's bytes: ``TaskTerms.holdout_commitment``."""
    return _file_sha256(path)


def _file_sha256(path: str | os.PathLike[str]) -> bytes:
    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise InvalidInput("holdout", f"cannot read {path}: {exc.strerror or exc}") from None
    return h.digest()


class ScoreMismatch(BaseModel):
    """A submission whose recomputed score differs from the chain's (None: absent on one side)."""

    model_config = ConfigDict(frozen=True)

    key: UpdateKey
    onchain: int | None
    recomputed: int | None


class ScoreVerification(BaseModel):
    """What a contributor learns by recomputing the scores from the revealed holdout."""

    model_config = ConfigDict(frozen=True)

    #: The revealed holdout file hashes to the committed value.
    holdout_matches: bool
    #: The spec hashes to the committed value (None when no commitment was given to check).
    spec_matches: bool | None
    #: Scores that differ by more than ``tolerance_ppm``; empty when the holdout did not match
    #: (nothing is recomputed on data that is not the committed data).
    mismatches: list[ScoreMismatch]
    tolerance_ppm: int
    #: The recomputation (None when the holdout did not match).
    report: ContributionReport | None = None

    @property
    def ok(self) -> bool:
        """Everything matched: the holdout, the spec (when checked) and every score."""
        return self.holdout_matches and self.spec_matches is not False and not self.mismatches


def verify_scores(holdout: str | os.PathLike[str], spec: ScoringSpec,
                  global_weights: Sequence[np.ndarray],
                  updates: Updates, onchain: Scores, *,
                  model: Any, holdout_commitment: bytes,
                  scoring_commitment: bytes | None = None, tolerance_ppm: int = 0,
                  max_holdout_bytes: int | None = None) -> ScoreVerification:
    """Recompute the scores on the revealed ``holdout`` and compare them with ``onchain``.

    ``holdout`` is the shard-format file (:func:`decentralml.fl.load_shard`) the creator
    revealed; it is checked against ``holdout_commitment`` (``TaskTerms.holdout_commitment``)
    before it is even parsed, and ``spec`` against ``scoring_commitment`` when given.
    ``updates`` are the settled results in the order the scorer used (the order they reached the
    chain), ``onchain`` the ``Scores`` read back (submission id -> ppm). ``model`` gives the
    architecture: a Keras model (its weights are not used), or a callable
    ``model(x, y) -> evaluate`` for other frameworks. ``tolerance_ppm`` absorbs differences in
    the model's floating-point arithmetic between machines (0: exact).
    """
    if isinstance(tolerance_ppm, bool) or not 0 <= tolerance_ppm <= PPM:
        raise InvalidInput("tolerance_ppm", f"is {tolerance_ppm}", f"0..={PPM}")
    for name, digest in (("holdout_commitment", holdout_commitment),
                         ("scoring_commitment", scoring_commitment)):
        if digest is not None and (not isinstance(digest, bytes) or len(digest) != 32):
            raise InvalidInput(name, "must be 32 bytes (a SHA-256 digest)")
    spec_matches = None if scoring_commitment is None else spec.commitment() == scoring_commitment
    if _file_sha256(holdout) != holdout_commitment:
        return ScoreVerification(holdout_matches=False, spec_matches=spec_matches,
                                 mismatches=[], tolerance_ppm=tolerance_ppm)
    x, y = load_shard(holdout, max_bytes=max_holdout_bytes or MAX_SHARD_BYTES)
    evaluate = (holdout_evaluator(model, x, y) if hasattr(model, "weights")
                else model(x, y))
    report = spec.score(global_weights, updates, evaluate)
    recomputed = report.ppm
    chain: dict[UpdateKey, int] = dict(onchain.items())
    mismatches = []
    for key in [*recomputed, *(k for k in chain if k not in recomputed)]:
        mine, theirs = recomputed.get(key), chain.get(key)
        if mine is None or theirs is None or abs(mine - theirs) > tolerance_ppm:
            mismatches.append(ScoreMismatch(key=key, onchain=theirs, recomputed=mine))
    return ScoreVerification(holdout_matches=True, spec_matches=spec_matches,
                             mismatches=mismatches, tolerance_ppm=tolerance_ppm, report=report)
