"""The legal pages: the shipped defaults with the seller's identity, or the operator's own
texts, always as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fta.portal import legal_texts
from fta.settings import get_settings


@pytest.mark.parametrize("page", legal_texts.PAGES)
def test_each_legal_page_is_there_in_french_and_english(http: TestClient, page: str) -> None:
    french = http.get(f"/legal/{page}")
    assert french.status_code == 200
    assert get_settings().seller_name in french.text
    english = http.get(f"/legal/{page}", cookies={"fta_lang": "en"})
    assert english.status_code == 200
    assert english.text != french.text
    assert http.get("/legal/other").status_code == 404


def test_the_operators_own_text_replaces_the_default_and_is_never_markup(
    tmp_path: Path,
) -> None:
    (tmp_path / "terms.fr.md").write_text(
        "# Conditions <b>spéciales</b>\nVendu par $seller_name.\n\n- un\n- deux\n",
        encoding="utf-8",
    )
    settings = get_settings().model_copy(update={"legal_dir": str(tmp_path)})
    blocks = legal_texts.blocks("terms", "en", settings)
    assert [block.kind for block in blocks] == ["heading", "paragraph", "list"]
    assert blocks[0].lines == ("Conditions <b>spéciales</b>",)
    assert blocks[1].lines == (f"Vendu par {settings.seller_name}.",)
    assert blocks[2].lines == ("un", "deux")
    # Pages the operator did not write keep the defaults.
    assert legal_texts.blocks("privacy", "fr", settings) == legal_texts.blocks(
        "privacy", "fr", get_settings()
    )
