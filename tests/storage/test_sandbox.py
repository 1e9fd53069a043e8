"""The sandbox backend and the output watchdog, on their own (the hostile scripts run through
the CLI are in tests/cli/test_sandbox_attacks.py)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

from decentralml.chain.types import TaskType
from decentralml.storage import sandbox as sb
from decentralml.storage._quota import measure, over_limit
from decentralml.storage.bundle import MANIFEST_NAME, build_manifest, load_bundle
from decentralml.storage.runner import (
    NetworkNotAllowed,
    RunLimits,
    SandboxWarning,
    TaskFailed,
    run_bundle,
)


def _bundle(root: Path, script: str, *, network: bool = False):  # type: ignore[no-untyped-def]
    root.mkdir(parents=True)
    (root / "start_task.sh").write_text(script)
    manifest = build_manifest(root, task_type=TaskType.ModelContributor, network=network)
    (root / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(root, cid="bafytest")


def test_python_paths_bind_the_environment_not_the_clone_around_it() -> None:
    paths = sb.python_paths()
    assert Path(sys.prefix).absolute() in paths or any(
        Path(sys.prefix).absolute().is_relative_to(p) for p in paths)
    repo = Path(__file__).resolve().parents[2]
    assert repo not in paths and Path.home() not in paths  # never the clone or the home
    import decentralml

    package = Path(decentralml.__file__).parent
    assert any(package.is_relative_to(p) for p in paths)


def test_an_environment_that_would_expose_the_home_is_refused(tmp_path: Path) -> None:
    with pytest.raises(sb.SandboxUnavailable, match="would expose it"):
        sb.check_exposure([tmp_path], [tmp_path / "home"])
    sb.check_exposure([tmp_path / "venv"], [tmp_path / "home"])  # a sibling is fine


def test_missing_bwrap_is_refused_with_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with pytest.raises(sb.SandboxUnavailable, match=r"apt-get install bubblewrap.*--no-sandbox"):
        sb.resolve("auto")
    assert sb.resolve("none") == ("none", None, None)
    bundle = _bundle(tmp_path / "b", 'touch "$DECENTRALML_OUTPUT_DIR/ran"\n')
    with pytest.raises(sb.SandboxUnavailable):
        run_bundle(bundle, task_id=1, submission_id=1, data_dir=None,
                   workdir=tmp_path / "w", limits=RunLimits(timeout=30))
    assert not (tmp_path / "w").exists()  # refused before anything was created


def test_no_sandbox_warns_and_says_so_in_the_result(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b", 'echo ok > "$DECENTRALML_OUTPUT_DIR/o"\n')
    with pytest.warns(SandboxWarning, match="without a sandbox.*SSH keys"):
        result = run_bundle(bundle, task_id=1, submission_id=1, data_dir=None,
                            workdir=tmp_path / "w", limits=RunLimits(timeout=30), sandbox="none")
    assert result.sandbox == "none" and result.ok


def test_sandboxed_run_sees_fixed_paths_and_no_host(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_text("1")
    script = """
{ echo "$DECENTRALML_OUTPUT_DIR $DECENTRALML_DATA_DIR $DECENTRALML_TASK_DIR $HOME $TMPDIR"
  pwd; cat "$DECENTRALML_DATA_DIR/x"; echo; ls /; cat /proc/1/cmdline | tr '\\0' ' '; echo
  touch "$DECENTRALML_DATA_DIR/y" 2>&1 || echo data-ro
  touch "$DECENTRALML_TASK_DIR/y" 2>&1 || echo task-ro
} > "$DECENTRALML_OUTPUT_DIR/seen" 2>&1
"""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SandboxWarning)  # auto never runs unconfined
        result = run_bundle(_bundle(tmp_path / "b", script), task_id=1, submission_id=1,
                            data_dir=data, workdir=tmp_path / "w", limits=RunLimits(timeout=60))
    assert result.sandbox == "bubblewrap"
    seen = (result.output_dir / "seen").read_text().splitlines()
    assert seen[0] == "/dml/output /dml/data /dml/task /dml/home /tmp"
    assert seen[1] == "/dml/task" and seen[2] == "1"
    assert "home" not in seen[3].split() and "work" not in (seen[3] + seen[4])
    assert str(tmp_path) not in "\n".join(seen)  # not even the host paths of its own dirs
    assert "data-ro" in seen and "task-ro" in seen


def test_network_declared_but_not_allowed_is_refused_before_anything(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "b", "true\n", network=True)
    with pytest.raises(NetworkNotAllowed, match="allow_network"):
        run_bundle(bundle, task_id=1, submission_id=1, data_dir=None, workdir=tmp_path / "w",
                   limits=RunLimits(timeout=30))
    assert not (tmp_path / "w").exists()


def test_output_limit_kills_and_deletes(tmp_path: Path) -> None:
    script = ('for i in $(seq 1 50); do head -c 1048576 /dev/zero > "$DECENTRALML_OUTPUT_DIR/f$i"'
              '; done\n')
    with pytest.raises(TaskFailed, match="more than 4194304 bytes") as err:
        run_bundle(_bundle(tmp_path / "b", script), task_id=1, submission_id=1, data_dir=None,
                   workdir=tmp_path / "w",
                   limits=RunLimits(timeout=60, max_output_bytes=4 * 1024**2))
    result = err.value.result
    assert not result.ok and result.output_exceeded
    assert list(result.output_dir.iterdir()) == []


def test_measure_counts_sparse_files_by_length_and_stops_at_entries(tmp_path: Path) -> None:
    with open(tmp_path / "sparse", "wb") as fh:
        fh.truncate(10 * 1024**3)  # 10 GiB of length, no blocks
    usage = measure([tmp_path], max_entries=10)
    assert usage.bytes >= 10 * 1024**3
    assert "more than 1024 bytes" in (over_limit(usage, max_bytes=1024, max_entries=10) or "")
    for i in range(20):
        (tmp_path / f"e{i}").touch()
    many = measure([tmp_path], max_entries=10)
    assert over_limit(many, max_bytes=1 << 40, max_entries=10) is not None
    os.unlink(tmp_path / "sparse")
