"""``pallet_utility``: batches, so a reviewer can validate many results in one extrinsic.

``batch`` stops at the first failing call (``BatchInterrupted``, earlier calls kept);
``batch_all`` is all-or-nothing (any failure fails and reverts the whole extrinsic);
``force_batch`` runs every call and reports failures with ``ItemFailed``. Every inner call runs in
its own storage transaction, like any FRAME dispatchable.
"""

from __future__ import annotations

from typing import Any

from decentralml.devnode.pallet import (
    RUNTIME_CALL,
    ConstantDef,
    DispatchFailure,
    ErrorDef,
    EventDef,
    Origin,
    Pallet,
    PostInfo,
    call,
)
from decentralml.devnode.primitives import DISPATCH_ERROR, Weight
from decentralml.devnode.scale import U32, Field, Vec

BATCHED_CALLS_LIMIT = 10_922
_PER_CALL = Weight(5_000_000, 0)


def _batch_weight(rt: Any, args: dict[str, Any]) -> Weight:
    total = Weight(5_000_000, 0)
    for c in args["calls"]:
        total = total + rt.call_weight(c) + _PER_CALL
    return total


class Utility(Pallet):
    """Batch dispatch with the three FRAME failure policies."""

    NAME = "Utility"
    INDEX = 5
    MODULE = "pallet_utility"

    CONSTANTS = (ConstantDef("batched_calls_limit", U32, BATCHED_CALLS_LIMIT,
                             "The limit on the number of batched calls."),)
    EVENTS = (
        EventDef("BatchInterrupted", (Field("index", U32, "u32"),
                                      Field("error", DISPATCH_ERROR, "DispatchError")),
                 "Batch of dispatches did not complete fully. Index of first failing dispatch "
                 "given, as well as the error."),
        EventDef("BatchCompleted", (), "Batch of dispatches completed fully with no error."),
        EventDef("BatchCompletedWithErrors", (),
                 "Batch of dispatches completed but has errors."),
        EventDef("ItemCompleted", (), "A single item within a Batch of dispatches has completed "
                 "with no error."),
        EventDef("ItemFailed", (Field("error", DISPATCH_ERROR, "DispatchError"),),
                 "A single item within a Batch of dispatches has completed with error."),
    )
    ERRORS = (ErrorDef("TooManyCalls", "Too many calls batched."),)

    _CALLS = Field("calls", Vec(RUNTIME_CALL), "Vec<<T as Config>::RuntimeCall>")

    def _check(self, origin: Origin, calls: list[Any]) -> None:
        if origin.kind == "none":
            raise DispatchFailure("BadOrigin")
        if len(calls) > BATCHED_CALLS_LIMIT:
            raise self.error("TooManyCalls")

    @call(0, _CALLS, weight=_batch_weight)
    def batch(self, origin: Origin, calls: list[Any]) -> PostInfo | None:
        """Send a batch of dispatch calls; stops at the first error (earlier calls stay)."""
        self._check(origin, calls)
        for i, c in enumerate(calls):
            result = self.rt.dispatch_result(c, origin)
            if result[0] == "Err":
                self.deposit_event("BatchInterrupted", index=i, error=result[1])
                return None
            self.deposit_event("ItemCompleted")
        self.deposit_event("BatchCompleted")
        return None

    @call(2, _CALLS, weight=_batch_weight)
    def batch_all(self, origin: Origin, calls: list[Any]) -> None:
        """Send a batch of dispatch calls and atomically execute them: all or nothing."""
        self._check(origin, calls)
        for c in calls:
            self.rt.dispatch(c, origin)
            self.deposit_event("ItemCompleted")
        self.deposit_event("BatchCompleted")

    @call(4, _CALLS, weight=_batch_weight)
    def force_batch(self, origin: Origin, calls: list[Any]) -> None:
        """Send a batch of dispatch calls; failing calls are reported and skipped."""
        self._check(origin, calls)
        failed = False
        for c in calls:
            result = self.rt.dispatch_result(c, origin)
            if result[0] == "Err":
                failed = True
                self.deposit_event("ItemFailed", error=result[1])
            else:
                self.deposit_event("ItemCompleted")
        self.deposit_event("BatchCompletedWithErrors" if failed else "BatchCompleted")
