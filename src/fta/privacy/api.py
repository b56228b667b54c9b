"""/api/v1/account/export: everything the account holds, as one zip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask

from fta.accounts.deps import current_principal, current_tenant
from fta.db import session_scope, utcnow
from fta.privacy import export
from fta.web.deps import ClientIpDep

router = APIRouter(prefix="/account", tags=["account"])

_bearer = HTTPBearer(auto_error=False)


def zip_response(prepared: export.PreparedExport, lease: export.ExportLease) -> StreamingResponse:
    """The export as a download, its place released however the response ends."""

    def body() -> Iterator[bytes]:
        try:
            yield from export.stream_export(session_scope, prepared)
        finally:
            lease.release()

    return StreamingResponse(
        body(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{prepared.filename}"',
            "Cache-Control": "private, no-store",
        },
        # Also when the body never starts (the client left at once): release is idempotent.
        background=BackgroundTask(lease.release),
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the zip (see docs/api.md for its layout)",
        }
    },
)
def export_account(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ip: ClientIpDep,
) -> StreamingResponse:
    """Everything your account holds, as one zip: the account and its billing identity,
    every strategy version, every job (config, result, log, result file while kept), every
    bot (config, trades, log), your invoices and credit notes (PDF), your monthly usage and
    your audit log. One export at a time per account (429 while one runs); each is
    recorded in the audit log."""
    # No database session is held while the zip is sent: it may take minutes.
    with session_scope() as session:
        principal = current_principal(session, credentials)
        tenant_id = current_tenant(principal)
    lease = export.SLOTS.acquire(tenant_id)
    try:
        with session_scope() as session:
            prepared = export.prepare_export(session, principal, tenant_id, ip, utcnow())
    except BaseException:
        lease.release()
        raise
    return zip_response(prepared, lease)
