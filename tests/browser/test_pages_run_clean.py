"""Pages run under the strict Content-Security-Policy, and what a client typed stays text."""

from __future__ import annotations

import secrets

from playwright.sync_api import Browser, expect

from tests.support.browser import LivePortal, open_page

PASSWORD = "correct horse battery"  # pragma: allowlist secret
PAYLOAD = '<img src=x onerror="alert(document.domain)"><script>alert(1)</script>'


def test_the_api_documentation_opens_from_our_own_origin(
    browser: Browser, live_portal: LivePortal
) -> None:
    page, problems = open_page(browser)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_portal.url + "/api/v1/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/jobs").first).to_be_visible()
    assert problems.clean(), problems
    assert requested and all(url.startswith(live_portal.url) for url in requested), requested


def test_a_name_full_of_markup_is_shown_as_text(browser: Browser, live_portal: LivePortal) -> None:
    page, problems = open_page(browser)
    page.goto(live_portal.url + "/signup")
    page.locator("#display_name").fill(PAYLOAD)
    page.locator("#email").fill(f"xss-{secrets.token_hex(4)}@example.com")
    page.locator("#password").fill(PASSWORD)
    page.locator("input[name=accept_terms]").check()
    page.locator("form.stacked button[type=submit]").click()
    heading = page.locator("main h1")
    expect(heading).to_have_text(f"Bonjour {PAYLOAD}")
    assert heading.locator("img, script").count() == 0
    assert page.locator("main img").count() == 0
    assert problems.clean(), problems
