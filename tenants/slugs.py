"""Tenant slugs and the schema names derived from them.

A slug is validated here before it can reach any SQL. The schema name is always computed
from a validated slug by `schema_for`, never taken from a request.
"""

from __future__ import annotations

import re

from tenants.errors import InvalidSlug

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,39}")

# Prefix of every tenant schema; spare schemas and the shared schema use other names,
# so no slug can ever name them.
TENANT_SCHEMA_PREFIX = "t_"
SHARED_SCHEMA = "shared"

# Names that read like PostgreSQL's or our own internals. They are valid identifiers but
# would confuse an operator reading the catalog, so they are refused as slugs too.
RESERVED_SLUGS = frozenset(
    {"public", "shared", "information_schema", "admin", "api", "www", "renshi", "spare"}
)


def validate_slug(raw: str) -> str:
    """Return `raw` if it is an acceptable new slug, else raise `InvalidSlug`.

    Upper case is refused rather than folded on creation, so that the operator sees the
    slug that will be stored; lookups fold case with `normalize_slug`.
    """
    if not isinstance(raw, str) or not raw:
        raise InvalidSlug("A slug is required.")
    if len(raw) > 40:
        raise InvalidSlug(f"A slug has at most 40 characters, this one has {len(raw)}.")
    # The folded form is checked first, so the upper-case hint never suggests a bad slug.
    folded = raw.casefold()
    if not SLUG_PATTERN.fullmatch(folded):
        raise InvalidSlug(
            "A slug starts with a letter and has 2 to 40 lower-case letters, digits or '_'."
        )
    if folded in RESERVED_SLUGS or folded.startswith("pg_"):
        raise InvalidSlug(f"The slug {folded!r} is reserved.")
    if raw != folded:
        raise InvalidSlug(f"A slug is lower case: use {folded!r}.")
    return raw


def normalize_slug(raw: str) -> str | None:
    """Case-fold a slug named by a hostname or header; None when it cannot be a slug."""
    folded = raw.strip().casefold()
    if not SLUG_PATTERN.fullmatch(folded) or folded in RESERVED_SLUGS:
        return None
    if folded.startswith("pg_"):
        return None
    return folded


def schema_for(slug: str) -> str:
    """The schema name of a tenant. Safe to quote into SQL: the slug was validated."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise InvalidSlug(f"Refusing to derive a schema from {slug!r}.")
    return f"{TENANT_SCHEMA_PREFIX}{slug}"


def quote_ident(name: str) -> str:
    """Double-quote an identifier that has already been validated."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise InvalidSlug(f"Refusing to quote {name!r} as an identifier.")
    return f'"{name}"'
