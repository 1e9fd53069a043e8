"""The dashboard shows a peer job's agreement per round: participants, votes, the agreed model
and who voted for something else, read from the chain. The peers here post their CIDs with the
client directly (the chain stores CIDs, it never fetches them), on a devnode sealing on demand
whose clock the test moves with ``dev_newBlock``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator

import pytest

from decentralml.chain.client import Client
from decentralml.dashboard.server import Dashboard, DashboardServer
from decentralml.devnode import DevNode
from tests.dashboard.test_server import _request


def _new_blocks(url: str, count: int) -> None:
    from websockets.sync.client import connect

    with connect(url) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "dev_newBlock",
                            "params": [{"count": count}]}))
        assert "result" in json.loads(ws.recv(timeout=60))


@pytest.fixture
def voted(fresh_devnode: DevNode) -> Iterator[tuple[Client, int, dict[str, str]]]:
    """Peer job 0, round 0 over: Bob and Charlie agreed on one CID, Dave voted for another."""
    client = Client(fresh_devnode.url)
    peers = {name: client.with_signer(f"//{name}") for name in ("Bob", "Charlie", "Dave")}
    job = client.with_signer("//Alice").create_peer_job(
        assets_cid="bafkqaaa", rounds=2, update_blocks=10, aggregate_blocks=10, max_peers=4)
    start = client.peer_job(job.job_id).start_block
    for name, peer in peers.items():
        peer.join_peer_job(job.job_id)
        peer.post_update(job.job_id, 0, f"bafkupdate{name.lower()}")
    _new_blocks(fresh_devnode.url, start + 10 - client.block_number())
    for name, peer in peers.items():
        peer.post_aggregate(job.job_id, 0, "bafkliar" if name == "Dave" else "bafkagreed")
    _new_blocks(fresh_devnode.url, start + 20 - client.block_number())
    yield client, job.job_id, {n: p.address or "" for n, p in peers.items()}
    client.close()


def test_a_peer_jobs_agreement_per_round(voted: tuple[Client, int, dict[str, str]]) -> None:
    client, job_id, address = voted
    server = DashboardServer(Dashboard(client), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        snap = json.loads(_request(server, "GET", "/api/snapshot").read())
        page = _request(server, "GET", "/fragment").read().decode()
    finally:
        server.shutdown()
        thread.join(10)
        server.close()
    (job,) = snap["peer_jobs"]
    assert job["job_id"] == job_id and job["current_round"] == 1 and job["phase"] == "update"
    round0, round1 = job["history"]
    assert round0["phase"] == "over" and round0["agreed_cid"] == "bafkagreed"
    assert round0["votes"] == {"bafkagreed": 2, "bafkliar": 1}
    assert round0["minority"] == [address["Dave"]] and round0["silent"] == []
    assert round1["updates"] == {} and round1["agreed_cid"] is None
    row = re.search(r'<tr data-round="0".*?</tr>', page, flags=re.S)
    assert row, page
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), flags=re.S)
    assert cells[2].count("<span") == 3 and cells[3] == "3/3" and cells[4] == "bafkagreed"
    assert ">Dave</span>" in cells[5] and cells[6] == "-"
