"""The legal pages: mentions légales, CGV and the privacy policy."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from fta.errors import NotFound
from fta.portal import legal_texts
from fta.settings import get_settings
from fta.web import pages

router = pages.page_router("/legal")


@router.get("/{page}")
def legal_page(request: Request, page: str) -> Response:
    if page not in legal_texts.PAGES:
        raise NotFound("no such legal page")
    settings = get_settings()
    context = {
        "page": page,
        "blocks": legal_texts.blocks(page, pages.locale_of(request), settings),
        "unfinished": legal_texts.is_placeholder(settings),
    }
    return pages.render(request, "legal/page.html", context)
