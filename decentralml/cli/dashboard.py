"""``decentralml dashboard``: serve the read-only marketplace page on 127.0.0.1 (docs/dashboard.md).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from decentralml.cli.app import App, pass_app


@click.command("dashboard")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the federated jobs live [default: $DECENTRALML_HOME/jobs].")
@pass_app
def dashboard(app: App, port: int, workdir: Path | None) -> None:
    """Serve a live, read-only page of tasks, submissions, earnings and jobs until Ctrl-C."""
    from decentralml.dashboard.server import Dashboard, DashboardServer
    from decentralml.roles.job_store import jobs_root

    client = app.client(need_account=False)
    dash = Dashboard(client, jobs_root=jobs_root(app.settings.home, workdir),
                     home=app.settings.home)
    server = DashboardServer(dash, port)
    app.emit({"url": server.url}, lambda c: c.print(f"dashboard on {server.url} (read-only; "
                                                      "Ctrl-C stops it)"))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: never call it on the serving thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.close()
