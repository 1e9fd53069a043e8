"""The ``decentralml`` command line: one group, a module of subcommands per role."""

from __future__ import annotations

import click

from decentralml.cli.app import App, ExitCode, exit_code_for
from decentralml.cli.password import hand_over_env_password, take_handed_over_password
from decentralml.errors import DecentralMLError
from decentralml.keystore import Password


class _Root(click.Group):
    """Turns library errors into one line and an exit code; tracebacks only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DecentralMLError as exc:
            app = ctx.find_object(App)
            if app is not None and app.debug:
                raise
            name = type(exc).__name__
            click.secho(f"error: {name}: {exc}", fg="red", err=True)
            ctx.exit(int(exit_code_for(exc)))
        except KeyboardInterrupt:
            click.secho("interrupted", fg="red", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--node", envvar="DECENTRALML_NODE_URL", help="Node websocket URL "
              "[env DECENTRALML_NODE_URL].")
@click.option("--storage", envvar="DECENTRALML_STORAGE", help="local:PATH or ipfs:URL "
              "[env DECENTRALML_STORAGE].")
@click.option("--account", envvar="DECENTRALML_ACCOUNT", help="Account name, or //Alice-style "
              "dev URI on a dev chain [env DECENTRALML_ACCOUNT].")
@click.option("--home", envvar="DECENTRALML_HOME", help="Home directory (accounts index, "
              "local store, journals) [env DECENTRALML_HOME, default ~/.decentralml].")
@click.option("--keyring", type=click.Choice(["file", "os"]), envvar="DECENTRALML_KEYRING",
              help="Where new account secrets go: the encrypted keystore under home (file, the "
              "default) or the OS keyring (os) [env DECENTRALML_KEYRING].")
@click.option("--keyring-password-file", envvar="DECENTRALML_KEYRING_PASSWORD_FILE",
              type=click.Path(dir_okay=False), help="File holding the keystore's password "
              "[env DECENTRALML_KEYRING_PASSWORD_FILE]; else DECENTRALML_KEYRING_PASSWORD or a "
              "prompt.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--yes", "-y", is_flag=True, help="Never prompt; take the non-interactive default.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="decentralml")
@click.pass_context
def cli(ctx: click.Context, node: str | None, storage: str | None, account: str | None,
        home: str | None, keyring: str | None, keyring_password_file: str | None,
        as_json: bool, yes: bool, debug: bool) -> None:
    """decentralml: a machine-learning task marketplace on a Substrate chain."""
    # main() hands over the keystore password it took out of the environment as ctx.obj
    handed_over = ctx.obj if isinstance(ctx.obj, Password) else None
    app = App(overrides={"node_url": node, "storage": storage, "account": account,
                         "keyring": keyring, "keyring_password_file": keyring_password_file},
              home=home, as_json=as_json, yes=yes, debug=debug, handed_over_password=handed_over)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    """Attach the subcommand modules (each imports its heavy parts only when it runs)."""
    from decentralml.cli.accounts import account
    from decentralml.cli.demo import demo
    from decentralml.cli.review import federate, results, validate
    from decentralml.cli.tasks import task
    from decentralml.cli.work import abandon, accept, run, submit, work
    from decentralml.devnode.cli import devnode_command

    for command in (devnode_command, account, task, accept, run, submit, work, abandon, results,
                    validate, federate, demo):
        cli.add_command(command)
    _register_market()


def _register_market() -> None:
    """The long-running marketplace commands (worker, job, dashboard), one line each."""
    from decentralml.cli.dashboard import dashboard
    from decentralml.cli.job import job
    from decentralml.cli.worker import worker

    cli.add_command(worker)
    cli.add_command(job)
    cli.add_command(dashboard)


_register()


def main() -> None:
    """The ``decentralml`` entry point. First of all it takes ``DECENTRALML_KEYRING_PASSWORD``
    out of its environment (re-executing itself without it), so no task it runs can read it."""
    hand_over_env_password()
    cli(prog_name="decentralml", obj=take_handed_over_password())


if __name__ == "__main__":
    main()
