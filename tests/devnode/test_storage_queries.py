"""query / query_map on every storage item of the metadata, at the head and at past blocks."""

from __future__ import annotations

import pytest

from tests.devnode.helpers import UNIT, Client, event

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def populated(client: Client) -> dict[str, object]:
    """A task with one accepted and one pending submission, so every map has entries."""
    creator, w1, w2 = (client.fund(100 * UNIT) for _ in range(3))
    r = client.create_task(creator, max_assignments=3)
    task_id = event(r, "DecentralML", "TaskCreated")["task_id"]
    sids = []
    for w in (w1, w2):
        r = client.submit(w, "DecentralML", "accept_task", {"task_id": task_id})
        sids.append(event(r, "DecentralML", "TaskAccepted")["submission_id"])
        client.submit(w, "DecentralML", "send_task_result", {
            "submission_id": sids[-1], "result": b"{}", "result_cid": None,
            "result_storage": None})
    return {"task_id": task_id, "sids": sids, "creator": creator, "workers": (w1, w2)}


def test_every_storage_item_can_be_queried_and_mapped(client: Client,
                                                      populated: dict[str, object]) -> None:
    si = client.si
    seen = 0
    for item in si.get_metadata_storage_functions():
        module, name = item["module_name"], item["storage_name"]
        if item["type_class"] == "Plain":
            assert si.query(module, name) is not None, f"{module}.{name}"
            seen += 1
            continue
        n_keys = len(item["type_keys"])
        entries = list(si.query_map(module, name, page_size=3))
        for key, value in entries[:5]:
            keys = [getattr(k, "value", k) for k in key] if n_keys == 2 else [key.value]
            assert si.query(module, name, keys).value == value.value, f"{module}.{name}"
        if n_keys == 2 and entries:  # a double map, listed under its first key too
            first = getattr(entries[0][0][0], "value", entries[0][0][0])
            assert list(si.query_map(module, name, [first]))
        seen += 1
    assert seen >= 20


def test_decentralml_maps_and_double_maps(client: Client, populated: dict[str, object]) -> None:
    si = client.si
    task_id = populated["task_id"]
    sids = populated["sids"]
    w1, w2 = populated["workers"]  # type: ignore[misc]
    # map entries come in storage-key (hash) order, not id order
    assert sorted(k.value for k, _ in si.query_map("DecentralML", "TaskSubmissions",
                                                    [task_id])) == sorted(sids)
    workers = {k.value: v.value for k, v in si.query_map("DecentralML", "TaskWorkers",
                                                         [task_id])}
    assert workers == {w1.ss58_address: sids[0], w2.ss58_address: sids[1]}
    assert [k.value for k, _ in si.query_map("DecentralML", "WorkerSubmissions",
                                             [w1.ss58_address])] == [sids[0]]
    tasks = {k.value: v.value for k, v in si.query_map("DecentralML", "Tasks", page_size=2)}
    assert tasks[task_id]["max_assignments"] == 3
    assert task_id in {k.value for k, _ in si.query_map("DecentralML", "OpenTasks")}
    subs = {k.value: v.value for k, v in si.query_map("DecentralML", "Submissions")}
    assert subs[sids[1]]["status"] == "PendingValidation"
    assert si.query("DecentralML", "Tasks", [4_000_000]).value is None
    assert si.query("DecentralML", "OpenTasks", [4_000_000]).value is None


def test_query_at_a_past_block(client: Client) -> None:
    who = client.fund(5 * UNIT)
    past = client.si.get_chain_head()
    r = client.submit(who, "System", "remark", {"remark": b""})
    now = client.free(who)
    old = client.si.query("System", "Account", [who.ss58_address], block_hash=past).value
    assert old["data"]["free"] == now + r.total_fee_amount
    assert old["nonce"] == 0
    past_events = client.si.get_events(block_hash=past)
    assert [e.value["event_id"] for e in past_events][-1] == "ExtrinsicSuccess"
    old_map = {k.value for k, _ in client.si.query_map("System", "Account", block_hash=past)}
    assert who.ss58_address in old_map


def test_query_paging_over_many_entries(client: Client) -> None:
    accounts = list(client.si.query_map("System", "Account", page_size=4))
    keys = [k.value for k, _ in accounts]
    assert len(keys) == len(set(keys)) >= 8
    assert sum(v.value["data"]["free"] for _, v in accounts) == client.total_issuance()
