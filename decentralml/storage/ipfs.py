"""``IPFSStore``: content on an IPFS node through the Kubo RPC API (``/api/v0/...``), over requests.

Why not ``ipfshttpclient``: its last release (0.8.0a2) dates from 2021 and ``connect()`` refuses
any daemon newer than 0.8 with ``VersionMismatch``; every maintained Kubo is far newer. The few
endpoints we need (``add``, ``cat``, ``block/get``, ``block/stat``, ``pin/add``, ``version``)
are plain HTTP POSTs, so requests does it with full control over streaming.

Streaming both ways, never a whole file in memory:

* upload: a generator yields the ``multipart/form-data`` body part by part (every part has a
  ``Content-Type``: ``application/octet-stream`` for files, ``application/x-directory`` for
  directories) and each file 256 KiB at a time; requests sends it chunked. The same pass
  computes the CID locally, and a daemon that answers with another CID (different import
  settings) is an error, so both backends always agree.
* download: the DAG's internal nodes (a few KiB per 45 MB of file) come from ``block/get``
  and are verified against the root; the file's bytes come from one ``cat`` stream and each
  256 KiB leaf is hashed against the CID its verified parent names before it is passed on.
"""

from __future__ import annotations

import http.client
import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import quote_plus, urlencode, urlparse

import requests

from decentralml.chain.types import StorageType
from decentralml.errors import IntegrityError, StorageError
from decentralml.storage._download import download
from decentralml.storage._pipeline import (
    UnsupportedLayout,
    stream_copier,
    verified_stream,
    verify_copy,
)
from decentralml.storage.base import FetchLimits
from decentralml.storage.progress import Advance, transfer_progress
from decentralml.storage.unixfs.cid import MAX_BLOCK_SIZE, RAW, cid_codec, cid_to_str, parse_cid
from decentralml.storage.unixfs.importer import (
    CHUNK_SIZE,
    MAX_LINKS,
    FileBuilder,
    TreeItem,
    build_file,
    encode_directory,
    read_chunks,
    relayout,
    scan_tree,
)
from decentralml.storage.unixfs.importer import Entry as DagEntry
from decentralml.storage.unixfs.reader import (
    BlockGetter,
    is_directory,
    iter_file_segments,
    load_node,
    remember_last,
)

_UPLOAD_PIECE = 4 * 1024 * 1024


