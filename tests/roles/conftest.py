"""Fixtures for the role tests: a tiny non-TF bundle and helpers to run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

TINY_BUNDLE = Path(__file__).parent / "data" / "line_counter"


@pytest.fixture
def tiny_bundle() -> Path:
    """A bundle that counts lines of the contributor's samples.txt (no TensorFlow needed).

    With a file ``slow`` in the data dir it touches ``running`` in its output dir and
    waits until ``slow`` is removed: a stand-in for a long training run that can be killed.
    """
    return TINY_BUNDLE


def cli(args: Sequence[str], *, home: Path, env: dict[str, str] | None = None,
        check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``decentralml`` in a subprocess with its own home and a file keyring."""
    full_env = {**os.environ, "DECENTRALML_HOME": str(home),
                "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
                "XDG_DATA_HOME": str(home / "xdg"), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "decentralml.cli.main", *args],
                          capture_output=True, text=True, env=full_env, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"decentralml {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def digits() -> tuple[tuple[object, object], tuple[object, object]]:
    """scikit-learn's bundled digits (offline), split once for the session."""
    from decentralml.fl import load_mnist

    train, test, _source = load_mnist(None)
    return train, test
