"""A session-wide client on the session devnode (connecting decodes metadata: do it once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from decentralml.devnode import DevNode
from tests.devnode.helpers import Client


@pytest.fixture(scope="session")
def client(devnode: DevNode) -> Iterator[Client]:
    c = Client(devnode.url)
    yield c
    c.close()


@pytest.fixture()
def fresh_client(fresh_devnode: DevNode) -> Iterator[Client]:
    c = Client(fresh_devnode.url)
    yield c
    c.close()
