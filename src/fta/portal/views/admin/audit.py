"""The console's audit log viewer (/admin/audit): an account's chain or the platform's,
verified, with where it breaks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from fta.accounts.deps import PageAdminDep
from fta.audit.models import PLATFORM_CHAIN
from fta.operators import audit_view
from fta.web import pages
from fta.web.deps import SessionDep

router = pages.page_router("/admin")


@router.get("/audit")
def audit_chain(
    request: Request,
    session: SessionDep,
    admin: PageAdminDep,
    chain: Annotated[str, Query(max_length=16)] = PLATFORM_CHAIN,
    verify_all: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    """A chain's verification and latest events (the platform's unless `chain` names an
    account); with `all`, every chain verified and those that break listed."""
    name = chain.strip().lower()
    context = {
        "chain": name,
        "view": audit_view.chain_view(session, name),
        "broken": audit_view.broken_chains(session) if verify_all else None,
    }
    return pages.render(request, "admin/audit.html", context)
