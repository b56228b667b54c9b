"""Request dependencies shared by the API routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fta.accounts.service import Principal, authenticate
from fta.db import session_scope
from fta.errors import Forbidden, Unauthorized


def get_db() -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    with session_scope() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
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


def client_ip(request: Request) -> str | None:
    # nginx is the only peer; it sets X-Real-IP from the connection it accepted.
    forwarded = request.headers.get("x-real-ip")
    if forwarded:
        return forwarded[:45]
    return request.client.host if request.client else None


ClientIpDep = Annotated[str | None, Depends(client_ip)]
