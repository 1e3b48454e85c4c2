"""A soak of interleaved requests from four tenants over a pool of two connections.

Every response must carry only its own tenant's marker, and every statement that runs in a
tenant transaction must see that tenant's schema in `search_path`, although the two
connections pass from tenant to tenant thousands of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import random
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from renshi.app import create_app
from tenants.context import current_tenant_or_none
from tenants.database import configure_engine, create_engine
from tests.conftest import GraphQLClient, make_tenant, unique_slug

REQUESTS = 2_000
TENANTS = 4
IN_FLIGHT = 50
PROBE = "SELECT current_setting('search_path')"

QUERY = """query($id: ID!) {
  viewer { user { displayName } tenant { slug } }
  node(id: $id) { id ... on User { displayName } }
}"""

# Which request of the soak is running; set by the client task, read inside the engine
# events (the app runs in the client's task, and SQLAlchemy's greenlet shares its context).
request_number: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "soak_request", default=None
)


@dataclasses.dataclass
class Probe:
    request: int | None
    tenant: str | None
    search_path: str


@dataclasses.dataclass
class SoakTenant:
    slug: str
    schema: str
    marker: str
    token: str
    user_id: str


@contextlib.asynccontextmanager
async def process_engine(database_url: str, restore: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Install an engine of two connections and no overflow; put `restore` back after."""
    small = create_engine(database_url, pool_size=2, max_overflow=0)
    configure_engine(small)
    try:
        yield small
    finally:
        configure_engine(restore)
        await small.dispose()


def probe_search_path(engine: AsyncEngine, probes: list[Probe]) -> None:
    """After each statement of a tenant transaction, read `search_path` on its connection."""
    bound: dict[int, Any] = {}  # id(connection) -> the transaction that ran SET LOCAL

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement == PROBE:
            return
        transaction = conn.get_transaction()
        if statement.startswith("SET LOCAL search_path"):
            bound[id(conn)] = transaction
            return
        if transaction is None or bound.get(id(conn)) is not transaction:
            return
        tenant = current_tenant_or_none()
        probes.append(
            Probe(
                request=request_number.get(),
                tenant=tenant.slug if tenant else None,
                search_path=conn.exec_driver_sql(PROBE).scalar(),
            )
        )


async def seed(engine: AsyncEngine, gql: GraphQLClient, index: int) -> SoakTenant:
    marker = f"Marker {index} {secrets.token_hex(4)}"
    seeded = await make_tenant(engine, unique_slug("soak"), admin_name=marker)
    token = await gql.token(seeded.tenant.slug, seeded.admin_email)
    viewer = await gql.execute("{ viewer { user { id } } }", token=token)
    return SoakTenant(
        slug=seeded.tenant.slug,
        schema=seeded.tenant.schema,
        marker=marker,
        token=token,
        user_id=viewer["data"]["viewer"]["user"]["id"],
    )


def expected_body(tenant: SoakTenant) -> dict[str, Any]:
    return {
        "data": {
            "viewer": {"user": {"displayName": tenant.marker}, "tenant": {"slug": tenant.slug}},
            "node": {"id": tenant.user_id, "displayName": tenant.marker},
        }
    }


async def test_interleaved_requests_over_two_connections_stay_in_their_tenants(
    database_url: str, engine: AsyncEngine, gql: GraphQLClient
) -> None:
    # Given four tenants with their admins signed in, and 2,000 requests shuffled among them,
    tenants = [await seed(engine, gql, index) for index in range(TENANTS)]
    order = [tenants[i % TENANTS] for i in range(REQUESTS)]
    random.Random(2026).shuffle(order)
    probes: list[Probe] = []
    connects: list[object] = []
    gate = asyncio.Semaphore(IN_FLIGHT)

    # when they run 50 at a time against an app whose pool has two connections,
    async with process_engine(database_url, restore=engine) as small:
        probe_search_path(small, probes)
        event.listen(small.sync_engine, "connect", lambda dbapi, _: connects.append(dbapi))
        transport = httpx.ASGITransport(app=create_app(keep_spares=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            client = GraphQLClient(http)

            async def one(number: int, tenant: SoakTenant) -> tuple[int, int, Any]:
                async with gate:
                    request_number.set(number)
                    response = await client.post(QUERY, {"id": tenant.user_id}, token=tenant.token)
                    return number, response.status_code, response.json()

            results = await asyncio.gather(*(one(n, t) for n, t in enumerate(order)))
        assert isinstance(small.pool, QueuePool)
        checked_out = small.pool.checkedout()

    # then each response carries exactly its own tenant's data,
    wrong = [
        (number, status, body)
        for number, status, body in results
        if status != 200 or body != expected_body(order[number])
    ]
    assert wrong == []
    # every statement of every tenant transaction saw its own tenant and schema,
    strays = [
        probe
        for probe in probes
        if probe.request is None
        or probe.tenant != order[probe.request].slug
        or probe.search_path != f"{order[probe.request].schema}, shared"
    ]
    assert strays == []
    assert {probe.request for probe in probes} == set(range(REQUESTS))
    # and two connections served it all and went back to the pool.
    assert len(connects) == 2
    assert checked_out == 0
