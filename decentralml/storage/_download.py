"""Materialise a verified DAG at a path, all or nothing (shared by both backends).

Everything is written under a hidden staging directory next to ``dest`` (same filesystem, so the
final ``os.replace`` is atomic) and only moved into place once every block has been verified; on
any error the staging directory is deleted, so a tampered download never leaves a file behind
that something could later load or run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from decentralml.errors import FetchLimitExceeded, StorageError
from decentralml.storage._fs import remove_tree_quietly
from decentralml.storage.base import FetchLimits
from decentralml.storage.progress import Advance
from decentralml.storage.unixfs.cid import DAG_PB, RAW, cid_codec, cid_to_str
from decentralml.storage.unixfs.reader import BlockGetter, load_node, remember_last, walk_tree

#: Streams a file's verified bytes given its CID and a block getter.
FileReader = Callable[[bytes, BlockGetter], Iterator[bytes]]
#: Writes a file's verified bytes to a (private, staging) path itself: a backend's fast path.
FileCopier = Callable[[bytes, BlockGetter, Path, Advance], None]


class _Budget:
    """What is left of a fetch's :class:`FetchLimits`, charged as the DAG streams."""

    def __init__(self, cid: bytes, limits: FetchLimits) -> None:
        self.cid = cid_to_str(cid)
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout
        self.bytes = 0
        self.declared = 0
        self.entries = 0

    def _fail(self, what: str) -> None:
        raise FetchLimitExceeded(f"refused {self.cid}: {what}; nothing was kept")

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            self._fail(f"the fetch took longer than {self.limits.timeout:g} s "
                       "(limit: FetchLimits.timeout)")

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            self._fail(f"more than {self.limits.max_entries} files and directories "
                       "(limit: max_entries)")
        self.tick()

    def declare(self, relpath: PurePosixPath, size: int) -> None:
        """Charge a file by the size its verified root declares (the planning pass)."""
        per_file = self.limits.max_file_bytes
        if per_file is not None and size > per_file:
            self._fail(f"{str(relpath)!r} holds {size} bytes (limit: max_file_bytes={per_file})")
        self.declared += size
        if self.declared > self.limits.max_bytes:
            self._fail(f"it expands to more than {self.limits.max_bytes} bytes at "
                       f"{str(relpath)!r} (limit: max_bytes)")

    def plan(self, cid: bytes, get_block: BlockGetter) -> None:
        """Walk the DAG's directory and file-root nodes only, charging every limit, before a
        byte is written: a bomb is refused by what it declares, not after it filled the disk.

        The sizes come from verified nodes, and the write pass checks that the bytes match.
        """
        for relpath, child, is_dir in walk_tree(cid, get_block, max_depth=self.limits.max_depth):
            self.entry()
            if not is_dir:
                self.declare(relpath, _declared_size(child, get_block))

    def advance(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            self._fail(f"it expands to more than {self.limits.max_bytes} bytes "
                       "(limit: max_bytes)")
        self.tick()

    def getter(self, get_block: BlockGetter) -> BlockGetter:
        def get(cid: bytes) -> bytes:
            self.tick()
            return get_block(cid)
        return get


def _declared_size(cid: bytes, get_block: BlockGetter) -> int:
    """A file's size as its (verified) root node says; 0 for a raw leaf, which is one block
    (at most 2 MiB) charged as it is written: the total written never exceeds ``max_bytes``."""
    if cid_codec(cid) == RAW:
        return 0
    if cid_codec(cid) != DAG_PB:
        return 0
    _node, fs = load_node(cid, get_block)
    return fs.filesize if fs.filesize is not None else len(fs.data or b"") + sum(fs.blocksizes)


def download(cid: bytes, dest: Path, get_block: BlockGetter, read_file: FileReader,
             advance: Advance, copy_file: FileCopier | None = None,
             limits: FetchLimits | None = None) -> Path:
    """Write the file or directory ``cid`` to ``dest`` (replacing a file or an empty directory).

    ``copy_file``, if given, materialises each file instead of streaming ``read_file``.
    ``limits`` (default :class:`FetchLimits`) are charged while the DAG streams.
    """
    budget = _Budget(cid, limits or FetchLimits())

    def charge(n: int) -> None:
        advance(n)
        budget.advance(n)

    get_block = budget.getter(get_block)
    dest = Path(dest).expanduser().absolute()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    except OSError as exc:
        raise StorageError(f"cannot write to {dest.parent}: {exc}") from exc
    try:
        content = staging / "content"
        getter = remember_last(get_block)
        budget.plan(cid, getter)
        for relpath, child, is_dir in walk_tree(cid, getter, max_depth=budget.limits.max_depth):
            target = content / relpath
            try:
                if is_dir:
                    target.mkdir()
                    continue
                if copy_file is not None:
                    copy_file(child, getter, target, charge)
                    continue
                with open(target, "wb") as out:
                    for chunk in read_file(child, getter):
                        out.write(chunk)
                        charge(len(chunk))
            except OSError as exc:  # e.g. a path too long for the filesystem
                raise StorageError(f"cannot write {str(relpath)[:120]!r}: "
                                   f"{exc.strerror or exc}") from exc
        try:
            os.replace(content, dest)
        except OSError as exc:
            raise StorageError(f"cannot put the download at {dest}: {exc} "
                               "(a non-empty directory or a file of the other kind is there)"
                               ) from exc
    finally:
        remove_tree_quietly(staging)
    return dest
