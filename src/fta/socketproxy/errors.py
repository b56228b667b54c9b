"""A refused request, with the status the proxy answers and why."""

from __future__ import annotations


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
