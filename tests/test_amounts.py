"""Amounts between planck and what people type and read: exact, in the chain's own token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decentralml.amounts import U128_MAX, Token
from decentralml.errors import InvalidInput

UNIT = Token(symbol="UNIT", decimals=12)


def test_format_keeps_every_digit() -> None:
    assert UNIT.format(2_500_000_000_000) == "2.5 UNIT"
    assert UNIT.format(10**13) == "10 UNIT"
    assert UNIT.format(0) == "0 UNIT"
    assert UNIT.format(287_100_000) == "0.0002871 UNIT"
    assert UNIT.format(1) == "0.000000000001 UNIT"
    # a float (or a 28-digit Decimal context) would round these
    assert UNIT.format(U128_MAX) == "340282366920938463463374607.431768211455 UNIT"
    assert UNIT.format(10**27 + 1) == "1000000000000000.000000000001 UNIT"
    assert Token(symbol="DOT", decimals=10).format(15_000_000_000) == "1.5 DOT"
    assert Token(symbol="X", decimals=0).format(42) == "42 X"


@pytest.mark.parametrize(("text", "planck"), [
    ("10", 10 * 10**12), ("10UNIT", 10 * 10**12), ("10 unit", 10 * 10**12),
    ("2.5", 2_500_000_000_000), (" 0.000000000001 ", 1), ("1e-12", 1), ("1.5e3", 1500 * 10**12),
    ("5000planck", 5000), ("0", 0), ("0.0001000", 100_000_000),
    ("340282366920938463463374607.431768211455", U128_MAX),
    (f"{U128_MAX}planck", U128_MAX),
])
def test_parse(text: str, planck: int) -> None:
    assert UNIT.parse(text) == planck


@pytest.mark.parametrize(("text", "why"), [
    ("abc", "is not an amount"), ("nan", "is not an amount"), ("inf", "is not an amount"),
    ("1.5planck", "is not an amount"), ("-5planck", "is not an amount"),
    ("10 DOT", "is not an amount"), ("-1", "is negative"),
    ("1.0000000000001", "more than 12 decimals"), ("1e-99999999", "more than 12 decimals"),
    ("340282366920938463463374607.431768211456", "does not fit a Balance"),
    (f"{U128_MAX + 1}planck", "does not fit a Balance"),
    ("1e999999999", "does not fit a Balance"),  # refused before 10**999999999 is built
])
def test_parse_refuses_with_the_field_named(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as info:
        UNIT.parse(text, field="reward")
    assert info.value.field == "reward"


def test_the_chains_symbol_and_decimals_are_used() -> None:
    dot = Token(symbol="DOT", decimals=10)
    assert dot.parse("1.5 DOT") == 15_000_000_000
    with pytest.raises(InvalidInput, match="more than 10 decimals"):
        dot.parse("0.00000000001")


@given(st.integers(min_value=0, max_value=U128_MAX), st.integers(min_value=0, max_value=39))
def test_format_then_parse_is_the_identity(planck: int, decimals: int) -> None:
    token = Token(symbol="T", decimals=decimals)
    assert token.parse(token.format(planck)) == planck
