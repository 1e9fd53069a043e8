"""Scoring models and contributions on the creator's holdout data.

:class:`HoldoutScorer` is meant to back a custom validation policy: given a contributor's update
(or the path of its bundle) it answers "accept?" with the holdout accuracy and a reason a human
can read. A broken or hostile update is a rejection with a reason, never an exception, because a
validator loop must survive every submission it is shown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.base import Update


def evaluate(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 256
             ) -> dict[str, float]:
    """``{"accuracy", "loss", "num_examples"}`` of ``model`` on (x, y), labels as integers.

    Calls the model directly in inference mode rather than ``model.predict``/``evaluate``: no
    compile needed (architectures travel uncompiled) and no per-model function tracing, which
    dominates on small holdout sets. ``loss`` is the mean sparse categorical cross-entropy; the
    outputs are taken as probabilities when they look like them (non-negative rows summing to
    one) and as logits otherwise.
    """
    if len(x) != len(y):
        raise InvalidInput("y", f"{len(y)} labels for {len(x)} examples", "same length")
    if len(x) == 0:
        raise InvalidInput("x", "no examples to evaluate on", ">= 1")
    correct = 0
    nll = 0.0
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    for start in range(0, len(x), batch_size):
        out = np.asarray(model(x[start:start + batch_size], training=False), dtype=np.float64)
        out = out.reshape(len(out), -1)
        batch = labels[start:start + batch_size]
        correct += int((out.argmax(axis=-1) == batch).sum())
        if not (out.min() >= 0.0 and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)):
            out = np.exp(out - out.max(axis=-1, keepdims=True))
            out /= out.sum(axis=-1, keepdims=True)
        picked = out[np.arange(len(batch)), np.clip(batch, 0, out.shape[-1] - 1)]
        nll -= float(np.log(np.clip(picked, 1e-12, 1.0)).sum())
    return {"accuracy": correct / len(x), "loss": nll / len(x), "num_examples": float(len(x))}


@dataclass(frozen=True)
class Score:
    """The verdict on one update. ``accuracy`` is NaN when the update could not be evaluated."""

    accuracy: float
    accepted: bool
    reason: str
    baseline: float | None = None

    @property
    def improvement(self) -> float | None:
        """Accuracy gained over the current global model (None without a baseline)."""
        if self.baseline is None or math.isnan(self.accuracy):
            return None
        return self.accuracy - self.baseline


class HoldoutScorer:
    """Accept an update when its holdout accuracy, or its gain over the global model, is enough.

    ``model_template`` is the current global model: its architecture is what updates must match
    and its weights are the baseline for ``min_improvement`` (which may be negative, to tolerate
    a small drop). Both thresholds are optional; with neither, everything that loads and
    evaluates is accepted. The template is never modified: updates are loaded into a clone.
    """

    def __init__(self, model_template: Any, x: np.ndarray, y: np.ndarray,
                 min_accuracy: float | None = None, min_improvement: float | None = None,
                 *, batch_size: int = 256) -> None:
        from decentralml.fl.keras import clone_model

        if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
            raise InvalidInput("min_accuracy", f"is {min_accuracy}", "[0, 1]")
        if min_improvement is not None and not -1.0 <= min_improvement <= 1.0:
            raise InvalidInput("min_improvement", f"is {min_improvement}", "[-1, 1]")
        self.x = x
        self.y = y
        self.min_accuracy = min_accuracy
        self.min_improvement = min_improvement
        self.batch_size = batch_size
        self._model = clone_model(model_template)
        self._baseline: float | None = None
        self._global = [np.array(w) for w in self._model.get_weights()]

    @property
    def baseline(self) -> float:
        """The current global model's holdout accuracy (computed once)."""
        if self._baseline is None:
            from decentralml.fl.keras import set_weights

            set_weights(self._model, self._global)
            self._baseline = evaluate(self._model, self.x, self.y, self.batch_size)["accuracy"]
        return self._baseline

    def set_global(self, weights: Sequence[np.ndarray]) -> None:
        """Move the baseline to a new global model (e.g. after a federated round)."""
        self._global = [np.array(w) for w in weights]
        self._baseline = None

    def __call__(self, update_or_path: Update | Sequence[np.ndarray] | str | os.PathLike[str]
                 ) -> Score:
        from decentralml.fl.exchange import load_update
        from decentralml.fl.keras import set_weights

        try:
            if isinstance(update_or_path, str | os.PathLike):
                weights = load_update(update_or_path, like=self._model).arrays()
            elif isinstance(update_or_path, Update):
                weights = update_or_path.arrays()
            else:
                weights = [np.asarray(w) for w in update_or_path]
            for i, w in enumerate(weights):
                if w.dtype.kind == "f" and not bool(np.isfinite(w).all()):
                    raise ModelError(f"array {i} holds NaN or inf")
            set_weights(self._model, weights)
        except (ModelError, InvalidInput) as exc:
            return Score(math.nan, False, f"invalid update: {exc}")
        accuracy = evaluate(self._model, self.x, self.y, self.batch_size)["accuracy"]
        baseline = self.baseline if self.min_improvement is not None else None
        if self.min_accuracy is not None and accuracy < self.min_accuracy:
            return Score(accuracy, False, f"accuracy {accuracy:.4f} is below the required "
                         f"{self.min_accuracy:.4f}", baseline)
        if baseline is not None and self.min_improvement is not None \
                and accuracy - baseline < self.min_improvement:
            return Score(accuracy, False, f"improvement {accuracy - baseline:+.4f} over the "
                         f"global model ({baseline:.4f}) is below {self.min_improvement:+.4f}",
                         baseline)
        return Score(accuracy, True, f"accuracy {accuracy:.4f} passes", baseline)
