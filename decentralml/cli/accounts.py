"""``decentralml account``: create, import, list, export accounts, and show balances."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from decentralml.cli.app import App, ExitCode, pass_app, table

if TYPE_CHECKING:
    from decentralml.accounts import Accounts


def _accounts(app: App) -> Accounts:
    from decentralml.accounts import Accounts

    return Accounts(home=app.settings.home)


@click.group("account")
def account() -> None:
    """Manage accounts (secrets stay in the OS keyring)."""


@account.command("new")
@click.argument("name")
@click.option("--crypto", type=click.Choice(["sr25519", "ed25519"]), default="sr25519",
              show_default=True)
@pass_app
def account_new(app: App, name: str, crypto: str) -> None:
    """Create account NAME; its mnemonic is shown once and stored in the keyring."""
    created, mnemonic = _accounts(app).create(name, crypto_type=crypto)  # type: ignore[arg-type]
    data = {"name": created.name, "address": created.address, "crypto": crypto}
    # The mnemonic goes to the terminal (stderr) once, never into --json output or a log file.
    if app.interactive:
        app.err.print("[yellow]Write the mnemonic down; it is shown only this once:[/]")
        app.err.print(mnemonic, highlight=False, markup=False)
    else:
        app.info("mnemonic not shown (not interactive); back it up with `account export`")
    app.emit(data, lambda c: c.print(f"created {name}: {created.address}"))


@account.command("import")
@click.argument("name")
@click.option("--mnemonic-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the mnemonic (never pass secrets on the command line).")
@click.option("--json-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="polkadot.js encrypted JSON export.")
@click.option("--password", envvar="DECENTRALML_JSON_PASSWORD",
              help="Password of --json-file [env DECENTRALML_JSON_PASSWORD]; prompted if absent.")
@pass_app
def account_import(app: App, name: str, mnemonic_file: Path | None, json_file: Path | None,
                   password: str | None) -> None:
    """Import account NAME from a mnemonic file or a polkadot.js JSON export."""
    accounts = _accounts(app)
    if (mnemonic_file is None) == (json_file is None):
        app.fail("give exactly one of --mnemonic-file and --json-file", code=ExitCode.USAGE)
    if mnemonic_file is not None:
        info = accounts.import_mnemonic(name, mnemonic_file.read_text(encoding="utf-8").strip())
    else:
        assert json_file is not None
        if password is None:
            if not app.interactive:
                app.fail("--password (or env DECENTRALML_JSON_PASSWORD) is needed with --yes, "
                         "--json or without a terminal", code=ExitCode.USAGE)
            password = click.prompt("JSON password", hide_input=True)
        info = accounts.import_json(name, json_file.read_text(encoding="utf-8"), password)
    app.emit({"name": info.name, "address": info.address},
             lambda c: c.print(f"imported {info.name}: {info.address}"))


@account.command("list")
@pass_app
def account_list(app: App) -> None:
    """List known accounts (names and addresses; no secrets)."""
    infos = _accounts(app).list()
    app.emit(infos, lambda c: c.print(table(
        "accounts", ["name", "address", "crypto"],
        [[i.name, i.address, i.crypto_type] for i in infos])))


@account.command("export")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--password", envvar="DECENTRALML_JSON_PASSWORD",
              help="Password for the export [env DECENTRALML_JSON_PASSWORD]; prompted if absent.")
@pass_app
def account_export(app: App, name: str, out: Path, password: str | None) -> None:
    """Export NAME as polkadot.js encrypted JSON to --out."""
    if password is None:
        if not app.interactive:
            app.fail("--password (or env DECENTRALML_JSON_PASSWORD) is needed with --yes, "
                     "--json or without a terminal", code=ExitCode.USAGE)
        password = click.prompt("new JSON password", hide_input=True, confirmation_prompt=True)
    exported = _accounts(app).export_json(name, password)
    # created 0600 from the start: the export is encrypted, but still nobody else's business
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(exported, fh)
    app.emit({"name": name, "file": str(out)}, lambda c: c.print(f"exported {name} to {out}"))


@account.command("balance")
@click.argument("who", required=False)
@pass_app
def account_balance(app: App, who: str | None) -> None:
    """Free balance of WHO (an address, an account name, or the configured account)."""
    client = app.client(need_account=who is None)
    address = client.resolve_address(who) if who else client.address
    if address is None:
        app.fail("no account: pass --account or set DECENTRALML_ACCOUNT", ExitCode.CONFIG)
    free = client.balance(address)
    app.emit({"address": address, "free": free},
             lambda c: _print_balance(c, address, free, client.token_symbol,
                                      client.token_decimals))


def _print_balance(c: Console, address: str, free: int, symbol: str, decimals: int) -> None:
    c.print(f"{address}: {free / 10**decimals:,.4f} {symbol} ({free} planck)")

