"""The contributor's runner: env scrubbing, timeout killing the group, rlimits, output packing.

Bundles are built on disk with the real manifest code and loaded with :func:`load_bundle` (which
verifies them), so no store is needed except for packing results. These tests check the runner's
own mechanics on the host (``sandbox="none"``: host paths and pids are visible to the test);
tests/storage/test_sandbox.py checks the same run inside bubblewrap and what it contains.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from decentralml.chain.types import TaskType
from decentralml.errors import BundleError, IntegrityError, InvalidInput, RunnerError
from decentralml.storage import runner
from decentralml.storage.bundle import (
    MANIFEST_NAME,
    Bundle,
    Manifest,
    build_manifest,
    fetch_bundle,
    load_bundle,
)
from decentralml.storage.runner import (
    RESULT_SIDECARS,
    MissingRequirements,
    RunLimits,
    TaskFailed,
    build_env,
    check_requirements,
    pack_result,
    run_bundle,
)


def make_bundle(root: Path, script: str, *, files: dict[str, str] | None = None,
                task_type: TaskType = TaskType.ModelContributor, requirements: tuple[str, ...] = (),
                outputs: tuple[str, ...] = ()) -> Bundle:
    root.mkdir(parents=True)
    (root / "start_task.sh").write_text(script)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    manifest = build_manifest(root, task_type=task_type, requirements=requirements,
                              outputs=outputs)
    (root / MANIFEST_NAME).write_bytes(manifest.to_json())
    return load_bundle(root, cid="bafytest")


def run(bundle: Bundle, tmp_path: Path, name: str = "work", **kwargs: Any) -> runner.RunResult:
    limit_names = ("timeout", "cpu_seconds", "memory_bytes", "max_output_bytes", "max_processes")
    limits = {k: kwargs.pop(k) for k in limit_names if k in kwargs}
    limits.setdefault("timeout", 30)
    kwargs["limits"] = runner.RunLimits(**limits)
    kwargs.setdefault("data_dir", None)
    kwargs.setdefault("sandbox", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runner.SandboxWarning)
        return run_bundle(bundle, task_id=7, submission_id=11, workdir=tmp_path / name, **kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------------------------
# the happy path


def test_runs_with_task_context_and_reads_sidecar(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("42")
    script = """set -e
echo "start $DECENTRALML_TASK_ID/$DECENTRALML_SUBMISSION_ID"
echo "error line" >&2
pwd > "$DECENTRALML_OUTPUT_DIR/cwd.txt"
python helper.py
"""
    helper = """import json, os, sys
from pathlib import Path
out = Path(os.environ["DECENTRALML_OUTPUT_DIR"])
import decentralml  # the SDK is importable: the caller's interpreter is first on PATH
(out / "info.json").write_text(json.dumps({
    "exe": sys.executable, "home": os.environ["HOME"], "tmp": os.environ["TMPDIR"],
    "data": Path(os.environ["DECENTRALML_DATA_DIR"], "x.txt").read_text(),
    "type": os.environ["DECENTRALML_TASK_TYPE"], "cid": os.environ["DECENTRALML_BUNDLE_CID"],
    "task_dir": os.environ["DECENTRALML_TASK_DIR"]}))
(out / "result.json").write_text(json.dumps({"num_examples": 12, "metrics": {"acc": 0.75}}))
"""
    bundle = make_bundle(tmp_path / "b", script, files={"helper.py": helper},
                         outputs=("result.json",))
    lines: list[str] = []
    result = run(bundle, tmp_path, data_dir=data, on_log=lines.append)
    work = tmp_path / "work"
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert result.output_dir == work / "output" and result.log_path == work / "task.log"
    assert (result.num_examples, result.metrics) == (12, {"acc": 0.75})
    assert result.task_id == "7" and result.submission_id == "11" and result.bundle_cid
    assert 0 < result.duration < 30
    assert "start 7/11" in lines and "error line" in lines
    log = result.log_path.read_text()
    assert "start 7/11" in log and "error line" in log
    info = json.loads((result.output_dir / "info.json").read_text())
    assert Path(info["exe"]).resolve() == Path(sys.executable).resolve()
    assert info["home"] == str(work / "home") and info["tmp"] == str(work / "tmp")
    assert info["data"] == "42" and info["type"] == "ModelContributor"
    assert info["cid"] == "bafytest" and info["task_dir"] == str(work / "task")
    assert (result.output_dir / "cwd.txt").read_text().strip() == str(work / "task")


def test_update_json_wins_over_result_json(tmp_path: Path) -> None:
    assert RESULT_SIDECARS[0] == "update.json"
    script = """cd "$DECENTRALML_OUTPUT_DIR"
