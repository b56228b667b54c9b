"""Request dependencies that know no domain: the request's database transaction and the
client's address."""

from __future__ import annotations

import asyncio
import ipaddress
import weakref
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fta.db import POOL_CONNECTIONS, session_scope

# Requests holding a transaction at once, below the pool's connections: a request's session
# keeps its connection between the threads that run its dependencies, its route and its
# commit. Unbounded, every thread of the pool could wait for a connection that only a
# thread could give back, and the portal would stall until the pool's timeout (50 page
# requests at once did). The rest wait here, holding neither a thread nor a connection;
# two connections stay for code that opens a unit of work of its own.
REQUEST_SESSIONS = POOL_CONNECTIONS - 2
_session_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots() -> anyio.Semaphore:
    """The bound of this event loop (a test may run several loops, one after another)."""
    loop = asyncio.get_running_loop()
    slots = _session_slots.get(loop)
    if slots is None:
        slots = _session_slots[loop] = anyio.Semaphore(REQUEST_SESSIONS)
    return slots


async def get_db() -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back on error.
    The session's blocking work runs in the thread pool."""
    async with _slots():
        scope = session_scope()
        session = await run_in_threadpool(scope.__enter__)
        try:
            yield session
        except BaseException as error:
            await run_in_threadpool(scope.__exit__, type(error), error, error.__traceback__)
            raise
        await run_in_threadpool(scope.__exit__, None, None, None)


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
