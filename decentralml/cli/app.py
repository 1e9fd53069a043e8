"""What every CLI command shares: the resolved settings, lazily opened client and store, output
as rich tables or ``--json``, and errors turned into one line and a meaningful exit code.

This is the only place (with the command modules) that knows about argv and terminals; the library
never prints or prompts.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from decentralml.config import Settings, load_settings
from decentralml.errors import (
    BundleError,
    ChainError,
    ConfigurationError,
    InvalidInput,
    ModelError,
    RunnerError,
    StorageError,
)

if TYPE_CHECKING:
    from decentralml.accounts import Accounts
    from decentralml.amounts import Token
    from decentralml.chain.client import Client
    from decentralml.keystore import Password
    from decentralml.storage.base import Store


class ExitCode(int, Enum):
    """Exit codes scripts can branch on."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    CONFIG = 3
    INVALID_INPUT = 4
    CHAIN = 5
    STORAGE = 6
    RUNNER = 7
    REJECTED = 8  # e.g. `validate` rejected at least one result with --fail-on-reject
    MISMATCH = 9  # `scores verify` found a score that differs from the chain's
    INTERRUPTED = 130


_EXIT_FOR: list[tuple[type[BaseException], ExitCode]] = [
    (ConfigurationError, ExitCode.CONFIG),
    (InvalidInput, ExitCode.INVALID_INPUT),
    (ChainError, ExitCode.CHAIN),
    (StorageError, ExitCode.STORAGE),
    (BundleError, ExitCode.STORAGE),
    (RunnerError, ExitCode.RUNNER),
    (ModelError, ExitCode.INVALID_INPUT),
]


def exit_code_for(exc: BaseException) -> ExitCode:
    for cls, code in _EXIT_FOR:
        if isinstance(exc, cls):
            return code
    return ExitCode.FAILURE


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


#: Width for tables written to a pipe or file (no terminal to fit): wide enough that CIDs and
#: addresses are never cut; a terminal's own width (or ``$COLUMNS``) wins when there is one.
PIPE_WIDTH = 200


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def format_metrics(metrics: Any) -> str:
    """``accuracy 0.912, loss 0.231, train_seconds 3.2``: 3 decimals (1 for seconds)."""
    if not metrics:
        return ""
    if not isinstance(metrics, dict):
        return str(metrics)
    parts = []
    for name, value in metrics.items():
        if isinstance(value, float):
            shown = f"{value:.1f}" if str(name).endswith("seconds") else f"{value:.3f}"
        else:
            shown = str(value)
        parts.append(f"{name} {shown}")
    return ", ".join(parts)


def error_json(name: str, message: str, code: ExitCode | int) -> str:
    """The ``--json`` form of an error: ``{"error": {"type", "message", "exit_code"}}``."""
    return json.dumps({"error": {"type": name, "message": message, "exit_code": int(code)}},
                      indent=2, sort_keys=True)


