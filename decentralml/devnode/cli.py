"""``decentralml devnode``: run the dev chain in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from decentralml.devnode.node import DevNode
from decentralml.devnode.server import MIB, RpcLimits

_DEFAULTS = RpcLimits()
_MIB = click.FloatRange(min=0, min_open=True)
#: RpcLimits field -> the flag that sets it (for error messages).
_FLAGS = {
    "max_subscriptions_per_connection": "--rpc-max-subscriptions-per-connection",
    "max_buffer_per_connection": "--rpc-max-buffer-per-connection",
    "max_connections": "--rpc-max-connections", "max_request_bytes": "--rpc-max-request-size",
    "max_response_bytes": "--rpc-max-response-size", "max_buffer_total": "--rpc-max-buffer-total",
    "max_inbound_total": "--rpc-max-inbound-total", "handshake_timeout": "--rpc-handshake-timeout",
}


def _flag_names(message: str) -> str:
    message = message.replace("RpcLimits.", "")
    for name, flag in _FLAGS.items():
        message = message.replace(name, flag)
    return message


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
@click.option("--rpc-max-connections", type=click.IntRange(min=1),
              default=_DEFAULTS.max_connections, show_default=True,
              help="Connections served at once; more are closed at once.")
@click.option("--rpc-max-subscriptions-per-connection", type=click.IntRange(min=1),
              default=_DEFAULTS.max_subscriptions_per_connection, show_default=True,
              help="Subscriptions one connection may hold.")
@click.option("--rpc-max-request-size", type=_MIB, metavar="MIB",
              default=_DEFAULTS.max_request_bytes / MIB, show_default=True,
              help="Largest request frame, in MiB.")
@click.option("--rpc-max-response-size", type=_MIB, metavar="MIB",
              default=_DEFAULTS.max_response_bytes / MIB, show_default=True,
              help="Largest response (or batch of responses), in MiB.")
@click.option("--rpc-max-buffer-per-connection", type=_MIB, metavar="MIB",
              default=_DEFAULTS.max_buffer_per_connection / MIB, show_default=True,
              help="Unread bytes queued for one client before it is disconnected, in MiB.")
@click.option("--rpc-max-buffer-total", type=_MIB, metavar="MIB",
              default=_DEFAULTS.max_buffer_total / MIB, show_default=True,
              help="Unread bytes queued for all clients before the slowest is disconnected, "
              "in MiB.")
@click.option("--rpc-max-inbound-total", type=_MIB, metavar="MIB",
              default=_DEFAULTS.max_inbound_total / MIB, show_default=True,
              help="Bytes of partly received requests over all clients, in MiB.")
@click.option("--rpc-handshake-timeout", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", default=_DEFAULTS.handshake_timeout, show_default=True,
              help="Seconds a new connection has to complete the websocket handshake.")
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def devnode_command(host: str, port: int, base_path: Path | None, tmp: bool,
                    block_time: float | None, rpc_max_connections: int,
                    rpc_max_subscriptions_per_connection: int, rpc_max_request_size: float,
                    rpc_max_response_size: float, rpc_max_buffer_per_connection: float,
                    rpc_max_buffer_total: float, rpc_max_inbound_total: float,
                    rpc_handshake_timeout: float, verbose: bool) -> None:
    """Run a local development chain with the DecentralML runtime (like anvil or Chopsticks)."""
    if tmp and base_path is not None:
        raise click.UsageError("--tmp and --base-path are mutually exclusive")
    try:
        limits = RpcLimits(
            max_connections=rpc_max_connections,
            max_subscriptions_per_connection=rpc_max_subscriptions_per_connection,
            max_request_bytes=int(rpc_max_request_size * MIB),
            max_response_bytes=int(rpc_max_response_size * MIB),
            max_buffer_per_connection=int(rpc_max_buffer_per_connection * MIB),
            max_buffer_total=int(rpc_max_buffer_total * MIB),
            max_inbound_total=int(rpc_max_inbound_total * MIB),
            handshake_timeout=rpc_handshake_timeout)
    except ValueError as exc:
        raise click.UsageError(_flag_names(str(exc))) from None
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = DevNode(host=host, port=port, base_path=base_path, block_time=block_time,
                   limits=limits)
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
