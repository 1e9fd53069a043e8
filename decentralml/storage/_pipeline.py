"""Hash 256 KiB leaves on worker threads while the calling thread does the I/O.

SHA-256 runs at ~600 MB/s per core here, about the speed of the disk or the daemon, so hashing
inline would halve throughput. ``hashlib`` releases the GIL on large buffers, so a small thread
pool hashes the next leaves while this thread reads and writes; a bounded window (a few MiB)
keeps memory flat whatever the file size, and results are consumed in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from decentralml.errors import IntegrityError
from decentralml.storage.unixfs import (
    CHUNK_SIZE,
    MAX_BLOCK_SIZE,
    MAX_LINKS,
    RAW,
    BlockSink,
    Entry,
    FileBuilder,
    RawLeaf,
    check_leaf,
    make_cid,
    read_chunks,
)

#: Leaves in flight (x 256 KiB of memory).
WINDOW = 16
WORKERS = 2


def _done(value: bytes) -> Future[bytes]:
    future: Future[bytes] = Future()
    future.set_result(value)
    return future


def verified_stream(segments: Iterable[RawLeaf | bytes], read: Callable[[int], bytes]
                    ) -> Iterator[bytes]:
    """The file's bytes, read in order with ``read(n)``, each leaf yielded only once verified.

    ``segments`` comes from :func:`~decentralml.storage.unixfs.iter_file_segments`, i.e. leaf
    CIDs and sizes already authenticated by the root. A short read or a byte that differs raises
    :class:`IntegrityError`; nothing after the first bad leaf is yielded.
    """
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-verify") as pool:
        pending: deque[Future[bytes]] = deque()
        try:
            for segment in segments:
                if isinstance(segment, RawLeaf):
                    limit = MAX_BLOCK_SIZE + 1 if segment.size is None else segment.size
                    data = read(limit)
                    if segment.size is None and len(data) > MAX_BLOCK_SIZE:
                        raise IntegrityError(f"a raw block over {MAX_BLOCK_SIZE} bytes")
                    pending.append(pool.submit(check_leaf, segment, data))
                else:
                    if read(len(segment)) != segment:
                        raise IntegrityError("streamed bytes differ from the verified node data")
                    pending.append(_done(segment))
                while len(pending) >= WINDOW:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def import_stream(stream: BinaryIO, on_chunk: Callable[[bytes], object] | None,
                  sink: BlockSink | None, advance: Callable[[int], None] | None = None,
                  chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Chunk ``stream``, pass each chunk to ``on_chunk`` (e.g. a write) while its CID is
    computed on a worker thread; return the built DAG (dag-pb nodes go to ``sink``)."""
    builder = FileBuilder(sink, max_links)
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-hash") as pool:
        pending: deque[tuple[Future[bytes], int]] = deque()
        for chunk in read_chunks(stream, chunk_size):
            pending.append((pool.submit(make_cid, RAW, chunk), len(chunk)))
            if on_chunk is not None:
                on_chunk(chunk)
            if advance is not None:
                advance(len(chunk))
            while len(pending) >= WINDOW:
                cid, size = pending.popleft()
                builder.add_leaf(cid.result(), size)
        while pending:
            cid, size = pending.popleft()
            builder.add_leaf(cid.result(), size)
    return builder.finish()
