"""The common ground of every aggregation strategy: an :class:`Update` and :class:`Aggregator`.

The core works on plain numpy arrays so it can be tested against a float64 reference and reused
with any framework; Keras only appears in the adapters (:mod:`decentralml.fl.keras`).

An update's ``weights`` is any ``Sequence[np.ndarray]``: a list held in memory, or a lazy sequence
that reads one array from disk per ``weights[i]`` (:class:`decentralml.fl.exchange.NpzWeights`).
Strategies only ever index it, one array at a time, which is what lets :class:`FedAvg` stream
(one layer of one update plus the accumulator in memory) and the robust strategies work layer by
layer (K copies of one layer, not K models).

Contributors are untrusted, so strategies are strict: any update that does not fit the others
(count, shape, dtype), is not floating point, or holds NaN/inf makes :meth:`Aggregator.aggregate`
raise :class:`~decentralml.errors.ModelError` naming the update and the array. Nothing partial is
ever returned. Skipping bad contributors is a policy decision made earlier, when updates are
loaded (:func:`decentralml.fl.federate.load_contributor_models` keeps a list of rejections).
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decentralml.errors import InvalidInput, ModelError

#: No honest contributor trains on more examples than this; a larger claim is refused outright
#: (2**40, about 10**12) rather than allowed to dominate a weighted average.
MAX_NUM_EXAMPLES = 2**40

#: Weights as strategies see them: an ordered list of arrays, one per model variable.
Weights = list[np.ndarray]

#: What orders updates for a deterministic aggregation: a submission id or a CID.
UpdateKey = int | str


@dataclass(frozen=True, eq=False)
class Update:
    """One contributor's weights plus what they claim about them.

    ``num_examples`` is a claim by an untrusted party: :class:`FedAvg` weighs by it but can cap
    any single share, and the robust strategies ignore it. ``source`` (a CID, a path) is only
    used to name the update in errors. ``key`` (a submission id, a CID: anything every peer reads
    the same from the chain) fixes the update's place in the sum: floating-point addition is not
    associative, so FedAvg adds keyed updates in key order, whatever order they arrived in, and
    every peer gets the same bits (see :func:`in_key_order`).
    """

    weights: Sequence[np.ndarray]
    num_examples: int = 1
    metrics: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<memory>"
    key: UpdateKey | None = None

    def __post_init__(self) -> None:
        k = self.key
        if k is not None and (isinstance(k, bool) or not isinstance(k, int | str)):
            raise InvalidInput("key", f"must be an int or a str, got {type(k).__name__}")
        n = self.num_examples
        if isinstance(n, bool) or not isinstance(n, int | np.integer):
            raise InvalidInput("num_examples", f"must be an integer, got {type(n).__name__}")
        if not 0 <= int(n) <= MAX_NUM_EXAMPLES:
            raise InvalidInput("num_examples", f"is {int(n)}", f"0..={MAX_NUM_EXAMPLES}")
        object.__setattr__(self, "num_examples", int(n))

    @property
    def names(self) -> Sequence[str] | None:
        """The arrays' names when the weights carry them (file-backed updates do)."""
        names = getattr(self.weights, "names", None)
        return None if names is None else list(names)

    def label(self, index: int) -> str:
        """``array 3 (0003:dense/kernel)`` for error messages."""
        names = self.names
        if names is not None and index < len(names):
            return f"array {index} ({names[index]})"
        return f"array {index}"

    def arrays(self) -> Weights:
        """Every array, materialised (K of these in memory is what the streaming path avoids)."""
        return [np.asarray(self.weights[i]) for i in range(len(self.weights))]


@dataclass(frozen=True)
class Layout:
    """Shapes and dtypes every update must share; taken from the first update."""

    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype[Any], ...]

    def __len__(self) -> int:
        return len(self.shapes)


def check_array(update: Update, index: int, array: Any, layout: Layout,
                *, check_finite: bool = True) -> np.ndarray:
    """``array`` as an ndarray if it fits ``layout[index]``; :class:`ModelError` otherwise.

    A numpy scalar (what arithmetic on a 0-d array returns) counts as a 0-d array; anything else
    that is not an ndarray (lists, tensors) is refused rather than converted with a guessed dtype.
    """
    if isinstance(array, np.generic):
        array = np.asarray(array)
    if not isinstance(array, np.ndarray):
        raise ModelError(f"update {update.source}: {update.label(index)} is a "
                         f"{type(array).__name__}, not a numpy array")
    if array.shape != layout.shapes[index]:
        raise ModelError(f"update {update.source}: {update.label(index)} has shape "
                         f"{array.shape}, expected {layout.shapes[index]}")
    if array.dtype != layout.dtypes[index]:
        raise ModelError(f"update {update.source}: {update.label(index)} has dtype "
                         f"{array.dtype}, expected {layout.dtypes[index]}")
    if check_finite and not bool(np.isfinite(array).all()):
        raise ModelError(f"update {update.source}: {update.label(index)} holds NaN or inf")
    return array


def in_key_order(updates: Sequence[Update]) -> list[Update]:
    """``updates`` sorted by :attr:`Update.key` when they all have one, as given when none do.

    Integers sort before strings (a mix is allowed: a submission id and a bare CID); two updates
    with the same key, or keys on some updates only, are an :class:`InvalidInput`, since either
    would leave the order to chance.
    """
    keyed = [u for u in updates if u.key is not None]
    if not keyed:
        return list(updates)
    if len(keyed) != len(updates):
        missing = next(u for u in updates if u.key is None)
        raise InvalidInput("key", f"update {missing.source} has no key while others have one",
                           "every update keyed, or none")
    ordered = sorted(updates, key=_sort_key)
    for a, b in itertools.pairwise(ordered):
        if _sort_key(a) == _sort_key(b):
            raise InvalidInput("key", f"updates {a.source} and {b.source} share the key "
                               f"{a.key!r}", "unique keys")
    return ordered


