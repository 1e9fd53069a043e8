"""The ``decentralml`` console script: the keystore password leaves the environment (by a
re-exec, :mod:`decentralml.cli.handover`) before the CLI and its dependencies are imported, so
the restart costs an interpreter start and nothing more.
"""

from __future__ import annotations

from decentralml.cli.handover import hand_over_env_password


def main() -> None:
    """Hand the password over, then run the CLI."""
    hand_over_env_password()
    from decentralml.cli.main import main as cli_main

    cli_main()
