"""The root of expected domain failures.

A `DomainError` is data, not a crash: the API layer turns it into a `userErrors` entry
(or a GraphQL error code) with the message translated for the reader.
"""

from __future__ import annotations


class DomainError(Exception):
    """Raised when a domain action refuses its input; carries a stable code for clients."""

    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message  # untranslated, placeholders unfilled
        self.field = field
        self.params = params


class Refusals(DomainError):
    """Several refusals of one input at once, so a form can mark every bad field."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__(errors[0].message, field=errors[0].field, **errors[0].params)
        self.code = errors[0].code
        self.errors = errors

    @classmethod
    def raise_any(cls, errors: list[DomainError]) -> None:
        """Raise the one refusal, or all of them, when there is any."""
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise cls(errors)


class NotFound(DomainError):
    """Raised when a record does not exist or is not visible to the viewer (same answer)."""

    code = "NOT_FOUND"


class PermissionDenied(DomainError):
    """Raised when the viewer's roles do not allow an action."""

    code = "FORBIDDEN"


class AuthenticationFailed(DomainError):
    """Raised when credentials or tokens do not prove who the caller is."""

    code = "UNAUTHENTICATED"
