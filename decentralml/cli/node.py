"""``decentralml node``: serve the real (Rust) dev runtime with Chopsticks until Ctrl-C.

``decentralml devnode`` runs the Python stand-in; this runs the FRAME runtime built by
``scripts/build_runtime.sh`` (``make chain`` builds it, then runs this command).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from decentralml.chain.runtime_node import DEFAULT_CHAIN_SPEC, DEFAULT_CHOPSTICKS, RuntimeNode


@click.command("node")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=9944, show_default=True, type=click.IntRange(0, 65535),
              help="Websocket JSON-RPC port (0 picks a free one).")
@click.option("--chain-spec", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_CHAIN_SPEC, show_default=True,
              help="Raw genesis chain spec of the runtime (with :code).")
@click.option("--chopsticks", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_CHOPSTICKS, show_default=True, help="Chopsticks' chopsticks.cjs.")
def node_command(host: str, port: int, chain_spec: Path, chopsticks: Path) -> None:
    """Run the DecentralML FRAME runtime as a local dev node (Chopsticks, a block per tx)."""
    node = RuntimeNode(chain_spec, host=host, port=port, chopsticks=chopsticks).start()
    try:
        click.echo(f"decentralml runtime node listening on {node.url} (Chopsticks, a block per "
                   f"transaction, chain spec {chain_spec})")
        click.echo("dev accounts //Alice //Bob //Charlie //Dave //Eve //Ferdie are endowed; "
                   "//Alice is the sudo key. Ctrl-C to stop.", err=False)
        stopped = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        while not stopped.wait(0.5):
            if not node.running:
                raise click.ClickException(f"Chopsticks exited: {node.log_tail()}")
    finally:
        node.stop()
    click.echo("runtime node stopped")


__all__ = ["node_command"]
