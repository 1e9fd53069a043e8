"""Escrow conservation: random marketplace call sequences by several accounts.

Whatever succeeds or fails, total issuance only drops by the fees paid, the sum of all free
balances is the total issuance, and every task's escrow holds exactly its unpaid rewards plus what
third parties paid into it (refunded to the creator by ``close_task``; see docs/protocol.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from substrateinterface import Keypair

from decentralml.chain.types import TaskInfo
from tests.devnode.helpers import ED, UNIT, Client, escrow_address

pytestmark = pytest.mark.timeout(600)

N_ACCOUNTS = 4

ops = st.one_of(
    st.tuples(st.just("create"), st.integers(0, N_ACCOUNTS - 1),
              st.sampled_from([ED, UNIT, 3 * UNIT, 2_000 * UNIT]), st.integers(1, 3),
              st.sampled_from(["AutoAccept", "ManualAccept"])),
    st.tuples(st.just("accept"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7)),
    st.tuples(st.just("send"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7)),
    st.tuples(st.just("validate"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7),
              st.booleans()),
    st.tuples(st.just("close"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7)),
    st.tuples(st.just("abandon"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7)),
    st.tuples(st.just("deposit"), st.integers(0, N_ACCOUNTS - 1), st.integers(0, 7),
              st.sampled_from([ED, 2 * UNIT])),
)


@pytest.fixture(scope="module")
def accounts(client: Client) -> list[Keypair]:
    return [client.fund(1_000 * UNIT) for _ in range(N_ACCOUNTS)]


def _pick(items: list[int], i: int) -> int:
    return items[-1 - (i % len(items))] if items else 4_000_000 + i


def _check_escrows(client: Client, extra: dict[int, int]) -> None:
    for key, value in client.si.query_map("DecentralML", "Tasks", page_size=100):
        task = TaskInfo.from_chain(key.value, value.value)
        held = client.free(escrow_address(client.si, task.task_id))
        assert held == task.unpaid_escrow + extra.get(task.task_id, 0), task


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=st.lists(ops, min_size=1, max_size=10))
def test_escrow_conservation(client: Client, accounts: list[Keypair],
                             program: list[tuple[Any, ...]]) -> None:
    si = client.si
    issuance = client.total_issuance()
    fees = 0
    # third-party deposits per task: refunded (reset) by close_task, kept when sent after it
    # (the module's devnode carries tasks from earlier examples: start from what they hold)
    extra: dict[int, int] = {}
    for key, value in si.query_map("DecentralML", "Tasks", page_size=100):
        task = TaskInfo.from_chain(key.value, value.value)
        extra[task.task_id] = client.free(escrow_address(si, task.task_id)) - task.unpaid_escrow
        assert extra[task.task_id] >= 0, task
    task_ids: list[int] = [k.value for k, _ in si.query_map("DecentralML", "Tasks")][-8:]
    sub_ids: list[int] = [k.value for k, _ in si.query_map("DecentralML", "Submissions")][-8:]
    for op in program:
        kind, who = op[0], accounts[op[1]]
        if kind == "create":
            r = client.create_task(who, reward=op[2], max_assignments=op[3],
                                   validation_strategy=op[4])
        elif kind == "accept":
            r = client.submit(who, "DecentralML", "accept_task",
                              {"task_id": _pick(task_ids, op[2])})
        elif kind == "send":
            r = client.submit(who, "DecentralML", "send_task_result", {
                "submission_id": _pick(sub_ids, op[2]), "result": b'{"ok":1}',
                "result_cid": None, "result_storage": None})
        elif kind == "validate":
            r = client.submit(who, "DecentralML", "validate_task_result",
                              {"submission_id": _pick(sub_ids, op[2]), "accept": op[3]})
        elif kind == "close":
            r = client.submit(who, "DecentralML", "close_task",
                              {"task_id": _pick(task_ids, op[2])})
        elif kind == "abandon":
            r = client.submit(who, "DecentralML", "abandon_task",
                              {"submission_id": _pick(sub_ids, op[2])})
        else:
            target = _pick(task_ids, op[2])
            r = client.submit(who, "Balances", "transfer_allow_death",
                              {"dest": escrow_address(si, target), "value": op[3]})
            if r.is_success:
                extra[target] = extra.get(target, 0) + op[3]
        fees += r.total_fee_amount
        for e in r.triggered_events:
            if e.value["event_id"] == "TaskCreated":
                task_ids.append(e.value["attributes"]["task_id"])
            if e.value["event_id"] == "TaskAccepted":
                sub_ids.append(e.value["attributes"]["submission_id"])
            if e.value["event_id"] == "TaskClosed":
                extra[e.value["attributes"]["task_id"]] = 0
    assert client.total_issuance() == issuance - fees
    total = sum(v.value["data"]["free"] for _, v in si.query_map("System", "Account",
                                                                  page_size=500))
    assert total == client.total_issuance()
    _check_escrows(client, extra)
