"""Importing: the exact DAG ``ipfs add --cid-version=1`` builds, so "the same CID for the same
content" holds across the local store and IPFS.

* the file is cut into 256 KiB chunks (``size-262144``); each chunk is a **raw** block
  (CIDv1, codec ``raw``, sha2-256), and a file of at most one chunk *is* that raw block;
* chunks are grouped into a **balanced** tree of dag-pb nodes with at most 174 links each
  (Kubo's ``balanced`` layout: every leaf at the same depth, filled left to right);
* an internal node is a dag-pb ``PBNode`` whose ``Data`` is a UnixFS ``Data`` message
  ``{Type: File, filesize, blocksizes[]}`` and whose links have an empty name and ``Tsize`` =
  encoded size of the whole child subtree;
* a directory is a dag-pb node with ``Data = {Type: Directory}`` and one named link per entry,
  sorted by name (byte order).

:func:`relayout` checks that a DAG built elsewhere (a daemon) has exactly this layout.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from decentralml.errors import IntegrityError, InvalidInput, StorageError
from decentralml.storage.unixfs.cid import (
    DAG_PB,
    RAW,
    cid_codec,
    cid_to_str,
    make_cid,
    verify_block,
)
from decentralml.storage.unixfs.dagpb import (
    Link,
    UnixFSType,
    encode_pbnode,
    encode_unixfs,
    validate_name,
)
from decentralml.storage.unixfs.reader import BlockGetter, RawLeaf, iter_file_segments, load_node

#: Kubo's default chunker (``size-262144``).
CHUNK_SIZE = 262_144
#: Kubo's default maximum number of links of a file node (``Import.UnixFSFileMaxLinks``).
MAX_LINKS = 174
#: Kubo switches a directory to a HAMT shard once its estimated size reaches this
#: (``Import.UnixFSHAMTDirectorySizeThreshold``). We do not write shards: see
#: :func:`encode_directory`.
HAMT_THRESHOLD = 262_144

#: Receives every block as it is built, children before parents: (binary CID, bytes).
BlockSink = Callable[[bytes, bytes], None]


@dataclass(frozen=True)
class Entry:
    """A built DAG: root CID (binary), file bytes under it, cumulative encoded size (Tsize)."""

    cid: bytes
    filesize: int
    tsize: int

    @property
    def cid_str(self) -> str:
        return cid_to_str(self.cid)


class FileBuilder:
    """Incremental balanced-DAG builder: :meth:`add_chunk` each chunk in order, then :meth:`finish`.

    Equivalent to Kubo's balanced layout: leaves are grouped ``max_links`` at a time into
    level-1 nodes, those into level-2 nodes, and so on until one root remains; a group is only
    sealed when the next entry arrives, so memory is O(depth x max_links) whatever the file size.
    Blocks are handed to ``sink`` children-first, so a store that writes them in order never has
    a root whose descendants are missing.
    """

    def __init__(self, sink: BlockSink | None = None, max_links: int = MAX_LINKS) -> None:
        if max_links < 2:
            raise ValueError("max_links must be >= 2")
        self._sink = sink
        self._max_links = max_links
        self._levels: list[list[Entry]] = []
        self._finished = False

    def add_chunk(self, chunk: bytes) -> None:
        """Add the next chunk (all but the last must be exactly the chunk size)."""
        cid = make_cid(RAW, chunk)
        if self._sink is not None:
            self._sink(cid, chunk)
        self.add_leaf(cid, len(chunk))

    def add_leaf(self, cid: bytes, size: int) -> None:
        """Add the next raw leaf by its (already computed) CID; the sink does not see it."""
        self._push(0, Entry(cid, size, size))

    def _push(self, level: int, entry: Entry) -> None:
        if level == len(self._levels):
            self._levels.append([])
        group = self._levels[level]
        if len(group) == self._max_links:
            self._push(level + 1, self._seal(group))
            group.clear()
        group.append(entry)

    def _seal(self, group: list[Entry]) -> Entry:
        filesize = sum(e.filesize for e in group)
        data = encode_unixfs(UnixFSType.FILE, filesize=filesize,
                             blocksizes=[e.filesize for e in group])
        block = encode_pbnode([Link(e.cid, "", e.tsize) for e in group], data)
        cid = make_cid(DAG_PB, block)
        if self._sink is not None:
            self._sink(cid, block)
        return Entry(cid, filesize, len(block) + sum(e.tsize for e in group))

    def finish(self) -> Entry:
        """Seal every pending group; return the root. An empty file is one empty raw leaf."""
        if self._finished:
            raise RuntimeError("FileBuilder.finish() called twice")
        self._finished = True
        if not self._levels:
            self.add_chunk(b"")
        level = 0
        while True:
            group = self._levels[level]
            if level == len(self._levels) - 1 and len(group) == 1:
                return group[0]
            # Through _push, so a parent level that is already full is sealed in turn.
            self._push(level + 1, self._seal(group))
            level += 1


def encode_directory(entries: dict[str, Entry], sink: BlockSink | None = None) -> Entry:
    """A basic UnixFS directory over ``entries`` (name -> built child), links sorted by name.

    Kubo turns a directory into a HAMT shard once the sum over its links of
    ``len(name) + len(cid)`` reaches 256 KiB (thousands of entries); we refuse such directories
    rather than produce a CID that differs from Kubo's.
    """
    links = [Link(entry.cid, validate_name(name), entry.tsize)
             for name, entry in sorted(entries.items(), key=lambda kv: kv[0].encode("utf-8"))]
    estimate = sum(len(link.name.encode("utf-8")) + len(link.cid) for link in links)
    if estimate >= HAMT_THRESHOLD:
        raise StorageError(f"a directory with {len(links)} entries would be a HAMT shard in IPFS, "
                           "which this SDK does not write; split it into subdirectories or "
                           "archive it")
    block = encode_pbnode(links, encode_unixfs(UnixFSType.DIRECTORY))
    cid = make_cid(DAG_PB, block)
    if sink is not None:
        sink(cid, block)
    return Entry(cid, 0, len(block) + sum(link.tsize for link in links))

def read_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Fixed-size chunks of ``stream`` (the last one may be short), like Kubo's size splitter.

    Short reads (pipes, sockets) are topped up so chunk boundaries never depend on how the
    bytes happened to arrive.
    """
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        while len(chunk) < chunk_size:
            more = stream.read(chunk_size - len(chunk))
            if not more:
                break
            chunk += more
        yield chunk


