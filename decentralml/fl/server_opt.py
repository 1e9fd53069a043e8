"""Server optimizers (Reddi et al., 2021, "Adaptive Federated Optimization"): the common part.

FedAvg replaces the global model by the mean of the updates. A server optimizer instead treats
``delta = mean(updates) - current`` (the *pseudo-gradient*, the direction the contributors moved
the model, averaged) like a gradient and steps along it with its own rule and state: momentum
(:class:`~decentralml.fl.fedavgm.FedAvgM`), or per-coordinate adaptive learning rates
(:class:`~decentralml.fl.fedadam.FedAdam`, :class:`~decentralml.fl.fedyogi.FedYogi`,
:class:`~decentralml.fl.fedadagrad.FedAdagrad`). With server learning rate 1 and no momentum this
is FedAvg again.

Memory stays bounded like FedAvg's: the mean is streamed (one layer of one update at a time, into
a float64 accumulator, :meth:`FedAvg.accumulate`), and the state is the current model plus one or
two float64 moment buffers, whatever the number of contributors.

The optimizer keeps the current global weights, so :meth:`aggregate` alone continues a job (start
it with ``initial=`` or :meth:`apply`); :meth:`apply` starts from the weights it is given, which
is what :func:`~decentralml.fl.federate.federated_contributors_model` does with the creator's
model. :meth:`get_state` returns everything (the weights, the moments, the step count as a 0-d
int64 array) as arrays that ``np.savez(..., allow_pickle=False)`` can store; a fresh optimizer
built with the same parameters and given that state by :meth:`set_state` continues identically.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from decentralml.errors import InvalidInput, ModelError
from decentralml.fl.base import Aggregator, Layout, Update, Weights, layout_of, validate_fraction
from decentralml.fl.fedavg import FedAvg

#: State keys: ``step``, then ``weights.0000``, ``m.0000``, ... (one per array, in model order).
STEP_KEY = "step"
WEIGHTS_SLOT = "weights"


def positive(field_name: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (or >= 0), :class:`InvalidInput` otherwise."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInput(field_name, f"is {value}", ">= 0" if allow_zero else "> 0, finite")
    return v


def beta(field_name: str, value: float) -> float:
    """A decay rate in [0, 1)."""
    return validate_fraction(field_name, value, low=0.0, high=1.0)


def state_key(slot: str, index: int) -> str:
    return f"{slot}.{index:04d}"


class ServerOptimizer(Aggregator):
    """Step the global model along the streamed pseudo-gradient with a subclass's rule.

    ``eta`` is the server learning rate; ``max_share`` caps any contributor's share of the mean
    (as in :class:`~decentralml.fl.fedavg.FedAvg`); ``initial`` is the round-0 global model
    (optional when :meth:`apply` is used). Subclasses name their moment buffers in ``SLOTS`` and
    implement :meth:`_update`, which gets the float64 pseudo-gradient of one array and returns
    the float64 step to add to it.
    """

    #: The float64 buffers the rule keeps per array, e.g. ``("m", "v")``.
    SLOTS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, eta: float, max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        self.eta = positive("eta", eta)
        self._mean = FedAvg(max_share=max_share, accumulator=np.float64)
        self.max_share = self._mean.max_share
        self._weights: list[np.ndarray] | None = None
        self._slots: dict[str, list[np.ndarray]] = {}
        self.steps = 0
        if initial is not None:
            self._weights = _checked_initial(initial)

    # --- the rule ------------------------------------------------------------------------------

    @abstractmethod
    def _update(self, index: int, delta: np.ndarray) -> np.ndarray:
        """The step for array ``index`` given its pseudo-gradient (both float64; may reuse
        ``delta``'s memory). Moment buffers are in ``self._slots[name][index]``."""

    def _init_slot(self, slot: str, like: np.ndarray) -> np.ndarray:
        """A slot's value before the first round (zeros unless the rule says otherwise)."""
        return np.zeros(like.shape, dtype=np.float64)

    def _pseudo_gradient(self, updates: Sequence[Update], layout: Layout,
                         current: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``mean(updates) - current`` per array, float64, streamed (overridden by DP-FedAvg)."""
        acc = self._mean.accumulate(updates, layout)
        for a, x in zip(acc, current, strict=True):
            np.subtract(a, x, out=a)
        return acc

    # --- driving a round -----------------------------------------------------------------------

    @property
    def weights(self) -> Weights | None:
        """A copy of the current global weights (None before the first round)."""
        return None if self._weights is None else [w.copy() for w in self._weights]

    def apply(self, current: Sequence[np.ndarray], updates: Sequence[Update]) -> Weights:
        self._weights = _checked_initial(current)
        return self.aggregate(updates)

    def aggregate(self, updates: Sequence[Update]) -> Weights:
        if self._weights is None:
            raise ModelError(f"{type(self).__name__} needs the current global weights: pass "
                             "initial=..., call apply(current, updates) or restore a state")
        layout = layout_of(updates)
        current = self._weights
        _check_fits(current, layout)
        for slot in self.SLOTS:
            buffers = self._slots.get(slot)
            if buffers is None:
                self._slots[slot] = [self._init_slot(slot, x) for x in current]
            elif [b.shape for b in buffers] != list(layout.shapes):
                raise ModelError(f"{type(self).__name__}: the optimizer state is for another "
                                 "model (shapes differ)")
        delta = self._pseudo_gradient(updates, layout, current)
        new: Weights = []
        for i, x in enumerate(current):
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                step = self._update(i, delta[i])
                out = np.asarray(np.add(x, step, dtype=np.float64))  # 0-d stays an array
            if not bool(np.isfinite(out).all()):
                raise ModelError(f"{type(self).__name__}: array {i} of the new model is not "
                                 "finite (learning rate too large?)")
            new.append(out.astype(x.dtype))
            delta[i] = step = out = np.empty(0)  # release this layer's temporaries now
        self._weights = new
        self.steps += 1
        return [w.copy() for w in new]

    # --- state ---------------------------------------------------------------------------------

    def get_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {STEP_KEY: np.array(self.steps, dtype=np.int64)}
        if self._weights is not None:
            for i, w in enumerate(self._weights):
                state[state_key(WEIGHTS_SLOT, i)] = w.copy()
        for slot, buffers in self._slots.items():
            for i, b in enumerate(buffers):
                state[state_key(slot, i)] = b.copy()
        return state

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s output; checked whole before anything is replaced."""
        if STEP_KEY not in state:
            raise InvalidInput("state", f"has no {STEP_KEY!r} entry", "a get_state() result")
        step = np.asarray(state[STEP_KEY])
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise InvalidInput("state", f"{STEP_KEY!r} is {step!r}", "a 0-d integer >= 0")
        known = {WEIGHTS_SLOT, *self.SLOTS}
        grouped: dict[str, dict[int, np.ndarray]] = {}
        for key, value in state.items():
            if key == STEP_KEY:
                continue
            slot, _, index = key.partition(".")
            if slot not in known or not index.isdigit():
                raise InvalidInput("state", f"unknown entry {key!r} for {type(self).__name__}",
                                   f"step and {sorted(known)} entries")
            array = np.asarray(value)
            if array.dtype.kind != "f" or not bool(np.isfinite(array).all()):
                raise InvalidInput("state", f"{key!r} is not a finite floating-point array")
            grouped.setdefault(slot, {})[int(index)] = array
        lists: dict[str, list[np.ndarray]] = {}
        for slot, arrays in grouped.items():
            if sorted(arrays) != list(range(len(arrays))):
                raise InvalidInput("state", f"{slot!r} entries are not numbered 0..n-1")
            lists[slot] = [arrays[i].copy() for i in range(len(arrays))]
        shapes = {slot: [a.shape for a in arrays] for slot, arrays in lists.items()}
        if len({tuple(s) for s in shapes.values()}) > 1:
            raise InvalidInput("state", "its entries describe models of different shapes")
        weights = lists.pop(WEIGHTS_SLOT, None)
        self._weights = weights
        self._slots = {slot: [a.astype(np.float64) for a in arrays]
                       for slot, arrays in lists.items()}
        self.steps = int(step)

    def _params(self) -> dict[str, Any]:
        return {"eta": self.eta}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"


def _checked_initial(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for i, w in enumerate(weights):
        a = np.array(w, copy=True)
        if a.dtype.kind != "f":
            raise ModelError(f"global weights: array {i} has dtype {a.dtype}; only "
                             "floating-point models can be optimised")
        if not bool(np.isfinite(a).all()):
            raise ModelError(f"global weights: array {i} holds NaN or inf")
        out.append(a)
    if not out:
        raise InvalidInput("initial", "has no arrays", ">= 1 array")
    return out


def _check_fits(current: Sequence[np.ndarray], layout: Layout) -> None:
    if len(current) != len(layout):
        raise ModelError(f"the updates have {len(layout)} arrays, the global model "
                         f"{len(current)}")
    for i, (x, shape, dtype) in enumerate(zip(current, layout.shapes, layout.dtypes,
                                              strict=True)):
        if x.shape != shape or x.dtype != dtype:
            raise ModelError(f"array {i}: the updates have {shape} {dtype}, the global model "
                             f"{x.shape} {x.dtype}")


class AdaptiveServerOptimizer(ServerOptimizer):
    """The family of Reddi et al.'s Algorithm 2: momentum plus a per-coordinate step size.

    Per array, with pseudo-gradient ``d``::

        m = beta_1 * m + (1 - beta_1) * d
        v = <rule>(v, d * d)                 # FedAdagrad, FedAdam, FedYogi differ only here
        x = x + eta * m / (sqrt(v) + tau)

    ``m`` starts at 0 and ``v`` at ``tau**2`` (the paper's ``v_{-1} >= tau^2``); there is no
    bias correction, as in the paper. ``tau`` bounds the step of a coordinate the contributors
    barely move, and is the knob that matters most after ``eta``.
    """

    SLOTS = ("m", "v")

    def __init__(self, *, eta: float, beta_1: float = 0.9, beta_2: float = 0.99,
                 tau: float = 1e-3, max_share: float | None = None,
                 initial: Sequence[np.ndarray] | None = None) -> None:
        super().__init__(eta=eta, max_share=max_share, initial=initial)
        self.beta_1 = beta(field_name="beta_1", value=beta_1)
        self.beta_2 = beta(field_name="beta_2", value=beta_2)
        self.tau = positive("tau", tau)

    @abstractmethod
    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> None:
        """Update ``v`` in place from the squared pseudo-gradient ``d2``."""

    def _init_slot(self, slot: str, like: np.ndarray) -> np.ndarray:
        if slot == "v":
            return np.full(like.shape, self.tau**2, dtype=np.float64)
        return super()._init_slot(slot, like)

    def _update(self, index: int, delta: np.ndarray) -> np.ndarray:
        m = self._slots["m"][index]
        v = self._slots["v"][index]
        m *= self.beta_1
        m += (1.0 - self.beta_1) * delta
        np.multiply(delta, delta, out=delta)
        self._second_moment(v, delta)
        np.sqrt(v, out=delta)
        delta += self.tau
        np.divide(m, delta, out=delta)
        delta *= self.eta
        return delta

    def _params(self) -> dict[str, Any]:
        return {"eta": self.eta, "beta_1": self.beta_1, "beta_2": self.beta_2, "tau": self.tau}
