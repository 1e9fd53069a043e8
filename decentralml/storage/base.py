"""The one small interface every content-addressed store implements.

A store maps content to a CID and back. Both backends (``LocalStore``, ``IPFSStore``) compute the
same CID for the same bytes (CIDv1, raw leaves, 256 KiB chunks, balanced UnixFS DAG, as
``ipfs add --cid-version=1``), so a task can move between them and a CID recorded on chain means
the same thing everywhere. Every read is verified against its CID while it streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from decentralml.chain.types import StorageType


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one :meth:`Store.get`, enforced while the DAG streams, before bytes land.

    A CID proves what content is, not how big it is: a few stored blocks can name a directory of
    millions of entries or a file of terabytes (directory and file bombs). ``max_bytes`` and
    ``max_file_bytes`` are checked against each file's size as its verified root node declares
    it, before the file is written, and again against the bytes written; ``max_entries`` counts
    files and directories, ``max_depth`` directory nesting, ``timeout`` the whole fetch in
    seconds (checked between blocks and chunks, so one slow read can add the backend's own
    per-request timeout). Breaking one raises
    :class:`~decentralml.errors.FetchLimitExceeded` and nothing is left at the destination.
    """

    max_bytes: int = 64 * 1024**3
    max_file_bytes: int | None = None
    max_entries: int = 1_000_000
    max_depth: int = 256
    timeout: float = 3600.0


@runtime_checkable
class Store(Protocol):
    """Content-addressed storage: put a file or a directory, get it back verified."""

    #: What goes on chain next to the CID (``assets_storage`` / ``result_storage``).
    storage_type: StorageType

    def put(self, path: Path) -> str:
        """Store a file or a directory tree; return its CID (CIDv1, base32)."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store a small blob; return its CID."""
        ...

    def get(self, cid: str, dest: Path, *, limits: FetchLimits | None = None) -> Path:
        """Fetch ``cid`` (file or directory) to ``dest``, verified; return ``dest``.

        On a mismatch nothing is left at ``dest`` and :class:`IntegrityError` is raised; over
        ``limits`` (default :class:`FetchLimits`), :class:`FetchLimitExceeded`.
        """
        ...

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a file's bytes, verified chunk by chunk against the CID."""
        ...

    def pin(self, cid: str) -> None:
        """Keep ``cid`` from being garbage collected."""
        ...

    def exists(self, cid: str) -> bool:
        """Whether the store holds ``cid`` (without fetching it)."""
        ...
