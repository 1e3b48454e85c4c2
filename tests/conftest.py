"""Shared fixtures: a real PostgreSQL database for the session, the app, and tenants.

The database comes from TEST_DATABASE_URL, else DATABASE_URL, else an embedded server.
Each test session works in a database of its own, created here and dropped at the end.
"""

from __future__ import annotations

import os

os.environ.setdefault("RENSHI_ENVIRONMENT", "test")
os.environ.setdefault("RENSHI_SPARE_SCHEMAS", "0")

import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from renshi import embedded
from renshi.app import create_app
from renshi.settings import PROJECT_ROOT
from tenants.context import Tenant, use_tenant
from tenants.database import configure_engine, create_engine, dispose_engine
from tenants.migrator import migrate_shared
from tenants.provisioning import TenantSpec, create_tenant

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
PASSWORD = "correct-horse-battery"


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    return embedded.start(PROJECT_ROOT / "var" / "test", database="postgres")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A fresh database on the test server, dropped after the session."""
    admin_url = server_url()
    name = f"renshi_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The process-wide engine, on the session's database, with the shared schema at head."""
    engine = create_engine(database_url, pool_size=5, max_overflow=5)
    configure_engine(engine)
    await migrate_shared(engine)
    yield engine
    await dispose_engine()


@pytest.fixture(scope="session")
def app(engine: AsyncEngine) -> Any:
    return create_app(keep_spares=False)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@dataclasses.dataclass
class TenantWithAdmin:
    tenant: Tenant
    admin_email: str
    admin_id: uuid.UUID


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def make_tenant(
    engine: AsyncEngine,
    slug: str | None = None,
    *,
    admin_id: uuid.UUID | None = None,
    admin_name: str = "Admin",
    **spec: Any,
) -> TenantWithAdmin:
    """Create a tenant with one admin user whose password is `PASSWORD`."""
    slug = slug or unique_slug()
    tenant = await create_tenant(engine, TenantSpec.parse(slug=slug, name=f"Tenant {slug}", **spec))
    email = f"admin@{slug}.test"
    with use_tenant(tenant):
        user = await create_user(
            tenant,
            email=email,
            display_name=admin_name,
            password=PASSWORD,
            roles=["admin"],
            user_id=admin_id,
        )
    return TenantWithAdmin(tenant=tenant, admin_email=email, admin_id=user.id)


@pytest.fixture
async def tenant(engine: AsyncEngine) -> TenantWithAdmin:
    return await make_tenant(engine)


class GraphQLClient:
    """Posts GraphQL documents the way a single-page app does."""

    def __init__(self, http: httpx.AsyncClient, language: str | None = None) -> None:
        self.http = http
        self.language = language  # the browser's Accept-Language, if it sends one

    def speaking(self, language: str) -> GraphQLClient:
        """The same client, in a browser that asks for `language`."""
        return GraphQLClient(self.http, language)

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        tenant: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if self.language:
            sent.setdefault("Accept-Language", self.language)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if tenant:
            sent["X-Tenant"] = tenant
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
        )

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        response = await self.post(query, variables, **kw)
        return response.json()

    async def login(self, tenant: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
        body = await self.execute(
            """mutation($email: String!, $password: String!) {
                 login(email: $email, password: $password) {
                   accessToken refreshToken user { id email }
                   userErrors { field code message }
                 }
               }""",
            {"email": email, "password": password},
            tenant=tenant,
        )
        return body["data"]["login"]

    async def token(self, tenant: str, email: str, password: str = PASSWORD) -> str:
        login = await self.login(tenant, email, password)
        assert login["userErrors"] == [], login
        return login["accessToken"]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or a visible skip when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path
