"""Shared fixtures: a real devnode over a websocket and a real IPFS daemon (see tests/fixtures/)."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.devnode", "tests.fixtures.chains", "tests.fixtures.ipfs",
                  "tests.fixtures.env"]
