"""/api/v1/docs: Swagger UI served from the portal's own origin, so the page opens under the
pages' Content-Security-Policy (no CDN, no inline script).

The files come from the swagger-ui-py package, found on disk without importing it (its
Python side is not used); its LICENSE is served beside them.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import FileResponse, HTMLResponse

from fta.web import pages

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}


@cache
def _asset_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed: reinstall the portal's dependencies")
    return Path(spec.origin).parent / "static"


def docs_router(openapi_url: str, docs_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(docs_url)
    def api_docs(request: Request) -> HTMLResponse:
        context = {"openapi_url": openapi_url, "assets": f"{docs_url}/assets"}
        return pages.render(request, "api_docs.html", context)

    @router.get(docs_url + "/assets/{name}")
    def api_docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "no such file of the API documentation")
        return FileResponse(
            _asset_dir() / name,
            media_type=ASSETS[name],
            headers={"cache-control": "public, max-age=86400"},
        )

    return router
