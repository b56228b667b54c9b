"""The account's security pages: personal API tokens (made, listed, revoked) and two-factor
log-in (enabled with an authenticator app, recovery codes, disabled).

Secrets (a new token's value, the TOTP secret while it is being set up, recovery codes) are
shown once, on the answer to the form that made them, never stored by the browser's cache.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from fta.accounts import personal_tokens
from fta.accounts.deps import PagePrincipalDep, PageTenantDep
from fta.accounts.models import TokenScope
from fta.accounts.service import Principal
from fta.db import utcnow
from fta.errors import Conflict, Forbidden, Invalid
from fta.web import pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/account")

# Pages that show a secret: kept by no cache, the browser's history included.
NO_STORE = {"Cache-Control": "no-store"}
EXPIRY_DAYS = ("30", "90", "365")
NEVER = "never"


def _tokens_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    created: personal_tokens.CreatedToken | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "tokens": personal_tokens.list_tokens(session, principal),
        "now": utcnow(),
        "created": created,
        "error": error,
        "form": form or {"name": "", "scope": TokenScope.READ.value, "expires_in_days": "90"},
        "expiry_days": EXPIRY_DAYS,
    }
    return pages.render(
        request, "account/tokens.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get("/tokens")
def tokens(
    request: Request, session: SessionDep, principal: PagePrincipalDep, tenant_id: PageTenantDep
) -> Response:
    return _tokens_page(request, session, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    name: Annotated[str, Form(max_length=200)],
    scope: Annotated[str, Form(max_length=10)] = TokenScope.READ.value,
    expires_in_days: Annotated[str, Form(max_length=10)] = "90",
) -> Response:
    _ = pages.gettext_for(request)
    form = {"name": name, "scope": scope, "expires_in_days": expires_in_days}
    error = None
    if scope not in {s.value for s in TokenScope}:
        error = _("Choose what the token may do.")
    elif expires_in_days not in (*EXPIRY_DAYS, NEVER):
        error = _("Choose when the token expires.")
    else:
        try:
            created = personal_tokens.create(
                session,
                principal,
                name=name,
                scope=TokenScope(scope),
                expires_in_days=None if expires_in_days == NEVER else int(expires_in_days),
                now=utcnow(),
                ip=ip,
            )
        except Invalid:
            error = _("Give the token a name of 1 to 100 characters.")
        except Conflict:
            error = _("You have too many active tokens: revoke those you no longer use.")
        except Forbidden:
            error = _("Log in again with your password to make a token.")
        else:
            return _tokens_page(request, session, principal, created=created)
    return _tokens_page(request, session, principal, error=error, form=form, status_code=400)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    token_id: uuid.UUID,
) -> Response:
    personal_tokens.revoke(session, principal, token_id, utcnow(), ip)
    return RedirectResponse("/app/account/tokens", status_code=303)
