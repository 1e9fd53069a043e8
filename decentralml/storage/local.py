"""``LocalStore``: a content-addressed block directory, the embedded default backend.

Layout under the root (``~/.decentralml/store`` unless configured)::

    blocks/<2 chars>/<cid>   one file per block (raw leaves and dag-pb nodes), named by its CID
    tmp/                     staging for atomic writes (same filesystem as blocks/)
    pins/<cid>               a marker per pinned root (nothing is garbage-collected yet)

Why blocks rather than whole files: the store then holds exactly what IPFS holds, so a CID
means the same DAG in both, identical chunks are stored once, and a read verifies every block
against the CID its parent names while it streams.

Concurrency: a block is written to a unique temp file and ``os.replace``-d into place. Two
writers of the same block write identical bytes, so whichever rename lands last is still
correct, and a reader never sees a partial block. Blocks are written children first, so a root
that exists has all its descendants (unless someone deleted them; reads then fail loudly).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from decentralml.chain.types import StorageType
from decentralml.errors import StorageError
from decentralml.storage._download import download
from decentralml.storage.progress import transfer_progress
from decentralml.storage.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    RAW,
    BlockGetter,
    build_file,
    build_tree,
    cid_codec,
    cid_to_str,
    is_directory,
    iter_file_from_blocks,
    load_node,
    parse_cid,
    scan_tree,
)


class LocalStore:
    """Content-addressed blocks in a directory; same CIDs as ``ipfs add --cid-version=1``.

    ``durable=True`` fsyncs every block before it is renamed into place (slower; only worth it
    if the machine may lose power mid-write: without it a torn block is still caught by the
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

    def block_path(self, cid: str | bytes) -> Path:
        """Where the block ``cid`` lives (exposed for tests and tooling)."""
        text = cid_to_str(cid if isinstance(cid, bytes) else parse_cid(cid))
        return self.root / "blocks" / text[-3:-1] / text

    def _ensure_dirs(self) -> None:
        try:
            (self.root / "blocks").mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the local store at {self.root}: {exc}; "
                               "set DECENTRALML_STORAGE=local:/a/writable/dir") from exc

    def _write_block(self, cid: bytes, data: bytes) -> None:
        path = self.block_path(cid)
        try:
            if path.stat().st_size == len(data):
                return  # already stored (content-addressed: same name, same bytes)
        except FileNotFoundError:
            pass
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=path.name[-8:] + ".")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    if self.durable:
                        out.flush()
                        os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write to the local store at {self.root}: {exc}") from exc

    def _read_block(self, cid: bytes) -> bytes:
        try:
            with open(self.block_path(cid), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise StorageError(f"{cid_to_str(cid)} is not in the local store at {self.root}"
                               ) from None
        except OSError as exc:
            raise StorageError(f"cannot read the local store at {self.root}: {exc}") from exc

    # -- Store protocol ---------------------------------------------------------------------

    def put(self, path: Path) -> str:
        """Store a file or directory tree; return its CID (base32 CIDv1)."""
        items = scan_tree(Path(path))
        self._ensure_dirs()
        total = sum(item.size for item in items)
        with transfer_progress(f"store {Path(path).name}", total, self.progress) as advance:
            entry = build_tree(items, self._write_block, advance, self.chunk_size, self.max_links)
        return entry.cid_str

    def put_bytes(self, data: bytes) -> str:
        """Store a blob; return its CID."""
        self._ensure_dirs()
        entry = build_file(io.BytesIO(data), self._write_block, None, self.chunk_size,
                           self.max_links)
        return entry.cid_str

    def get(self, cid: str, dest: Path) -> Path:
        """Write ``cid`` to ``dest`` verified; on a mismatch nothing is left and
        :class:`~decentralml.errors.IntegrityError` is raised."""
        root = parse_cid(cid)
        self._require(root)
        with transfer_progress(f"fetch {cid[:16]}…", self._file_size(root),
                               self.progress) as advance:
            return download(root, Path(dest), self._read_block, iter_file_from_blocks, advance)

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a file's bytes; each block is verified before it is yielded."""
        root = parse_cid(cid)
        self._require(root)
        if is_directory(root, self._read_block):
            raise StorageError(f"{cid} is a directory; use get() to fetch it")
        return iter_file_from_blocks(root, self._read_block)

    def pin(self, cid: str) -> None:
        """Record a pin. Nothing is collected from a local store yet, so this only checks that
        the content is here and remembers that someone wants it kept."""
        root = parse_cid(cid)
        self._require(root)
        pins = self.root / "pins"
        pins.mkdir(exist_ok=True)
        (pins / cid_to_str(root)).touch()

    def exists(self, cid: str) -> bool:
        """Whether the root block is here (its descendants were written before it)."""
        return self.block_path(parse_cid(cid)).is_file()

    # -- helpers ----------------------------------------------------------------------------

    def _require(self, root: bytes) -> None:
        if not self.block_path(root).is_file():
            raise StorageError(f"{cid_to_str(root)} is not in the local store at {self.root} "
                               "(stored elsewhere? set DECENTRALML_STORAGE to that store)")

    def _file_size(self, root: bytes, get_block: BlockGetter | None = None) -> int | None:
        """The size of a file root for the progress bar (None for directories)."""
        get_block = get_block or self._read_block
        if cid_codec(root) == RAW:
            return self.block_path(root).stat().st_size
        try:
            _node, fs = load_node(root, get_block)
        except StorageError:
            return None
        return fs.filesize
