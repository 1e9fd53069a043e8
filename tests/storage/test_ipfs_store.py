"""IPFSStore against a real Kubo daemon: round trips, CIDs equal to Kubo's and to LocalStore's,
tampering refused (by a lying HTTP layer and by corrupting the daemon's own blockstore)."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from decentralml.chain.types import StorageType
from decentralml.errors import IntegrityError, StorageError
from decentralml.storage import IPFSStore, LocalStore, Store
from decentralml.storage.unixfs.cid import RAW, parse_cid
from tests.fixtures.ipfs import Daemon
from tests.storage.storage_helpers import make_tree, measure_rss, snapshot

pytestmark = pytest.mark.ipfs


def test_is_a_store(ipfs_store: IPFSStore) -> None:
    assert isinstance(ipfs_store, Store)
    assert ipfs_store.storage_type == StorageType.Ipfs
    assert ipfs_store.version()["Version"]


@pytest.mark.parametrize("size", [0, 1, 262_143, 262_144, 262_145, 1_000_000])
def test_file_round_trip_and_cids_agree(size: int, ipfs_store: IPFSStore, local_store: LocalStore,
                                        ipfs_cli: Callable[..., str], tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(size))
    cid = ipfs_store.put(src)
    assert cid == local_store.put(src) == ipfs_cli("add", "--cid-version=1", "-Q", "-n", str(src))
    assert ipfs_store.exists(cid)
    assert ipfs_store.get(cid, tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert b"".join(ipfs_store.open(cid)) == src.read_bytes()
    assert ipfs_store.put_bytes(src.read_bytes()) == cid


def test_nested_directory_round_trip(ipfs_store: IPFSStore, local_store: LocalStore,
                                     ipfs_cli: Callable[..., str], tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    cid = ipfs_store.put(src)
    assert cid == local_store.put(src)
    assert cid == ipfs_cli("add", "-r", "-H", "--cid-version=1", "-Q", "-n", str(src))
    dest = ipfs_store.get(cid, tmp_path / "dest")
    assert snapshot(dest) == snapshot(src)
    with pytest.raises(StorageError, match="directory"):
        ipfs_store.open(cid)


def test_content_moves_between_backends(ipfs_store: IPFSStore, local_store: LocalStore,
                                        tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    cid = local_store.put(src)
    moved = local_store.get(cid, tmp_path / "via-local")
    assert ipfs_store.put(moved) == cid
    assert LocalStore(tmp_path / "fresh", progress=False).put(
        ipfs_store.get(cid, tmp_path / "via-ipfs")) == cid


def test_sharded_directories_from_kubo_can_be_read(ipfs_store: IPFSStore, local_store: LocalStore,
                                                   ipfs_cli: Callable[..., str],
                                                   tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    for i in range(2500):
        (src / f"{i:05d}-{'x' * 100}").write_bytes(str(i).encode())
    cid = ipfs_cli("add", "-r", "--cid-version=1", "-Q", str(src))
    assert snapshot(ipfs_store.get(cid, tmp_path / "back")) == snapshot(src)
    with pytest.raises(StorageError, match="HAMT"):
        local_store.put(src)


def test_missing_content_and_pins(ipfs_store: IPFSStore, local_store: LocalStore,
                                  tmp_path: Path) -> None:
    absent = local_store.put_bytes(os.urandom(64))
    assert not ipfs_store.exists(absent)
    with pytest.raises(StorageError, match="not found"):
        ipfs_store.get(absent, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    present = ipfs_store.put_bytes(b"pin me")
    ipfs_store.pin(present)
    pins = requests.post(f"{ipfs_store.api_url}/api/v0/pin/ls",
                         params={"arg": present, "type": "recursive"}, timeout=10).json()
    assert present in json.dumps(pins)


def test_unreachable_daemon_says_what_to_set(tmp_path: Path) -> None:
    store = IPFSStore("http://127.0.0.1:9", progress=False, timeout=(2, 2))
    with pytest.raises(StorageError, match="DECENTRALML_STORAGE"):
        store.put_bytes(b"x")


# -- tampering ---------------------------------------------------------------------------------

class _Flipping:
    """A response body that flips one byte at ``offset``: a daemon (or a proxy) that lies."""

    def __init__(self, stream: Any, offset: int) -> None:
        self.stream = stream
        self.offset = offset
        self.pos = 0

    def read(self, n: int) -> bytes:
        data = bytearray(self.stream.read(n))
        if self.pos <= self.offset < self.pos + len(data):
            data[self.offset - self.pos] ^= 0x01
        self.pos += len(data)
        return bytes(data)

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()


class _LyingStore(IPFSStore):
    def __init__(self, api: str, endpoint: str, offset: int) -> None:
        super().__init__(api, progress=False)
        self.endpoint = endpoint
        self.offset = offset

    def _open_stream(self, endpoint: str, params: dict[str, str]) -> Any:
        stream = super()._open_stream(endpoint, params)
        return _Flipping(stream, self.offset) if endpoint == self.endpoint else stream

    def _block(self, cid: bytes) -> bytes:
        data = bytearray(super()._block(cid))
        if self.endpoint == "block/get" and len(data) > self.offset:
            data[self.offset] ^= 0x01
        return bytes(data)


@pytest.mark.parametrize("endpoint,offset", [("cat", 0), ("cat", 600_000), ("block/get", 20)])
def test_lying_daemon_is_caught(endpoint: str, offset: int, ipfs_store: IPFSStore,
                                tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(os.urandom(1_000_000))
    cid = ipfs_store.put(src)
    liar = _LyingStore(ipfs_store.api_url, endpoint, offset)
    dest = tmp_path / "out" / "f"
    with pytest.raises(IntegrityError):
        liar.get(cid, dest)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    received = bytearray()
    with pytest.raises(IntegrityError):
        for chunk in liar.open(cid):
            received += chunk
    assert len(received) <= offset  # nothing past the bad leaf was handed out
    assert src.read_bytes().startswith(bytes(received))


def test_extra_bytes_from_the_daemon_are_refused(ipfs_store: IPFSStore, tmp_path: Path) -> None:
    cid = ipfs_store.put_bytes(os.urandom(300_000))

    class Padded(IPFSStore):
        def _open_stream(self, endpoint: str, params: dict[str, str]) -> Any:
            real = super()._open_stream(endpoint, params)
            return io.BytesIO(real.read() + b"extra")

    with pytest.raises(IntegrityError, match="more bytes"):
        Padded(ipfs_store.api_url, progress=False).get(cid, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_corrupted_daemon_blockstore_is_caught(ipfs_daemon: Daemon, ipfs_store: IPFSStore,
                                               tmp_path: Path) -> None:
    if ipfs_daemon.repo is None:
        pytest.skip("the daemon's repo is unknown (external DECENTRALML_IPFS_API)")
    src = tmp_path / "f"
    src.write_bytes(os.urandom(700_000))
    cid = ipfs_store.put(src)
    # Kubo's flatfs keeps a block at blocks/<next-to-last 2 chars>/<base32(multihash)>.data and
    # does not re-hash on read (Datastore.HashOnRead is off by default).
    leaves = [link for link in requests.post(f"{ipfs_store.api_url}/api/v0/refs",
                                             params={"arg": cid}, timeout=10).text.split()
              if '"Ref"' in link]
    leaf = parse_cid(json.loads(leaves[1])["Ref"])
    assert leaf[1] == RAW
    key = base64.b32encode(leaf[2:]).decode().rstrip("=")
    block = ipfs_daemon.repo / "blocks" / key[-3:-1] / f"{key}.data"
    data = bytearray(block.read_bytes())
    data[100] ^= 0x01
    block.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        ipfs_store.get(cid, tmp_path / "back")
    assert not (tmp_path / "back").exists()


def test_daemon_with_other_import_settings_is_refused(ipfs_store: IPFSStore,
                                                      tmp_path: Path) -> None:
    class OtherCid(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any,
                    **kwargs: Any) -> requests.Response:
            if str(url).endswith("/api/v0/add"):
                kwargs["params"] = {**kwargs["params"], "cid-version": 0, "raw-leaves": "false"}
            return super().request(method, url, *args, **kwargs)

    store = IPFSStore(ipfs_store.api_url, progress=False, session=OtherCid())
    with pytest.raises(StorageError, match="Import"):
        store.put_bytes(os.urandom(1000))


@pytest.mark.slow
def test_300mb_streams_with_bounded_rss(ipfs_api: str, tmp_path: Path) -> None:
    result = measure_rss(f"ipfs:{ipfs_api}", tmp_path, 300)
    assert result["ok"]
    growth = int(str(result["peak"])) - int(str(result["base"]))
    assert growth < 64 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"


def test_rehash_mode_agrees(ipfs_api: str, local_store: LocalStore, tmp_path: Path) -> None:
    store = IPFSStore(ipfs_api, progress=False, rehash=True)
    src = make_tree(tmp_path / "src")
    assert store.put(src) == local_store.put(src)
    blob = os.urandom(700_000)
    assert store.put_bytes(blob) == local_store.put_bytes(blob)


def test_layout_check_catches_a_foreign_chunker(ipfs_store: IPFSStore, tmp_path: Path) -> None:
    class OtherChunker(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any,
                    **kwargs: Any) -> requests.Response:
            if str(url).endswith("/api/v0/add"):
                kwargs["params"] = {**kwargs["params"], "chunker": "size-100000"}
            return super().request(method, url, *args, **kwargs)

    store = IPFSStore(ipfs_store.api_url, progress=False, session=OtherChunker())
    (tmp_path / "f").write_bytes(os.urandom(300_000))
    with pytest.raises(StorageError, match="layout"):
        store.put(tmp_path / "f")
