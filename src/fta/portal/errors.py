"""Errors of page requests, shown as pages in the visitor's language (the API's stay problem
documents)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from fta.accounts.deps import SignInRequired
from fta.web import pages

log = logging.getLogger(__name__)

# Everything else is a page.
NOT_PAGES = ("/api/", "/webhooks/", "/healthz", "/bots/")


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def page_error(
    request: Request,
    exc: Exception,
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response | None:
    """The error page; it keeps the answer's headers (Retry-After, Allow)."""
    if not is_page(request):
        return None
    if isinstance(exc, SignInRequired):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if status >= 500:
        log.error("page %s failed", request.url.path, exc_info=exc)
    context = {"status": status, "detail": detail}
    return pages.render(request, "error.html", context, status_code=status, headers=headers)
