"""Materialise a verified DAG at a path, all or nothing (shared by both backends).

Everything is written under a hidden staging directory next to ``dest`` (same filesystem, so the
final ``os.replace`` is atomic) and only moved into place once every block has been verified; on
any error the staging directory is deleted, so a tampered download never leaves a file behind
that something could later load or run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from decentralml.errors import StorageError
from decentralml.storage.progress import Advance
from decentralml.storage.unixfs import BlockGetter, remember_last, walk_tree

#: Streams a file's verified bytes given its CID and a block getter.
FileReader = Callable[[bytes, BlockGetter], Iterator[bytes]]
#: Writes a file's verified bytes to a (private, staging) path itself: a backend's fast path.
FileCopier = Callable[[bytes, BlockGetter, Path, Advance], None]


def download(cid: bytes, dest: Path, get_block: BlockGetter, read_file: FileReader,
             advance: Advance, copy_file: FileCopier | None = None) -> Path:
    """Write the file or directory ``cid`` to ``dest`` (replacing a file or an empty directory).

    ``copy_file``, if given, materialises each file instead of streaming ``read_file``.
    """
    dest = Path(dest).expanduser().absolute()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    except OSError as exc:
        raise StorageError(f"cannot write to {dest.parent}: {exc}") from exc
    try:
        content = staging / "content"
        getter = remember_last(get_block)
        for relpath, child, is_dir in walk_tree(cid, getter):
            target = content / relpath
            if is_dir:
                target.mkdir()
                continue
            if copy_file is not None:
                copy_file(child, getter, target, advance)
                continue
            with open(target, "wb") as out:
                for chunk in read_file(child, getter):
                    out.write(chunk)
                    advance(len(chunk))
        try:
            os.replace(content, dest)
        except OSError as exc:
            raise StorageError(f"cannot put the download at {dest}: {exc} "
                               "(a non-empty directory or a file of the other kind is there)"
                               ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
