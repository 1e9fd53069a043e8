"""The dashboard's web server: server-rendered pages, a JSON snapshot and server-sent events.

Why this stack: the standard library's ``ThreadingHTTPServer`` (a local, single-user page needs no
framework), Jinja2 templates with autoescaping (chain data is untrusted text: questions, results)
and one small vanilla JS file that listens to ``/events`` and swaps in a freshly rendered
fragment. Charts are SVG drawn by the template. Nothing to build or download, and everything ships
as package data.

It binds 127.0.0.1 only, answers only requests addressed to that host (so a web page elsewhere
cannot reach it through DNS rebinding), sends a strict Content-Security-Policy, and reads: it has
no route that writes, and it never signs.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decentralml.dashboard.snapshot import Snapshot, chart_svg, known_names, take_snapshot

if TYPE_CHECKING:
    from decentralml.chain.client import Client
    from decentralml.chain.events import EventSubscription, MarketEvent

HOST = "127.0.0.1"
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
#: seconds between keep-alive comments on an idle event stream
KEEPALIVE = 15.0
#: events kept for a slow browser before the oldest are dropped (it re-renders anyway)
QUEUE_LIMIT = 256


class Dashboard:
    """The state behind the pages: a client, a cached snapshot and the event fan-out."""

    def __init__(self, client: Client, *, jobs_root: Path | None = None,
                 home: Path | None = None) -> None:
        import jinja2

        self.client = client
        self.jobs_root = jobs_root
        self.names = known_names(client, home)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._listeners: list[queue.Queue[str]] = []
        self._subscription: EventSubscription | None = None
        self.events_seen = 0
        #: set when the server shuts down, so open event streams end
        self.closing = threading.Event()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("decentralml.dashboard", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.globals["chart_svg"] = chart_svg

    # --- data ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None:
                self._snapshot = take_snapshot(self.client, jobs_root=self.jobs_root,
                                               names=self.names)
            return self._snapshot

    def start_events(self) -> None:
        """Follow the chain's marketplace events from the next block on."""
        self._subscription = self.client.on_event(self._on_event)

    def stop_events(self) -> None:
        if self._subscription is not None:
            self._subscription.stop()
            self._subscription = None

    def _on_event(self, event: MarketEvent) -> None:
        payload = json.dumps({"kind": event.kind, **event.model_dump(mode="json")})
        with self._lock:
            self._snapshot = None  # the next page view reads the chain again
            self.events_seen += 1
            listeners = list(self._listeners)
        for q in listeners:
            with contextlib.suppress(queue.Full):
                q.put_nowait(payload)

    def listen(self) -> queue.Queue[str]:
        q: queue.Queue[str] = queue.Queue(QUEUE_LIMIT)
        with self._lock:
            self._listeners.append(q)
        return q

    def unlisten(self, q: queue.Queue[str]) -> None:
        with self._lock:
            if q in self._listeners:
                self._listeners.remove(q)

    # --- pages --------------------------------------------------------------------------------

    def render(self, template: str) -> str:
        snap = self.snapshot()
        return self.env.get_template(template).render(s=snap, events_seen=self.events_seen)


def _handler(dash: Dashboard, port_box: list[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "decentralml-dashboard"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the CLI prints the URL, not every request

        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").lower()
            return host in (f"{HOST}:{port_box[0]}", f"localhost:{port_box[0]}")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy",
                             "default-src 'self'; style-src 'self'; script-src 'self'; "
                             "img-src 'self' data:; frame-ancestors 'none'")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if not self._host_ok():
                self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain")
                return
            path = self.path.split("?", 1)[0]
            try:
                if path == "/":
                    self._send(200, dash.render("index.html").encode(), "text/html; charset=utf-8")
                elif path == "/fragment":
                    self._send(200, dash.render("content.html").encode(),
                               "text/html; charset=utf-8")
                elif path == "/api/snapshot":
                    self._send(200, dash.snapshot().model_dump_json().encode(),
                               "application/json")
                elif path == "/events":
                    self._events()
                elif path.startswith("/static/") and path[8:] in _STATIC:
                    body = (resources.files("decentralml.dashboard") / "static" / path[8:]
                            ).read_bytes()
                    self._send(200, body, _STATIC[path[8:]])
                else:
                    self._send(404, b"not found\n", "text/plain")
            except (BrokenPipeError, ConnectionResetError):
                return

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            q = dash.listen()
            try:
                self.wfile.write(b": connected\n\n")
                self.wfile.flush()
                while not dash.closing.is_set():
                    try:
                        payload = q.get(timeout=KEEPALIVE)
                    except queue.Empty:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        self.wfile.write(f"event: chain\ndata: {payload}\n\n".encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                dash.unlisten(q)
                self.close_connection = True

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that goes away mid-answer (a reload, a closed tab, the event stream left)
        is not an error of ours: nothing to print. Anything else keeps the standard report."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class DashboardServer:
    """The HTTP server on 127.0.0.1 (``port`` 0 picks a free one); ``url`` once started."""

    def __init__(self, dash: Dashboard, port: int = 8765) -> None:
        self.dash = dash
        self._port_box = [port]
        self.httpd = _Server((HOST, port), _handler(dash, self._port_box))
        self._port_box[0] = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._port_box[0]}/"

    def serve_forever(self) -> None:
        self.dash.start_events()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.dash.stop_events()

    def shutdown(self) -> None:
        """Stop serving (from another thread or a signal handler's thread)."""
        self.dash.closing.set()
        self.httpd.shutdown()

    def close(self) -> None:
        self.httpd.server_close()
