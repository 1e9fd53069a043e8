"""Typed marketplace events and a watcher that follows them block by block.

Events are the chain's own account of what happened, so roles react to them rather than polling
storage: a reviewer waits for ``ResultSubmitted``, a worker for ``ResultAccepted``. The watcher
reads ``System.Events`` of each new best block through the shared connection (polling, because a
subscription would monopolize the single, non-thread-safe websocket) and yields only the
``DecentralML`` events that match its filter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from decentralml.chain.connection import Connection
from decentralml.chain.types import PALLET, TaskType, _text, _variant
from decentralml.errors import ChainTimeout, DecentralMLError


class ChainEvent(BaseModel):
    """Any runtime event, as decoded from the metadata (pallet, name, attributes)."""

    model_config = ConfigDict(frozen=True)

    pallet: str
    name: str
    attributes: Any = None
    extrinsic_index: int | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ChainEvent:
        return cls(pallet=str(record["module_id"]), name=str(record["event_id"]),
                   attributes=record.get("attributes"), extrinsic_index=record.get("extrinsic_idx"))


class MarketEvent(BaseModel):
    """A ``DecentralML`` event with the block it happened in. Subclasses add the event's fields:
    task events have a ``task_id``, peer-job events (protocol 2) a ``job_id``."""

    model_config = ConfigDict(frozen=True)

    kind: ClassVar[str] = ""
    block_number: int
    block_hash: str
    extrinsic_index: int | None = None
    task_id: int | None = None
    job_id: int | None = None

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts this event concerns (for the ``account`` filter)."""
        return ()


class TaskEvent(MarketEvent):
    """An event about a task."""

    task_id: int


class PeerJobEvent(MarketEvent):
    """An event about a peer job (protocol 2)."""

    job_id: int


class TaskCreatedEvent(TaskEvent):
    kind: ClassVar[str] = "TaskCreated"
    creator: str
    task_type: TaskType
    reward: int
    max_assignments: int
    escrow: int
    expiration_block: int

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.creator,)


class _WorkerEvent(TaskEvent):
    submission_id: int
    worker: str

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.worker,)


class TaskAcceptedEvent(_WorkerEvent):
    kind: ClassVar[str] = "TaskAccepted"


class ResultSubmittedEvent(_WorkerEvent):
    kind: ClassVar[str] = "ResultSubmitted"


class ResultAcceptedEvent(_WorkerEvent):
    kind: ClassVar[str] = "ResultAccepted"
    reward: int


class ResultRejectedEvent(_WorkerEvent):
    kind: ClassVar[str] = "ResultRejected"


class TaskClosedEvent(TaskEvent):
    kind: ClassVar[str] = "TaskClosed"
    refund: int
    abandoned: int


class SubmissionAbandonedEvent(_WorkerEvent):
    kind: ClassVar[str] = "SubmissionAbandoned"


class ShardAssignedEvent(TaskEvent):
    """A submission of a task with shards got its data shard (right after ``TaskAccepted``)."""

    kind: ClassVar[str] = "ShardAssigned"
    submission_id: int
    shard: int


class ContributionsSettledEvent(TaskEvent):
    """``settle_contributions`` paid ``results`` results ``paid`` out of ``pool``; ``dust``
    stayed in the escrow (after one ``ResultAccepted`` per result)."""

    kind: ClassVar[str] = "ContributionsSettled"
    results: int
    pool: int
    paid: int
    dust: int


class PeerJobCreatedEvent(PeerJobEvent):
    kind: ClassVar[str] = "PeerJobCreated"
    creator: str
    rounds: int
    update_blocks: int
    aggregate_blocks: int
    max_peers: int

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.creator,)


class _PeerEvent(PeerJobEvent):
    peer: str
    round: int

    @property
    def accounts(self) -> tuple[str, ...]:
        return (self.peer,)


class PeerJoinedEvent(_PeerEvent):
    kind: ClassVar[str] = "PeerJoined"


class PeerLeftEvent(_PeerEvent):
    kind: ClassVar[str] = "PeerLeft"


class UpdatePostedEvent(_PeerEvent):
    kind: ClassVar[str] = "UpdatePosted"


class AggregatePostedEvent(_PeerEvent):
    kind: ClassVar[str] = "AggregatePosted"


class RoundAgreedEvent(PeerJobEvent):
    """A majority of ``round``'s participants posted ``model_cid``: the round's agreed model."""

    kind: ClassVar[str] = "RoundAgreed"
    round: int
    model_cid: str


EVENT_TYPES: dict[str, type[MarketEvent]] = {
    cls.kind: cls for cls in (TaskCreatedEvent, TaskAcceptedEvent, ResultSubmittedEvent,
                              ResultAcceptedEvent, ResultRejectedEvent, TaskClosedEvent,
                              SubmissionAbandonedEvent, ShardAssignedEvent,
                              ContributionsSettledEvent, PeerJobCreatedEvent, PeerJoinedEvent,
                              PeerLeftEvent, UpdatePostedEvent, AggregatePostedEvent,
                              RoundAgreedEvent)
}


