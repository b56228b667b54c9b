"""Who is calling: the authentication dependencies of the API routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fta.accounts.service import Principal, authenticate
from fta.errors import Forbidden, Unauthorized
from fta.web.deps import SessionDep

_bearer = HTTPBearer(auto_error=False)


def current_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token: get one from POST /api/v1/auth/token")
    return authenticate(session, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def current_tenant(principal: PrincipalDep) -> str:
    if principal.tenant_id is None:
        raise Forbidden("platform administrators have no client resources; use a client account")
    return principal.tenant_id


TenantDep = Annotated[str, Depends(current_tenant)]


def current_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only platform administrators may do this")
    return principal


AdminDep = Annotated[Principal, Depends(current_admin)]
