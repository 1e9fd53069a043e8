"""Hash 256 KiB leaves on worker threads while the calling thread does the I/O.

SHA-256 runs at ~600 MB/s per core here, about the speed of the disk or the daemon, so hashing
inline would halve throughput. ``hashlib`` releases the GIL on large buffers, so a small thread
pool hashes the next leaves while this thread reads and writes; a bounded window (a few MiB)
keeps memory flat whatever the file size, and results are consumed in order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from decentralml.errors import IntegrityError
from decentralml.storage.unixfs.cid import MAX_BLOCK_SIZE, RAW, make_cid
from decentralml.storage.unixfs.importer import (
    CHUNK_SIZE,
    MAX_LINKS,
    BlockSink,
    Entry,
    FileBuilder,
    read_chunks,
)
from decentralml.storage.unixfs.reader import RawLeaf, check_leaf

#: Bytes read at once, and batches in flight (x BATCH of memory).
BATCH = 4 * 1024 * 1024
WINDOW = 4
WORKERS = 2


def _done(value: bytes) -> Future[bytes]:
    future: Future[bytes] = Future()
    future.set_result(value)
    return future


def _check_batch(leaves: list[RawLeaf], data: bytes, offsets: list[int]) -> bytes:
    view = memoryview(data)
    for leaf, start, end in zip(leaves, offsets, offsets[1:], strict=False):
        check_leaf(leaf, view[start:end])  # type: ignore[arg-type]  # any buffer hashes
    return data


def verified_stream(segments: Iterable[RawLeaf | bytes], read: Callable[[int], bytes]
                    ) -> Iterator[bytes]:
    """The file's bytes, read in order with ``read(n)``, each piece yielded only once verified.

    ``segments`` comes from :func:`~decentralml.storage.unixfs.reader.iter_file_segments`, i.e. leaf
    CIDs and sizes already authenticated by the root. Consecutive leaves are read in batches of
    up to :data:`BATCH` bytes (fewer syscalls and allocations; one bytes object written as is)
    and hashed on the pool, ``WINDOW`` batches ahead. A short read or a byte that differs raises
    :class:`IntegrityError`; nothing from the first bad batch on is yielded.
    """
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-verify") as pool:
        pending: deque[Future[bytes]] = deque()
        batch: list[RawLeaf] = []
        batch_size = 0

        def flush() -> None:
            nonlocal batch, batch_size
            if not batch:
                return
            data = read(batch_size)
            if len(data) != batch_size:
                raise IntegrityError(f"the stream ended early ({len(data)} of {batch_size} "
                                     "bytes of a batch of leaves)")
            offsets = [0]
            for leaf in batch:
                offsets.append(offsets[-1] + (leaf.size or 0))
            # Split the batch between the workers, so both cores hash it.
            step = max(1, len(batch) // WORKERS)
            futures = [pool.submit(_check_batch, batch[i:i + step], data, offsets[i:i + step + 1])
                       for i in range(0, len(batch), step)]
            pending.append(_gather(futures, data))
            batch, batch_size = [], 0

        try:
            for segment in segments:
                if isinstance(segment, RawLeaf) and segment.size is not None:
                    batch.append(segment)
                    batch_size += segment.size
                    if batch_size >= BATCH:
                        flush()
                elif isinstance(segment, RawLeaf):  # a raw root: size unknown, one block
                    flush()
                    data = read(MAX_BLOCK_SIZE + 1)
                    if len(data) > MAX_BLOCK_SIZE:
                        raise IntegrityError(f"a raw block over {MAX_BLOCK_SIZE} bytes")
                    pending.append(pool.submit(check_leaf, segment, data))
                else:
                    flush()
                    if read(len(segment)) != segment:
                        raise IntegrityError("streamed bytes differ from the verified node data")
                    pending.append(_done(segment))
                while len(pending) >= WINDOW:
                    yield pending.popleft().result()
            flush()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _gather(futures: list[Future[bytes]], data: bytes) -> Future[bytes]:
    """A future for ``data`` that resolves once every check in ``futures`` passed."""
    out: Future[bytes] = Future()
    remaining = [len(futures)]

    def done(f: Future[bytes]) -> None:
        if out.done():
            return
        exc = f.exception() if not f.cancelled() else IntegrityError("verification cancelled")
        if exc is not None:
            out.set_exception(exc)
            return
        remaining[0] -= 1
        if remaining[0] == 0:
            out.set_result(data)

    for f in futures:
        f.add_done_callback(done)
    return out


def _leaf_cids(data: bytes, bounds: list[tuple[int, int]]) -> list[bytes]:
    view = memoryview(data)
    return [make_cid(RAW, view[start:end]) for start, end in bounds]  # type: ignore[arg-type]


class _LeafHashing:
    """Leaves hashed on worker threads while the caller keeps reading or copying; their CIDs go
    to the DAG builder in file order. Shared by both import paths so the ordering and the
    in-flight bound are written once."""

    def __init__(self, pool: ThreadPoolExecutor, builder: FileBuilder) -> None:
        self.pool = pool
        self.builder = builder
        self.pending: deque[tuple[list[Future[list[bytes]]], list[int]]] = deque()

    def add(self, hash_fn: Callable[[Any, list[tuple[int, int]]], list[bytes]], source: Any,
            bounds: list[tuple[int, int]]) -> None:
        """Queue the leaves ``bounds`` of ``source``, split evenly across the workers."""
        step = max(1, -(-len(bounds) // WORKERS))
        futures = [self.pool.submit(hash_fn, source, bounds[i:i + step])
                   for i in range(0, len(bounds), step)]
        self.pending.append((futures, [end - start for start, end in bounds]))

    def settle(self, keep: int = 0) -> None:
        """Hand finished batches to the builder until at most ``keep`` are in flight."""
        while len(self.pending) > keep:
            futures, sizes = self.pending.popleft()
            cids = [cid for future in futures for cid in future.result()]
            for cid, size in zip(cids, sizes, strict=True):
                self.builder.add_leaf(cid, size)

    def finish(self) -> Entry:
        self.settle()
        return self.builder.finish()


def import_stream(stream: BinaryIO, on_chunk: Callable[[bytes], object] | None,
                  sink: BlockSink | None, advance: Callable[[int], None] | None = None,
                  chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> Entry:
    """Chunk ``stream`` and build its DAG (dag-pb nodes go to ``sink``), handing the bytes to
    ``on_chunk`` (e.g. a write) in batches of whole chunks while the workers hash them."""
    batch_bytes = chunk_size * max(1, BATCH // chunk_size)
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-hash") as pool:
        leaves = _LeafHashing(pool, FileBuilder(sink, max_links))
        for data in read_chunks(stream, batch_bytes):
            leaves.add(_leaf_cids, data,
                       [(i, min(i + chunk_size, len(data))) for i in range(0, len(data),
                                                                            chunk_size)])
            if on_chunk is not None:
                on_chunk(data)
            if advance is not None:
                advance(len(data))
            leaves.settle(keep=WINDOW)
        return leaves.finish()


# --------------------------------------------------------------------------------------------
# Kernel-side copies for the local store.
# --------------------------------------------------------------------------------------------

class UnsupportedLayout(Exception):
    """The DAG is valid but not one :func:`verify_copy` handles; use the streaming path."""


#: Bytes copied per step before their leaves are handed to the hashing workers.
SEGMENT = 32 * 1024 * 1024


def copy_range(src_fd: int, dst_fd: int, offset: int, length: int) -> int:
    """Copy ``length`` bytes at ``offset`` from ``src_fd`` to the same offset of ``dst_fd`` in
    the kernel (``copy_file_range``, what ``cp`` uses); return the bytes copied (short at EOF)."""
    done = 0
    while done < length:
        n = os.copy_file_range(src_fd, dst_fd, length - done, offset + done, offset + done)
        if n == 0:
            break
        done += n
    return done


def _hash_leaves(fd: int, bounds: list[tuple[int, int]]) -> list[bytes]:
    return [make_cid(RAW, os.pread(fd, end - start, start)) for start, end in bounds]


def _check_leaves(fd: int, leaves: list[tuple[RawLeaf, int]]) -> None:
    for leaf, offset in leaves:
        check_leaf(leaf, os.pread(fd, leaf.size or 0, offset))


def copy_supported() -> bool:
    """Whether ``os.copy_file_range`` exists here (Linux, Python >= 3.8)."""
    return hasattr(os, "copy_file_range")


def import_copy(src_fd: int, dst_fd: int, sink: BlockSink | None,
                advance: Callable[[int], None] | None = None, chunk_size: int = CHUNK_SIZE,
                max_links: int = MAX_LINKS) -> Entry:
    """Copy ``src_fd`` into ``dst_fd`` in the kernel and build the DAG of *what was written*.

    The leaves are hashed by reading back the destination (a private temp file, hot in the
    page cache), so the CID always describes the stored bytes, even if the source changes
    meanwhile. Copying in the kernel avoids two user-space copies per byte, which is what keeps
    a local put near ``cp`` speed. Raises ``OSError`` if the filesystem refuses the copy; the
    caller then falls back to :func:`import_stream`.
    """
    segment = chunk_size * max(1, SEGMENT // chunk_size)
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-hash") as pool:
        leaves = _LeafHashing(pool, FileBuilder(sink, max_links))
        offset = 0
        while True:
            copied = copy_range(src_fd, dst_fd, offset, segment)
            if copied == 0:
                break
            leaves.add(_hash_leaves, dst_fd,
                       [(i, min(i + chunk_size, offset + copied))
                        for i in range(offset, offset + copied, chunk_size)])
            if advance is not None:
                advance(copied)
            offset += copied
            leaves.settle(keep=2)
            if copied < segment:
                break
        return leaves.finish()


def verify_copy(segments: Iterable[RawLeaf | bytes], copy_range: Callable[[int, int], int],
                dst_fd: int, advance: Callable[[int], None] | None = None,
                raw_root_size: Callable[[], int] | None = None) -> int:
    """Write a file whose leaves are ``segments`` into ``dst_fd`` with ``copy_range(offset,
    length) -> copied`` (a kernel copy, or a download), then verify every leaf by reading back
    ``dst_fd`` (a private staging file) on the workers, so what is checked is exactly what will
    be moved into place. Returns the file size; raises :class:`IntegrityError`."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="dml-verify") as pool:
        pending: deque[list[Future[None]]] = deque()
        group: list[tuple[RawLeaf, int]] = []
        group_start = offset = 0

        def flush() -> None:
            nonlocal group, group_start
            if not group:
                return
            length = offset - group_start
            if copy_range(group_start, length) != length:
                raise IntegrityError("the content is shorter than its CID says")
            step = max(1, -(-len(group) // WORKERS))
            pending.append([pool.submit(_check_leaves, dst_fd, group[i:i + step])
                            for i in range(0, len(group), step)])
            if advance is not None:
                advance(length)
            group, group_start = [], offset
            while len(pending) > 2:
                for future in pending.popleft():
                    future.result()

        for seg in segments:
            if not isinstance(seg, RawLeaf):
                raise UnsupportedLayout("a file node with inline data")
            if seg.size is None:  # a raw root: the whole file is one block
                if raw_root_size is None:
                    raise UnsupportedLayout("a raw root of unknown size")
                size = raw_root_size()
                if size > MAX_BLOCK_SIZE:
                    raise IntegrityError(f"a raw block over {MAX_BLOCK_SIZE} bytes")
                seg = RawLeaf(seg.cid, size)
            group.append((seg, offset))
            offset += seg.size or 0
            if offset - group_start >= SEGMENT:
                flush()
        flush()
        while pending:
            for future in pending.popleft():
                future.result()
    return offset


def stream_copier(read_into: Callable[[memoryview], int], dst_fd: int
                  ) -> Callable[[int, int], int]:
    """A ``copy_range`` for :func:`verify_copy` that writes the next bytes of a stream (read
    with ``readinto`` into one reused buffer: no per-read allocation) at ``offset``."""
    buffer = memoryview(bytearray(BATCH))

    def copy_range(offset: int, length: int) -> int:
        done = 0
        while done < length:
            n = read_into(buffer[:min(BATCH, length - done)])
            if not n:
                break
            written = 0
            while written < n:
                written += os.pwrite(dst_fd, buffer[written:n], offset + done + written)
            done += n
        return done

    return copy_range
