"""The federated-learning options a creator puts in a task's ``config.json``, and their checks.

The contributor bundle and template read them with :func:`read_task_options`::

    {"proximal_mu": 0.01,                                    # FedProx (0 or absent: off)
     "dp": {"clipping_norm": 1.0, "noise_multiplier": 1.1}}  # client-side DP (absent: off)

and apply them with :func:`decentralml.fl.train_local` (``proximal_mu=``) and
:func:`decentralml.fl.privatize_update` (before ``save_update``). Both ends validate the same
way: a creator's :func:`write_task_options` refuses a bad value before the bundle is published,
and a contributor's bundle refuses one before training rather than silently ignoring it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from decentralml.errors import InvalidInput

#: The task config file the creator's bundle and the template read.
CONFIG_FILE = "config.json"


class ClientDP(BaseModel):
    """Client-side DP-FedAvg parameters: clip the update to ``clipping_norm``, add
    ``N(0, (noise_multiplier * clipping_norm)^2)`` to every weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clipping_norm: float
    noise_multiplier: float

    @field_validator("clipping_norm")
    @classmethod
    def _c(cls, v: float) -> float:
        if not v > 0 or v == float("inf"):
            raise ValueError("must be > 0 and finite")
        return v

    @field_validator("noise_multiplier")
    @classmethod
    def _s(cls, v: float) -> float:
        if not v >= 0 or v == float("inf"):
            raise ValueError("must be >= 0 and finite")
        return v


class TaskOptions(BaseModel):
    """What :func:`read_task_options` returns: FedProx's ``mu`` and client-side DP, if any."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    proximal_mu: float = 0.0
    dp: ClientDP | None = None

    @field_validator("proximal_mu")
    @classmethod
    def _mu(cls, v: float) -> float:
        if not v >= 0 or v == float("inf"):
            raise ValueError("must be >= 0 and finite")
        return v


def read_task_options(config: Mapping[str, Any] | Path | None) -> TaskOptions:
    """The options in ``config`` (a mapping or a ``config.json`` path; None or missing: none).

    Other keys of the config (epochs, batch size...) are the bundle's own and are ignored here.
    """
    if config is None:
        return TaskOptions()
    if isinstance(config, Path):
        if not config.is_file():
            return TaskOptions()
        try:
            config = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput("config", f"{config} is not readable JSON: {exc}") from None
    if not isinstance(config, Mapping):
        raise InvalidInput("config", f"is a {type(config).__name__}", "a JSON object")
    try:
        return TaskOptions.model_validate(dict(config))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(where or "config", err["msg"]) from None


def write_task_options(bundle_dir: Path, options: TaskOptions) -> Path:
    """Merge ``options`` into ``bundle_dir/config.json`` (created if absent); return its path.

    Keys the options leave at their default are removed, so a round without FedProx or DP does
    not carry a stale setting from the bundle it was copied from.
    """
    path = bundle_dir / CONFIG_FILE
    config: dict[str, Any] = {}
    if path.is_file():
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise InvalidInput("config", f"{path} is not a JSON object")
        config = loaded
    for key in ("proximal_mu", "dp"):
        config.pop(key, None)
    if options.proximal_mu:
        config["proximal_mu"] = options.proximal_mu
    if options.dp is not None:
        config["dp"] = options.dp.model_dump()
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def apply_client_dp(trained: Any, start: Sequence[np.ndarray], dp: ClientDP,
                    rng: np.random.Generator | None = None) -> Any:
    """Clip and noise a contributor's trained model (or list of weights) against ``start``.

    ``start`` is the global model's weights as the task shipped them (taken before training).
    A Keras model gets the privatized weights set in place and is returned, so ``save_update``
    still names the arrays as the creator's model does; a list of arrays comes back as a list.
    Metrics computed on the data before this (training loss, accuracy) are *not* covered by the
    guarantee: a bundle using client-side DP should not report them.
    """
    from decentralml.fl.privacy import privatize_update

    private = privatize_update(weights_of(trained), start, clipping_norm=dp.clipping_norm,
                               noise_multiplier=dp.noise_multiplier, rng=rng)
    if _is_model(trained):
        from decentralml.fl.keras import set_weights

        set_weights(trained, private)
        return trained
    return private


def weights_of(model_or_weights: Any) -> list[np.ndarray]:
    """A copy of the weights of a Keras model, or of a sequence of arrays."""
    if _is_model(model_or_weights):
        from decentralml.fl.keras import get_weights

        return get_weights(model_or_weights)
    return [np.array(w, copy=True) for w in model_or_weights]


def _is_model(obj: Any) -> bool:
    return hasattr(obj, "get_weights") and hasattr(obj, "set_weights")
