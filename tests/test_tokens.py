"""Access tokens only open their own tenant, and only while they are genuine and fresh.

Refusals happen in the request middleware before any tenant data is read; the tests count
the statements the process engine runs to show it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.tokens import issue_access_token, verify_access_token
from renshi.settings import get_settings
from tenants.registry import set_status
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant, unique_slug

VIEWER = "{ viewer { user { email } tenant { slug } } }"
UNAUTHENTICATED = {
    "data": None,
    "errors": [
        {
            "message": "The access token is invalid or has expired.",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ],
}
NOT_FOUND = {
    "data": None,
    "errors": [{"message": "No such tenant.", "extensions": {"code": "NOT_FOUND"}}],
}
LOGIN = """mutation($e: String!, $p: String!) {
  login(email: $e, password: $p) { user { email } }
}"""


@pytest.fixture(scope="module")
async def pair(engine: AsyncEngine) -> tuple[TenantWithAdmin, TenantWithAdmin]:
    return await make_tenant(engine), await make_tenant(engine)


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every statement the process engine sends while the test runs."""
    sent: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    yield sent
    event.remove(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


def on_host(slug: str, port: int | None = None) -> dict[str, str]:
    """Headers naming a tenant by its hostname, `<slug>.<base domain>[:port]`."""
    host = f"{slug}.{get_settings().base_domain}"
    return {"Host": f"{host}:{port}" if port else host}


def secret() -> str:
    return get_settings().secret_key.get_secret_value()


def viewer_of(tenant: TenantWithAdmin) -> dict[str, Any]:
    return {
        "data": {
            "viewer": {
                "user": {"email": tenant.admin_email},
                "tenant": {"slug": tenant.tenant.slug},
            }
        }
    }


def tenant_reads(statements: list[str]) -> list[str]:
    """Statements that bound a tenant schema: the first statement of every tenant unit of work."""
    return [s for s in statements if s.startswith("SET LOCAL search_path")]


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


async def test_a_token_works_with_its_own_tenants_header_and_hostname(
    gql: GraphQLClient, pair: tuple[TenantWithAdmin, TenantWithAdmin]
) -> None:
    alpha, _ = pair
    token = await gql.token(alpha.tenant.slug, alpha.admin_email)

    by_header = await gql.execute(VIEWER, token=token, tenant=alpha.tenant.slug)
    by_host = await gql.execute(VIEWER, token=token, headers=on_host(alpha.tenant.slug))

    assert by_header == viewer_of(alpha)
    assert by_host == viewer_of(alpha)


async def test_a_token_with_another_tenants_header_is_refused_and_reads_nothing(
    gql: GraphQLClient, pair: tuple[TenantWithAdmin, TenantWithAdmin], statements: list[str]
) -> None:
    alpha, beta = pair
    token = await gql.token(alpha.tenant.slug, alpha.admin_email)
    statements.clear()

    response = await gql.post(VIEWER, token=token, tenant=beta.tenant.slug)

    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    assert statements == []


async def test_a_token_on_another_tenants_hostname_is_refused_and_reads_nothing(
    gql: GraphQLClient, pair: tuple[TenantWithAdmin, TenantWithAdmin], statements: list[str]
) -> None:
    alpha, beta = pair
    token = await gql.token(alpha.tenant.slug, alpha.admin_email)
    statements.clear()

    response = await gql.post(
        VIEWER,
        token=token,
        headers=on_host(beta.tenant.slug.upper(), port=8000),
    )

    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    assert statements == []


async def test_a_logout_attempt_with_a_foreign_header_ends_no_session(
    gql: GraphQLClient, pair: tuple[TenantWithAdmin, TenantWithAdmin]
) -> None:
    alpha, beta = pair
    token = await gql.token(alpha.tenant.slug, alpha.admin_email)

    refused = await gql.post("mutation { logout { ok } }", token=token, tenant=beta.tenant.slug)
    still = await gql.execute(VIEWER, token=token)

    assert refused.status_code == 401
    assert refused.json() == UNAUTHENTICATED
    assert still == viewer_of(alpha)


async def test_an_expired_token_is_refused(
    gql: GraphQLClient, pair: tuple[TenantWithAdmin, TenantWithAdmin], statements: list[str]
) -> None:
    # Given the claims of a live session, signed with the right key, once an hour ago
    # and once now,
    alpha, _ = pair
    live = verify_access_token(secret(), await gql.token(alpha.tenant.slug, alpha.admin_email))

    def signed_at(issued: dt.datetime) -> str:
        token, _ = issue_access_token(
            secret(),
            tenant=alpha.tenant.slug,
            user_id=live.user_id,
            session_id=live.session_id,
            roles=list(live.roles),
            lifetime=dt.timedelta(minutes=15),
            now=issued,
        )
        return token

    now = dt.datetime.now(dt.UTC)
    signed = {"expired": signed_at(now - dt.timedelta(hours=1)), "fresh": signed_at(now)}
    statements.clear()

    # when each is presented,
    expired = await gql.post(VIEWER, token=signed["expired"])
    statements_for_expired = list(statements)
    fresh = await gql.execute(VIEWER, token=signed["fresh"])

    # then only the expiry tells them apart.
    assert expired.status_code == 401
    assert expired.json() == UNAUTHENTICATED
    assert statements_for_expired == []
    assert fresh == viewer_of(alpha)


def tamper_payload_tenant(token: str, other_slug: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join([header, b64(unb64(payload) | {"tid": other_slug}), signature])


def tamper_payload_roles(token: str, other_slug: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join([header, b64(unb64(payload) | {"roles": ["admin", "auditor"]}), signature])


def tamper_signature(token: str, other_slug: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return ".".join([header, payload, signature[:middle] + flipped + signature[middle + 1 :]])


def strip_algorithm(token: str, other_slug: str) -> str:
    _, payload, _ = token.split(".")
    return ".".join([b64({"alg": "none", "typ": "JWT"}), payload, ""])


def sign_with_another_key(token: str, other_slug: str) -> str:
    claims = verify_access_token(secret(), token)
    return issue_access_token(
        "a-key-that-is-not-the-servers-one-at-all",
        tenant=claims.tenant,
        user_id=claims.user_id,
        session_id=claims.session_id,
        roles=list(claims.roles),
        lifetime=dt.timedelta(minutes=15),
    )[0]


def not_a_token(token: str, other_slug: str) -> str:
    return "not.a.jwt"


@pytest.mark.parametrize(
    "tamper",
    [
        tamper_payload_tenant,
        tamper_payload_roles,
        tamper_signature,
        strip_algorithm,
        sign_with_another_key,
        not_a_token,
    ],
)
async def test_a_tampered_token_is_refused_and_reads_nothing(
    gql: GraphQLClient,
    pair: tuple[TenantWithAdmin, TenantWithAdmin],
    statements: list[str],
    tamper: Any,
) -> None:
    alpha, beta = pair
    token = await gql.token(alpha.tenant.slug, alpha.admin_email)
    forged = tamper(token, beta.tenant.slug)
    statements.clear()

    response = await gql.post(VIEWER, token=forged)

    assert forged != token
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    assert statements == []


@pytest.mark.parametrize("status", ["suspended", "archived"])
async def test_an_inactive_tenant_refuses_login_and_tokens_until_it_is_active_again(
    gql: GraphQLClient, tenant: TenantWithAdmin, statements: list[str], status: str
) -> None:
    # Given a signed-in admin of a tenant that is then suspended or archived,
    slug = tenant.tenant.slug
    token = await gql.token(slug, tenant.admin_email)
    await set_status(slug, status)
    statements.clear()

    # when someone signs in or uses the token,
    login = await gql.post(LOGIN, {"e": tenant.admin_email, "p": PASSWORD}, tenant=slug)
    by_host = await gql.post(LOGIN, {"e": tenant.admin_email, "p": PASSWORD}, headers=on_host(slug))
    viewer = await gql.post(VIEWER, token=token)
    tenant_statements = tenant_reads(statements)
    await set_status(slug, "active")
    again = await gql.execute(VIEWER, token=token)

    # then each is refused with the tenant's status, and nothing of the tenant is read.
    refused = {
        "data": None,
        "errors": [
            {
                "message": f"This tenant is {status}.",
                "extensions": {"code": f"TENANT_{status.upper()}"},
            }
        ],
    }
    assert [login.status_code, by_host.status_code, viewer.status_code] == [403, 403, 403]
    assert [login.json(), by_host.json(), viewer.json()] == [refused, refused, refused]
    assert tenant_statements == []
    assert again == viewer_of(tenant)


async def test_an_unknown_tenant_is_not_found(gql: GraphQLClient, statements: list[str]) -> None:
    ghost = unique_slug("ghost")
    token, _ = issue_access_token(
        secret(),
        tenant=ghost,
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=["admin"],
        lifetime=dt.timedelta(minutes=15),
    )

    by_header = await gql.post(LOGIN, {"e": "a@b.test", "p": PASSWORD}, tenant=ghost)
    by_host = await gql.post(LOGIN, {"e": "a@b.test", "p": PASSWORD}, headers=on_host(ghost))
    by_token = await gql.post(VIEWER, token=token)

    assert [by_header.status_code, by_host.status_code, by_token.status_code] == [404, 404, 404]
    assert [by_header.json(), by_host.json(), by_token.json()] == [NOT_FOUND] * 3
    assert tenant_reads(statements) == []
