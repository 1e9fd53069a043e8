"""Validation policies that need the whole stack: fetch a submission's result bundle (verified),
load its weights-only update and score it on the reviewer's holdout set.

The plain policies (AutoAccept, Manual, Threshold, Custom) live with the client in
:mod:`decentralml.chain.policies`; this one is here because it needs storage and FL too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from decentralml.chain.policies import Custom, Decision
from decentralml.chain.types import Submission

if TYPE_CHECKING:
    from decentralml.roles.creator import ModelCreator


def holdout_policy(creator: ModelCreator, model: Any, x: Any, y: Any, *,
                   min_accuracy: float | None = None,
                   min_improvement: float | None = None) -> Custom:
    """Accept a submission when its update's holdout accuracy (or gain over ``model``) passes.

    A submission whose result cannot be fetched, verified or loaded is rejected with the reason:
    an update that does not fit the model is worthless to the creator and must not be paid.
    """
    from decentralml.errors import IntegrityError, ModelError, StorageError
    from decentralml.fl import HoldoutScorer

    scorer = HoldoutScorer(model, x, y, min_accuracy=min_accuracy,
                           min_improvement=min_improvement)

    def decide(submission: Submission) -> Decision:
        if submission.result_cid is None:
            return Decision(accept=False, reason="no result CID to evaluate")
        try:
            updates = creator.load_contributor_models([submission], like=model, on_error="raise")
        except (IntegrityError, ModelError) as exc:
            return Decision(accept=False, reason=f"unusable result: {exc}")
        except StorageError as exc:  # unreachable storage: not the worker's fault, decide later
            return Decision(accept=None, reason=f"could not fetch the result: {exc}")
        if not updates:
            return Decision(accept=False, reason="the result holds no update")
        score = scorer(updates[0])
        return Decision(accept=score.accepted, reason=score.reason,
                        score=None if math.isnan(score.accuracy) else score.accuracy)

    return Custom(decide)
