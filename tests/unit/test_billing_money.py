"""Amounts including tax as the fact: what PayPal collected or gave back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fta.billing.invoices.money import compute, compute_from_gross, net_of_gross

TWENTY = Decimal("20.00")


@pytest.mark.parametrize(
    ("ttc", "rate", "ht", "vat"),
    [
        (9480, TWENTY, 7900, 1580),
        (999, TWENTY, 833, 166),  # no HT gives 9,99 € at 20 %: the VAT takes the cent
        (1, TWENTY, 1, 0),
        (7900, Decimal("0.00"), 7900, 0),
        (10850, Decimal("8.50"), 10000, 850),
    ],
)
def test_a_gross_amount_splits_into_net_and_vat_that_add_up_to_it(
    ttc: int, rate: Decimal, ht: int, vat: int
) -> None:
    line, totals = compute_from_gross("Remboursement", ttc, rate)
    assert (totals.ht_cents, totals.vat_cents, totals.ttc_cents) == (ht, vat, ttc)
    assert totals.line_ht_cents == (ht,) and line.unit_price_ht * 100 == ht
    assert net_of_gross(ttc, rate) == ht


def test_every_gross_amount_is_credited_to_the_cent() -> None:
    """Crediting from the net amount (the old way) misses some amounts: 9,99 € became
    10,00 €. From the gross amount, every amount from 0,01 € to 200 € comes back exact, and
    the VAT stays within the cent EN 16931 tolerates of HT × rate."""
    for ttc in range(1, 20_000):
        line, totals = compute_from_gross("x", ttc, TWENTY)
        assert totals.ttc_cents == ttc
        exact = compute([line], TWENTY)
        assert abs(exact.vat_cents - totals.vat_cents) <= 1