echo '{"num_examples": 5, "metrics": {"loss": 1}}' > update.json
echo '{"num_examples": 9}' > result.json
"""
    result = run(make_bundle(tmp_path / "b", script), tmp_path)
    assert (result.num_examples, result.metrics) == (5, {"loss": 1.0})


def test_no_sidecar_and_bad_sidecar(tmp_path: Path) -> None:
    result = run(make_bundle(tmp_path / "b", "true\n"), tmp_path)
    assert (result.num_examples, result.metrics) == (None, {})
    for i, text in enumerate(['{"num_examples": -1}', '{"num_examples": true}', "[1]",
                              '{"metrics": {"a": "x"}}', "not json"]):
        bundle = make_bundle(tmp_path / f"bad{i}",
                             f"echo '{text}' > \"$DECENTRALML_OUTPUT_DIR/result.json\"\n")
        with pytest.raises(RunnerError):
            run(bundle, tmp_path, name=f"w{i}")


def test_failure_and_missing_outputs(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "echo boom-reason\nexit 3\n")
    with pytest.raises(TaskFailed, match="status 3") as info:
        run(bundle, tmp_path)
    assert info.value.result.returncode == 3 and "boom-reason" in str(info.value)
    assert run(bundle, tmp_path, name="w2", check=False).returncode == 3
    bundle = make_bundle(tmp_path / "c", "true\n", outputs=("update.npz",))
    with pytest.raises(TaskFailed, match=r"update\.npz"):
        run(bundle, tmp_path, name="w3")


def test_workdir_must_be_fresh_and_args_checked(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "true\n")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("old")
    with pytest.raises(InvalidInput, match="workdir"):
        run(bundle, tmp_path, name="used")
    for kwargs in ({"timeout": 0}, {"timeout": float("nan")}, {"cpu_seconds": 0},
                   {"memory_bytes": -1}, {"data_dir": tmp_path / "missing"}):
        with pytest.raises(InvalidInput):
            run(bundle, tmp_path, name="w", **kwargs)
    with pytest.raises(InvalidInput, match="task_id"):
        run_bundle(bundle, task_id="../x", submission_id=1, data_dir=None,
                   workdir=tmp_path / "w", limits=RunLimits(timeout=5))
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------------------------
# environment


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leaks = {
        "DECENTRALML_MNEMONIC": "bottom drive obey lake curtain smoke basket hold race lonely",
        "DECENTRALML_ACCOUNT": "alice-account", "DECENTRALML_HOME": "/home/me/.decentralml",
        "DECENTRALML_NODE_URL": "ws://node-url", "AWS_SECRET_ACCESS_KEY": "s3cr3t-aws",
        "GITHUB_TOKEN": "ghp_xyzzy", "KEYRING_PASSWORD": "kr-passw0rd",
        "SSH_AUTH_SOCK": "/tmp/agent.sock", "RANDOM_THING": "random-value",
        "PYTHONPATH": "/somewhere/else", "LC_SECRET_X": "lc-but-secret",
    }
    for name, value in leaks.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    bundle = make_bundle(tmp_path / "b", 'env -0 > "$DECENTRALML_OUTPUT_DIR/env"\n')
    result = run(bundle, tmp_path, env_extra={"MY_SETTING": "on"})
    env = dict(item.split("=", 1) for item in
               (result.output_dir / "env").read_text().split("\0") if item)
    for name, value in leaks.items():
        assert name not in env
        assert value not in (result.output_dir / "env").read_text()
    assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC" and env["MY_SETTING"] == "on"
    assert env["HOME"] == str(tmp_path / "work" / "home")
    assert env["PATH"].split(os.pathsep)[1] == str(Path(sys.executable).parent)
    names = {n for n in env if not n.startswith(("DECENTRALML_", "LC_"))}
    allowed = set(runner.ENV_ALLOW) | {"HOME", "TMPDIR", "PYTHONUNBUFFERED",
                                       "PYTHONDONTWRITEBYTECODE", "MPLBACKEND", "MY_SETTING",
                                       "PWD", "SHLVL", "_", "OLDPWD"}
    assert names <= allowed, names - allowed


@pytest.mark.parametrize("name", ["API_KEY", "my_token", "DECENTRALML_MNEMONIC", "DB_PASSWORD",
                                  "WALLET_SEED", "CLIENT_SECRET", "bad name", "1X", ""])
def test_env_extra_refuses_secrets_and_bad_names(tmp_path: Path, name: str) -> None:
    bundle = make_bundle(tmp_path / "b", "true\n")
    with pytest.raises(InvalidInput, match="env_extra"):
        run(bundle, tmp_path, env_extra={name: "x"})
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("name", ["DECENTRALML_OUTPUT_DIR", "DECENTRALML_TASK_ID", "HOME", "PATH"])
def test_env_extra_cannot_override_the_runner(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput, match="set by the runner"):
        build_env(context={"DECENTRALML_OUTPUT_DIR": "/o", "DECENTRALML_TASK_ID": "1"},
                  env_extra={name: "x"}, home=tmp_path, tmpdir=tmp_path, bin_dir=tmp_path,
                  base={})


# --------------------------------------------------------------------------------------------
# timeout and limits


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    script = """sleep 300 &
echo $! > "$DECENTRALML_OUTPUT_DIR/child.pid"
bash -c 'sleep 301' &
echo $! > "$DECENTRALML_OUTPUT_DIR/grandchild.pid"
echo started
sleep 302
"""
    bundle = make_bundle(tmp_path / "b", script)
    started = time.monotonic()
    with pytest.raises(TaskFailed, match="timed out") as info:
        run(bundle, tmp_path, timeout=1.0)
    assert time.monotonic() - started < 10
    result = info.value.result
    assert result.timed_out and not result.ok and result.returncode < 0
    for name in ("child.pid", "grandchild.pid"):
        assert _wait_dead(int((result.output_dir / name).read_text()))
    assert "timeout" in result.log_path.read_text()


def test_timeout_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE", 0.5)
    bundle = make_bundle(tmp_path / "b", "trap '' TERM\necho $$ > \"$DECENTRALML_OUTPUT_DIR/pid\"\n"
                                         "while true; do sleep 0.1; done\n")
    started = time.monotonic()
    result = run(bundle, tmp_path, timeout=0.5, check=False)
    assert result.timed_out and result.returncode == -9
    assert time.monotonic() - started < 10
    assert _wait_dead(int((result.output_dir / "pid").read_text()))


def test_background_leftovers_are_killed_on_exit(tmp_path: Path) -> None:
    script = 'sleep 300 &\necho $! > "$DECENTRALML_OUTPUT_DIR/bg.pid"\nexit 0\n'
    started = time.monotonic()
    result = run(make_bundle(tmp_path / "b", script), tmp_path)
    assert time.monotonic() - started < 10  # the background sleep did not hold the log pipe
    assert _wait_dead(int((result.output_dir / "bg.pid").read_text()))


def test_cpu_rlimit(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "python -c 'while True: pass'\n")
    started = time.monotonic()
    result = run(bundle, tmp_path, cpu_seconds=1, timeout=60, check=False)
    assert not result.timed_out and result.returncode != 0
    assert time.monotonic() - started < 30


def test_memory_rlimit(tmp_path: Path) -> None:
    script = ("python -c 'b = bytearray(1024**3); print(\"allocated\")' "
              "&& echo ok > \"$DECENTRALML_OUTPUT_DIR/ok\"\n")
    bundle = make_bundle(tmp_path / "b", script)
    result = run(bundle, tmp_path, memory_bytes=400 * 1024**2, check=False)
    assert result.returncode != 0
    assert "MemoryError" in result.log_path.read_text()
    assert not (result.output_dir / "ok").exists()
    # the same script without the limit allocates fine
    assert run(bundle, tmp_path, name="w2").returncode == 0


def test_core_dumps_disabled(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", 'ulimit -c > "$DECENTRALML_OUTPUT_DIR/core"\n')
    assert (run(bundle, tmp_path).output_dir / "core").read_text().strip() == "0"


def test_raising_log_callback_does_not_hang(tmp_path: Path) -> None:
    def bad(line: str) -> None:
        raise RuntimeError("ui closed")

    script = ('for i in $(seq 1 20000); do echo "line $i"; done\n'
              'echo done > "$DECENTRALML_OUTPUT_DIR/d"\n')
    result = run(make_bundle(tmp_path / "b", script), tmp_path, on_log=bad)
    assert (result.output_dir / "d").exists() and "line 20000" in result.log_path.read_text()


# --------------------------------------------------------------------------------------------
# refusing before running


def test_missing_requirements_are_named_not_installed(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", 'touch "$DECENTRALML_OUTPUT_DIR/ran"\n',
                         requirements=("numpy>=1", "numpy>=999", "surely-not-installed-dml",
                                       "unused; python_version < '3'", "pydantic"))
    assert check_requirements(bundle.manifest) == [
        f"numpy>=999 (installed: {__import__('numpy').__version__})", "surely-not-installed-dml"]
    with pytest.raises(MissingRequirements, match="surely-not-installed-dml") as info:
        run(bundle, tmp_path)
    assert len(info.value.missing) == 2
    assert not (tmp_path / "work").exists()


def test_requirement_satisfied_by_module_of_another_distribution(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``tensorflow`` satisfied by ``tensorflow-cpu``: found through the module's distribution."""
    import importlib.metadata as md

    real_version = md.version

    def version(name: str) -> str:
        if name == "yaml-alias":
            raise md.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(md, "version", version)
    monkeypatch.setattr(md, "packages_distributions", lambda: {"yaml_alias": ["numpy"]})
    monkeypatch.setattr(runner.importlib.util, "find_spec",
                        lambda name: object() if name == "yaml_alias" else None)
    manifest = Manifest(task_type=TaskType.ModelContributor, entrypoint=None, kind="result",
                        files=(), requirements=("yaml-alias>=1", "yaml-alias>=999"))
    runner._providers.cache_clear()  # the scan is cached per state of the import path
    try:
        missing = check_requirements(manifest)
    finally:
        runner._providers.cache_clear()
    assert len(missing) == 1 and missing[0].startswith("yaml-alias>=999 (installed:")


