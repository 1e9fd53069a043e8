"""``LocalStore``: a content-addressed directory, the embedded default backend.

Layout under the root (``~/.decentralml/store`` unless configured)::

    data/<2 chars>/<cid>     a file's bytes, named by the file's root CID
    blocks/<2 chars>/<cid>   dag-pb nodes: a file's internal nodes, directories
    tmp/                     staging for atomic writes (same filesystem as the rest)
    pins/<cid>               a marker per pinned root (nothing is garbage-collected yet)

Why whole files rather than one file per 256 KiB leaf (as IPFS's flatfs does): creating a file
costs milliseconds on many filesystems, i.e. seconds per GB, while the DAG's internal nodes
(~8 KiB per 45 MB) already name every leaf. A read walks those nodes and hashes each
256 KiB range of the data file against the leaf CID its verified parent names, before the
bytes are handed on, so a flipped byte anywhere is caught. The CID is the one
``ipfs add --cid-version=1`` gives, so content moves between backends unchanged.

Atomic and safe under concurrent writers: everything is written to a unique temp file and
``os.replace``-d into place. Two writers of the same CID write identical bytes, so whichever
rename lands last is still correct, and a reader never sees a partial file. A file's nodes are
written before its data and a directory's node after its entries, so a root that :meth:`exists`
has everything under it.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from decentralml.chain.types import StorageType
from decentralml.errors import IntegrityError, StorageError
from decentralml.storage._download import download
from decentralml.storage._pipeline import (
    copy_range,
    copy_supported,
    import_copy,
    import_stream,
    verified_stream,
    verify_copy,
)
from decentralml.storage.base import FetchLimits
from decentralml.storage.progress import transfer_progress
from decentralml.storage.unixfs.cid import DAG_PB, cid_codec, cid_to_str, parse_cid
from decentralml.storage.unixfs.dagpb import UnixFSType, decode_pbnode, decode_unixfs
from decentralml.storage.unixfs.importer import (
    CHUNK_SIZE,
    MAX_LINKS,
    Entry,
    TreeItem,
    build_tree,
    scan_tree,
)
from decentralml.storage.unixfs.reader import (
    BlockGetter,
    is_directory,
    iter_file_segments,
    load_node,
)

#: errno values meaning "this filesystem/kernel cannot copy_file_range": fall back to streaming.
_NO_COPY = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF,
            errno.ETXTBSY}


class LocalStore:
    """A content-addressed directory; same CIDs as ``ipfs add --cid-version=1``.

    ``durable=True`` fsyncs every file before it is renamed into place (slower; only worth it if
    the machine may lose power mid-write: without it a torn file is still caught by the
    verification on read, never returned).
    """

    storage_type = StorageType.Local

    def __init__(self, root: str | os.PathLike[str], *, progress: bool | None = None,
                 durable: bool = False, chunk_size: int = CHUNK_SIZE,
                 max_links: int = MAX_LINKS) -> None:
        self.root = Path(root).expanduser().absolute()
        self.progress = progress
        self.durable = durable
        self.chunk_size = chunk_size
        self.max_links = max_links

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- layout -----------------------------------------------------------------------------

    def _path(self, kind: str, cid: str | bytes) -> Path:
        text = cid_to_str(cid if isinstance(cid, bytes) else parse_cid(cid))
        return self.root / kind / text[-3:-1] / text

    def block_path(self, cid: str | bytes) -> Path:
        """Where the dag-pb node ``cid`` lives (exposed for tests and tooling)."""
        return self._path("blocks", cid)

    def data_path(self, cid: str | bytes) -> Path:
        """Where the bytes of the file whose root is ``cid`` live."""
        return self._path("data", cid)

    def _ensure_dirs(self) -> None:
        try:
            for sub in ("blocks", "data", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the local store at {self.root}: {exc}; "
                               "set DECENTRALML_STORAGE=local:/a/writable/dir") from exc

    @contextmanager
    def _atomic(self, final: Path) -> Iterator[BinaryIO]:
        """A temp file that becomes ``final`` (atomically) if the block exits cleanly."""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=final.name[-8:] + ".")
        except OSError as exc:
            raise StorageError(f"cannot write to the local store at {self.root}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
        except OSError as exc:
            raise StorageError(f"cannot write to the local store at {self.root}: {exc}") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _write_node(self, cid: bytes, data: bytes) -> None:
        """Sink for built blocks: dag-pb nodes are kept, raw leaves live in the data file."""
        if cid_codec(cid) != DAG_PB:
            return
        path = self.block_path(cid)
        if path.is_file() and path.stat().st_size == len(data):
            return  # already there: content-addressed, same name means same bytes
        with self._atomic(path) as out:
            out.write(data)

    def _read_node(self, cid: bytes) -> bytes:
        try:
            with open(self.block_path(cid), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise StorageError(f"{cid_to_str(cid)} is not in the local store at {self.root} "
                               "(stored elsewhere? set DECENTRALML_STORAGE to that store)"
                               ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the local store at {self.root}: {exc}") from exc

    def _import_into(self, fill: Callable[[BinaryIO], Entry], what: str) -> Entry:
        """Let ``fill`` write a fresh temp file in tmp/ (returning its DAG entry), then move it
        to data/<its CID>. One place for the atomic-write rule: a crash leaves a temp file at
        worst, never a torn data file."""
        self._ensure_dirs()
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="import.")
        try:
            with os.fdopen(fd, "w+b") as out:
                entry = fill(out)
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
            final = self.data_path(entry.cid)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        except OSError as exc:
            raise StorageError(f"cannot store {what} in the local store at {self.root}: "
                               f"{exc}") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        return entry

    def _import(self, source: BinaryIO, advance: Callable[[int], None] | None) -> Entry:
        """Copy ``source`` into the store while its DAG is built."""
        return self._import_into(
            lambda out: import_stream(source, out.write, self._write_node, advance,
                                      self.chunk_size, self.max_links), "a stream")

    def _import_path(self, path: Path, advance: Callable[[int], None]) -> Entry:
        """Import a file: copied in the kernel where possible (see ``import_copy``)."""
        if not copy_supported():
            with open(path, "rb") as source:
                return self._import(source, advance)

        def fill(out: BinaryIO) -> Entry:
            with open(path, "rb") as source:
                try:
                    return import_copy(source.fileno(), out.fileno(), self._write_node,
                                       advance, self.chunk_size, self.max_links)
                except OSError as exc:
                    if exc.errno not in _NO_COPY:
                        raise
                    out.truncate(0)  # this filesystem cannot copy_file_range: stream instead
                    out.seek(0)
                    source.seek(0)
                    return import_stream(source, out.write, self._write_node, advance,
                                         self.chunk_size, self.max_links)

        return self._import_into(fill, str(path))

    def _copy_file(self, cid: bytes, get_block: BlockGetter, target: Path,
                   advance: Callable[[int], None]) -> None:
        """Materialise file ``cid`` at ``target`` (inside get()'s private staging directory):
        copied in the kernel, then verified by reading the copy back, so what is checked is
        exactly what gets moved into place."""
        if not copy_supported():
            self._stream_to(cid, get_block, target, advance)
            return
        try:
            source = open(self.data_path(cid), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise StorageError(f"the data of {cid_to_str(cid)} is not in the local store at "
                               f"{self.root} (an interrupted put? put the file again)") from None
        with source, open(target, "w+b") as out:
            try:
                src_fd, dst_fd = source.fileno(), out.fileno()
                size = verify_copy(iter_file_segments(cid, get_block),
                                   lambda offset, length: copy_range(src_fd, dst_fd, offset,
                                                                     length),
                                   dst_fd, advance, lambda: os.fstat(src_fd).st_size)
                if os.fstat(src_fd).st_size != size:
                    raise IntegrityError(f"{cid_to_str(cid)}: the stored data is longer than "
                                         "the file its CID names (tampered with or corrupt)")
                return
            except OSError as exc:
                if exc.errno not in _NO_COPY:
                    raise
        self._stream_to(cid, get_block, target, advance)

    def _stream_to(self, cid: bytes, get_block: BlockGetter, target: Path,
                   advance: Callable[[int], None]) -> None:
        with open(target, "wb") as out:
            for chunk in self._read_file(cid, get_block):
                out.write(chunk)
                advance(len(chunk))

    # -- Store protocol ---------------------------------------------------------------------

    def put(self, path: Path) -> str:
        """Store a file or directory tree; return its CID (base32 CIDv1)."""
        items = scan_tree(Path(path))
        self._ensure_dirs()
        total = sum(item.size for item in items)
        with transfer_progress(f"store {Path(path).name}", total, self.progress) as advance:

            def import_file(item: TreeItem) -> Entry:
                return self._import_path(item.path, advance)

            entry = build_tree(items, self._write_node, advance, self.chunk_size,
                               self.max_links, import_file)
        return entry.cid_str

    def put_bytes(self, data: bytes) -> str:
        """Store a blob; return its CID."""
        return self._import(io.BytesIO(data), None).cid_str

    def get(self, cid: str, dest: Path, *, limits: FetchLimits | None = None) -> Path:
        """Write ``cid`` to ``dest`` verified; on a mismatch nothing is left and
        :class:`~decentralml.errors.IntegrityError` is raised."""
        root = parse_cid(cid)
        self._require(root)
        with transfer_progress(f"fetch {cid[:16]}…", self._file_size(root),
                               self.progress) as advance:
            return download(root, Path(dest), self._read_node, self._read_file, advance,
                            self._copy_file, limits)

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a file's bytes; each 256 KiB leaf is verified before it is yielded."""
        root = parse_cid(cid)
        self._require(root)
        if cid_codec(root) == DAG_PB and is_directory(root, self._read_node):
            raise StorageError(f"{cid} is a directory; use get() to fetch it")
        return self._read_file(root, self._read_node)

    def pin(self, cid: str) -> None:
        """Record a pin. Nothing is collected from a local store yet, so this only checks that
        the content is here and remembers that someone wants it kept."""
        root = parse_cid(cid)
        self._require(root)
        pins = self.root / "pins"
        pins.mkdir(exist_ok=True)
        (pins / cid_to_str(root)).touch()

    def exists(self, cid: str) -> bool:
        """Whether the store holds ``cid``: a file's data, or a directory's node (written after
        everything under it)."""
        root = parse_cid(cid)
        if self.data_path(root).is_file():
            return True
        if cid_codec(root) != DAG_PB or not self.block_path(root).is_file():
            return False
        try:
            kind = decode_unixfs(decode_pbnode(self._read_node(root)).data).type
        except StorageError:
            return False
        return kind in (UnixFSType.DIRECTORY, UnixFSType.HAMT_SHARD)

    # -- helpers ----------------------------------------------------------------------------

    def _read_file(self, cid: bytes, get_block: BlockGetter) -> Iterator[bytes]:
        """The verified bytes of file ``cid``: its nodes from blocks/, its leaves from data/."""
        try:
            source = open(self.data_path(cid), "rb")  # noqa: SIM115 - closed in finally
        except FileNotFoundError:
            raise StorageError(f"the data of {cid_to_str(cid)} is not in the local store at "
                               f"{self.root} (an interrupted put? put the file again)") from None
        try:
            yield from verified_stream(iter_file_segments(cid, get_block), source.read)
            if source.read(1):
                raise IntegrityError(f"{cid_to_str(cid)}: the stored data is longer than the "
                                     "file its CID names (tampered with or corrupt)")
        finally:
            source.close()

    def _require(self, root: bytes) -> None:
        if not self.exists(cid_to_str(root)):
            raise StorageError(f"{cid_to_str(root)} is not in the local store at {self.root} "
                               "(stored elsewhere? set DECENTRALML_STORAGE to that store)")

    def _file_size(self, root: bytes) -> int | None:
        """The size of a file root for the progress bar (None for directories)."""
        if cid_codec(root) != DAG_PB:
            return self.data_path(root).stat().st_size
        try:
            _node, fs = load_node(root, self._read_node)
        except StorageError:
            return None
        return fs.filesize
