"""Errors of the tenancy layer. Each carries a stable code the API layer can expose."""

from __future__ import annotations


class TenancyError(Exception):
    """Root of every error raised by the tenancy layer."""

    code = "TENANCY_ERROR"


class InvalidSlug(TenancyError):
    """Raised when a tenant slug is malformed or reserved; no SQL has run."""

    code = "INVALID_SLUG"


class TenantExists(TenancyError):
    """Raised when a tenant with the same slug is already registered."""

    code = "TENANT_EXISTS"


class TenantNotFound(TenancyError):
    """Raised when no registered tenant has the given slug."""

    code = "TENANT_NOT_FOUND"


class TenantInactive(TenancyError):
    """Raised when a suspended or archived tenant is asked to serve a request."""

    def __init__(self, slug: str, status: str) -> None:
        super().__init__(f"Tenant {slug!r} is {status}.")
        self.slug = slug
        self.status = status
        self.code = f"TENANT_{status.upper()}"


class NoTenantContext(TenancyError):
    """Raised when tenant tables are touched outside a bound tenant transaction."""

    code = "NO_TENANT_CONTEXT"


class TenantMismatch(TenancyError):
    """Raised when a transaction bound to one tenant is used while another is current."""

    code = "TENANT_MISMATCH"


class MigrationLocked(TenancyError):
    """Raised when another `tenants migrate` run holds the migration lock."""

    code = "MIGRATION_LOCKED"


class InvalidTenantField(TenancyError):
    """Raised when a tenant's name, locale, currency, time zone or status is unacceptable."""

    code = "INVALID_TENANT_FIELD"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
