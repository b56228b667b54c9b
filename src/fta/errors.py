"""Domain errors. Services raise them; the API maps them to problem+json answers."""

from __future__ import annotations


class DomainError(Exception):
    """An error a person can act on; `detail` says what to do."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def problem_members(self) -> dict[str, object]:
        """What the API's problem document carries besides its type, title, status and
        detail (none, unless a kind of error says more)."""
        return {}


class RetryLater(DomainError):
    """Refused for now, not for good: the answer says when to try again (Retry-After)."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(RetryLater):
    """What the request needs is not ready yet (503); Retry-After says when to try again."""

    status = 503
    title = "Service unavailable"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Invalid(DomainError):
    status = 422
    title = "Invalid input"


class Unauthorized(DomainError):
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class QuotaExceeded(DomainError):
    status = 429
    title = "Quota exceeded"


class Gone(DomainError):
    status = 410
    title = "Gone"
