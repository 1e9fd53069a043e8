"""Content-addressed storage for task assets and results.

Two backends behind one interface (:class:`Store`): :class:`LocalStore` (a content-addressed
directory, the default) and :class:`IPFSStore` (a Kubo daemon over its RPC API). Both compute
the CID ``ipfs add --cid-version=1`` computes and verify every byte they return against it;
see docs/storage.md.
"""

from __future__ import annotations

from decentralml.storage.base import Store
from decentralml.storage.config import open_store
from decentralml.storage.ipfs import IPFSStore
from decentralml.storage.local import LocalStore

__all__ = ["IPFSStore", "LocalStore", "Store", "open_store"]
