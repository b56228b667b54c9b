"""Who is calling: the authentication dependencies of the API routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fta.accounts import two_factor
from fta.accounts.models import TokenScope, User
from fta.accounts.service import Principal, authenticate
from fta.errors import Forbidden, NotFound, Unauthorized
from fta.web import session_cookie
from fta.web.deps import SessionDep

_bearer = HTTPBearer(auto_error=False)
# What a read-only credential may call.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def current_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who calls, whatever the method (a read-only token too: see `permitted_principal`)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: get one from POST /api/v1/auth/token")
    return authenticate(session, credentials.credentials)


def permitted_principal(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    """Who calls, if the credential's scope allows this request: a read-only personal token
    calls safe methods only. Every API route takes the caller from here."""
    if principal.scope is TokenScope.READ and request.method not in READ_METHODS:
        raise Forbidden(
            "this personal token may only read (GET): use a token with the write scope "
            "to change anything"
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(permitted_principal)]


def current_tenant(principal: PrincipalDep) -> str:
    if principal.tenant_id is None:
        raise Forbidden("platform administrators have no client resources; use a client account")
    return principal.tenant_id


TenantDep = Annotated[str, Depends(current_tenant)]


def _require_two_factor(session: Session, principal: Principal) -> None:
    """An administrator acts on every client's account: only with two-factor log-in on."""
    user = session.get(User, principal.user_id)
    if user is None or not two_factor.enabled(user):
        raise Forbidden(
            "turn on two-factor log-in for this administrator first, at "
            "/app/account/security, then log in again"
        )


def current_admin(principal: PrincipalDep, session: SessionDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only platform administrators may do this")
    _require_two_factor(session, principal)
    return principal


AdminDep = Annotated[Principal, Depends(current_admin)]


class SignInRequired(Unauthorized):
    """A page for signed-in clients was asked without a valid log-in: the portal sends the
    browser to the log-in page."""


def page_principal(request: Request, session: SessionDep) -> Principal:
    """Who is signed in to the pages (from the session cookie); kept on `request.state` for
    the page layout."""
    token = session_cookie.token_of(request)
    if token is None:
        raise SignInRequired("sign in to see this page")
    try:
        principal = authenticate(session, token, personal=False)
    except Unauthorized as refused:
        raise SignInRequired(refused.detail) from refused
    request.state.principal = principal
    return principal


PagePrincipalDep = Annotated[Principal, Depends(page_principal)]


def page_tenant(principal: PagePrincipalDep) -> str:
    if principal.tenant_id is None:
        raise Forbidden("platform administrators have no client pages; use a client account")
    return principal.tenant_id


PageTenantDep = Annotated[str, Depends(page_tenant)]


def page_admin(principal: PagePrincipalDep, session: SessionDep) -> Principal:
    """The administrator of an operator's console page; a client is told no such page
    exists."""
    if not principal.is_admin:
        raise NotFound("no such page")
    _require_two_factor(session, principal)
    return principal


PageAdminDep = Annotated[Principal, Depends(page_admin)]


def optional_page_principal(request: Request, session: SessionDep) -> Principal | None:
    """The signed-in visitor of a public page, if any."""
    try:
        return page_principal(request, session)
    except SignInRequired:
        return None


MaybePrincipalDep = Annotated[Principal | None, Depends(optional_page_principal)]
