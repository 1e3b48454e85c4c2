"""Two tenants seeded with the same primary keys never see each other's data.

Both tenants get an admin with the same id and a second user with the same id and the
same e-mail address; only the display names (the markers) differ. Every operation of the
identity skeleton (viewer, node, login, refreshToken, logout) is run as each tenant in
turn, and no answer may carry a marker of the other one.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from tenants.context import use_tenant
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant, unique_slug

ADMIN_ID = uuid.uuid4()
TWIN_ID = uuid.uuid4()
TWIN_EMAIL = "twin@both.test"

VIEWER = "{ viewer { user { id email displayName } roles tenant { slug name } } }"
NODES = """query($own: ID!, $other: ID!) {
  own: node(id: $own) { id ... on User { email displayName } }
  other: node(id: $other) { id ... on User { email displayName } }
}"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  accessToken refreshToken user { id email displayName } userErrors { field code message }
} }"""


@dataclasses.dataclass
class Side:
    """One of the two tenants, with the markers only its own answers may contain."""

    seeded: TenantWithAdmin
    admin_name: str
    twin_name: str

    @property
    def slug(self) -> str:
        return self.seeded.tenant.slug

    @property
    def markers(self) -> list[str]:
        tenant = self.seeded.tenant
        return [self.admin_name, self.twin_name, tenant.slug, tenant.name, self.seeded.admin_email]


async def seed(engine: AsyncEngine, label: str) -> Side:
    marker = f"{label}-{secrets.token_hex(4)}"
    seeded = await make_tenant(
        engine, unique_slug("iso"), admin_id=ADMIN_ID, admin_name=f"Admin {marker}"
    )
    with use_tenant(seeded.tenant):
        await create_user(
            seeded.tenant,
            email=TWIN_EMAIL,
            display_name=f"Twin {marker}",
            password=PASSWORD,
            roles=["employee"],
            user_id=TWIN_ID,
        )
    return Side(seeded=seeded, admin_name=f"Admin {marker}", twin_name=f"Twin {marker}")


@pytest.fixture(scope="module")
async def pair(engine: AsyncEngine) -> tuple[Side, Side]:
    return await seed(engine, "alpha"), await seed(engine, "beta")


@pytest.fixture(params=["as_alpha", "as_beta"])
def sides(request: pytest.FixtureRequest, pair: tuple[Side, Side]) -> tuple[Side, Side]:
    """(own, other): each test runs once as either tenant."""
    alpha, beta = pair
    return (alpha, beta) if request.param == "as_alpha" else (beta, alpha)


def foreign_markers(body: Any, other: Side) -> list[str]:
    text = json.dumps(body, ensure_ascii=False)
    return [marker for marker in other.markers if marker in text]


async def admin_id_of(gql: GraphQLClient, token: str) -> str:
    body = await gql.execute(VIEWER, token=token)
    return str(body["data"]["viewer"]["user"]["id"])


async def test_both_tenants_hold_the_same_primary_keys(pair: tuple[Side, Side]) -> None:
    alpha, beta = pair

    assert alpha.seeded.admin_id == beta.seeded.admin_id == ADMIN_ID
    assert alpha.seeded.tenant.id != beta.seeded.tenant.id


async def test_viewer_shows_only_the_own_tenant(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides
    token = await gql.token(own.slug, own.seeded.admin_email)

    body = await gql.execute(VIEWER, token=token)

    user = body["data"]["viewer"]["user"]
    assert body == {
        "data": {
            "viewer": {
                "user": {
                    "id": user["id"],
                    "email": own.seeded.admin_email,
                    "displayName": own.admin_name,
                },
                "roles": ["admin"],
                "tenant": {"slug": own.slug, "name": own.seeded.tenant.name},
            }
        }
    }
    assert foreign_markers(body, other) == []


async def test_login_with_an_e_mail_both_tenants_share_signs_in_to_the_named_tenant(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides

    login = await gql.login(own.slug, TWIN_EMAIL)
    viewer = await gql.execute(VIEWER, token=login["accessToken"])

    assert login["userErrors"] == []
    assert login["user"]["email"] == TWIN_EMAIL
    assert viewer["data"]["viewer"]["user"]["displayName"] == own.twin_name
    assert viewer["data"]["viewer"]["tenant"]["slug"] == own.slug
    assert foreign_markers(login, other) == []
    assert foreign_markers(viewer, other) == []


async def test_login_with_the_other_tenants_e_mail_fails_like_a_wrong_password(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides

    login = await gql.login(own.slug, other.seeded.admin_email)

    assert login == {
        "accessToken": None,
        "refreshToken": None,
        "user": None,
        "userErrors": [
            {
                "field": None,
                "code": "UNAUTHENTICATED",
                "message": "The e-mail address or password is wrong.",
            }
        ],
    }


async def test_node_resolves_an_own_id_and_returns_null_for_the_same_key_of_the_other_tenant(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides
    own_token = await gql.token(own.slug, own.seeded.admin_email)
    other_token = await gql.token(other.slug, other.seeded.admin_email)
    own_id = await admin_id_of(gql, own_token)
    other_id = await admin_id_of(gql, other_token)

    body = await gql.execute(NODES, {"own": own_id, "other": other_id}, token=own_token)

    assert own_id != other_id
    assert body == {
        "data": {
            "own": {"id": own_id, "email": own.seeded.admin_email, "displayName": own.admin_name},
            "other": None,
        }
    }


async def test_the_other_tenants_id_alone_resolves_to_null(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides
    own_token = await gql.token(own.slug, own.seeded.admin_email)
    other_id = await admin_id_of(gql, await gql.token(other.slug, other.seeded.admin_email))

    body = await gql.execute(
        "query($id: ID!) { node(id: $id) { id ... on User { displayName } } }",
        {"id": other_id},
        token=own_token,
    )

    assert body == {"data": {"node": None}}


async def test_refresh_token_rotates_only_in_its_own_tenant(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides
    own_login = await gql.login(own.slug, TWIN_EMAIL)
    other_login = await gql.login(other.slug, TWIN_EMAIL)

    rotated = await gql.execute(REFRESH, {"t": own_login["refreshToken"]}, tenant=own.slug)
    foreign = await gql.execute(REFRESH, {"t": other_login["refreshToken"]}, tenant=own.slug)
    still_valid = await gql.execute(REFRESH, {"t": other_login["refreshToken"]}, tenant=other.slug)

    assert rotated["data"]["refreshToken"]["userErrors"] == []
    assert rotated["data"]["refreshToken"]["user"]["displayName"] == own.twin_name
    assert foreign_markers(rotated, other) == []
    assert foreign == {
        "data": {
            "refreshToken": {
                "accessToken": None,
                "refreshToken": None,
                "user": None,
                "userErrors": [
                    {
                        "field": None,
                        "code": "UNAUTHENTICATED",
                        "message": "The refresh token is invalid or has expired.",
                    }
                ],
            }
        }
    }
    assert still_valid["data"]["refreshToken"]["userErrors"] == []
    assert still_valid["data"]["refreshToken"]["user"]["displayName"] == other.twin_name


async def test_logout_ends_only_the_own_session_of_a_user_id_both_tenants_share(
    gql: GraphQLClient, sides: tuple[Side, Side]
) -> None:
    own, other = sides
    own_token = await gql.token(own.slug, own.seeded.admin_email)
    other_token = await gql.token(other.slug, other.seeded.admin_email)

    logout = await gql.execute("mutation { logout { ok userErrors { code } } }", token=own_token)
    own_after = await gql.post(VIEWER, token=own_token)
    other_after = await gql.execute(VIEWER, token=other_token)

    assert logout == {"data": {"logout": {"ok": True, "userErrors": []}}}
    assert own_after.status_code == 401
    assert foreign_markers(own_after.json(), other) == []
    assert other_after["data"]["viewer"]["user"]["displayName"] == other.admin_name
    assert foreign_markers(other_after, own) == []
