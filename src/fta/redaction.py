"""Secret redaction for every text that leaves a process: logs, job output, errors.

Patterns are deliberately broad: a false positive hides a harmless string, a false
negative leaks a credential.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

# Each pattern may capture a `keep` group: the text before the secret that stays visible.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JSON Web Tokens
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # PEM private keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    # Credentials inside URLs: scheme://user:password@host
    re.compile(r"(?P<keep>://[^/\s:@]+:)[^/\s@]+(?=@)"),
    # AWS access key ids
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # Bearer / Basic credentials in headers
    re.compile(r"(?i)(?P<keep>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{12,}"),
    # key=value, key: value and "key": "value" where the key names a secret
    re.compile(
        r"(?i)(?P<keep>(?:secret|password|passwd|pwd|token|api[_-]?key|apikey|private[_-]?key"
        r"|access[_-]?key|signature|authorization)[\w-]*[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',;&}]{4,}"
    ),
    # Long opaque strings shaped like exchange or payment API keys
    re.compile(r"\b[A-Fa-f0-9]{64}\b"),
    re.compile(
        r"\b(?=[A-Za-z0-9_-]{40,}\b)(?=[A-Za-z_-]*[0-9])(?=[0-9_-]*[A-Za-z])[A-Za-z0-9_-]+\b"
    ),
)


def _mask(match: re.Match[str]) -> str:
    return (match.groupdict().get("keep") or "") + MASK


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """Returns `text` with every secret-shaped substring replaced by a mask."""
    for secret in extra_secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text
