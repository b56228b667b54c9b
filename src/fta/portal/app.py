"""The portal's FastAPI application factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import text

from fta.accounts.api import router as auth_router
from fta.db import get_engine
from fta.jobs.api import router as jobs_router
from fta.portal import problems
from fta.strategies.api import router as strategies_router

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1024 * 1024


def create_app() -> FastAPI:
    app = FastAPI(
        title="fta API",
        version="1",
        description="Hosted, sandboxed Freqtrade: strategies, backtests, hyperopts, data.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    problems.install(app)

    @app.middleware("http")
    async def _cap_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # nginx caps bodies too; this keeps the portal safe when reached directly.
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return problems.problem(
                413, "Request too large", f"request bodies are limited to {MAX_BODY_BYTES} bytes"
            )
        return await call_next(request)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_router)
    api.include_router(strategies_router)
    api.include_router(jobs_router)
    app.include_router(api)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
