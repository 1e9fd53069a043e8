"""The locked environment: uv.lock still satisfies pyproject.toml, and the environment the tests
run in is the one the lock describes (not whatever a registry served the day it was installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UV = REPO / ".tools" / "uv" / "bin" / "uv"

pytestmark = pytest.mark.skipif(not UV.is_file(), reason="uv is installed by `make install`")


def _uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1",
           "UV_PROJECT_ENVIRONMENT": sys.prefix}
    return subprocess.run([str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_lock_satisfies_pyproject() -> None:
    done = _uv("lock", "--check", "--offline")
    assert done.returncode == 0, done.stderr


def test_the_check_fails_when_pyproject_leaves_the_lock_behind(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    text = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    assert '"click>=8.1",' in text
    (tmp_path / "pyproject.toml").write_text(text.replace('"click>=8.1",', '"click>=8.1,<8.1",'),
                                             encoding="utf-8")
    done = _uv("lock", "--check", "--offline", cwd=tmp_path)
    assert done.returncode != 0


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="not in a virtual environment")
def test_this_environment_is_the_locked_one() -> None:
    """Every package the lock pins for the test extras is installed at exactly that version."""
    done = _uv("sync", "--locked", "--check", "--offline", "--inexact", "--extra", "tf-cpu",
               "--extra", "dev", "--extra", "dp")
    assert done.returncode == 0, f"{sys.prefix} differs from uv.lock:\n{done.stderr}"
