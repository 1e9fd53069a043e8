"""The ``decentralml`` command line: one group, a module of subcommands per role."""

from __future__ import annotations

import click

from decentralml.cli.app import App, ExitCode, exit_code_for
from decentralml.errors import DecentralMLError


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--yes", "-y", is_flag=True, help="Never prompt; take the non-interactive default.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="decentralml")
@click.pass_context
def cli(ctx: click.Context, node: str | None, storage: str | None, account: str | None,
        home: str | None, as_json: bool, yes: bool, debug: bool) -> None:
    """decentralml: a machine-learning task marketplace on a Substrate chain."""
    app = App(overrides={"node_url": node, "storage": storage, "account": account}, home=home,
              as_json=as_json, yes=yes, debug=debug)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    """Attach the subcommand modules (each imports its heavy parts only when it runs)."""
    from decentralml.cli.accounts import account
    from decentralml.cli.demo import demo
    from decentralml.cli.review import federate, results, validate
    from decentralml.cli.tasks import task
    from decentralml.cli.work import accept, run, submit, work
    from decentralml.devnode.cli import devnode_command

    for command in (devnode_command, account, task, accept, run, submit, work, results, validate,
                    federate, demo):
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
    cli(prog_name="decentralml")


if __name__ == "__main__":
    main()
