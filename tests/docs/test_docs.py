"""The docs are executable: their commands and code run as written, end to end.

* the quickstart's by-hand section (a ``sh`` block) runs in bash, in a fresh directory that
  looks like a clone (``.venv`` is this test run's environment), against the devnode it starts;
  the one edit is its port (9944 -> a free one), so parallel runs never meet;
* the README's notebook snippet (a ``python`` block, the same as the quickstart's section 3)
  runs in a fresh interpreter.

Both check the federated model's accuracy, not just that nothing crashed.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.quiet import assert_quiet, user_env

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced ``language`` blocks of a markdown text, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, flags=re.S | re.M)


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading...`` up to the next ``## ``."""
    start = markdown.index(f"## {heading}")
    end = markdown.find("\n## ", start + 3)
    return markdown[start:] if end < 0 else markdown[start:end]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _checkout_like(tmp: Path) -> Path:
    """A directory where ``source .venv/bin/activate`` activates the interpreter under test."""
    root = tmp / "clone"
    root.mkdir()
    if sys.prefix != sys.base_prefix:
        (root / ".venv").symlink_to(Path(sys.prefix))
    else:  # not in a venv: an activate script that puts this interpreter first on PATH
        bin_dir = root / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "activate").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    return root


@pytest.mark.timeout(2400)
def test_quickstart_by_hand_section_runs_as_written(tmp_path: Path) -> None:
    text = section((REPO / "docs" / "quickstart.md").read_text(encoding="utf-8"),
                   "2. The same story by hand")
    blocks = code_blocks(text, "sh")
    assert len(blocks) == 1, "the by-hand section is one sh block"
    script = blocks[0]
    assert script.count("9944") >= 2
    script = script.replace("9944", str(_free_port()))
    root = _checkout_like(tmp_path)
    env = {k: v for k, v in user_env().items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(tmp_path / "home")
    # -e: the first failing command fails the test; the trap stops the devnode if one does
    done = subprocess.run(["bash", "-euo", "pipefail", "-c",
                           "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
                          cwd=root, env=env, capture_output=True, text=True, timeout=2300,
                          check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "30 UNIT in escrow (3 x 10 UNIT)" in out
    assert out.count("PendingValidation (stages run: fetched, ran, uploaded, submitted; ") == 3
    assert "3 accepted, 0 rejected, 0 skipped; paid 30 UNIT" in out
    federated = re.search(r"federated 3 updates with fedavg -> federated\.keras "
                          r"\(accuracy (\d\.\d+)\)", out)
    assert federated, out
    assert float(federated.group(1)) >= 0.9, out
    assert re.search(r"task 0 closed in block \d+: refunded 0 UNIT to //Alice", out)
    assert (root / "federated.keras").is_file()
    assert "loaded 449 examples" in done.stderr          # the task's log streamed to us
    assert_quiet(done.stdout, done.stderr)


@pytest.mark.timeout(1500)
def test_readme_notebook_snippet_runs_as_written(tmp_path: Path) -> None:
    readme = section((REPO / "README.md").read_text(encoding="utf-8"), "In a notebook")
    quickstart = section((REPO / "docs" / "quickstart.md").read_text(encoding="utf-8"),
                         "3. From a notebook")
    (snippet,) = code_blocks(readme, "python")
    assert code_blocks(quickstart, "python") == [snippet], "README and quickstart differ"
    env = {k: v for k, v in user_env().items() if not k.startswith("DECENTRALML_")}
    env["DECENTRALML_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1400, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    result = re.search(r"accepted \((\d+), (\d+)\) accuracy (\d\.\d+)", done.stdout)
    assert result, done.stdout
    assert float(result.group(3)) >= 0.9, done.stdout
    assert "refund 0" in done.stdout
    assert_quiet(done.stdout, done.stderr)
