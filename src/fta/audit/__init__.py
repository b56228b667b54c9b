"""Audit domain: the append-only record of who did what, chained by keyed links."""

from fta.audit import service

__all__ = ["service"]
