"""The portal's FastAPI application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text
from starlette.types import ASGIApp

from fta.access.api import router as plans_router
from fta.accounts.api import router as auth_router
from fta.billing.alerts.api import router as billing_alerts_router
from fta.billing.api import router as billing_router
from fta.billing.api import webhook_router as paypal_webhook_router
from fta.billing.identity_api import router as billing_identity_router
from fta.billing.invoices.api import router as invoices_router
from fta.billing.usage_api import router as usage_router
from fta.bots.api import router as bots_router
from fta.bots.relay_api import router as bot_api_relay_router
from fta.db import get_engine
from fta.jobs.api import router as jobs_router
from fta.jobs.storage_api import router as storage_router
from fta.operators.api import router as operators_router
from fta.portal import api_docs, errors, vendor, views
from fta.portal.static_files import StaticFiles
from fta.privacy.api import router as privacy_router
from fta.strategies.api import router as strategies_router
from fta.web import pages, problems
from fta.web.csrf import CsrfCookie
from fta.web.middleware import BodySizeLimit, SecurityHeaders

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024
HERE = Path(__file__).parent
PAGE_SITE = pages.PageSite(templates=HERE / "templates", locales=HERE / "locale")


class PortalApp(FastAPI):
    """FastAPI with the portal's own layers outermost, so that they also wrap the answers of
    Starlette's error middleware (a 500 carries the security headers too)."""

    def build_middleware_stack(self) -> ASGIApp:
        app = CsrfCookie(
            super().build_middleware_stack(), skip_prefixes=(*errors.NOT_PAGES, "/static/")
        )
        return SecurityHeaders(BodySizeLimit(app, MAX_BODY_BYTES))

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = problems.document(
                get_openapi(
                    title=self.title,
                    version=self.version,
                    description=self.description,
                    routes=self.routes,
                )
            )
        return self.openapi_schema


def create_app() -> FastAPI:
    app = PortalApp(
        title="fta API",
        version="1",
        description="Hosted, sandboxed Freqtrade: strategies, backtests, hyperopts, data.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        default_response_class=problems.SafeJSONResponse,
    )
    app.state.page_site = PAGE_SITE
    problems.install(app, errors.page_error)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_router)
    api.include_router(strategies_router)
    api.include_router(jobs_router)
    api.include_router(bots_router)
    api.include_router(plans_router)
    api.include_router(storage_router)
    api.include_router(usage_router)
    api.include_router(billing_router)
    api.include_router(billing_identity_router)
    api.include_router(invoices_router)
    api.include_router(billing_alerts_router)
    api.include_router(operators_router)
    api.include_router(privacy_router)
    app.include_router(api)
    app.include_router(api_docs.docs_router(f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs"))
    app.include_router(paypal_webhook_router)
    # Each running bot's own freqtrade API, for its owner (/bots/<id>/api/v1/...).
    app.include_router(bot_api_relay_router)

    for area in views.routers():
        app.include_router(area)
    # Before the mount of /static, which would answer for /static/vendor/ too.
    app.include_router(vendor.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
