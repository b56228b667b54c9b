"""The pages' own stylesheet, scripts and icons: public, and kept by browsers for an hour."""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles as StarletteStaticFiles
from starlette.types import Scope


class StaticFiles(StarletteStaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=3600"
        return response
