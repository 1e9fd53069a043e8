"""``pallet_timestamp``: the ``set`` inherent the block author puts first in every block.

The node fills it with the wall clock in milliseconds, never earlier than the parent's time plus
``MinimumPeriod``, so ``Timestamp.Now`` is strictly increasing even at hundreds of blocks a second.
"""

from __future__ import annotations

from decentralml.devnode.pallet import ConstantDef, Origin, Pallet, Storage, call
from decentralml.devnode.primitives import Weight
from decentralml.devnode.scale import BOOL, COMPACT_U64, U64, Field

MINIMUM_PERIOD_MS = 1


class Timestamp(Pallet):
    """The block's time, set once per block by an unsigned inherent."""

    NAME = "Timestamp"
    INDEX = 1
    MODULE = "pallet_timestamp"

    CONSTANTS = (ConstantDef("MinimumPeriod", U64, MINIMUM_PERIOD_MS,
                             "The minimum period between blocks."),)

    Now = Storage(U64, default=0, docs="The current time for the current block.")
    DidUpdate = Storage(BOOL, default=False,
                        docs="Whether the timestamp has been updated in this block.")

    @call(0, Field("now", COMPACT_U64, "T::Moment"), weight=Weight(9_000_000, 1_493),
          dispatch_class="Mandatory")
    def set(self, origin: Origin, now: int) -> None:
        """Set the current time (inherent: the origin must be None)."""
        origin.ensure_none()
        if self.DidUpdate.get(self.state):
            raise self.rt.other_error("Timestamp must be updated only once in the block")
        prev: int = self.Now.get(self.state)
        if prev and now < prev + MINIMUM_PERIOD_MS:
            raise self.rt.other_error("Timestamp must increment by at least MinimumPeriod")
        self.Now.set(self.state, now)
        self.DidUpdate.set(self.state, True)

    def next_timestamp(self, wall_ms: int) -> int:
        """The time the author puts in the next block's inherent."""
        prev: int = self.Now.get(self.state)
        return max(wall_ms, prev + MINIMUM_PERIOD_MS)

    def on_finalize(self, number: int) -> None:
        self.DidUpdate.remove(self.state)