@dataclass
class App:
    """Per-invocation state, kept on click's context object (never a module global)."""

    overrides: dict[str, str | None]
    home: str | None = None
    as_json: bool = False
    yes: bool = False
    debug: bool = False
    planck: bool = False
    console: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    #: the keystore password taken out of the environment at start (see cli.password)
    handed_over_password: Password | None = None
    _settings: Settings | None = None
    _accounts: Accounts | None = None
    _client: Client | None = None
    _store: Store | None = None
    _names: dict[str, str] | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.home, **self.overrides)
        return self._settings

    @property
    def interactive(self) -> bool:
        return not self.yes and not self.as_json and sys.stdin.isatty()

    def accounts(self) -> Accounts:
        """The account store, its keystore opened (once) only if a command reads a secret."""
        if self._accounts is None:
            from decentralml.accounts import Accounts
            from decentralml.cli.password import cli_password_source

            home = self.settings.home
            source = cli_password_source(
                password_file=self.settings.keyring_password_file,
                handed_over=self.handed_over_password, may_prompt=not self.yes,
                keystore=str(home / "keystore"))
            # load_settings checked the keyring's name (and names where a bad one came from)
            self._accounts = Accounts(home, keyring=self.settings.keyring,  # type: ignore[arg-type]
                                      password=source)
        return self._accounts

    def client(self, *, need_account: bool = True) -> Client:
        """The chain client, connected on first use with the configured node and account. A
        stored account's secret is read only when the client first signs."""
        if self._client is None:
            from decentralml.chain.client import Client

            url = self.settings.require("node_url")
            account = self.settings.require("account") if need_account else self.settings.account
            self._client = Client(url, account=account, home=self.settings.home,
                                  accounts=self.accounts())
        return self._client

    def store(self) -> Store:
        if self._store is None:
            from decentralml.storage import open_store

            self._store = open_store(self.settings.storage_spec, home=self.settings.home)
        return self._store

    def amount(self, value: int, token: Token | None = None) -> str:
        """An amount for people, exact: in ``token`` (default: the connected chain's symbol and
        decimals), or in planck with --planck."""
        if self.planck:
            return f"{value} planck"
        return (token or self.client(need_account=False).token).format(value)

    def parse_amount(self, text: str, field: str) -> int:
        """Planck from an amount the user typed (``2.5``, ``2.5 UNIT``, ``5000planck``), in the
        connected chain's token; an error names ``field`` (the option)."""
        return self.client(need_account=False).token.parse(text, field=field)

    def name(self, address: str | None) -> str:
        """The account name people know an address by (``//Bob``, a stored account), else the
        address itself, never truncated."""
        if address is None:
            return ""
        if self._names is None:
            self._names = self._known_names()
        return self._names.get(address, address)

    def _known_names(self) -> dict[str, str]:
        from decentralml.accounts import DEV_ACCOUNTS, Accounts

        client = self.client(need_account=False)
        names: dict[str, str] = {}
        try:
            for info in Accounts(home=self.settings.home).list():
                names[info.address] = info.name
        except Exception:  # an unreadable index only costs the names, never the command
            pass
        if client.chain_type in ("Development", "Local"):
            for dev in DEV_ACCOUNTS:
                names.setdefault(client.resolve_address(f"//{dev}"), f"//{dev}")
        return names

    def expiry(self, block: int, current: int) -> str:
        """``block 14401 (in 14400)`` or ``block 12 (passed)`` against the current block."""
        left = block - current
        return f"block {block} ({'in ' + str(left) if left > 0 else 'passed'})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def emit(self, data: Any, render: Callable[[Console], None] | None = None) -> None:
        """Print ``data`` as JSON with ``--json``, else let ``render`` draw it for people."""
        if self.as_json or render is None:
            click.echo(json.dumps(_jsonable(data), indent=2, sort_keys=True))
        else:
            render(self.console)

    def progress(self, describe: Callable[[str, dict[str, Any]], None]
                 ) -> Callable[[str, dict[str, Any]], None]:
        """An ``on_progress(event, data)`` callback for long work: one JSON line per event on
        stderr with ``--json``, otherwise whatever ``describe`` prints for people."""
        def show(event: str, data: dict[str, Any]) -> None:
            if self.as_json:
                click.echo(json.dumps({"event": event, **data}, sort_keys=True), err=True)
            else:
                describe(event, data)
        return show

    def info(self, message: str) -> None:
        """Progress and notes go to stderr, so stdout stays clean for ``--json`` consumers."""
        if not self.as_json:
            self.err.print(message)

    def fail(self, message: str, code: ExitCode = ExitCode.FAILURE,
             kind: str = "Failed") -> NoReturn:
        """One error line on stderr (and, with ``--json``, the error object on stdout); exit."""
        if self.as_json:
            click.echo(error_json(kind, message, code))
        from rich.markup import escape

        self.err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
        raise SystemExit(int(code))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table that wraps long cells (CIDs, addresses) onto more lines instead of cutting them."""
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


pass_app = click.make_pass_decorator(App)


def parse_policy(spec: str) -> tuple[str, float | None]:
    """``auto`` | ``manual`` | ``min-accuracy=0.9``."""
    if spec in ("auto", "manual"):
        return spec, None
    name, _, value = spec.partition("=")
    if name == "min-accuracy":
        try:
            threshold = float(value)
        except ValueError:
            threshold = -1.0
        if 0.0 <= threshold <= 1.0:
            return name, threshold
    raise InvalidInput("policy", f"{spec!r} is not a policy",
                       "auto, manual or min-accuracy=X with 0 <= X <= 1")
