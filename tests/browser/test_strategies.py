"""A client's strategies in the browser: a .py file uploaded into the code editor and edited
by keyboard, a syntax error shown with its line marked in the editor, the fix saved as a new
version, two versions compared; and code full of markup shown as text."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from tests.integration.strategies import HERE as STRATEGIES
from tests.support.api import sign_up
from tests.support.browser import LivePortal, PageProblems, log_in, open_page

EDITOR_LINES = ".CodeMirror-code > div"
ERROR_LINE = ".CodeMirror-code > div.fta-error-line"


def _signed_in(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> tuple[Page, PageProblems]:
    client = sign_up(http, "Strategist")
    page, problems = open_page(browser)
    log_in(page, live_portal, client.email, client.password)
    return page, problems


def _editor_line(page: Page, text: str) -> None:
    """Puts the editor's cursor at the end of the line holding `text`, as a click and End do."""
    page.locator(".CodeMirror-line", has_text=text).click()
    page.keyboard.press("End")


def test_a_client_uploads_edits_fixes_and_compares_a_strategy(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    page, problems = _signed_in(browser, live_portal, http)
    page.get_by_role("link", name="Stratégies").click()
    expect(page.get_by_role("heading", name="Stratégies", exact=True)).to_be_visible()
    page.get_by_role("link", name="Nouvelle stratégie").first.click()

    # The file goes into the editor (its name into the name field), then a line is typed.
    # The editor is up once the page's script ran: the file input listens from then on.
    expect(page.locator(".fta-editor")).to_be_visible()
    page.get_by_label("Ou déposez un fichier .py").set_input_files(STRATEGIES / "Quick.py")
    expect(page.locator("#file-status")).to_contain_text("Quick.py est dans l'éditeur")
    expect(page.get_by_label("Nom (celui de la classe de la stratégie)")).to_have_value("Quick")
    _editor_line(page, "stoploss = -0.1")
    page.keyboard.press("Enter")
    page.keyboard.type("can_short = False")
    expect(page.locator(EDITOR_LINES, has_text="can_short = False")).to_have_count(1)
    page.get_by_role("button", name="Enregistrer la stratégie").click()

    expect(page.get_by_role("heading", name="Quick", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Stratégie enregistrée")
    # The stored code is what the editor showed, read back highlighted.
    expect(page.locator(".fta-readonly")).to_contain_text("can_short = False")
    expect(page.locator(".fta-readonly .cm-keyword").first).to_have_text("from")

    # A syntax error: refused, said with its line, which the editor marks.
    page.get_by_role("link", name="Modifier le code").click()
    _editor_line(page, "stoploss = -0.1")
    page.keyboard.type(")")
    page.get_by_role("button", name="Enregistrer une nouvelle version").click()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"Ligne 7\s: ce code n'est pas du Python valide \(unmatched '\)'\)")
    )
    marked = page.locator(ERROR_LINE)
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("stoploss = -0.1)")
    expect(marked.locator(".CodeMirror-linenumber")).to_have_text("7")
    # Nothing the client typed was lost.
    expect(page.locator(EDITOR_LINES, has_text="can_short = False")).to_have_count(1)

    # The cursor waits at the end of the marked line: editing it clears the mark.
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type("2")
    expect(page.locator(ERROR_LINE)).to_have_count(0)
    page.get_by_role("button", name="Enregistrer une nouvelle version").click()
    expect(page.get_by_role("status")).to_contain_text("Version 2 enregistrée.")
    versions = page.locator("table.versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("v2")
    expect(versions.first).to_contain_text("actuelle")

    page.get_by_label("De la version").select_option("1")
    page.get_by_label("À la version").select_option("2")
    page.get_by_role("button", name="Comparer").click()
    expect(page.get_by_role("heading", name="Quick : version 1 → version 2")).to_be_visible()
    expect(page.locator("table.diff tr.removed td.code")).to_have_text(["    stoploss = -0.1"])
    expect(page.locator("table.diff tr.added td.code")).to_have_text(["    stoploss = -0.2"])
    expect(page.locator("table.diff tr.added td.ln").last).to_have_text("7")
    expect(page.locator(".diff-summary")).to_contain_text("1 ligne ajoutée")

    # Version 1, which no job or bot ran, can go (the form asks first); the current one stays.
    page.get_by_role("link", name="Quick", exact=True).click()
    asked: list[str] = []
    page.on("dialog", lambda dialog: asked.append(dialog.message))
    versions.last.get_by_role("button", name="Supprimer").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 supprimée.")
    assert len(asked) == 1 and asked[0].startswith("Supprimer la version 1"), asked
    expect(versions).to_have_count(1)
    expect(versions.get_by_role("button", name="Supprimer")).to_have_count(0)
    assert problems.clean(), problems


PAYLOAD = '<img src=x onerror="alert(document.domain)"></textarea><script>alert(1)</script>'
MARKUP_SOURCE = f"""from freqtrade.strategy import IStrategy

# {PAYLOAD}


class Markup(IStrategy):
    timeframe = "5m"
    stoploss = -0.1
"""


def _nothing_injected(page: Page) -> None:
    assert page.locator("main img, main script, main iframe").count() == 0


def test_markup_in_a_name_or_in_code_stays_text(
    browser: Browser, live_portal: LivePortal, http: TestClient
) -> None:
    page, problems = _signed_in(browser, live_portal, http)
    page.goto(live_portal.url + "/app/strategies/new")
    expect(page.locator(".fta-editor")).to_be_visible()
    page.get_by_label("Ou déposez un fichier .py").set_input_files(
        files=[{"name": "Markup.py", "mimeType": "text/x-python", "buffer": MARKUP_SOURCE.encode()}]
    )
    expect(page.locator(EDITOR_LINES, has_text="<script>")).to_have_count(1)
    # A name that is markup: the field's own pattern would stop it; the server refuses it too.
    name = page.get_by_label("Nom (celui de la classe de la stratégie)")
    name.evaluate("field => field.removeAttribute('pattern')")
    name.fill('<img src=x onerror="alert(2)">')
    page.get_by_role("button", name="Enregistrer la stratégie").click()
    expect(page.get_by_role("alert")).to_contain_text("Le nom doit être celui de la classe")
    expect(name).to_have_value('<img src=x onerror="alert(2)">')
    # The refused code comes back whole in the editor, markup and all, as text.
    expect(page.locator(EDITOR_LINES, has_text=PAYLOAD)).to_have_count(1)
    _nothing_injected(page)

    name.fill("Markup")
    page.get_by_role("button", name="Enregistrer la stratégie").click()
    expect(page.get_by_role("heading", name="Markup", exact=True)).to_be_visible()
    expect(page.locator(".fta-readonly")).to_contain_text(PAYLOAD)
    _nothing_injected(page)

    page.get_by_role("link", name="Modifier le code").click()
    _editor_line(page, "alert(1)")
    page.keyboard.type(" <b>bold</b>")
    page.get_by_role("button", name="Enregistrer une nouvelle version").click()
    page.get_by_role("link", name="Voir les changements").click()
    expect(page.locator("table.diff tr.removed td.code")).to_have_text([f"# {PAYLOAD}"])
    expect(page.locator("table.diff tr.added td.code")).to_have_text([f"# {PAYLOAD} <b>bold</b>"])
    assert page.locator("table.diff b").count() == 0
    _nothing_injected(page)

    page.get_by_role("link", name="Markup", exact=True).click()
    page.locator(".page-head").get_by_role("button", name="Supprimer").click()
    expect(page.get_by_role("status")).to_contain_text("La stratégie est supprimée.")
    expect(page.locator(".empty")).to_contain_text("Aucune stratégie pour le moment.")
    assert problems.clean(), problems
