"""Languages of the pages: French first, English available.

Page texts are written in English in the code and templates (the message ids); the French
catalogs (gettext .po files, one per area of the portal, edited with Babel) translate them.
The visitor's choice is kept in a preference cookie; without one the page is in French.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations
from babel.units import format_unit

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LANGUAGE_COOKIE = "fta_lang"
# Clients are in France: times are shown in Paris time, stored in UTC.
DISPLAY_ZONE = ZoneInfo("Europe/Paris")
_BABEL_LOCALE = {"fr": "fr_FR", "en": "en_GB"}


def negotiate(cookies: Mapping[str, str]) -> str:
    chosen = cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


@cache
def catalogs(directory: Path) -> dict[str, NullTranslations]:
    """Every locale's translations, from all the .po files of `<directory>/<locale>/LC_MESSAGES`
    (compiled in memory: no binary .mo file is kept in the repository)."""
    found: dict[str, NullTranslations] = {"en": NullTranslations()}
    for locale in LOCALES:
        files = sorted((directory / locale / "LC_MESSAGES").glob("*.po"))
        if not files:
            continue
        merged: Translations | None = None
        for path in files:
            with path.open("rb") as source:
                catalog = read_po(source, locale=locale)
            compiled = io.BytesIO()
            write_mo(compiled, catalog)
            compiled.seek(0)
            translations = Translations(compiled)
            merged = translations if merged is None else merged.merge(translations)
        if merged is not None:
            found[locale] = merged
    return found


@dataclass(frozen=True)
class Formats:
    """Numbers, money and dates as the reader's locale writes them."""

    locale: str

    @property
    def _babel(self) -> str:
        return _BABEL_LOCALE[self.locale]

    def money(self, amount: Decimal | int | None, currency: str = "EUR") -> str:
        """An amount to the cent, rounded half up as invoices are."""
        if amount is None:
            return "—"
        cents = Decimal(amount).quantize(Decimal("0.01"), ROUND_HALF_UP)
        return format_currency(cents, currency, locale=self._babel)

    def cents(self, cents: int | None, currency: str = "EUR") -> str:
        """An amount kept in integer cents."""
        return self.money(None if cents is None else Decimal(cents) / 100, currency)

    def rate(self, amount: Decimal | None, currency: str = "EUR") -> str:
        """A unit price with all its digits (a CPU-hour may cost a fraction of a cent)."""
        if amount is None:
            return "—"
        exact = Decimal(amount).normalize()
        if exact.as_tuple().exponent < -2:  # type: ignore[operator]
            return format_currency(exact, currency, locale=self._babel, decimal_quantization=False)
        return self.money(exact, currency)

    def number(self, value: Decimal | int | float | str | None, digits: int = 2) -> str:
        if value is None:
            return "—"
        rounded = Decimal(str(value)).quantize(Decimal(10) ** -digits, ROUND_HALF_UP)
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(rounded, format=pattern, locale=self._babel)

    def percent(self, ratio: Decimal | float | None, digits: int = 2) -> str:
        if ratio is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + " %"
        return format_percent(ratio, format=pattern, locale=self._babel)

    def size(self, size_bytes: int | None) -> str:
        """A size in the largest decimal unit under it (ko, Mo, Go, To), to one digit."""
        if size_bytes is None:
            return "—"
        value, unit = Decimal(size_bytes) / 1000, "kilobyte"
        for larger in ("megabyte", "gigabyte", "terabyte"):
            if value < 1000:
                break
            value, unit = value / 1000, larger
        amount = value.quantize(Decimal("0.1"), ROUND_HALF_UP)
        return format_unit(
            amount, f"digital-{unit}", length="short", format="#,##0.#", locale=self._babel
        )

    def datetime(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return "—"
        return format_datetime(moment, "short", tzinfo=DISPLAY_ZONE, locale=self._babel)

    def date(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return "—"
        return format_date(moment.astimezone(DISPLAY_ZONE), "medium", locale=self._babel)
