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
