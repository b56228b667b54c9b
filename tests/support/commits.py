"""Waiting for what a live portal's request wrote.

The request's transaction (`fta.web.deps.get_db`) is committed when FastAPI leaves the
request's dependencies, which it does after the answer was sent: a test that reads what a
request of the live portal wrote, or makes a request that needs it, waits for the commit,
a bounded while.
"""

from __future__ import annotations

import time
from collections.abc import Callable

COMMIT_SECONDS = 10.0


def committed(check: Callable[[], bool], what: str, seconds: float = COMMIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {seconds:g} s: {what}")
        time.sleep(0.05)
