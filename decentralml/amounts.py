"""Token amounts between planck (the chain's integer unit) and what people type and read.

A chain declares its token's symbol and decimals (``system_properties``: ``tokenSymbol``,
``tokenDecimals``), so the CLI, reports and the dashboard take them from the chain
(:attr:`decentralml.chain.client.Client.token`) rather than assuming 12. Conversions are exact
both ways: a unit is ``10**decimals`` planck and every step is integer or :class:`~decimal.Decimal`
arithmetic, so ``0.000000000001 UNIT`` and a u128's last digit survive a round trip, where a
float would round them away.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field

from decentralml.errors import InvalidInput

#: The largest Balance (u128): an amount beyond it cannot be sent, so it is refused when parsed.
U128_MAX = 2**128 - 1


class Token(BaseModel):
    """The chain's token: its symbol, and how many decimals of planck make one unit."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(min_length=1)
    # the decimals a u128 can carry (10**39 > 2**128): more would make every amount a fraction
    decimals: int = Field(ge=0, le=39)

    def format(self, planck: int) -> str:
        """``12.5 UNIT``: every digit kept, no trailing zeros, no exponent."""
        whole, fraction = divmod(abs(int(planck)), 10**self.decimals)
        digits = str(fraction).rjust(self.decimals, "0").rstrip("0")
        sign = "-" if planck < 0 else ""
        return f"{sign}{whole}{'.' + digits if digits else ''} {self.symbol}"

    def parse(self, text: str, *, field: str = "amount") -> int:
        """Planck from what a person typed: ``10`` or ``10 UNIT`` (the chain's symbol) is whole
        units, ``0.5`` a fraction of one, ``5000planck`` raw planck.

        Refused with :class:`InvalidInput` naming ``field``: anything else, a negative amount,
        more decimals than the token has, and more than a u128 Balance holds. The digits are
        shifted as integers (never through a Decimal context, which rounds at 28 digits), and
        the size is checked before any power of ten is built, so ``1e999999999`` costs nothing.
        """
        raw = str(text).strip().lower().replace(" ", "")
        expected = f"a number of {self.symbol} with at most {self.decimals} decimals, or NNNplanck"
        in_planck = raw.endswith("planck")
        shift = 0 if in_planck else self.decimals
        number = raw.removesuffix("planck" if in_planck else self.symbol.lower())
        try:
            if in_planck and not number.isdigit():
                raise ValueError(number)
            sign, digit_tuple, exponent = Decimal(number).as_tuple()
        except (InvalidOperation, ValueError):
            raise InvalidInput(field, f"{text!r} is not an amount", expected) from None
        if not isinstance(exponent, int):  # NaN, Infinity
            raise InvalidInput(field, f"{text!r} is not an amount", expected)
        digits = "".join(map(str, digit_tuple)).lstrip("0")
        if not digits:
            return 0
        if sign:
            raise InvalidInput(field, f"{text!r} is negative", expected)
        stripped = digits.rstrip("0")
        shift += exponent + len(digits) - len(stripped)
        if shift < 0:
            raise InvalidInput(field, f"{text!r} has more than {self.decimals} decimals",
                               expected)
        if len(stripped) + shift > len(str(U128_MAX)) or \
                (planck := int(stripped) * 10**shift) > U128_MAX:
            raise InvalidInput(field, f"{text!r} does not fit a Balance",
                               f"at most {self.format(U128_MAX)}")
        return planck
