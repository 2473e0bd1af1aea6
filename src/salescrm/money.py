"""Money: integer minor units (cents) at rest, ``Decimal`` in flight.

Rounding is commercial half-up (away from zero on a tie), applied once per
line.  Never ``float``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from salescrm.errors import ValidationError

CENT = Decimal("0.01")
_MONEY_RE = re.compile(r"^[+-]?(\d+)(\.\d{1,2})?$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+)(\.\d+)?$")


def parse_money(text: str | int | Decimal, *, field: str = "amount", allow_negative: bool = False) -> int:
    """Parse a plain decimal amount ("12", "12.5", "1234.50") into cents.

    Strict: no thousands separators, no currency symbols, no exponent, no
    NaN/Infinity, at most two decimals.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        cents = text * 100
    elif isinstance(text, Decimal):
        if not text.is_finite():
            raise ValidationError(f"{field} must be a finite amount")
        q = text.quantize(CENT, rounding=ROUND_HALF_UP)
        if q != text:
            raise ValidationError(f"{field} has more than two decimals: {text}")
        cents = int(q * 100)
    else:
        s = str(text).strip()
        if not _MONEY_RE.match(s):
            raise ValidationError(
                f"{field} is not a valid amount: {s!r}",
                "write it like 1234.50 (a dot for decimals, no separators or symbols)",
            )
        cents = int(Decimal(s) * 100)
    if cents < 0 and not allow_negative:
        raise ValidationError(f"{field} must not be negative")
    return cents


def parse_decimal(text: str, *, field: str = "value") -> Decimal:
    """Parse a plain decimal (any number of decimals) strictly."""
    s = str(text).strip()
    if not _DECIMAL_RE.match(s):
        raise ValidationError(f"{field} is not a valid number: {s!r}")
    try:
        return Decimal(s)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValidationError(f"{field} is not a valid number: {s!r}") from None


def parse_percent(text: str, *, field: str = "percent") -> Decimal:
    """"10", "10%", "12.5%" -> Decimal('10'), between 0 and 100."""
    s = str(text).strip().removesuffix("%").strip()
    value = parse_decimal(s, field=field)
    if value < 0 or value > 100:
        raise ValidationError(f"{field} must be between 0 and 100, not {s}")
    return value


def round_cents(value: Decimal) -> int:
    """Round a Decimal amount of *cents* half-up to a whole cent."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_cents(amount: Decimal) -> int:
    """Round a Decimal amount of *currency units* half-up to whole cents."""
    return round_cents(amount * 100)


def fmt(cents: int | None) -> str:
    """Plain decimal for machines: 123450 -> '1234.50', -5 -> '-0.05'."""
    if cents is None:
        return ""
    if type(cents) is not int:
        cents = int(cents)
    # (one %-format of the divmod pair: the quickest in CPython; csv writes millions of these)
    return "%d.%02d" % divmod(cents, 100) if cents >= 0 else "-%d.%02d" % divmod(-cents, 100)


def fmt_human(cents: int | None) -> str:
    """With thousands separators for people: 123450 -> '1,234.50'."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{frac:02d}"