def test_bundle_edited_after_fetch_is_not_run(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", 'touch "$DECENTRALML_OUTPUT_DIR/ran"\n',
                         files={"train.py": "print(1)\n"})
    (bundle.path / "train.py").write_text("print('evil')\n")
    with pytest.raises(IntegrityError, match=r"train\.py"):
        run(bundle, tmp_path)
    assert not (tmp_path / "work").exists()  # no partial work dir left to run or trust later
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntegrityError):
        run(bundle, tmp_path, name="empty")
    assert list((tmp_path / "empty").iterdir()) == []  # a given empty dir is emptied again
    with pytest.raises(IntegrityError):
        load_bundle(bundle.path)


def test_result_bundle_is_not_runnable(tmp_path: Path) -> None:
    manifest = Manifest(task_type=TaskType.ModelContributor, kind="result", entrypoint=None,
                        files=())
    with pytest.raises(BundleError):
        run(Bundle(path=tmp_path, manifest=manifest, cid="x"), tmp_path)


# --------------------------------------------------------------------------------------------
# packing the result (real store)


@pytest.fixture
def real_store(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("local_store")
    except pytest.FixtureLookupError:
        pytest.skip("local_store fixture not available yet")


def test_pack_result_carries_num_examples_and_metrics(tmp_path: Path, real_store: Any) -> None:
    script = """cd "$DECENTRALML_OUTPUT_DIR"
mkdir -p sub && echo w > sub/weights.bin
echo '{"num_examples": 64, "metrics": {"accuracy": 0.5, "loss": 2}}' > update.json
"""
    result = run(make_bundle(tmp_path / "b", script), tmp_path)
    packed = pack_result(result, real_store)
    m = packed.manifest
    assert m.kind == "result" and m.entrypoint is None and m.task_type is TaskType.ModelContributor
    assert m.num_examples == 64 and m.metrics == {"accuracy": 0.5, "loss": 2.0}
    assert m.metadata == {"task_id": "7", "submission_id": "11", "task_bundle": "bafytest"}
    assert {e.path for e in m.files} == {"sub/weights.bin", "update.json"}
    fetched = fetch_bundle(real_store, packed.cid, tmp_path / "back")
    assert fetched.manifest == m
    assert (fetched.path / "sub" / "weights.bin").read_text() == "w\n"


def test_pack_result_refuses_failed_runs_and_outside_symlinks(tmp_path: Path,
                                                              real_store: Any) -> None:
    failed = run(make_bundle(tmp_path / "b", "exit 1\n"), tmp_path, check=False)
    with pytest.raises(RunnerError):
        pack_result(failed, real_store)
    leak = 'ln -s "$HOME/../../secret" "$DECENTRALML_OUTPUT_DIR/stolen"\n'
    (tmp_path / "secret").write_text("contributor's private file")
    result = run(make_bundle(tmp_path / "c", leak), tmp_path, name="w2")
    with pytest.raises(BundleError, match="outside"):
        pack_result(result, real_store)


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1" + "0" * 400, "NaN", "Infinity", "true",
                                   '"9"'])
def test_non_finite_or_huge_metrics_are_refused(tmp_path: Path, value: str) -> None:
    script = ('echo \'{"num_examples": 1, "metrics": {"loss": ' + value
              + '}}\' > "$DECENTRALML_OUTPUT_DIR/result.json"\n')
    with pytest.raises(RunnerError, match="metric 'loss' must be a finite number"):
        run(make_bundle(tmp_path / "b", script), tmp_path)
