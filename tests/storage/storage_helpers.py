"""Helpers shared by the storage tests (not a test module)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_tree(root: Path) -> Path:
    """A small tree with the awkward cases: empty file, empty dir, hidden file, odd names,
    a multi-chunk file, nesting."""
    files = {
        "a.txt": b"hello\n",
        "empty": b"",
        ".hidden": b"dot",
        "sub/deeper/big.bin": os.urandom(3 * 262_144 + 11),
        "sub/name with spaces+plus%20\u00e9": b"odd",
        "sub/x.csv": b"1,2,3\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-dir").mkdir()
    (root / "sub" / "also-empty").mkdir()
    return root


def snapshot(root: Path) -> dict[str, str | None]:
    """relpath -> sha256 (files) or None (directories), to compare trees."""
    out: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = None if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


_RSS_SCRIPT = textwrap.dedent("""
    import hashlib, json, os, resource, sys
    from pathlib import Path
    import psutil
    from decentralml.storage import open_store

    spec, workdir, size_mb = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    src = workdir / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as out:           # generated on disk, never held in memory
        for _ in range(size_mb):
            block = os.urandom(1 << 20)
            digest.update(block)
            out.write(block)
    store = open_store(spec, progress=False)
    store.put_bytes(b"warm up")             # imports, sessions, pools: before the baseline
    base = psutil.Process().memory_info().rss
    cid = store.put(src)
    dest = store.get(cid, workdir / "back.bin")
    streamed = hashlib.sha256()
    for chunk in store.open(cid):
        streamed.update(chunk)
    back = hashlib.sha256()
    with open(dest, "rb") as f:
        while chunk := f.read(1 << 20):
            back.update(chunk)
    # VmHWM is this process image's own high-water mark; ru_maxrss is not: Linux carries it
    # over exec from the parent (a forked pytest worker would report pytest's peak)
    status = Path('/proc/self/status')
    hwm = [line for line in (status.read_text().splitlines() if status.exists() else [])
           if line.startswith('VmHWM:')]
    peak = (int(hwm[0].split()[1]) * 1024 if hwm
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"base": base, "peak": peak, "cid": cid,
                      "ok": back.digest() == digest.digest() == streamed.digest()}))
""")


def measure_rss(spec: str, workdir: Path, size_mb: int) -> dict[str, object]:
    """Put, get and stream a ``size_mb`` file through ``spec`` in a fresh interpreter; return
    its RSS before the transfer and its peak RSS (bytes)."""
    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, spec, str(workdir), str(size_mb)],
                          capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "DECENTRALML_PROGRESS": "0"})
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
