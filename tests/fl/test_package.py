"""``import decentralml.fl`` is cheap, and the Keras parts explain how to get Keras."""

from __future__ import annotations

import subprocess
import sys

import decentralml.fl as fl


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)


def test_every_name_resolves_without_tensorflow() -> None:
    code = ("import sys, decentralml.fl as fl\n"
            "for n in fl.__all__: getattr(fl, n)\n"
            "import numpy as np\n"
            "u = fl.Update([np.ones(3, np.float32)], 2)\n"
            "assert (fl.FedAvg().aggregate([u])[0] == 1).all()\n"
            "print([m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules])")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_keras_parts_say_what_to_install() -> None:
    code = ("import sys\n"
            "sys.modules['keras'] = None\n"
            "from decentralml.fl import make_digits_cnn\n"
            "try:\n"
            "    make_digits_cnn()\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert 'pip install "decentralml[tf]"' in out.stdout


def test_all_matches_the_exports() -> None:
    assert sorted(fl.__all__) == sorted(fl._EXPORTS)
    assert "evaluate" in fl.__all__ and callable(fl.evaluate)