def build_file(stream: BinaryIO, sink: BlockSink | None = None, advance: Callable[[int], None]
               | None = None, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Import one file's bytes: the root entry, every block handed to ``sink`` on the way."""
    builder = FileBuilder(sink, max_links)
    for chunk in read_chunks(stream, chunk_size):
        builder.add_chunk(chunk)
        if advance is not None:
            advance(len(chunk))
    return builder.finish()


@dataclass(frozen=True)
class TreeItem:
    """One entry of a tree to import: path relative to the root (root itself is ``.``)."""

    relpath: PurePosixPath
    path: Path
    is_dir: bool
    size: int


def scan_tree(root: Path) -> list[TreeItem]:
    """Every file and directory under ``root`` in depth-first pre-order, siblings by name
    (the order a multipart upload to Kubo must follow: a directory, then its contents).

    Symlinks and special files are refused: following a link could import something outside
    the tree, and UnixFS symlinks would be restored as links pointing anywhere.
    """
    def item(path: Path, rel: PurePosixPath) -> TreeItem:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            raise InvalidInput("path", f"{path} is a symlink; only regular files and "
                                       "directories can be stored")
        if stat.S_ISDIR(st.st_mode):
            return TreeItem(rel, path, True, 0)
        if stat.S_ISREG(st.st_mode):
            return TreeItem(rel, path, False, st.st_size)
        raise InvalidInput("path", f"{path} is not a regular file or directory")

    try:
        top = item(root, PurePosixPath("."))
    except FileNotFoundError:
        raise InvalidInput("path", f"{root} does not exist") from None
    items: list[TreeItem] = []
    pending = [top]
    while pending:  # pre-order depth-first: a directory, then everything under it
        current = pending.pop()
        items.append(current)
        if not current.is_dir:
            continue
        children = []
        for name in sorted(os.listdir(current.path),
                           key=lambda n: n.encode("utf-8", "surrogateescape")):
            try:
                validate_name(name)
                name.encode("utf-8")
            except (IntegrityError, UnicodeEncodeError):
                raise InvalidInput("path", f"{current.path / name}: unusable file name") from None
            children.append(item(current.path / name, current.relpath / name))
        pending.extend(reversed(children))
    return items


def build_tree(items: list[TreeItem], sink: BlockSink | None = None,
               advance: Callable[[int], None] | None = None, chunk_size: int = CHUNK_SIZE,
               max_links: int = MAX_LINKS,
               import_file: Callable[[TreeItem], Entry] | None = None) -> Entry:
    """Import what :func:`scan_tree` listed; return the root (a file's or a directory's).

    ``import_file`` replaces the default per-file import (read, chunk, hand blocks to ``sink``),
    for a store that keeps file contents its own way.
    """
    children: dict[PurePosixPath, dict[str, Entry]] = {i.relpath: {} for i in items if i.is_dir}
    root: Entry | None = None

    def place(it: TreeItem, entry: Entry) -> None:
        nonlocal root
        if it is items[0]:
            root = entry
        else:
            children[it.relpath.parent][it.relpath.name] = entry

    for it in items:
        if not it.is_dir:
            try:
                if import_file is not None:
                    place(it, import_file(it))
                    continue
                with open(it.path, "rb") as stream:
                    place(it, build_file(stream, sink, advance, chunk_size, max_links))
            except OSError as exc:
                raise StorageError(f"cannot read {it.path}: {exc}") from exc
    # Directories deepest first, so every child is built before its parent.
    for it in sorted((i for i in items if i.is_dir), key=lambda i: -len(i.relpath.parts)):
        place(it, encode_directory(children[it.relpath], sink))
    assert root is not None
    return root


def relayout(cid: bytes, get_block: BlockGetter, size: int | None = None,
             chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Rebuild the DAG under ``cid`` from its leaf CIDs with *our* layout rules.

    The result's CID equals ``cid`` exactly when the DAG (built elsewhere, e.g. by a daemon)
    has the layout :class:`FileBuilder` and :func:`encode_directory` produce: raw leaves of
    ``chunk_size`` bytes (the last may be shorter), balanced with ``max_links`` per node, plain
    sorted directories. Only internal nodes are fetched (a few KiB per 45 MB), so this checks an
    upload's layout without hashing its bytes again. ``size`` is a raw root's size, if known.
    """
    if cid_codec(cid) == RAW:
        if size is None:
            size = len(verify_block(cid, get_block(cid)))
        if size > chunk_size:
            raise StorageError(f"{cid_to_str(cid)}: a raw leaf of {size} bytes, more than the "
                               f"{chunk_size}-byte chunks this layout uses")
        return Entry(cid, size, size)
    node, fs = load_node(cid, get_block)
    if fs.type in (UnixFSType.DIRECTORY, UnixFSType.HAMT_SHARD):
        if fs.type == UnixFSType.HAMT_SHARD:
            raise StorageError(f"{cid_to_str(cid)} is a sharded (HAMT) directory, which this "
                               "SDK does not write")
        return encode_directory({validate_name(link.name): relayout(
            link.cid, get_block, link.tsize, chunk_size, max_links) for link in node.links})
    builder = FileBuilder(None, max_links)
    last = chunk_size
    for segment in iter_file_segments(cid, get_block):
        if not isinstance(segment, RawLeaf) or segment.size is None:
            raise StorageError(f"{cid_to_str(cid)}: leaves are not raw blocks")
        if last != chunk_size:
            raise StorageError(f"{cid_to_str(cid)}: a {last}-byte leaf before the end (not "
                               f"{chunk_size}-byte chunks)")
        builder.add_leaf(segment.cid, segment.size)
        last = segment.size
    if last > chunk_size:
        raise StorageError(f"{cid_to_str(cid)}: a {last}-byte leaf (chunks are {chunk_size})")
    return builder.finish()
