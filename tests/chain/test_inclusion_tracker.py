"""The inclusion tracker across a fork (a pure unit test: a chain of block records in memory).

On a real network (tests/chain/test_network.py forks one for real) a block the tracker recorded
can be retracted. ``rewind`` makes it read those heights again on the new best chain, and a scan
that was reading the old chain when the rewind happened records nothing more: otherwise it could
move the scanned mark past heights never read on the new chain, and an extrinsic that landed
there would look absent (and its nonce, used, would look taken by another transaction).
"""

from __future__ import annotations

from collections.abc import Callable

from decentralml.chain.connection import BlockInfo
from decentralml.chain.submit import InclusionTracker, Location


class Chain:
    """A best chain of blocks by number, which a test can switch to a fork."""

    def __init__(self, blocks: dict[int, BlockInfo]) -> None:
        self.blocks = blocks
        self.on_read: Callable[[int], None] = lambda number: None

    def head_number(self) -> int:
        return max(self.blocks)

    def block(self, number: int) -> BlockInfo | None:
        self.on_read(number)
        return self.blocks.get(number)


def chain(fork: str, numbers: range, holding: dict[int, str]) -> dict[int, BlockInfo]:
    return {n: BlockInfo(number=n, hash=f"0x{fork}{n}",
                         extrinsic_hashes=("0xtimestamp", *([holding[n]] if n in holding else [])))
            for n in numbers}


def test_a_rewound_tracker_finds_the_extrinsic_on_the_new_chain() -> None:
    best = Chain(chain("a", range(1, 6), {4: "0xours"}))
    tracker = InclusionTracker(best)  # type: ignore[arg-type]
    assert tracker.scan(0) == 5
    assert tracker.lookup("0xours") == Location("0xa4", 4, 1)
    # the fork from block 3 on wins; ours is in its block 5 instead
    best.blocks.update(chain("b", range(3, 7), {5: "0xours"}))
    assert tracker.scan(0) == 6
    assert tracker.lookup("0xours") == Location("0xa4", 4, 1)  # nothing re-read without a rewind
    tracker.rewind(1)
    assert tracker.lookup("0xours") is None
    assert tracker.scan(0) == 6
    assert tracker.lookup("0xours") == Location("0xb5", 5, 1)


def test_a_scan_overtaken_by_a_rewind_records_nothing_more() -> None:
    best = Chain(chain("a", range(1, 6), {4: "0xours"}))
    tracker = InclusionTracker(best)  # type: ignore[arg-type]

    def reorg_while_reading(number: int) -> None:
        if number == 3 and best.blocks[3].hash == "0xa3":
            best.blocks.update(chain("b", range(2, 6), {2: "0xours"}))
            tracker.rewind(1)  # what another thread does on seeing the retraction

    best.on_read = reorg_while_reading
    assert tracker.scan(0) < best.head_number()  # it stopped: not everything up to the head
    assert tracker.lookup("0xours") is None  # and did not record the old fork's block 4
    assert tracker.scan(0) == 5
    assert tracker.lookup("0xours") == Location("0xb2", 2, 1)
