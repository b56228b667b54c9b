"""Invoice arithmetic in Decimal, to the cent.

The rule: each line's amount excluding tax (HT) is quantity × unit price rounded half-up to
the cent; the total HT is the sum of the rounded lines; the VAT is the total HT × rate rounded
half-up to the cent (one rate per invoice); the total including tax (TTC) is HT + VAT, so the
three printed totals always add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from fta.errors import Invalid

HUNDRED = Decimal(100)
# Bounds that keep every amount well inside the database's columns.
MAX_QUANTITY = Decimal("1000000")
MAX_UNIT_PRICE = Decimal("1000000")
MAX_SCALE = 4


@dataclass(frozen=True)
class Line:
    """One invoice line: `unit_price_ht` in EUR excluding tax, up to 4 decimals."""

    description: str
    quantity: Decimal
    unit_price_ht: Decimal


@dataclass(frozen=True)
class Totals:
    line_ht_cents: tuple[int, ...]
    ht_cents: int
    vat_cents: int
    ttc_cents: int


def to_cents(amount: Decimal) -> int:
    return int((amount * HUNDRED).to_integral_value(rounding=ROUND_HALF_UP))


def _checked(name: str, value: Decimal, maximum: Decimal) -> Decimal:
    try:
        value = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise Invalid(f"{name} must be a decimal number") from None
    if not value.is_finite() or value < 0 or value > maximum:
        raise Invalid(f"{name} must be between 0 and {maximum}")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_SCALE:
        raise Invalid(f"{name} has more than {MAX_SCALE} decimals: {value}")
    return value


def check_line(line: Line) -> Line:
    description = line.description.strip()
    if not description or len(description) > 300:
        raise Invalid("each invoice line needs a description of 1 to 300 characters")
    return Line(
        description,
        _checked("quantity", line.quantity, MAX_QUANTITY),
        _checked("unit_price_ht", line.unit_price_ht, MAX_UNIT_PRICE),
    )


def compute(lines: list[Line], vat_rate: Decimal) -> Totals:
    """Totals of already checked lines at `vat_rate` percent (20 for 20 %)."""
    line_cents = tuple(to_cents(line.quantity * line.unit_price_ht) for line in lines)
    ht = sum(line_cents)
    vat = int((Decimal(ht) * vat_rate / HUNDRED).to_integral_value(rounding=ROUND_HALF_UP))
    return Totals(line_cents, ht, vat, ht + vat)


def net_of_gross(ttc_cents: int, vat_rate: Decimal) -> int:
    """The amount excluding tax, in cents, whose total with VAT at `vat_rate` is `ttc_cents`
    (rounded half up to the cent). Used where the amount including tax is the fact: what
    PayPal collected or refunded."""
    net = Decimal(ttc_cents) * HUNDRED / (HUNDRED + vat_rate)
    return int(net.to_integral_value(rounding=ROUND_HALF_UP))


def compute_from_gross(description: str, ttc_cents: int, vat_rate: Decimal) -> tuple[Line, Totals]:
    """One line whose total including tax is exactly `ttc_cents`: HT from the gross amount,
    VAT the difference. Some gross amounts (9,99 € at 20 %) have no HT amount whose VAT
    rounded gives them back; the VAT then differs by a cent from HT × rate, which the EN
    16931 rule BR-CO-17 tolerates, and the document states what was really paid."""
    ht = net_of_gross(ttc_cents, vat_rate)
    line = Line(description, Decimal(1), Decimal(ht) / HUNDRED)
    return line, Totals((ht,), ht, ttc_cents - ht, ttc_cents)


def plain_euros(cents: int) -> str:
    """Machine rendering (XML, CSV): -1234.56."""
    return str(Decimal(cents).scaleb(-2))


def euros(cents: int) -> str:
    """French rendering: 1 234,56 €."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u00a0")
    return f"{sign}{grouped},{rest:02d} €"


def decimal_fr(value: Decimal) -> str:
    """A quantity or unit price without trailing zeros, with a decimal comma."""
    text = format(value.normalize(), "f")
    return text.replace(".", ",")
