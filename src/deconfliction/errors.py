"""Problems: the one error type that services raise and that API and CLI render.

The API renders a Problem as RFC 9457 problem+json, the CLI as one line with exit code 2.
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """A request that cannot be carried out, with the reason a person can act on."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type(self) -> str:
        return f"https://deconfliction.invalid/problems/{self.title.lower().replace(' ', '-')}"

    def body(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class Invalid(Problem):
    status = 422
    title = "Invalid input"


class Unauthorized(Problem):
    status = 401
    title = "Not authenticated"


class Forbidden(Problem):
    status = 403
    title = "Forbidden"


class NotFound(Problem):
    status = 404
    title = "Not found"


class Conflict(Problem):
    status = 409
    title = "Conflict"


class PreconditionRequired(Problem):
    status = 428
    title = "Precondition required"


class TooLarge(Problem):
    status = 413
    title = "Payload too large"


class Unavailable(Problem):
    status = 503
    title = "Service unavailable"
