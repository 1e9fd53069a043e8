"""Where settings come from: explicit arguments, then ``DECENTRALML_*`` env vars, then the config
file (``$DECENTRALML_HOME/config.toml``), then defaults. A missing piece raises
:class:`MissingConfiguration` that names the env var and the option to set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from decentralml.errors import ConfigurationError, MissingConfiguration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: tomli is the library tomllib was made from
    import tomli as tomllib

ENV_HOME = "DECENTRALML_HOME"
ENV_NODE_URL = "DECENTRALML_NODE_URL"
ENV_STORAGE = "DECENTRALML_STORAGE"
ENV_ACCOUNT = "DECENTRALML_ACCOUNT"
ENV_KEYRING = "DECENTRALML_KEYRING"
ENV_KEYRING_PASSWORD_FILE = "DECENTRALML_KEYRING_PASSWORD_FILE"

#: Defaults for the ML stack's start-up logging, for this process and the tasks it runs. TensorFlow
#: logs its C++ start-up lines (CPU features) below ``TF_CPP_MIN_LOG_LEVEL``, but its oneDNN
#: notice goes through absl before that setting is read, so the only way to silence it is to leave
#: oneDNN's reordered kernels off (``TF_ENABLE_ONEDNN_OPTS=0``), which also keeps float results
#: independent of the CPU's kernel choice. Errors (level 2 keeps them) and Python warnings still
#: show, and a value the user set wins.
FRAMEWORK_ENV_DEFAULTS: dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def quiet_framework_env(env: MutableMapping[str, str]) -> None:
    """Fill in :data:`FRAMEWORK_ENV_DEFAULTS` where ``env`` does not set them; call it before
    TensorFlow is first imported (it reads them once)."""
    for name, value in FRAMEWORK_ENV_DEFAULTS.items():
        env.setdefault(name, value)


#: setting -> (env var, CLI option)
SOURCES: dict[str, tuple[str, str]] = {
    "node_url": (ENV_NODE_URL, "--node"),
    "storage": (ENV_STORAGE, "--storage"),
    "account": (ENV_ACCOUNT, "--account"),
    # where account secrets live: "file" (the encrypted keystore under home, the default) or
    # "os" (the OS keyring, an explicit opt-in)
    "keyring": (ENV_KEYRING, "--keyring"),
    # a file holding the keystore's password (never the password itself in config or argv)
    "keyring_password_file": (ENV_KEYRING_PASSWORD_FILE, "--keyring-password-file"),
}


def home_dir(explicit: str | Path | None = None) -> Path:
    """The SDK's home (accounts index, local store, journals): ``~/.decentralml`` by default."""
    raw = explicit or os.environ.get(ENV_HOME)
    return Path(raw).expanduser() if raw else Path.home() / ".decentralml"


class Settings(BaseModel):
    """The resolved configuration. Fields left ``None`` were not set anywhere."""

    model_config = ConfigDict(frozen=True)

    home: Path
    node_url: str | None = None
    storage: str | None = None
    account: str | None = None
    keyring: str | None = None
    keyring_password_file: str | None = None

    def require(self, name: str) -> str:
        """The setting ``name``, or an error that says how to set it."""
        value = getattr(self, name)
        if value:
            return str(value)
        env, option = SOURCES[name]
        raise MissingConfiguration(name.replace("_", " "), env_var=env,
                                   option=f"{option} (or `{name}` in {self.home / 'config.toml'})")

    @property
    def storage_spec(self) -> str:
        """The storage spec, defaulting to the local store under home."""
        return self.storage or f"local:{self.home / 'store'}"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    unknown = set(data) - set(SOURCES)
    if unknown:
        raise ConfigurationError(f"{path}: unknown setting(s) {sorted(unknown)}; "
                                 f"known: {sorted(SOURCES)}")
    return data


def load_settings(home: str | Path | None = None, **explicit: str | None) -> Settings:
    """Resolve settings: ``explicit`` arguments win over env vars, which win over the file."""
    root = home_dir(home)
    from_file = _read_file(root / "config.toml")
    values: dict[str, Any] = {}
    for name, (env, _option) in SOURCES.items():
        values[name] = explicit.get(name) or os.environ.get(env) or from_file.get(name)
    return Settings(home=root, **values)