class IPFSStore:
    """A Kubo node's RPC API as a :class:`~decentralml.storage.base.Store`.

    ``timeout`` is (connect, read) seconds for each request; ``pin`` pins what :meth:`put`
    adds (the default, so the node's garbage collector keeps task assets).

    After an upload the daemon's DAG is checked to have exactly our layout (see
    :func:`~decentralml.storage.unixfs.importer.relayout`: only its internal nodes are fetched),
    so the CID it reports is the one :class:`LocalStore` computes for the same bytes.
    ``rehash=True`` also hashes every byte locally while uploading and compares the root (about
    1.7 s of CPU per GB, which a daemon on the same small machine feels).
    """

    storage_type = StorageType.Ipfs

    def __init__(self, api_url: str = "http://127.0.0.1:5001", *, progress: bool | None = None,
                 timeout: tuple[float, float] = (10.0, 600.0), pin: bool = True,
                 session: requests.Session | None = None, chunk_size: int = CHUNK_SIZE,
                 max_links: int = MAX_LINKS, rehash: bool = False) -> None:
        self.api_url = api_url.rstrip("/")
        self.progress = progress
        self.timeout = timeout
        self.pin_on_put = pin
        self.chunk_size = chunk_size
        self.max_links = max_links
        self.rehash = rehash
        self._session = session

    def __repr__(self) -> str:
        return f"IPFSStore({self.api_url!r})"

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per store, created on first use (no I/O at construction)."""
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def _post(self, endpoint: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None,
              *, data: Any = None, headers: dict[str, str] | None = None,
              stream: bool = False) -> requests.Response:
        url = f"{self.api_url}/api/v0/{endpoint}"
        try:
            resp = self.session.post(url, params=params, data=data, headers=headers,
                                     stream=stream, timeout=self.timeout)
        except requests.ConnectionError as exc:
            raise StorageError(
                f"cannot reach the IPFS API at {self.api_url} ({exc.__class__.__name__}); start "
                "a daemon (`ipfs daemon`) or set DECENTRALML_STORAGE to ipfs:http://HOST:PORT "
                "or local:PATH") from exc
        except requests.Timeout as exc:
            raise StorageError(f"the IPFS API at {self.api_url} timed out on {endpoint}") from exc
        except requests.RequestException as exc:
            raise StorageError(f"IPFS {endpoint} failed: {exc}") from exc
        if resp.status_code != 200:
            message = _error_message(resp)
            resp.close()
            raise StorageError(f"IPFS {endpoint} failed (HTTP {resp.status_code}): {message}")
        return resp

    def version(self) -> dict[str, Any]:
        """The daemon's ``/api/v0/version`` answer (``{"Version": "0.41.0", ...}``)."""
        result: dict[str, Any] = self._post("version").json()
        return result

    # -- put --------------------------------------------------------------------------------

    def put(self, path: Path) -> str:
        """Add a file or directory tree (pinned); return its CID, checked to be the one
        :class:`LocalStore` computes for the same content."""
        path = Path(path)
        items = scan_tree(path)
        total = sum(item.size for item in items)
        name = path.absolute().name or "root"
        with transfer_progress(f"upload {name}", total, self.progress) as advance:
            return self._add(items, name, advance)

    def put_bytes(self, data: bytes) -> str:
        """Add a blob (pinned); return its CID."""
        boundary = uuid.uuid4().hex
        local: list[DagEntry] = []

        def body() -> Iterator[bytes]:
            yield _part_header(boundary, "blob", "application/octet-stream")
            yield data
            yield _closing(boundary)
            if self.rehash:
                local.append(build_file(io.BytesIO(data), None, None, self.chunk_size,
                                        self.max_links))

        length = (len(_part_header(boundary, "blob", "application/octet-stream")) + len(data)
                  + len(_closing(boundary)))
        return self._send(body(), length, boundary, "blob",
                          lambda: local[0] if local else None, len(data))

    def _add(self, items: list[TreeItem], name: str, advance: Advance) -> str:
        boundary = uuid.uuid4().hex
        top = PurePosixPath(".")
        # With rehash: built entries of each directory's children, filled as files finish
        # streaming, so the directory nodes can be computed once the daemon has answered.
        children: dict[PurePosixPath, dict[str, DagEntry]] = {
            it.relpath: {} for it in items if it.is_dir}
        root_file: list[DagEntry] = []

        def part_name(it: TreeItem) -> str:
            return name if it.relpath == top else f"{name}/{it.relpath}"

        def body() -> Iterator[bytes]:
            for it in items:
                yield _part_header(boundary, part_name(it), _content_type(it))
                if it.is_dir:
                    continue
                builder = FileBuilder(None, self.max_links) if self.rehash else None
                # Without rehash nothing needs chunk boundaries here: send 4 MiB per syscall.
                piece = self.chunk_size if builder is not None else _UPLOAD_PIECE
                try:
                    with open(it.path, "rb") as stream:
                        for chunk in read_chunks(stream, piece):
                            if builder is not None:
                                builder.add_chunk(chunk)
                            yield chunk
                            advance(len(chunk))
                except OSError as exc:
                    raise StorageError(f"cannot read {it.path}: {exc}") from exc
                if builder is None:
                    continue
                if it.relpath == top:
                    root_file.append(builder.finish())
                else:
                    children[it.relpath.parent][it.relpath.name] = builder.finish()
            yield _closing(boundary)

        def local_root() -> DagEntry | None:
            if not self.rehash:
                return None
            if root_file:
                return root_file[0]
            for rel in sorted(children, key=lambda r: -len(r.parts)):
                entry = encode_directory(children[rel])
                if rel == top:
                    return entry
                children[rel.parent][rel.name] = entry
            raise AssertionError("no root directory")

        length = len(_closing(boundary)) + sum(
            len(_part_header(boundary, part_name(it), _content_type(it))) + it.size
            for it in items)
        size = None if items[0].is_dir else items[0].size
        return self._send(body(), length, boundary, name, local_root, size)

    def _send(self, body: Iterator[bytes], length: int, boundary: str, root_name: str,
              local_root: Callable[[], DagEntry | None], size: int | None) -> str:
        params: dict[str, Any] = {
            "cid-version": 1, "raw-leaves": "true", "hash": "sha2-256",
            "chunker": f"size-{self.chunk_size}", "pin": str(self.pin_on_put).lower(),
            "progress": "false", "wrap-with-directory": "false",
        }
        if self.max_links != MAX_LINKS:
            params["max-file-links"] = self.max_links
        resp = self._post("add", params, data=_SizedBody(body, length),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                          stream=True)
        daemon_cid: str | None = None
        with resp:
            for line in resp.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if "Message" in event and "Hash" not in event:
                    raise StorageError(f"IPFS add failed: {event['Message']}")
                if event.get("Name") == root_name and "Hash" in event:
                    daemon_cid = event["Hash"]
        if daemon_cid is None:
            raise StorageError(f"IPFS add at {self.api_url} did not report the root CID")
        root = parse_cid(daemon_cid)
        hint = (f"CIDv1, raw leaves, {self.chunk_size}-byte chunks, balanced DAG of "
                f"{self.max_links} links, plain directories; check the daemon's Import.* config")
        try:
            rebuilt = relayout(root, remember_last(self._block), size, self.chunk_size,
                               self.max_links)
        except StorageError as exc:
            raise StorageError(f"the IPFS daemon at {self.api_url} stored {daemon_cid} with "
                               f"another layout than ours ({hint}): {exc}") from exc
        if rebuilt.cid != root or (size is not None and rebuilt.filesize != size):
            raise StorageError(f"the IPFS daemon at {self.api_url} stored {daemon_cid} with "
                               f"another layout than ours ({hint})")
        ours = local_root()
        if ours is not None and ours.cid != root:
            raise StorageError(f"the IPFS daemon at {self.api_url} computed {daemon_cid} but "
                               f"this content is {ours.cid_str} ({hint})")
        return cid_to_str(root)

    # -- get --------------------------------------------------------------------------------

    def _block(self, cid: bytes) -> bytes:
        """A block's bytes (unverified: the walkers verify) via ``block/get``, size-capped."""
        with self._post("block/get", {"arg": cid_to_str(cid)}, stream=True) as resp:
            data = resp.raw.read(MAX_BLOCK_SIZE + 1, decode_content=True)
        if len(data) > MAX_BLOCK_SIZE:
            raise IntegrityError(f"block {cid_to_str(cid)} is larger than {MAX_BLOCK_SIZE} bytes")
        return bytes(data)

    def _open_stream(self, endpoint: str, params: dict[str, str]) -> BinaryIO:
        """A streamed response body over HTTP/1.0, read with ``read(n)``.

        Why not requests here: Kubo sends ``cat`` as ~4 KiB chunked-encoding frames and
        CPython's chunked decoder costs ~10 µs per frame (over 2.5 s per 256 MB, a third of
        raw speed). Asked over HTTP/1.0, Go's server sends the bytes unframed until it closes
        the connection; a truncated body still cannot pass verification.
        """
        parsed = urlparse(self.api_url)
        conn_cls = _HTTPS10 if parsed.scheme == "https" else _HTTP10
        conn = conn_cls(parsed.hostname or "127.0.0.1", parsed.port, timeout=self.timeout[1])
        path = f"{parsed.path.rstrip('/')}/api/v0/{endpoint}?{urlencode(params)}"
        try:
            conn.request("POST", path)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise StorageError(
                f"cannot reach the IPFS API at {self.api_url} ({exc}); start a daemon "
                "(`ipfs daemon`) or set DECENTRALML_STORAGE to ipfs:http://HOST:PORT or "
                "local:PATH") from exc
        if resp.status != 200:
            body = resp.read(64 * 1024)
            conn.close()
            try:
                message = str(json.loads(body)["Message"])
            except (ValueError, KeyError, TypeError):
                message = body[:500].decode("utf-8", "replace")
            raise StorageError(f"IPFS {endpoint} failed (HTTP {resp.status}): {message}")
        return resp

    def _read_file(self, cid: bytes, get_block: BlockGetter) -> Iterator[bytes]:
        """The file's bytes from one ``cat`` stream, each leaf verified before it is yielded."""
        stream: BinaryIO | None = None

        def read(n: int) -> bytes:
            nonlocal stream
            if stream is None:
                stream = self._open_stream("cat", {"arg": cid_to_str(cid)})
            return _read_exact(stream, n)

        try:
            yield from verified_stream(iter_file_segments(cid, get_block), read)
            if stream is not None and _read_exact(stream, 1):
                raise IntegrityError(f"{cid_to_str(cid)}: the daemon sent more bytes than the "
                                     "file holds")
        finally:
            if stream is not None:
                stream.close()

    def _copy_file(self, cid: bytes, get_block: BlockGetter, target: Path,
                   advance: Advance) -> None:
        """Download file ``cid`` into ``target`` (inside get()'s private staging directory):
        the ``cat`` stream goes to disk through one reused buffer, and the workers verify each
        leaf by reading the written copy back, so what is checked is what gets moved into
        place. Other DAG shapes (a single raw block, inline data) take the streaming path."""
        stream: BinaryIO | None = None

        def read_into(buffer: memoryview) -> int:
            nonlocal stream
            if stream is None:
                stream = self._open_stream("cat", {"arg": cid_to_str(cid)})
            return stream.readinto(buffer)  # type: ignore[attr-defined]

        if cid_codec(cid) != RAW:
            try:
                with open(target, "w+b", buffering=0) as out:
                    verify_copy(iter_file_segments(cid, get_block),
                                stream_copier(read_into, out.fileno()), out.fileno(), advance)
                    if stream is not None and _read_exact(stream, 1):
                        raise IntegrityError(f"{cid_to_str(cid)}: the daemon sent more bytes "
                                             "than the file holds")
                return
            except UnsupportedLayout:
                pass
            finally:
                if stream is not None:
                    stream.close()
        with open(target, "wb") as sink:
            for chunk in self._read_file(cid, get_block):
                sink.write(chunk)
                advance(len(chunk))

    def get(self, cid: str, dest: Path, *, limits: FetchLimits | None = None) -> Path:
        """Fetch ``cid`` (file or directory) to ``dest``, verified; nothing is left on mismatch."""
        root = parse_cid(cid)
        getter = remember_last(self._block)
        size = self._file_size(root, getter)
        with transfer_progress(f"download {cid[:16]}…", size, self.progress) as advance:
            return download(root, Path(dest), getter, self._read_file, advance,
                            self._copy_file, limits)

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a file's bytes, each 256 KiB leaf verified before it is yielded."""
        root = parse_cid(cid)
        getter = remember_last(self._block)
        if is_directory(root, getter):
            raise StorageError(f"{cid} is a directory; use get() to fetch it")
        return self._read_file(root, getter)

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively on the node (fetching it first if the node is online)."""
        self._post("pin/add", {"arg": cid_to_str(parse_cid(cid))}).close()

    def exists(self, cid: str) -> bool:
        """Whether the node has the root block locally (``block/stat`` offline: no network)."""
        try:
            self._post("block/stat", {"arg": cid_to_str(parse_cid(cid)), "offline": "true"}
                       ).close()
        except StorageError as exc:
            if "not found" in str(exc).lower():
                return False
            raise
        return True

    def _file_size(self, root: bytes, get_block: BlockGetter) -> int | None:
        if cid_codec(root) == RAW:
            return None
        _node, fs = load_node(root, get_block)
        return fs.filesize


def _error_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict) and "Message" in body:
        return str(body["Message"])
    return json.dumps(body)[:500]


def _content_type(item: TreeItem) -> str:
    return "application/x-directory" if item.is_dir else "application/octet-stream"


def _closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode()


def _part_header(boundary: str, filename: str, content_type: str) -> bytes:
    """One multipart part's header. Kubo URL-unescapes the filename (Go's ``url.QueryEscape``
    on the client side), which is what keeps slashes and odd characters in paths intact."""
    return (f"\r\n--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quote_plus(filename)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("ascii")


class _SizedBody:
    """A streamed request body of known length.

    Given ``__len__``, requests sends ``Content-Length`` instead of chunked encoding, and urllib3
    writes each piece as it comes (no framing, no copies): chunked framing of 1 MiB pieces cost
    ~0.3 s per 100 MB in urllib3. A file that grows or shrinks mid-upload is an error rather
    than a silently different upload.
    """

    def __init__(self, parts: Iterator[bytes], length: int) -> None:
        self.parts = parts
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for part in self.parts:
            sent += len(part)
            if sent > self.length:
                break
            yield part
        if sent != self.length:
            raise StorageError("a file changed size while it was being uploaded")


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes from ``stream`` (fewer only at the end of the stream)."""
    out = stream.read(n)
    if len(out) < n:  # top up short reads, should a stream return them
        chunks = [out]
        got = len(out)
        while got < n:
            more = stream.read(n - got)
            if not more:
                break
            chunks.append(more)
            got += len(more)
        out = b"".join(chunks)
    return bytes(out)


class _HTTP10(http.client.HTTPConnection):
    """HTTP/1.0 requests: the response body arrives unframed (see IPFSStore._open_stream)."""

    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


class _HTTPS10(http.client.HTTPSConnection):
    """HTTPS flavour of :class:`_HTTP10`."""

    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"
