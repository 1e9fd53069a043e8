"""Accounts on a headless machine, through the CLI as a subprocess against a real devnode:
the keystore under $DECENTRALML_HOME, its password from a file or the environment (and never
visible to a task), one clear message when nothing can unlock it, transfer, fund, overview."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from decentralml.devnode import DevNode

UNIT = 10**12


def dml(args: list[str], *, home: Path, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``decentralml ARGS`` with no terminal (stdin from /dev/null), as on a server or in CI.

    Nothing about keyrings is inherited from the test's environment: only what ``env`` gives.
    """
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DECENTRALML_", "PYTHON_KEYRING"))}
    full = {**base, "DECENTRALML_HOME": str(home), "XDG_DATA_HOME": str(home / "xdg"),
            **(env or {})}
    done = subprocess.run([sys.executable, "-m", "decentralml.cli.main", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=full,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"decentralml {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def out(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "keystore-password"
    path.write_text("correct horse battery staple\n")
    path.chmod(0o600)
    return path


def test_headless_account_then_commands_without_prompts(fresh_devnode: DevNode, tmp_path: Path,
                                                        password_file: Path) -> None:
    home = tmp_path / "home"
    node = ["--node", fresh_devnode.url]
    pw = ["--keyring-password-file", str(password_file)]
    created = out(dml([*pw, "--json", "account", "new", "carol"], home=home))
    # the secret is in the keystore under home, encrypted; nowhere else
    secret_file = home / "keystore" / "carol.json"
    assert secret_file.is_file() and oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert "mnemonic" not in secret_file.read_text()
    assert not (home / "xdg").exists()  # no keyring file outside home

    # commands that need no secret never ask for a password: none is given here at all
    assert [a["name"] for a in out(dml(["--json", "account", "list"], home=home))] == ["carol"]
    assert out(dml([*node, "--account", "carol", "--json", "task", "list"], home=home)) == []
    balance = out(dml([*node, "--account", "carol", "--json", "account", "balance"], home=home))
    assert balance == {"address": created["address"], "free": 0}

    # a new account has nothing; on a dev chain `account fund` gives it something from //Alice
    funded = out(dml([*node, "--json", "account", "fund", "carol", "--amount", "50"], home=home))
    assert funded["to"] == created["address"] and funded["amount"] == 50 * UNIT
    assert out(dml([*node, "--json", "account", "balance", "carol"], home=home))["free"] == \
        50 * UNIT

    # signing needs the secret: the password file (flag or env var), the env var, else an error
    sent = out(dml([*node, *pw, "--account", "carol", "--json", "account", "transfer", "//Bob",
                    "1.5"], home=home))
    assert sent["amount"] == 3 * UNIT // 2 and sent["fee"] > 0
    again = out(dml([*node, "--account", "carol", "--json", "account", "transfer", "//Bob",
                     "1000000planck"], home=home,
                    env={"DECENTRALML_KEYRING_PASSWORD_FILE": str(password_file)}))
    assert again["amount"] == 1_000_000
    by_env = out(dml([*node, "--account", "carol", "--json", "account", "transfer", "//Bob", "1"],
                     home=home, env={"DECENTRALML_KEYRING_PASSWORD":
                                     "correct horse battery staple"}))
    assert by_env["amount"] == UNIT

    locked = dml([*node, "--account", "carol", "--json", "account", "transfer", "//Bob", "1"],
                 home=home, check=False)
    assert locked.returncode == 3 and "Traceback" not in locked.stderr
    for way in ("--keyring-password-file", "DECENTRALML_KEYRING_PASSWORD_FILE",
                "DECENTRALML_KEYRING_PASSWORD", "terminal"):
        assert way in locked.stderr
    assert "install" not in locked.stderr

    wrong = dml([*node, "--account", "carol", "--json", "account", "transfer", "//Bob", "1"],
                home=home, env={"DECENTRALML_KEYRING_PASSWORD": "not it"}, check=False)
    assert wrong.returncode == 3 and "does not open" in wrong.stderr

    bad = dml([*node, *pw, "--account", "carol", "--json", "account", "transfer", "//Bob",
               "lots"], home=home, check=False)
    assert bad.returncode == 4 and "amount" in bad.stderr

    # the balance moved exactly by the amounts and the fees
    fees = sent["fee"] + again["fee"] + by_env["fee"]
    left = out(dml([*node, "--json", "account", "balance", "carol"], home=home))["free"]
    assert left == 50 * UNIT - 3 * UNIT // 2 - 1_000_000 - UNIT - fees


def test_fund_is_refused_on_a_live_chain(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """A node that reports chain type Live (the devnode's answer changed for this test)."""
    import decentralml.devnode.node as node_module
    from decentralml.devnode.rpc import RpcApi

    class LiveRpc(RpcApi):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.table["system_chainType"] = lambda s, p: "Live"

    monkeypatch.setattr(node_module, "RpcApi", LiveRpc)
    with DevNode() as live:
        bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
        refused = dml(["--node", live.url, "--json", "account", "fund", bob], home=tmp_path,
                      check=False)
        assert refused.returncode == 3
        assert "only on dev chains" in refused.stderr and "'Live'" in refused.stderr
        from decentralml.chain.client import Client

        with Client(live.url) as client:
            assert client.balance(bob) == 10**18  # nothing moved


def _ancestor_scan_bundle(tmp: Path) -> Path:
    """A task that reads the environment of itself and of every ancestor it can see, and
    counts where the needle (the keystore password, given to it in its data dir) appears."""
    bundle = tmp / "env-scan"
    bundle.mkdir()
    (bundle / "start_task.sh").write_text(r"""set -u
needle=$(cat "$DECENTRALML_DATA_DIR/needle")
found=0; scanned=0; parent_vars=0; pid=$$
while [ "$pid" -gt 1 ]; do
  if [ -r "/proc/$pid/environ" ]; then
    scanned=$((scanned + 1))
    if tr '\0' '\n' < "/proc/$pid/environ" | grep -qF -- "$needle"; then found=$((found + 1)); fi
    if tr '\0' '\n' < "/proc/$pid/environ" | grep -q '^DECENTRALML_KEYRING_PASSWORD='; then
      found=$((found + 1)); fi
    if tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qF -- "$needle"; then found=$((found + 1)); fi
    if [ "$pid" = "$PPID" ]; then
      parent_vars=$(tr '\0' '\n' < "/proc/$pid/environ" | grep -c '^DECENTRALML_HOME=')
    fi
  fi
  pid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")
done
printf '{"num_examples": 1, "metrics": {"found": %d, "scanned": %d, "parent_vars": %d}}\n' \
  "$found" "$scanned" "$parent_vars" > "$DECENTRALML_OUTPUT_DIR/result.json"
""")
    return bundle


def _no_sandbox_flag(home: Path) -> list[str]:
    """``--no-sandbox`` where `work` has it: this test is about what a task *outside* a sandbox
    could read of its parent (inside one it sees no parent at all)."""
    helptext = dml(["work", "--help"], home=home).stdout
    return ["--no-sandbox"] if "--no-sandbox" in helptext else []


def test_env_password_is_not_visible_to_a_task(fresh_devnode: DevNode, tmp_path: Path) -> None:
    secret = "env-secret-3f9c1d"
    home = tmp_path / "home"
    node = ["--node", fresh_devnode.url]
    env = {"DECENTRALML_KEYRING_PASSWORD": secret}
    created = out(dml(["--json", "account", "new", "erin"], home=home, env=env))
    dml([*node, "--json", "account", "fund", "erin"], home=home)
    store = f"local:{tmp_path / 'store'}"
    task = out(dml([*node, "--storage", store, "--account", "//Alice", "--json", "task",
                    "create", "--bundle", str(_ancestor_scan_bundle(tmp_path)), "--question",
                    "what can a task see?", "--reward", "1"], home=tmp_path / "alice"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "needle").write_text(secret)
    ran = out(dml([*node, "--storage", store, "--account", "erin", "--json", "run",
                   str(task["task_id"]), "--data", str(data), *_no_sandbox_flag(home)],
                  home=home, env=env))
    # the run signed accept_task with erin's key: the password did reach the CLI
    assert ran["status"] == "Assigned"
    from decentralml.chain.client import Client

    with Client(fresh_devnode.url) as client:
        assert [s.worker for s in client.task_submissions(task["task_id"])] == \
            [created["address"]]
    metrics = ran["metrics"]
    assert metrics["parent_vars"] == 1, "the task could not read its parent's environment"
    assert metrics["scanned"] >= 2  # itself and the CLI, at least
    assert metrics["found"] == 0, "the keystore password is visible to the task"


def test_os_keyring_is_an_explicit_opt_in(tmp_path: Path) -> None:
    home = tmp_path / "home"
    backend = {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    created = out(dml(["--keyring", "os", "--json", "account", "new", "olga"], home=home,
                      env=backend))
    assert not (home / "keystore").exists()
    index = json.loads((home / "accounts.json").read_text())
    assert [a["keyring"] for a in index["accounts"]] == ["os"]
    # read back from where the account says, without the opt-in or any password
    exported = tmp_path / "olga.json"
    dml(["account", "export", "olga", "--out", str(exported), "--password", "x"], home=home,
        env=backend)
    assert json.loads(exported.read_text())["address"] == created["address"]


def _on_a_terminal(args: list[str], home: Path, answers: list[tuple[bytes, bytes]]) -> str:
    """Run the CLI on a pseudo-terminal, answering each prompt (marker, reply) in turn."""
    import pty
    import select
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(home)
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the CLI
        os.execve(sys.executable, [sys.executable, "-m", "decentralml.cli.main", *args], env)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0] in seen:
                marker, reply = pending.pop(0)
                seen = seen.replace(marker, b"<answered>", 1)
                os.write(fd, reply)
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the CLI exited and closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert not pending, f"never asked {pending}: {seen.decode(errors='replace')}"
    return seen.decode(errors="replace")


def test_prompt_on_a_terminal_once_per_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shown = _on_a_terminal(["account", "new", "pat"], home, [
        (b"new password for the keystore", b"typed-pass\n"),
        (b"Repeat for confirmation", b"typed-pass\n")])
    assert "shown only this once" in shown  # a terminal gets the mnemonic
    # a second account in the same keystore: asked once (no confirmation), and checked
    _on_a_terminal(["account", "new", "quinn"], home, [
        (b"password of the keystore", b"typed-pass\n")])
    exported = tmp_path / "pat.json"
    text = _on_a_terminal(["account", "export", "pat", "--out", str(exported), "--password", "x"],
                          home, [(b"password of the keystore", b"typed-pass\n")])
    # asked exactly once (answered prompts are marked, any further prompt would remain)
    assert text.count("<answered>") == 1 and "password of the keystore" not in text
    assert json.loads(exported.read_text())["address"] == out(
        dml(["--json", "account", "list"], home=home))[0]["address"]


def test_handover_clears_the_kernel_view_of_the_environment(tmp_path: Path) -> None:
    """The mechanism on its own, as the console script runs it: after the re-exec (same pid),
    /proc/self/environ has no password, and the value arrived through the pipe."""
    script = tmp_path / "entry.py"
    script.write_text(
        "import os, sys\n"
        "from decentralml.cli.handover import hand_over_env_password, take_handed_over_password\n"
        "print('pid', os.getpid(), flush=True)\n"
        "hand_over_env_password()\n"
        "value = take_handed_over_password()\n"
        "environ = open('/proc/self/environ', 'rb').read()\n"
        "names = [v.split(b'=')[0] for v in environ.split(b'\\0')]\n"
        "print('environ-has-it', b'pipe-secret' in environ,\n"
        "      b'DECENTRALML_KEYRING_PASSWORD' in names)\n"
        "print('got', value, sys.argv[1:])\n")
    env = {**os.environ, "DECENTRALML_KEYRING_PASSWORD": "pipe-secret"}
    done = subprocess.run([sys.executable, str(script), "a", "b c"], env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    lines = done.stdout.splitlines()
    pids = [line for line in lines if line.startswith("pid")]
    assert len(pids) == 2 and pids[0] == pids[1]  # it re-executed itself, in place
    assert "environ-has-it False False" in lines
    assert "got pipe-secret ['a', 'b c']" in lines  # the value and the arguments came through
