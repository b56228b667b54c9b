"""Where a page may send the browser after a form: only to a path of this site."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_target(target: str, fallback: str = "/") -> str:
    """`target` when it is a path of this site, else `fallback` (no open redirect: an absolute
    URL, a scheme-relative `//host` or a backslash trick never leaves this site)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in target):
        return fallback
    return target
