"""The browser tier: Debian's Chromium driven by Playwright (no browser download), against the
real portal served by uvicorn on loopback with the suite's database.

Every page a test opens records what the browser refused under the Content-Security-Policy
and any script error, so a test can assert the page ran clean.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    sync_playwright,
)


@dataclass
class LivePortal:
    url: str
    # The application served: a test may override a dependency (an outside service's
    # stand-in), and must remove its override afterwards.
    app: FastAPI


@dataclass
class PageProblems:
    """What went wrong in the browser while a page ran."""

    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.csp or self.errors or self.dialogs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_portal(app_settings: None) -> Iterator[LivePortal]:
    """The portal app in a uvicorn server thread on a free loopback port."""
    from fta.portal.app import create_app

    port = _free_port()
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the portal did not start within 30 s"
        assert thread.is_alive(), "the portal's server stopped while starting"
        time.sleep(0.05)
    try:
        yield LivePortal(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# Per module: Playwright's sync API keeps an event loop running in the main thread while it
# is open, and later tests that call asyncio.run() there must not find it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, *, locale: str = "fr-FR") -> tuple[Page, PageProblems]:
    """A page in a fresh browser context (its own cookies), watched for problems."""
    context = browser.new_context(locale=locale, timezone_id="Europe/Paris")
    page = context.new_page()
    problems = PageProblems()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.csp.append(message.text)
        # Failed loads are judged from the responses below: a form sent back with its
        # errors is a page with a 4xx status, which the console reports too.
        elif message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.errors.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            problems.errors.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))

    def on_dialog(dialog: Dialog) -> None:
        # A form's own confirmation is answered yes; anything else (alert, prompt) is a
        # script the page should not have run.
        if dialog.type == "confirm":
            dialog.accept()
            return
        problems.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page, problems


def log_in(page: Page, portal: LivePortal, email: str, password: str) -> None:
    """Logs the page's browser in through the log-in form; it lands on the dashboard."""
    page.goto(portal.url + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("form.stacked button[type=submit]").click()
    page.wait_for_url(portal.url + "/app")
