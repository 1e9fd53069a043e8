"""The ``decentralml`` command line: one group, a module of subcommands per role."""

from __future__ import annotations

from decentralml.cli.handover import (
    ENV_KEYRING_PASSWORD,
    hand_over_env_password,
    take_handed_over_password,
)

if __name__ == "__main__":  # `python -m decentralml.cli.main`: re-exec before the imports below
    hand_over_env_password()

import os
import sys
from collections.abc import Sequence

import click

from decentralml.cli.app import App, ExitCode, error_json, exit_code_for
from decentralml.config import (
    ENV_ACCOUNT,
    ENV_HOME,
    ENV_KEYRING,
    ENV_KEYRING_PASSWORD_FILE,
    ENV_NODE_URL,
    ENV_STORAGE,
    KEYRINGS,
    quiet_framework_env,
)
from decentralml.errors import DecentralMLError
from decentralml.keystore import Password

#: Global options that take no value / one value. They may also be written after the
#: subcommand (``task close 1 --yes --json``); see :func:`hoist_global_options`.
GLOBAL_FLAGS = ("--json", "--yes", "-y", "--debug", "--planck")
GLOBAL_VALUES = ("--node", "--storage", "--account", "--home", "--keyring",
                 "--keyring-password-file")


def _option_names(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)}


def hoist_global_options(group: click.Group, args: Sequence[str]) -> list[str]:
    """Move global options written after a subcommand to the front, where click expects them.

    An option is moved only when the (sub)command it follows does not define an option of the
    same name itself (``demo --storage`` stays the demo's); ``--`` ends the scan. A value option
    is moved with its value (``--account //Bob`` or ``--account=//Bob``).
    """
    head: list[str] = []
    rest: list[str] = []
    current: click.Command = group
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        is_global = name in GLOBAL_FLAGS or name in GLOBAL_VALUES
        takes_value = name in GLOBAL_VALUES and "=" not in arg
        if is_global and (not seen_command or name not in _option_names(current)):
            target = rest if not seen_command else head
            target.append(arg)
            if takes_value and i + 1 < len(args):
                target.append(args[i + 1])
                i += 1
            i += 1
            continue
        if not arg.startswith("-") and isinstance(current, click.Group):
            sub = current.commands.get(arg)
            if sub is not None:
                current = sub
                seen_command = True
        rest.append(arg)
        i += 1
    return head + rest


class _Root(click.Group):
    """Turns library errors into one line and an exit code; tracebacks only with ``--debug``.

    With ``--json`` the error is also a JSON object on stdout (see :func:`error_json`), so a
    script reading stdout always gets one JSON document.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, args))

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DecentralMLError as exc:
            app = ctx.find_object(App)
            if app is not None and app.debug:
                raise
            name = type(exc).__name__
            code = exit_code_for(exc)
            if app is not None and app.as_json:
                click.echo(error_json(name, str(exc), code))
            click.secho(f"error: {name}: {exc}", fg="red", err=True)
            ctx.exit(int(code))
        except KeyboardInterrupt:
            app = ctx.find_object(App)
            if app is not None and app.as_json:
                click.echo(error_json("Interrupted", "interrupted", ExitCode.INTERRUPTED))
            click.secho("interrupted", fg="red", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--node", help=f"Node websocket URL [env {ENV_NODE_URL}].")
@click.option("--storage", help=f"local:PATH or ipfs:URL [env {ENV_STORAGE}].")
@click.option("--account", help="Account name, or //Alice-style dev URI on a dev chain "
              f"[env {ENV_ACCOUNT}].")
@click.option("--home", help="Home directory (accounts index, local store, journals) "
              f"[env {ENV_HOME}, default ~/.decentralml].")
@click.option("--keyring", type=click.Choice(KEYRINGS),
              help="Where new account secrets go: the encrypted keystore under home (file, the "
              f"default) or the OS keyring (os) [env {ENV_KEYRING}].")
@click.option("--keyring-password-file", type=click.Path(dir_okay=False),
              help="File holding the keystore's password "
              f"[env {ENV_KEYRING_PASSWORD_FILE}]; else {ENV_KEYRING_PASSWORD} or a prompt.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout "
              "(errors too: {\"error\": {...}}).")
@click.option("--yes", "-y", is_flag=True, help="Never prompt; take the non-interactive default.")
@click.option("--planck", is_flag=True, help="Show amounts in planck instead of UNIT.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="decentralml")
@click.pass_context
def cli(ctx: click.Context, node: str | None, storage: str | None, account: str | None,
        home: str | None, keyring: str | None, keyring_password_file: str | None,
        as_json: bool, yes: bool, planck: bool, debug: bool) -> None:
    """decentralml: a machine-learning task marketplace on a Substrate chain.

    Global options may come before or after the subcommand. Shell completion:
    eval "$(_DECENTRALML_COMPLETE=bash_source decentralml)" (zsh_source, fish_source).
    """
    # main() hands over the keystore password it took out of the environment as ctx.obj
    handed_over = ctx.obj if isinstance(ctx.obj, Password) else None
    app = App(overrides={"node_url": node, "storage": storage, "account": account,
                         "keyring": keyring, "keyring_password_file": keyring_password_file},
              home=home, as_json=as_json, yes=yes, debug=debug, planck=planck,
              handed_over_password=handed_over)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    """Attach the subcommand modules (each imports its heavy parts only when it runs)."""
    from decentralml.cli.accounts import account
    from decentralml.cli.demo import demo
    from decentralml.cli.example import example
    from decentralml.cli.node import node_command
    from decentralml.cli.review import federate, results, validate
    from decentralml.cli.tasks import task
    from decentralml.cli.work import abandon, accept, run, submit, work
    from decentralml.devnode.cli import devnode_command

    for command in (devnode_command, node_command, account, task, accept, run, submit, work,
                    abandon, results, validate, federate, example, demo):
        cli.add_command(command)
    _register_market()


def _register_market() -> None:
    """The long-running marketplace commands (worker, job, dashboard), one line each."""
    from decentralml.cli.contribution import review, scores
    from decentralml.cli.dashboard import dashboard
    from decentralml.cli.job import job
    from decentralml.cli.peer import peer
    from decentralml.cli.worker import worker

    cli.add_command(worker)
    cli.add_command(job)
    cli.add_command(peer)
    cli.add_command(dashboard)
    cli.add_command(review)
    cli.add_command(scores)


_register()


def _wants_json(args: Sequence[str]) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; usage errors become exit 2 (and a JSON error object with ``--json``).

    First of all ``DECENTRALML_KEYRING_PASSWORD`` leaves the environment (re-executing without
    it; the console script does that before importing this module), so no task the CLI runs
    can read it."""
    hand_over_env_password()
    handed_over = take_handed_over_password()
    obj = None if handed_over is None else Password(
        handed_over, f"{ENV_KEYRING_PASSWORD} (taken out of the environment at start)")
    # TensorFlow's start-up lines are noise in a CLI's output (and in the tasks it runs)
    quiet_framework_env(os.environ)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = cli.main(args=args, prog_name="decentralml", standalone_mode=False, obj=obj)
    except click.ClickException as exc:
        if _wants_json(args):
            click.echo(error_json(type(exc).__name__, exc.format_message(), exc.exit_code))
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        if _wants_json(args):
            click.echo(error_json("Aborted", "aborted", ExitCode.FAILURE))
        click.secho("aborted", fg="red", err=True)
        sys.exit(int(ExitCode.FAILURE))
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
