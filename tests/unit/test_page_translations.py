"""Every text of the pages has its French translation, with the same placeholders, and the
catalogs load."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from fta.portal.app import PAGE_SITE
from fta.web import i18n

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _page_texts() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    method_map = [
        ("src/fta/portal/**.py", "python"),
        ("src/fta/portal/templates/**.html", "jinja2"),
    ]
    for _, _, message, _, _ in extract_from_dir(str(REPO), method_map=method_map):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def test_every_page_text_is_translated_into_french() -> None:
    french = i18n.catalogs(PAGE_SITE.locales)["fr"]
    texts = _page_texts()
    assert len(texts) > 50, "the extraction found the templates"
    missing = []
    for text in sorted(texts, key=str):
        if isinstance(text, tuple):
            translated = french.ngettext(text[0], text[1], 2)
            source = text[1]
        else:
            translated, source = french.gettext(text), text
        if translated == source and source not in SAME_IN_FRENCH:
            missing.append(source)
        elif sorted(PLACEHOLDER.findall(translated)) != sorted(PLACEHOLDER.findall(source)):
            missing.append(f"{source} (placeholders differ)")
    assert missing == []


def test_a_text_has_one_translation_across_the_catalogs() -> None:
    """The catalogs are merged into one: a text translated twice would take one of its
    translations on every page, whichever catalog loads last."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted(Path(PAGE_SITE.locales, "fr", "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as source:
            for message in read_po(source):
                if not message.id:
                    continue
                key = message.id if isinstance(message.id, str) else message.id[0]
                string = str(message.string)
                if key in seen and seen[key][1] != string:
                    clashes.append(
                        f"{key!r}: {seen[key][0]} {seen[key][1]!r}, {path.name} {string!r}"
                    )
                seen.setdefault(key, (path.name, string))
    assert clashes == []


# Words French writes as English does.
SAME_IN_FRENCH = {
    "Jobs",
    "Bots",
    "Version",
    "Versions",
    "Actions",
    "Code",
    "Backtest",
    "Hyperopt",
    "Trades",
}


def test_english_is_the_text_itself_and_french_is_the_default() -> None:
    assert i18n.negotiate({}) == "fr"
    assert i18n.negotiate({i18n.LANGUAGE_COOKIE: "en"}) == "en"
    assert i18n.negotiate({i18n.LANGUAGE_COOKIE: "de"}) == "fr"
    assert i18n.catalogs(PAGE_SITE.locales)["en"].gettext("Dashboard") == "Dashboard"
    assert i18n.catalogs(PAGE_SITE.locales)["fr"].gettext("Dashboard") == "Tableau de bord"


def test_money_numbers_and_dates_follow_the_locale() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    french, english = i18n.Formats("fr"), i18n.Formats("en")
    assert french.money(Decimal("1234.5")) == "1\u202f234,50\xa0€"
    assert english.money(Decimal("1234.5")) == "€1,234.50"
    assert french.number(Decimal("0.125"), 2) == "0,13"
    assert french.rate(Decimal("0.012000")) == "0,012\xa0€"
    assert french.rate(Decimal("1.5")) == "1,50\xa0€"
    # 23:30 UTC on 31 December is already the new year in Paris.
    moment = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert french.datetime(moment) == "01/01/2027 00:30"
