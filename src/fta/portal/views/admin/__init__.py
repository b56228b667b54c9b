"""The operator's console (/admin), for administrators with two-factor log-in only; a client
is told no such page exists. One module per area of the console."""

from __future__ import annotations

from fastapi import APIRouter

from fta.portal.views.admin import accounts, audit, operations, plans, revenue

router = APIRouter()
for area in (accounts, audit, operations, plans, revenue):
    router.include_router(area.router)
