"""``decentralml demo``: the federated MNIST story from ``examples/federated_mnist/demo.py``.

The demo is an example a user can read and copy, so its source lives with the examples; a built
wheel carries the example as package data (see :mod:`decentralml.assets`), so this command finds
it both in a source checkout and in an installed wheel, and runs it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import click

from decentralml.cli.app import App, ExitCode, pass_app


def load_demo() -> ModuleType | None:
    """``examples/federated_mnist/demo.py`` as a module (packaged or from the checkout)."""
    from decentralml.assets import example_dir

    path = example_dir("federated_mnist") / "demo.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("federated_mnist_demo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the demo's annotations through it
    spec.loader.exec_module(module)
    return module


@click.command()
@click.option("--rounds", type=int, default=4, show_default=True)
@click.option("--storage", help="local:PATH or ipfs:URL (default: a temporary local store).")
@click.option("--mnist", type=click.Path(exists=True, dir_okay=False),
              help="A local mnist.npz (default: scikit-learn's bundled digits).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Keep the demo's files here.")
@pass_app
def demo(app: App, rounds: int, storage: str | None, mnist: str | None,
         workdir: str | None) -> None:
    """Run the whole marketplace on this machine: devnode, creator, 3 contributors, federation."""
    module = load_demo()
    if module is None:
        app.fail("the demo's files (examples/federated_mnist/) are not installed; reinstall "
                 "decentralml or run `make demo` in a clone", ExitCode.CONFIG)
    argv = ["--rounds", str(rounds)]
    for flag, value in (("--storage", storage), ("--mnist", mnist), ("--workdir", workdir)):
        if value:
            argv += [flag, value]
    if app.as_json:
        argv.append("--json")
    raise SystemExit(module.main(argv))
