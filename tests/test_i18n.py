"""Messages reach people in their language: user preference, then Accept-Language."""

from __future__ import annotations

from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from i18n import LOCALE_DIR
from tenants.context import use_tenant
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant

CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
LOGIN = """mutation($email: String!, $password: String!) {
             login(email: $email, password: $password) { accessToken userErrors { code message } }
           }"""


async def test_failed_login_is_explained_in_chinese_when_the_browser_asks_for_it(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    body = await gql.execute(
        LOGIN,
        {"email": tenant.admin_email, "password": "not-the-password"},
        tenant=tenant.tenant.slug,
        headers=CHINESE,
    )

    assert body == {
        "data": {
            "login": {
                "accessToken": None,
                "userErrors": [{"code": "UNAUTHENTICATED", "message": "邮箱地址或密码错误。"}],
            }
        }
    }


async def test_a_refused_token_is_explained_in_chinese(gql: GraphQLClient) -> None:
    response = await gql.post("{ viewer { locale } }", token="not-a-token", headers=CHINESE)

    assert response.status_code == 401
    assert response.json() == {
        "data": None,
        "errors": [
            {"message": "访问令牌无效或已过期。", "extensions": {"code": "UNAUTHENTICATED"}}
        ],
    }


async def test_the_users_own_locale_wins_over_accept_language(
    gql: GraphQLClient, engine: AsyncEngine
) -> None:
    english = await make_tenant(engine, locale="en")
    with use_tenant(english.tenant):
        await create_user(
            english.tenant,
            email="li.na@example.cn",
            display_name="李娜",
            password=PASSWORD,
            roles=["hr"],
            locale="zh_CN",
        )
    token = await gql.token(english.tenant.slug, "li.na@example.cn")
    english_browser = {"Accept-Language": "en"}

    viewer = await gql.execute("{ viewer { locale } }", token=token, headers=english_browser)
    refresh = await gql.execute(
        'mutation { refreshToken(refreshToken: "bogus") { userErrors { code message } } }',
        token=token,
        headers=english_browser,
    )

    assert viewer == {"data": {"viewer": {"locale": "zh_Hans_CN"}}}
    assert refresh == {
        "data": {
            "refreshToken": {
                "userErrors": [{"code": "UNAUTHENTICATED", "message": "刷新令牌无效或已过期。"}]
            }
        }
    }


async def test_every_message_has_a_chinese_translation() -> None:
    with open(LOCALE_DIR / "renshi.pot", "rb") as template:
        msgids = {message.id for message in read_po(template) if message.id}
    with open(LOCALE_DIR / "zh_Hans_CN" / "LC_MESSAGES" / "renshi.po", "rb") as po:
        catalog = read_po(po, locale="zh_Hans_CN")

    untranslated = sorted(
        msgid
        for msgid in msgids
        if msgid not in catalog or not catalog[msgid].string or catalog[msgid].fuzzy
    )

    assert msgids
    assert untranslated == []
