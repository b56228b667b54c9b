"""Request dependencies shared by the API routers."""

from __future__ import annotations

import ipaddress
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


def current_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("only platform administrators may do this")
    return principal


AdminDep = Annotated[Principal, Depends(current_admin)]


def client_ip(request: Request) -> str | None:
    """The client's address for throttles and the audit trail.

    nginx is the portal's only peer and overwrites X-Real-IP with the address it decided on
    (the TCP peer, or what a configured front proxy said); X-Forwarded-For, which a client
    writes, is never read. A value that is not an address is ignored.
    """
    real_ip = request.headers.get("x-real-ip", "")
    try:
        return str(ipaddress.ip_address(real_ip))
    except ValueError:
        return request.client.host if request.client else None


ClientIpDep = Annotated[str | None, Depends(client_ip)]
