"""``decentralml devnode``: run the dev chain in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from decentralml.devnode.node import DevNode


@click.command("devnode")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=9944, show_default=True, type=click.IntRange(0, 65535),
              help="Websocket JSON-RPC port (0 picks a free one).")
@click.option("--base-path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the chain in DIR/chain.sqlite; a restart resumes at the same head.")
@click.option("--tmp", is_flag=True, help="Keep the chain in memory (the default).")
@click.option("--block-time", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Seal a block every SECONDS from a transaction pool "
              "(default: instant seal, one block per extrinsic).")
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def devnode_command(host: str, port: int, base_path: Path | None, tmp: bool,
                    block_time: float | None, verbose: bool) -> None:
    """Run a local development chain with the DecentralML runtime (like anvil or Chopsticks)."""
    if tmp and base_path is not None:
        raise click.UsageError("--tmp and --base-path are mutually exclusive")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = DevNode(host=host, port=port, base_path=base_path, block_time=block_time)
    node.start()
    chain = node.chain
    head = "?" if chain is None else f"#{chain.best.number} 0x{chain.best.hash.hex()}"
    where = "in memory" if base_path is None else str(base_path)
    mode = "instant seal" if block_time is None else f"a block every {block_time:g}s"
    click.echo(f"decentralml devnode listening on {node.url} ({mode}, chain {where}, "
               f"head {head})")
    click.echo("dev accounts //Alice //Bob //Charlie //Dave //Eve //Ferdie hold 1,000,000 UNIT "
               "each; //Alice is the sudo key. Ctrl-C to stop.")
    stopped = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopped.wait(0.5):
        pass
    node.stop()
    click.echo("devnode stopped")


__all__ = ["devnode_command"]
