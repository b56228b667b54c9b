"""Audit domain: the append-only, hash-chained record of who did what."""

from fta.audit import service

__all__ = ["service"]
