"""The built wheel works outside the checkout: templates and the example are package data.

The wheel is built offline from this checkout (``pip wheel --no-build-isolation``: hatchling is a
dev dependency) and installed with ``--no-index`` into a fresh venv that borrows this
environment's site-packages for the dependencies (a ``.pth`` file), so nothing is downloaded.
Every command runs from a directory outside the checkout, and the test first proves that the
``decentralml`` it imports is the installed wheel, not the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist), str(REPO)], check=True,
                   capture_output=True, text=True, timeout=600)
    (wheel,) = dist.glob("decentralml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for packaged in ("decentralml/_assets/asset_templates/model_contributor/train.py",
                     "decentralml/_assets/asset_templates/model_contributor/template.json",
                     "decentralml/_assets/examples/federated_mnist/demo.py",
                     "decentralml/_assets/examples/federated_mnist/bundle/train.py"):
        assert packaged in names, f"{packaged} is not in {wheel.name}"
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    # the dependencies, from this environment; its editable decentralml is not picked up (a
    # directory added by a .pth file is not a site dir: its own .pth files are not processed)
    (Path(purelib) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the borrowed editable install must neither satisfy nor be uninstalled
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-index", "--no-deps", "--ignore-installed", "--find-links", str(dist),
                    "decentralml"], check=True, capture_output=True, text=True, timeout=600)
    return venv


def _run(venv: Path, args: Sequence[str], cwd: Path, *, timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DECENTRALML_") and k != "PYTHONPATH"}
    env["DECENTRALML_HOME"] = str(cwd / "home")
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def test_installed_wheel_creates_a_task_from_a_template(wheel_venv: Path, fresh_devnode,
                                                         tmp_path: Path) -> None:
    where = _run(wheel_venv, ["python", "-c", "import decentralml; print(decentralml.__file__)"],
                 tmp_path).stdout.strip()
    assert Path(where).is_relative_to(wheel_venv), f"imported {where}, not the wheel"
    model = tmp_path / "model.keras"  # a .keras-shaped file: nothing here loads it
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
    created = json.loads(_run(wheel_venv, [
        "decentralml", "--node", fresh_devnode.url, "--storage", f"local:{tmp_path / 'store'}",
        "--account", "//Alice", "--json", "task", "create", "--template", "model_contributor",
        "--model", str(model), "--question", "q", "--reward", "1"], tmp_path).stdout)
    assert created["task_id"] == 0
    assert (tmp_path / "model_contributor" / "train.py").is_file()   # the template, copied
    assert not (tmp_path / "model_contributor" / "model.keras").exists()  # staged, not edited


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.timeout(1800)
def test_installed_wheel_runs_the_demo(wheel_venv: Path, tmp_path: Path) -> None:
    done = _run(wheel_venv, ["decentralml", "--json", "demo", "--rounds", "1", "--workdir",
                             str(tmp_path / "demo")], tmp_path, timeout=1700)
    report = json.loads(done.stdout)
    assert report["balances_ok"] is True
    assert [r["accepted"] for r in report["rounds"]] == [3]
    assert report["rewards_paid"] == 3 * 10 * 10**12
