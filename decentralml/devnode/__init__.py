"""The embedded dev chain: a Substrate-compatible node with the DecentralML runtime in Python.

``DevNode`` speaks real JSON-RPC over websockets, real SCALE and MetadataV14, and checks real
sr25519/ed25519 signatures, so unmodified substrate-interface code cannot tell it from a
``--dev`` node for everything the SDK does. See :mod:`decentralml.devnode.node`.
"""

from __future__ import annotations

from decentralml.devnode.node import DevNode
from decentralml.devnode.server import RpcLimits

__all__ = ["DevNode", "RpcLimits"]
