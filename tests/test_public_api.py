"""The public surface is what __all__ reaches, and importing it does no heavy work."""

from __future__ import annotations

import subprocess
import sys

import decentralml


def test_every_exported_name_resolves() -> None:
    for name in decentralml.__all__:
        assert getattr(decentralml, name) is not None, name


def test_import_is_light() -> None:
    code = ("import sys, decentralml; "
            "mods = ('tensorflow', 'keras', 'substrateinterface'); "
            "print([m for m in mods if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pallet_errors_are_importable_and_shared() -> None:
    from decentralml import errors

    cls = errors.NoSlotsLeft
    assert cls is errors.pallet_error_class("DecentralML", "NoSlotsLeft")
    assert issubclass(cls, decentralml.PalletError)
    assert issubclass(cls, decentralml.DecentralMLError)
    fresh = errors.pallet_error_class("TestPallet", "Oops", "what went wrong")
    assert fresh.docs == "what went wrong" and fresh.__name__ == "Oops"
    assert str(fresh()) == "TestPallet.Oops: what went wrong"
