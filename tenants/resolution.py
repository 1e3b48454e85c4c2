"""Which tenant a request is for.

Authenticated requests take the tenant from the verified token. Unauthenticated ones
(login, refresh) name it with the hostname `<slug>.<base domain>` or an `X-Tenant` header.
When a token and a hostname or header disagree the request is refused before anything is
read.
"""

from __future__ import annotations

from tenants.context import Tenant
from tenants.errors import TenantMismatch, TenantNotFound
from tenants.registry import find_tenant_by_hostname, get_active_tenant
from tenants.slugs import normalize_slug


def slug_from_host(host: str | None, base_domain: str) -> str | None:
    """`acme` for `acme.example.com:8000` when the base domain is `example.com`."""
    if not host:
        return None
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    hostname = hostname.strip().rstrip(".").casefold()
    suffix = "." + base_domain.casefold()
    if not hostname.endswith(suffix):
        return None
    label = hostname[: -len(suffix)]
    if "." in label:
        return None
    return normalize_slug(label) or "\0invalid"


async def resolve_tenant(
    *,
    token_tenant: str | None,
    host: str | None,
    header: str | None,
    base_domain: str,
) -> Tenant | None:
    """The active tenant for a request, or None when nothing names one.

    Raises `TenantMismatch` when the token and the hostname or header name different
    tenants, `TenantNotFound` or `TenantInactive` for an unknown or inactive tenant.
    """
    from_header = normalize_slug(header) if header else None
    if header and from_header is None:
        raise TenantNotFound(f"No tenant is registered as {header[:60]!r}.")
    from_host = slug_from_host(host, base_domain)
    if from_host == "\0invalid":
        raise TenantNotFound("The hostname does not name a tenant.")

    named = {slug for slug in (from_header, from_host) if slug}
    if not named and host:
        # A custom domain registered by a tenant (e.g. hr.example.cn).
        custom = await find_tenant_by_hostname(host.rsplit(":", 1)[0])
        if custom is not None:
            named = {custom.slug}
    if len(named) > 1:
        raise TenantMismatch("The hostname and the X-Tenant header name different tenants.")
    if token_tenant is not None and named and named != {token_tenant}:
        raise TenantMismatch("The token belongs to another tenant.")

    slug = token_tenant or next(iter(named), None)
    if slug is None:
        return None
    return await get_active_tenant(slug)