def parse_market_event(record: dict[str, Any], block_number: int, block_hash: str
                       ) -> MarketEvent | None:
    """The typed event for a decoded event record, or None if it is not a DecentralML event."""
    if record.get("module_id") != PALLET:
        return None
    cls = EVENT_TYPES.get(str(record.get("event_id")))
    if cls is None:
        return None
    attrs = dict(record.get("attributes") or {})
    if "task_type" in attrs:
        attrs["task_type"] = TaskType(_variant(attrs["task_type"]))
    for key in ("creator", "worker", "peer"):
        if key in attrs:
            attrs[key] = str(attrs[key])
    if "model_cid" in attrs:
        attrs["model_cid"] = _text(attrs["model_cid"])
    return cls(block_number=block_number, block_hash=block_hash,
               extrinsic_index=record.get("extrinsic_idx"), **attrs)


class EventFilter(BaseModel):
    """Which events to keep: by kind (name or class), task id and involved account."""

    model_config = ConfigDict(frozen=True)

    kinds: frozenset[str] | None = None
    task_id: int | None = None
    account: str | None = None
    job_id: int | None = None

    @classmethod
    def build(cls, kinds: str | type[MarketEvent] | list[str | type[MarketEvent]] | None = None,
              task_id: int | None = None, account: str | None = None,
              job_id: int | None = None) -> EventFilter:
        names: frozenset[str] | None = None
        if kinds is not None:
            items = kinds if isinstance(kinds, list | tuple | set | frozenset) else [kinds]
            resolved = set()
            for item in items:
                name = item if isinstance(item, str) else item.kind
                if name not in EVENT_TYPES:
                    raise DecentralMLError(f"unknown event kind {name!r}; "
                                           f"known: {sorted(EVENT_TYPES)}")
                resolved.add(name)
            names = frozenset(resolved)
        return cls(kinds=names, task_id=task_id, account=account, job_id=job_id)

    def matches(self, event: MarketEvent) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.task_id is not None and event.task_id != self.task_id:
            return False
        if self.job_id is not None and event.job_id != self.job_id:
            return False
        return self.account is None or self.account in event.accounts


def block_events(conn: Connection, number: int) -> tuple[str, list[dict[str, Any]]] | None:
    """Block ``number``'s hash and decoded event records, or None if it is not produced yet."""
    block_hash = conn.block_hash(number)
    if block_hash is None:
        return None
    return block_hash, conn.events(block_hash)


def follow_blocks(conn: Connection, *, from_block: int | None, timeout: float | None,
                  poll_interval: float, stop: threading.Event | None = None
                  ) -> Iterator[tuple[int, str, list[dict[str, Any]]]]:
    """Yield ``(number, hash, event records)`` for every best block from ``from_block`` (default:
    the next one) until ``timeout`` seconds have passed (None: forever) or ``stop`` is set."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cursor = conn.head_number() + 1 if from_block is None else from_block
    while stop is None or not stop.is_set():
        head = conn.head_number()
        while cursor <= head:
            found = block_events(conn, cursor)
            if found is None:
                break
            yield cursor, found[0], found[1]
            cursor += 1
        if deadline is not None and time.monotonic() >= deadline:
            return
        wait = poll_interval if deadline is None else min(poll_interval,
                                                          max(0.0, deadline - time.monotonic()))
        if stop is not None:
            stop.wait(wait)
        else:
            time.sleep(wait)


def watch_events(conn: Connection, flt: EventFilter, *, from_block: int | None,
                 timeout: float | None, poll_interval: float,
                 stop: threading.Event | None = None) -> Iterator[MarketEvent]:
    """Typed, filtered marketplace events from the blocks :func:`follow_blocks` yields."""
    for number, block_hash, records in follow_blocks(conn, from_block=from_block, timeout=timeout,
                                                     poll_interval=poll_interval, stop=stop):
        for record in records:
            event = parse_market_event(record, number, block_hash)
            if event is not None and flt.matches(event):
                yield event


class EventSubscription:
    """A background thread delivering events to a callback until :meth:`stop`.

    If the callback (or the connection) raises, delivery stops and the exception is re-raised by
    :meth:`stop` / :meth:`join`, so a failure is never silently swallowed.
    """

    def __init__(self, conn: Connection, flt: EventFilter, callback: Callable[[MarketEvent], Any],
                 *, from_block: int | None, poll_interval: float) -> None:
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.delivered = 0
        start = conn.head_number() + 1 if from_block is None else from_block

        def run() -> None:
            try:
                for event in watch_events(conn, flt, from_block=start, timeout=None,
                                          poll_interval=poll_interval, stop=self._stop):
                    callback(event)
                    self.delivered += 1
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, name="decentralml-events", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end; re-raise what stopped it, if anything."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise ChainTimeout(f"event subscription still running after {timeout}s")
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.join(timeout)

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
