"""How failures reach clients.

Expected failures of mutations are data: `userErrors { field code message }`. Everything
else is a GraphQL error whose `extensions.code` is one of `ErrorCode`. Unexpected
exceptions are masked for the client and logged with their traceback.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import DomainError
from i18n import N_, translate
from tenants.errors import TenancyError

log = logging.getLogger(__name__)


class ErrorCode(enum.StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INTERNAL = "INTERNAL"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    TENANT_ARCHIVED = "TENANT_ARCHIVED"


class ApiError(Exception):
    """Raised by resolvers for a failure that is not a mutation's user error."""

    def __init__(self, code: ErrorCode, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


@strawberry.enum(description="Stable codes of `userErrors`; clients switch on them.")
class UserErrorCode(enum.Enum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    TENANT_REQUIRED = "TENANT_REQUIRED"
    OUTSTANDING_ADVANCES = "OUTSTANDING_ADVANCES"
    CLEARANCE_OPEN = "CLEARANCE_OPEN"
    ALREADY_DECIDED = "ALREADY_DECIDED"
    NOT_CURRENT_STEP = "NOT_CURRENT_STEP"


@strawberry.type(description="An expected failure of a mutation, tied to an input field.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault, if any.")
    code: UserErrorCode = strawberry.field(description="What went wrong, for programs.")
    message: str = strawberry.field(description="What went wrong, for people.")


def user_error(error: DomainError, locale: str) -> UserError:
    """Turn a refused domain action into a translated `UserError`."""
    try:
        code = UserErrorCode(error.code)
    except ValueError:
        code = UserErrorCode.INVALID
    return UserError(
        field=error.field, code=code, message=translate(error.message, locale, **error.params)
    )


# Messages of strawberry's limit extensions and graphql-core's token limit.
_LIMIT_MARKERS = (
    "exceeds maximum operation depth",
    "aliases found. Allowed",
    "tokens. Parsing aborted",
)
_INTERNAL_MESSAGE = N_("Something went wrong on our side. It has been logged.")


def _api_code(domain_code: str) -> ErrorCode:
    try:
        return ErrorCode(domain_code)
    except ValueError:
        return ErrorCode.BAD_USER_INPUT


def coded_error(error: GraphQLError, locale: str | None) -> GraphQLError:
    """Give `error` an `extensions.code` and a message in `locale`; mask the unexpected.

    Idempotent: an error that already has a code is returned unchanged.
    """
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, ApiError):
        code = original.code
        message = translate(original.message, locale, **original.params)
    elif isinstance(original, DomainError):
        code = _api_code(original.code)
        message = translate(original.message, locale, **original.params)
    elif isinstance(original, TenancyError):
        code, message = ErrorCode.FORBIDDEN, translate(N_("This tenant cannot be used."), locale)
    elif original is None or isinstance(original, GraphQLError):
        limited = any(marker in error.message for marker in _LIMIT_MARKERS)
        code = ErrorCode.LIMIT_EXCEEDED if limited else ErrorCode.BAD_USER_INPUT
        message = error.message
    else:
        log.error("Unexpected error in a GraphQL operation.", exc_info=original)
        code, message = ErrorCode.INTERNAL, translate(_INTERNAL_MESSAGE, locale)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={**(error.extensions or {}), "code": code.value},
    )


class ErrorCodes(SchemaExtension):
    """Apply `coded_error` to every error of an operation, in the request's locale."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        locale = getattr(self.execution_context.context, "locale", None)
        result.errors = [coded_error(error, locale) for error in result.errors]


class RenshiSchema(strawberry.Schema):
    """A schema that leaves error logging to `coded_error`, which logs only the unexpected."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None
