"""Declarative bases for the two kinds of tables.

`SharedBase` tables live in the `shared` schema and are always schema-qualified.
`TenantBase` tables carry no schema: they resolve through the `search_path` that a tenant
transaction binds, so the same model serves every tenant schema.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from tenants.slugs import SHARED_SCHEMA

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class SharedBase(DeclarativeBase):
    """Tables of the shared schema: the tenant registry and its bookkeeping."""

    metadata = MetaData(schema=SHARED_SCHEMA, naming_convention=NAMING_CONVENTION)


class TenantBase(DeclarativeBase):
    """Tables that exist once per tenant schema."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
