"""The API's edges: health checks, GraphiQL, limits, error codes and masking."""

from __future__ import annotations

import logging

import httpx
import pytest

from renshi.app import create_app
from renshi.settings import Settings
from tests.conftest import GraphQLClient, TenantWithAdmin


async def test_health_and_readiness_answer(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_graphiql_is_served_in_development_only(engine: object) -> None:
    async def graphiql(environment: str) -> int:
        app = create_app(Settings(environment=environment), keep_spares=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/graphql", headers={"Accept": "text/html"})
        return response.status_code

    assert await graphiql("development") == 200
    assert await graphiql("production") != 200


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("{ " + " ".join(f"a{i}: viewer {{ locale }}" for i in range(31)) + " }", "aliases"),
        ("{ viewer { user { id } } " + "__typename " * 2100 + "}", "tokens"),
        (
            '{ node(id: "x") { ... on Employee { '
            + "manager { " * 12
            + "id"
            + " }" * 12
            + " } } }",
            "depth",
        ),
    ],
)
async def test_oversized_documents_are_refused_with_limit_exceeded(
    gql: GraphQLClient, tenant: TenantWithAdmin, document: str, fragment: str
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)

    body = await gql.execute(document, token=token)

    assert body["data"] is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"LIMIT_EXCEEDED"}


async def test_a_malformed_document_is_bad_user_input(gql: GraphQLClient) -> None:
    body = await gql.execute("{ viewer { ")

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_protected_fields_need_a_signed_in_viewer(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    body = await gql.execute("{ employees(first: 1) { totalCount } }", tenant=tenant.tenant.slug)

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unexpected_errors_are_masked_and_logged(
    gql: GraphQLClient,
    tenant: TenantWithAdmin,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    from domain.people import queries

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret database detail")

    monkeypatch.setattr(queries, "list_employees", broken)

    with caplog.at_level(logging.ERROR, logger="schema.errors"):
        body = await gql.execute("{ employees(first: 1) { totalCount } }", token=token)

    assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "secret" not in body["errors"][0]["message"]
    assert "secret database detail" in caplog.text
