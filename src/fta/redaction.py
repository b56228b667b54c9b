"""Secret redaction for every text that leaves a process: logs, job output, errors.

Patterns are deliberately broad: a false positive hides a harmless string, a false
negative leaks a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "[REDACTED]"
# A line is redacted with this much of what follows its cut, so that a secret running
# across the cut is still recognised whole.
CUT_CONTEXT = 256
_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")

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
    # Long opaque strings shaped like exchange or payment API keys, and base64 secrets
    # (AWS secret keys, Kraken secrets, PEM body lines). A run of the key alphabets is tried
    # once, from its first character, so that hostile output cannot make this quadratic;
    # `_is_opaque_key` then tells keys from long words and file paths.
    re.compile(r"\b[A-Fa-f0-9]{64}\b"),
    re.compile(r"(?<![A-Za-z0-9_+/-])(?P<opaque>[A-Za-z0-9_+/-]{40,}={0,2})"),
)


def _is_url_safe_key(token: str) -> bool:
    has_digit = any(char.isdigit() for char in token)
    return len(token) >= 40 and has_digit and any(char.isalpha() for char in token)


def _is_base64_key(token: str) -> bool:
    # Paths have slashes too, but seldom both cases and a digit, and never a plus.
    has_digit_or_plus = any(char.isdigit() or char == "+" for char in token)
    has_both_cases = any(char.islower() for char in token) and any(char.isupper() for char in token)
    return has_digit_or_plus and has_both_cases


def _is_opaque_key(token: str) -> bool:
    body = token.rstrip("=")
    if "+" not in body and "/" not in body:
        return _is_url_safe_key(body)
    if "_" not in body and "-" not in body:
        return _is_base64_key(body)
    # Both alphabets, as in a file path: only a long key-like piece between separators.
    return ("+" in body and _is_base64_key(body)) or any(
        _is_url_safe_key(piece) for piece in re.split(r"[+/]", body)
    )


def _mask(match: re.Match[str]) -> str:
    groups = match.groupdict()
    opaque = groups.get("opaque")
    if opaque is not None and not _is_opaque_key(opaque):
        return match.group(0)
    return (groups.get("keep") or "") + MASK


def redact(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """Returns `text` with every secret-shaped substring replaced by a mask."""
    for secret in extra_secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


@dataclass
class LineRedactor:
    """Redacts a stream of output one line at a time.

    A PEM private key printed line by line is masked from its BEGIN line to its END line:
    its last body line can be too short for any pattern. A line longer than the limit is
    redacted before it is cut: a cut through a secret leaves a part no pattern recognises.
    """

    secrets: tuple[str, ...] = ()
    _in_private_key: bool = False

    def redact_line(self, line: str, max_length: int) -> str:
        """`line` redacted, and cut to at most `max_length` characters."""
        if self._in_private_key:
            end = _PRIVATE_KEY_END.search(line)
            if end is None:
                return MASK
            self._in_private_key = False
            line = MASK + line[end.end() :]
        else:
            begin = _PRIVATE_KEY_BEGIN.search(line)
            if begin is not None and _PRIVATE_KEY_END.search(line, begin.end()) is None:
                self._in_private_key = True
                line = line[: begin.start()] + MASK
        return redact(line[: max_length + CUT_CONTEXT], self.secrets)[:max_length]
