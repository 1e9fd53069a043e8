"""The dashboard server without a browser: it answers only its own host, serves the snapshot,
has no route that writes, and streams chain events."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from decentralml.chain.client import Client
from decentralml.dashboard.server import Dashboard, DashboardServer


@pytest.fixture
def served(fresh_devnode, tmp_path: Path) -> Iterator[tuple[DashboardServer, Client]]:
    client = Client(fresh_devnode.url)
    server = DashboardServer(Dashboard(client, jobs_root=tmp_path / "jobs"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, client
    server.shutdown()
    thread.join(10)
    server.close()
    client.close()


def _request(server: DashboardServer, method: str, path: str, host: str | None = None
             ) -> http.client.HTTPResponse:
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers={"Host": host or f"127.0.0.1:{port}"})
    return conn.getresponse()


def test_only_its_own_host_and_only_reads(served) -> None:
    server, _client = served
    assert server.url.startswith("http://127.0.0.1:")
    assert _request(server, "GET", "/", host="evil.example:80").status == 403
    page = _request(server, "GET", "/")
    assert page.status == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert b"Federated jobs" in page.read()
    snap = json.loads(_request(server, "GET", "/api/snapshot").read())
    assert snap["open_tasks"] == [] and snap["symbol"] == "UNIT"
    for method in ("POST", "PUT", "DELETE"):
        assert _request(server, method, "/api/snapshot").status == 501  # no route writes
    assert _request(server, "GET", "/static/../server.py").status == 404


def test_chain_events_reach_the_stream(served) -> None:
    server, client = served
    stream = _request(server, "GET", "/events")
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.readline() == b": connected\n"
    alice = client.with_signer("//Alice")
    created = alice.create_task("DataAnnotator", "cat or dog?", reward=10**12, max_assignments=1,
                                assets_cid="bafkqaaa")
    lines = []
    while not lines or not lines[-1].startswith(b"data:"):
        line = stream.readline()
        if line.strip() and not line.startswith(b":"):
            lines.append(line.strip())
    assert lines[0] == b"event: chain"
    event = json.loads(lines[1].removeprefix(b"data: "))
    assert event["kind"] == "TaskCreated" and event["task_id"] == created.task_id
    snap = json.loads(_request(server, "GET", "/api/snapshot").read())
    assert [t["task_id"] for t in snap["open_tasks"]] == [created.task_id]


def test_contribution_pay_per_contributor(served) -> None:
    """A task paid by contribution: each contributor's score and pay as the chain settled them
    (the ResultAccepted events), and earnings counting those payouts, not the flat reward."""
    from decentralml.chain.events import ResultAcceptedEvent
    from decentralml.chain.types import PayoutMode, TaskTerms

    server, client = served
    alice = client.with_signer("//Alice")
    reward = 10**12
    task = alice.create_task("ModelContributor", "digits, paid by contribution", reward=reward,
                             max_assignments=3, assets_cid="bafkqaaa",
                             validation_strategy="CustomAccept",
                             terms=TaskTerms(payout=PayoutMode.ByContribution, floor=reward // 10,
                                             holdout_commitment=bytes(32),
                                             scoring_commitment=bytes(32))).task_id
    subs = {}
    for who in ("//Bob", "//Charlie", "//Dave"):
        worker = client.with_signer(who)
        subs[who] = worker.accept_task(task).submission_id
        if who != "//Dave":  # Dave holds his slot without a result
            worker.send_task_result(subs[who], {"num_examples": 10})
    settled = alice.settle_contributions(task, {subs["//Bob"]: 750_000,
                                                subs["//Charlie"]: 250_000})
    paid = {e.submission_id: e.reward for e in settled.market(ResultAcceptedEvent)}
    snap = json.loads(_request(server, "GET", "/api/snapshot").read())
    (shown,) = snap["contributions"]
    assert shown["task_id"] == task and shown["floor"] == reward // 10
    rows = {r["name"]: r for r in shown["rows"]}
    assert set(rows) == {"Bob", "Charlie"}
    assert (rows["Bob"]["score"], rows["Charlie"]["score"]) == (750_000, 250_000)
    assert {r["submission_id"]: r["payout"] for r in rows.values()} == paid
    assert rows["Bob"]["payout"] > 2 * rows["Charlie"]["payout"]
    earned = {e["name"]: e["earned"] for e in snap["earnings"]}
    assert earned["Bob"] == paid[subs["//Bob"]] and earned["Charlie"] == paid[subs["//Charlie"]]
    page = _request(server, "GET", "/").read().decode()
    assert "Pay by contribution" in page and "75.00%" in page and "25.00%" in page
