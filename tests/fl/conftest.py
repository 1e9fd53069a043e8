"""Fixtures for the federated-learning tests: one TensorFlow import per session, offline data.

Keras writes a config into ``$KERAS_HOME`` when imported, so a temp dir is put there *before* the
session-scoped import (the per-test monkeypatch in tests/fixtures/env.py comes too late for an
import that happens once).
"""

from __future__ import annotations

import os
import tempfile
from types import ModuleType
from typing import Any

import numpy as np
import pytest

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="dml-fl-keras-")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def keras() -> ModuleType:
    """Keras, imported once; TF tests are skipped without the [tf] extra."""
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def digits(keras: ModuleType) -> Any:
    from decentralml.fl import load_digits_dataset

    return load_digits_dataset()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
