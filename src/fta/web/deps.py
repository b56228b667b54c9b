"""Request dependencies that know no domain: the request's database transaction and the
client's address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fta.db import session_scope


def get_db() -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    with session_scope() as session:
        yield session


# Scoped to the route's function: the transaction is committed before the answer leaves, so
# a client told "done" finds it done on its next request, and a failed commit is an error
# answer rather than a success that did not happen.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


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
