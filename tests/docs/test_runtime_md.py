"""docs/runtime.md is executable: its Python runs against the runtime, its ``bash`` blocks run as
written (but ``scripts/build_runtime.sh`` itself, which is how ``make test`` starts), and every
``make`` target, CLI command, script and path its ``sh`` blocks name exists as written (those
blocks start a long-running node or the test suite itself, so they are checked, not run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from decentralml.chain.runtime_node import RuntimeNode
from tests.docs.test_docs import code_blocks

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "runtime.md"


def _blocks(lang: str) -> list[str]:
    return code_blocks(DOC.read_text(encoding="utf-8"), lang)


def _commands() -> list[list[str]]:
    out = []
    for block in _blocks("sh"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(shlex.split(line))
    return out


def test_python_blocks_run_against_the_runtime(fresh_runtime_node: RuntimeNode,
                                               tmp_path: Path) -> None:
    fresh_runtime_node.stop()  # the block starts its own node, as a reader would
    for code in _blocks("python"):
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip(), "the block prints what it read from the chain"


#: The Building section's first block: ``make test`` has just run it (the ``runtime`` target).
BUILT_BY_MAKE_TEST = "scripts/build_runtime.sh"


@pytest.mark.slow
def test_bash_blocks_run_as_written() -> None:
    blocks = [b for b in _blocks("bash") if b.strip() != BUILT_BY_MAKE_TEST]
    assert len(blocks) >= 3, "the chain-spec tool, the pallet tests and the benchmark"
    # a reader's shell after rustup's installer: cargo on PATH (make test installs it there)
    cargo_bin = Path.home() / ".cargo" / "bin"
    env = {**os.environ, "PATH": f"{cargo_bin}{os.pathsep}{os.environ['PATH']}"}
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, (block, done.stdout[-2000:], done.stderr[-3000:])


def test_make_targets_exist() -> None:
    targets = {argv[1] for argv in _commands() if argv[0] == "make"}
    assert targets, "the page shows make commands"
    for target in sorted(targets):
        done = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"make {target}: {done.stderr}"


def test_cli_commands_parse() -> None:
    from click.testing import CliRunner

    from decentralml.cli.main import cli

    for argv in _commands():
        env = [a for a in argv if re.fullmatch(r"[A-Z_]+=.*", a)]
        argv = argv[len(env):]
        if argv[0] == "decentralml":
            # global options (with their values) first, then the subcommand words, then its
            # options: `--help` on the subcommand shows every option the page uses, if it exists
            flags = {"--json", "--yes", "--debug", "--tmp", "--verbose"}
            words, options, rest = [], [], argv[1:]
            while rest:
                arg = rest.pop(0)
                if arg.startswith("--"):
                    options.append(arg)
                    if arg not in flags and rest:
                        rest.pop(0)  # the option's value
                else:
                    words.append(arg)
            result = CliRunner().invoke(cli, [*words, "--help"])
            assert result.exit_code == 0, (argv, result.output)
            top = CliRunner().invoke(cli, ["--help"]).output
            for option in options:
                assert option in result.output or option in top, (argv, option)
        elif argv[0] in ("python", ".venv/bin/python"):
            if argv[1] != "-m":
                assert (REPO / argv[1]).is_file(), argv
            else:
                for target in (a for a in argv if a.startswith("tests/")):
                    assert (REPO / target).exists(), (argv, target)
