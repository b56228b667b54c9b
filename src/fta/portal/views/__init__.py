"""The portal's pages: thin handlers over the same services as the API, one module per area
of the portal, each with its `router` (made by `fta.web.pages.page_router`)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from fastapi import APIRouter


def routers() -> Iterator[APIRouter]:
    """Every area's router, in the order of the modules' names."""
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda found: found.name):
        area = importlib.import_module(f"{__name__}.{module.name}")
        router = getattr(area, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{area.__name__} has no page router")
        yield router
