"""Rendering the portal's pages: one Jinja2 environment with autoescaping always on, and the
per-request context every template gets (language, formats, CSRF token, who is signed in).

Templates never mark text safe: whatever a client wrote (strategy names, pairs, log lines,
invoice fields) is escaped on output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from fta.web import csrf, i18n


@dataclass(frozen=True)
class PageSite:
    """Where the portal keeps its templates and catalogs."""

    templates: Path
    locales: Path


def site_of(request: Request) -> PageSite:
    """The app factory keeps its PageSite in `app.state.page_site`."""
    found = getattr(request.app.state, "page_site", None)
    if not isinstance(found, PageSite):
        raise RuntimeError("the portal has not configured its pages")
    return found


@cache
def environment(templates: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(templates),
        # The templates ship with the image: no file is checked again on each render.
        auto_reload=False,
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def locale_of(request: Request) -> str:
    return i18n.negotiate(request.cookies)


def gettext_for(request: Request) -> Callable[[str], str]:
    """The page language's gettext, for texts a view builds (flash messages, errors)."""
    translations = i18n.catalogs(site_of(request).locales)[locale_of(request)]
    return translations.gettext


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    locale = locale_of(request)
    site = site_of(request)
    translations = i18n.catalogs(site.locales)[locale]
    page = environment(site.templates).get_template(template)
    body = page.render(
        {
            "request": request,
            "lang": locale,
            "locales": i18n.LOCALES,
            "_": translations.gettext,
            "ngettext": translations.ngettext,
            "fmt": i18n.Formats(locale),
            "csrf_field": csrf.CSRF_FIELD,
            "csrf_token": csrf.token_for(request),
            "principal": getattr(request.state, "principal", None),
            **(context or {}),
        }
    )
    return HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))


def page_router(prefix: str = "") -> APIRouter:
    """A router of pages: HTML answers, out of the API's schema, and every unsafe request
    checked for this browser's CSRF token."""
    return APIRouter(
        prefix=prefix,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(csrf.check)],
    )