def _sort_key(update: Update) -> tuple[int, int, str]:
    k = update.key
    return (0, k, "") if isinstance(k, int) else (1, 0, str(k))


def layout_of(updates: Sequence[Update]) -> Layout:
    """The layout shared by ``updates``, checking counts and dtypes but not values.

    Reading one array per update is cheap for in-memory weights; for file-backed ones it reads
    only array headers when possible (:class:`~decentralml.fl.exchange.NpzWeights` exposes
    ``shapes``/``dtypes``).
    """
    if len(updates) == 0:
        raise InvalidInput("updates", "nothing to aggregate", ">= 1 update")
    first = updates[0]
    shapes, dtypes = _meta(first)
    for i, dtype in enumerate(dtypes):
        if dtype.kind != "f":
            raise ModelError(f"update {first.source}: {first.label(i)} has dtype {dtype}; "
                             "only floating-point arrays can be aggregated")
    layout = Layout(tuple(shapes), tuple(dtypes))
    for u in updates[1:]:
        u_shapes, u_dtypes = _meta(u)
        if len(u_shapes) != len(layout):
            raise ModelError(f"update {u.source} has {len(u_shapes)} arrays, "
                             f"expected {len(layout)}")
        for i, (shape, dtype) in enumerate(zip(u_shapes, u_dtypes, strict=True)):
            if shape != layout.shapes[i]:
                raise ModelError(f"update {u.source}: {u.label(i)} has shape {shape}, "
                                 f"expected {layout.shapes[i]}")
            if dtype != layout.dtypes[i]:
                raise ModelError(f"update {u.source}: {u.label(i)} has dtype {dtype}, "
                                 f"expected {layout.dtypes[i]}")
    return layout


def _meta(update: Update) -> tuple[list[tuple[int, ...]], list[np.dtype[Any]]]:
    w = update.weights
    shapes = getattr(w, "shapes", None)
    dtypes = getattr(w, "dtypes", None)
    if shapes is not None and dtypes is not None:
        return [tuple(s) for s in shapes], [np.dtype(d) for d in dtypes]
    out_s: list[tuple[int, ...]] = []
    out_d: list[np.dtype[Any]] = []
    for i in range(len(w)):
        a = w[i]
        if isinstance(a, np.generic):
            a = np.asarray(a)
        if not isinstance(a, np.ndarray):
            raise ModelError(f"update {update.source}: {update.label(i)} is a "
                             f"{type(a).__name__}, not a numpy array")
        out_s.append(a.shape)
        out_d.append(a.dtype)
    return out_s, out_d


class Aggregator(ABC):
    """Combine K updates of the same model into one set of weights.

    One method, so strategies are interchangeable in :func:`federated_contributors_model`, the
    benchmarks and the tests. Implementations must not modify the updates' arrays.

    Strategies that move the global model by a server-side rule (the optimizers of
    :mod:`decentralml.fl.server_opt`, DP-FedAvg) need the current global weights and keep state
    between rounds; they override :meth:`apply`, :meth:`get_state` and :meth:`set_state`. The
    stateless ones inherit the defaults (``apply`` ignores the current weights, the state is empty),
    so a caller can always drive a round as ``weights = strategy.apply(current, updates)`` and
    persist ``strategy.get_state()`` after it, whatever the strategy.
    """

    #: The strategy's one name: its key in :mod:`decentralml.fl.registry` for the registered
    #: strategies (a test holds them equal), shown in tables and logs.
    name: str = "aggregator"

    @abstractmethod
    def aggregate(self, updates: Sequence[Update]) -> Weights:
        """The combined weights, with each array in the updates' dtype."""

    def apply(self, current: Sequence[np.ndarray], updates: Sequence[Update]) -> Weights:
        """The next global weights from the ``current`` ones and this round's ``updates``.

        Averaging strategies do not depend on the current model, so the default is
        :meth:`aggregate`; server optimizers step from ``current`` along the pseudo-gradient.
        """
        del current
        return self.aggregate(updates)

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue the job after a restart, as plain arrays.

        Saved by a job as ``.npz`` (``allow_pickle=False``) after each round; a strategy built
        with the same parameters and given this state by :meth:`set_state` produces the same next
        rounds. Stateless strategies return ``{}``.
        """
        return {}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`get_state` returned (a no-op for stateless strategies)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: What the registry (:func:`decentralml.fl.strategy_from_name`) returns: any aggregator.
Strategy = Aggregator


def stack_layer(updates: Sequence[Update], index: int, layout: Layout) -> np.ndarray:
    """Array ``index`` of every update stacked on a new axis 0, each checked first.

    The robust strategies need all K values of a coordinate at once; doing it one layer at a time
    bounds their memory to K copies of the largest layer.
    """
    out = np.empty((len(updates), *layout.shapes[index]), dtype=layout.dtypes[index])
    for k, u in enumerate(updates):
        out[k] = check_array(u, index, u.weights[index], layout)
    return out


def validate_fraction(field_name: str, value: float, *, low: float, high: float,
                      include_low: bool = True, include_high: bool = False) -> float:
    """``value`` as a float if within bounds, :class:`InvalidInput` otherwise."""
    v = float(value)
    ok_low = v >= low if include_low else v > low
    ok_high = v <= high if include_high else v < high
    if math.isnan(v) or not (ok_low and ok_high):
        lo = "[" if include_low else "("
        hi = "]" if include_high else ")"
        raise InvalidInput(field_name, f"is {value}", f"{lo}{low}, {high}{hi}")
    return v
