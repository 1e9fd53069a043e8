"""Settings resolve in one place: option, then env var, then config.toml; errors say what to set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from decentralml.config import (
    ENV_KEYRING,
    ENV_MAX_OUTPUT_BYTES,
    ENV_MAX_PROCESSES,
    ENV_NODE_URL,
    SOURCES,
    load_settings,
)
from decentralml.errors import ConfigurationError, MissingConfiguration

needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason="config.toml needs 3.11")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, _option in SOURCES.values():
        monkeypatch.delenv(env, raising=False)


@needs_tomllib
def test_option_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('node_url = "ws://file"\nmax_processes = 7\n')
    assert load_settings(tmp_path).node_url == "ws://file"
    assert load_settings(tmp_path).max_processes == 7
    monkeypatch.setenv(ENV_NODE_URL, "ws://env")
    monkeypatch.setenv(ENV_MAX_PROCESSES, "9")
    assert load_settings(tmp_path).node_url == "ws://env"
    assert load_settings(tmp_path).max_processes == 9
    assert load_settings(tmp_path, node_url="ws://option").node_url == "ws://option"


def test_runner_limits_are_positive_integers_and_errors_name_the_env_var(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(tmp_path).max_output_bytes is None
    monkeypatch.setenv(ENV_MAX_OUTPUT_BYTES, "1048576")
    assert load_settings(tmp_path).max_output_bytes == 1 << 20
    for bad in ("0", "-1", "1e6", "lots"):
        monkeypatch.setenv(ENV_MAX_OUTPUT_BYTES, bad)
        with pytest.raises(ConfigurationError, match=f"{ENV_MAX_OUTPUT_BYTES}: '{bad}' is not"):
            load_settings(tmp_path)


def test_a_bad_keyring_names_where_it_came_from(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEYRING, "vault")
    with pytest.raises(ConfigurationError, match=f"{ENV_KEYRING}: 'vault' is not a keyring"):
        load_settings(tmp_path)
    with pytest.raises(ConfigurationError, match="--keyring: 'vault' is not a keyring"):
        load_settings(tmp_path, keyring="vault")
    assert load_settings(tmp_path, keyring="os").keyring == "os"


def test_a_missing_setting_names_the_env_var_and_the_option(tmp_path: Path) -> None:
    with pytest.raises(MissingConfiguration, match=f"set {ENV_NODE_URL} or pass --node"):
        load_settings(tmp_path).require("node_url")


def test_the_cli_reads_its_env_vars_through_the_config_module() -> None:
    """No option of the root command reads an env var itself (click's envvar), so there is one
    reader and one precedence; the help still names each variable."""
    from decentralml.cli.main import cli

    by_option = {p.name: p for p in cli.params}
    for name, (env, _option) in SOURCES.items():
        param = by_option.get(name if name != "node_url" else "node")
        if param is None:
            continue
        assert param.envvar is None, name
        assert env in (getattr(param, "help", "") or ""), name
