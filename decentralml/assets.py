"""Where the task templates and the federated-digits example live, installed or not.

In a source checkout (``make install`` installs the SDK editable) they are the repository's
``asset_templates/`` and ``examples/``, the paths the docs refer to. A built wheel carries copies of
both as package data under ``decentralml/_assets/`` (hatch's ``force-include``, see
pyproject.toml), so ``pip install decentralml`` anywhere still has ``task create --template`` and
``demo``. The packaged copy wins when present: it is what was installed.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_PACKAGED = _PACKAGE / "_assets"
_CHECKOUT = _PACKAGE.parent


def _resolve(relative: str) -> Path:
    packaged = _PACKAGED / relative
    return packaged if packaged.exists() else _CHECKOUT / relative


def templates_dir() -> Path:
    """The directory holding one sub-directory per task template (``model_contributor``...)."""
    return _resolve("asset_templates")


def example_dir(name: str = "federated_mnist") -> Path:
    """``examples/NAME``: the federated digits example (its bundle, notebook and demo)."""
    return _resolve(f"examples/{name}")
