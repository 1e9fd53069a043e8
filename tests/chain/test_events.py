"""Watching typed marketplace events, callbacks and wait helpers against the devnode."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from decentralml.chain.client import Client
from decentralml.chain.events import (
    EventFilter,
    MarketEvent,
    ResultAcceptedEvent,
    ResultSubmittedEvent,
    TaskAcceptedEvent,
    TaskClosedEvent,
    TaskCreatedEvent,
    parse_market_event,
)
from decentralml.chain.types import TaskType, ValidationStrategy
from decentralml.errors import ChainTimeout, DecentralMLError

REWARD = 10**10
CID = "bafkreiexample"


def test_watch_a_task_lifecycle(funded: Callable[..., Client]) -> None:
    creator, worker = funded(), funded()
    task = creator.create_task(TaskType.ModelEngineer, "q", REWARD, 2, CID,
                               validation_strategy=ValidationStrategy.AutoAccept)
    acc = worker.accept_task(task.task_id)
    sent = worker.send_task_result(acc.submission_id, "done")
    closed = creator.close_task(task.task_id)

    events: list[MarketEvent] = []
    for event in creator.watch(task_id=task.task_id, from_block=task.block_number, timeout=30):
        events.append(event)
        if isinstance(event, TaskClosedEvent):
            break
    assert [type(e) for e in events] == [TaskCreatedEvent, TaskAcceptedEvent,
                                         ResultSubmittedEvent, ResultAcceptedEvent,
                                         TaskClosedEvent]
    created = events[0]
    assert isinstance(created, TaskCreatedEvent)
    assert (created.creator, created.task_type, created.reward, created.escrow) == \
        (creator.address, TaskType.ModelEngineer, REWARD, 2 * REWARD)
    assert created.block_number == task.block_number and created.block_hash == task.block_hash
    paid = events[3]
    assert isinstance(paid, ResultAcceptedEvent)
    assert (paid.worker, paid.reward, paid.submission_id) == (worker.address, REWARD,
                                                              acc.submission_id)
    assert paid.block_number == sent.block_number
    last = events[4]
    assert isinstance(last, TaskClosedEvent) and (last.refund, last.abandoned) == (REWARD, 0)
    assert last.block_number == closed.block_number
    # the receipts carry the same typed events
    assert [type(e) for e in sent.market_events] == [ResultSubmittedEvent, ResultAcceptedEvent]

    # filters: by account and kind
    mine = list(creator.watch(account=worker.address, kinds=[TaskAcceptedEvent, "ResultAccepted"],
                              from_block=task.block_number, timeout=0))
    assert [type(e) for e in mine] == [TaskAcceptedEvent, ResultAcceptedEvent]


def test_callback_subscription_and_wait_helpers(funded: Callable[..., Client]) -> None:
    creator = funded()
    workers = [funded() for _ in range(3)]
    task = creator.create_task(TaskType.DataAnnotator, "q", REWARD, 3, CID)
    got: list[MarketEvent] = []
    three = threading.Event()

    def on_event(event: MarketEvent) -> None:
        got.append(event)
        if len(got) == 3:
            three.set()

    with creator.on_event(on_event, task_id=task.task_id, kinds="ResultSubmitted") as sub:
        box: dict[str, object] = {}
        waiter = threading.Thread(target=lambda: box.update(
            pending=creator.wait_for_pending(task.task_id, 3, timeout=60)))
        waiter.start()
        for w in workers:
            acc = w.accept_task(task.task_id)
            w.send_task_result(acc.submission_id, "answer")
        waiter.join(90)
        assert three.wait(60)
        assert sub.running
    assert len(box["pending"]) == 3  # type: ignore[arg-type]
    assert sorted(e.accounts[0] for e in got) == sorted(str(w.address) for w in workers)
    event = creator.wait_for_event(ResultSubmittedEvent, task_id=task.task_id,
                                   from_block=task.block_number, timeout=10)
    assert event.task_id == task.task_id


def test_callback_error_is_reraised(funded: Callable[..., Client]) -> None:
    creator = funded()

    def explode(event: MarketEvent) -> None:
        raise ValueError("callback failed")

    sub = creator.on_event(explode)
    creator.create_task(TaskType.DataAnnotator, "q", REWARD, 1, CID)
    with pytest.raises(ValueError, match="callback failed"):
        sub.join(30)
    assert not sub.running


def test_waits_time_out(funded: Callable[..., Client]) -> None:
    creator = funded()
    task = creator.create_task(TaskType.DataAnnotator, "q", REWARD, 1, CID)
    with pytest.raises(ChainTimeout):
        creator.wait_for_pending(task.task_id, 1, timeout=0.3)
    with pytest.raises(ChainTimeout):
        creator.wait_for_event("TaskClosed", task_id=task.task_id, timeout=0.3)
    with pytest.raises(ChainTimeout):
        creator.wait_for(lambda c: False, timeout=0.2)
    assert list(creator.watch(task_id=task.task_id, timeout=0.2)) == []


def test_event_filter_and_parsing() -> None:
    record = {"module_id": "DecentralML", "event_id": "TaskCreated", "extrinsic_idx": 1,
              "attributes": {"task_id": 7, "creator": "5Grw", "task_type": "DataAnnotator",
                             "reward": 5, "max_assignments": 2, "escrow": 10,
                             "expiration_block": 99}}
    event = parse_market_event(record, 3, "0xab")
    assert isinstance(event, TaskCreatedEvent) and event.task_id == 7
    assert event.accounts == ("5Grw",)
    assert parse_market_event({"module_id": "Balances", "event_id": "Transfer"}, 1, "0x") is None
    assert EventFilter.build("TaskCreated", task_id=7).matches(event)
    assert not EventFilter.build(TaskClosedEvent).matches(event)
    assert not EventFilter.build(account="someone").matches(event)
    with pytest.raises(DecentralMLError, match="unknown event kind"):
        EventFilter.build("TaskExploded")
