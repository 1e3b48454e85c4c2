"""Signing in, refreshing and signing out through GraphQL."""

from __future__ import annotations

from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin

VIEWER = "{ viewer { user { email displayName } roles tenant { slug } locale } }"


async def test_login_returns_tokens_that_open_the_viewer(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)

    body = await gql.execute(VIEWER, token=token)

    assert body == {
        "data": {
            "viewer": {
                "user": {"email": tenant.admin_email, "displayName": "Admin"},
                "roles": ["admin"],
                "tenant": {"slug": tenant.tenant.slug},
                "locale": "en",
            }
        }
    }


async def test_wrong_password_is_a_user_error(gql: GraphQLClient, tenant: TenantWithAdmin) -> None:
    login = await gql.login(tenant.tenant.slug, tenant.admin_email, "not-the-password")

    assert login["accessToken"] is None
    assert login["userErrors"] == [
        {
            "field": None,
            "code": "UNAUTHENTICATED",
            "message": "The e-mail address or password is wrong.",
        }
    ]


async def test_refresh_rotates_and_a_replayed_token_ends_the_session(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    login = await gql.login(tenant.tenant.slug, tenant.admin_email, PASSWORD)
    refresh = """mutation($t: String!) { refreshToken(refreshToken: $t) {
                   accessToken refreshToken userErrors { code } } }"""

    rotated = await gql.execute(refresh, {"t": login["refreshToken"]}, tenant=tenant.tenant.slug)
    replayed = await gql.execute(refresh, {"t": login["refreshToken"]}, tenant=tenant.tenant.slug)
    after = await gql.execute(
        refresh, {"t": rotated["data"]["refreshToken"]["refreshToken"]}, tenant=tenant.tenant.slug
    )

    assert rotated["data"]["refreshToken"]["userErrors"] == []
    assert rotated["data"]["refreshToken"]["refreshToken"] != login["refreshToken"]
    assert replayed["data"]["refreshToken"]["userErrors"] == [{"code": "UNAUTHENTICATED"}]
    assert after["data"]["refreshToken"]["userErrors"] == [{"code": "UNAUTHENTICATED"}]


async def test_logout_ends_the_access_token_at_once(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)

    logout = await gql.execute("mutation { logout { ok } }", token=token)
    response = await gql.post(VIEWER, token=token)

    assert logout == {"data": {"logout": {"ok": True}}}
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_login_without_a_tenant_asks_for_one(gql: GraphQLClient) -> None:
    body = await gql.execute(
        'mutation { login(email: "a@b.cn", password: "x") { userErrors { code } } }'
    )

    assert body == {"data": {"login": {"userErrors": [{"code": "TENANT_REQUIRED"}]}}}
