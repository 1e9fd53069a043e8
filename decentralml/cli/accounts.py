"""``decentralml account``: create, import, list, export accounts, and show balances."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from decentralml.cli.app import App, ExitCode, pass_app, table
from decentralml.config import ENV_ACCOUNT, ENV_JSON_PASSWORD

if TYPE_CHECKING:
    from decentralml.accounts import Accounts


def _accounts(app: App) -> Accounts:
    return app.accounts()


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
@click.option("--password", envvar=ENV_JSON_PASSWORD,
              help=f"Password of --json-file [env {ENV_JSON_PASSWORD}]; prompted if absent.")
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
                app.fail(f"--password (or env {ENV_JSON_PASSWORD}) is needed with --yes, "
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
@click.option("--password", envvar=ENV_JSON_PASSWORD,
              help=f"Password for the export [env {ENV_JSON_PASSWORD}]; prompted if absent.")
@pass_app
def account_export(app: App, name: str, out: Path, password: str | None) -> None:
    """Export NAME as polkadot.js encrypted JSON to --out."""
    if password is None:
        if not app.interactive:
            app.fail(f"--password (or env {ENV_JSON_PASSWORD}) is needed with --yes, "
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
        app.fail(f"no account: pass --account or set {ENV_ACCOUNT}", ExitCode.CONFIG)
    free = client.balance(address)
    app.emit({"address": address, "free": free},
             lambda c: c.print(f"{address}: {app.amount(free)}"
                               + ("" if app.planck else f" ({free} planck)"), highlight=False))


def _amount(app: App, text: str) -> int:
    from decentralml.errors import InvalidInput

    value = app.parse_amount(text, "amount")
    if value <= 0:
        raise InvalidInput("amount", f"{text!r}", "more than 0")
    return value


def _name_of(app: App, address: str) -> str | None:
    """The local account name for ``address`` (from the index; no secret is read)."""
    return next((a.name for a in app.accounts().list() if a.address == address), None)


@account.command("transfer")
@click.argument("to")
@click.argument("amount")
@click.option("--allow-death", is_flag=True,
              help="Allow the sender's balance to drop below the existential deposit (the "
                   "account is then reaped); by default the transfer keeps it alive.")
@pass_app
def account_transfer(app: App, to: str, amount: str, allow_death: bool) -> None:
    """Send AMOUNT (UNIT, or NNNplanck) from --account to TO (a name, address or //Dev URI)."""
    client = app.client()
    dest = client.resolve_address(to)
    planck = _amount(app, amount)
    sent = client.transfer(dest, planck, keep_alive=not allow_death)
    _emit_transfer(app, client.address or "", dest, planck, sent.fee, sent.block_number,
                   sent.extrinsic_hash)


def _emit_transfer(app: App, source: str, dest: str, planck: int, fee: int, block: int,
                   extrinsic: str) -> None:
    data = {"from": source, "to": dest, "amount": planck, "fee": fee, "block_number": block,
            "extrinsic_hash": extrinsic}
    shown = _name_of(app, dest) or dest
    app.emit(data, lambda c: c.print(
        f"sent {app.amount(planck)} to {shown} in block {block} (fee "
        f"{app.amount(fee)})", highlight=False))


@account.command("fund")
@click.argument("who")
@click.option("--amount", default="100", show_default=True,
              help="How much to send (UNIT, or NNNplanck).")
@pass_app
def account_fund(app: App, who: str, amount: str) -> None:
    """On a dev chain, send AMOUNT from //Alice to WHO (a name or address) to get started.

    Refused on any chain whose type is not Development or Local: //Alice's key is public.
    """
    from decentralml.accounts import DEV_CHAIN_TYPES

    client = app.client(need_account=False)
    if client.chain_type not in DEV_CHAIN_TYPES:
        app.fail(f"`account fund` works only on dev chains (chain type Development or Local); "
                 f"this chain's type is {client.chain_type!r}. Ask someone with funds, or use "
                 f"`account transfer` from a funded account", ExitCode.CONFIG)
    dest = client.resolve_address(who)
    planck = _amount(app, amount)
    alice = client.with_signer("//Alice")
    sent = alice.transfer(dest, planck)
    _emit_transfer(app, alice.address or "", dest, planck, sent.fee, sent.block_number,
                   sent.extrinsic_hash)


@account.command("overview")
@click.argument("who", required=False)
@pass_app
def account_overview(app: App, who: str | None) -> None:
    """What WHO (default: --account) did on this chain: tasks created, results submitted,
    accepted, pending, rejected, and rewards earned and paid, all read from the chain."""
    from decentralml.chain.types import SubmissionStatus, TaskStatus

    client = app.client(need_account=who is None)
    address = client.resolve_address(who) if who else client.address
    if address is None:
        app.fail(f"no account: pass --account or set {ENV_ACCOUNT}", ExitCode.CONFIG)
    created = client.tasks(creator=address)
    subs = client.worker_submissions(address)
    tasks = {t.task_id: t for t in created}
    for task_id in {s.task_id for s in subs} - set(tasks):
        tasks[task_id] = client.task(task_id)

    def count(status: SubmissionStatus) -> int:
        return sum(1 for s in subs if s.status is status)

    data = {
        "address": address, "name": _name_of(app, address), "free": client.balance(address),
        "tasks_created": len(created),
        "tasks_open": sum(1 for t in created if t.status is TaskStatus.Open),
        "escrow_locked": sum(t.unpaid_escrow for t in created),
        "rewards_paid": sum(t.reward * t.accepted_results for t in created),
        "submissions": len(subs),
        "results_submitted": sum(1 for s in subs if s.submitted_block is not None),
        "assigned": count(SubmissionStatus.Assigned),
        "pending": count(SubmissionStatus.PendingValidation),
        "accepted": count(SubmissionStatus.Accepted),
        "rejected": count(SubmissionStatus.Rejected),
        "abandoned": count(SubmissionStatus.Abandoned),
        "rewards_earned": sum(tasks[s.task_id].reward for s in subs
                              if s.status is SubmissionStatus.Accepted),
    }
    def render(c: Console) -> None:
        def money(key: str) -> str:
            return app.amount(int(data[key] or 0))

        rows: list[list[Any]] = [["balance", money("free")],
                ["tasks created", f"{data['tasks_created']} ({data['tasks_open']} open)"],
                ["escrow locked in open tasks", money("escrow_locked")],
                ["rewards paid to workers", money("rewards_paid")],
                ["results submitted", data["results_submitted"]],
                ["  accepted", data["accepted"]], ["  pending validation", data["pending"]],
                ["  rejected", data["rejected"]],
                ["slots held, no result yet", data["assigned"]],
                ["slots abandoned", data["abandoned"]],
                ["rewards earned", money("rewards_earned")]]
        c.print(table(f"{data['name'] or address} ({address})" if data["name"] else address,
                      ["", ""], rows))

    app.emit(data, render)
