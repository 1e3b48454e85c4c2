"""Messages reach people in their language: user preference, then Accept-Language."""

from __future__ import annotations

import re
from string import Formatter

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from i18n import LOCALE_DIR
from tenants.context import use_tenant
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant

I18N_DIR = LOCALE_DIR.parent
PROJECT_ROOT = I18N_DIR.parent
PERCENT_SPECIFIER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
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


def test_every_message_in_the_source_has_a_chinese_translation() -> None:
    msgids = extracted_msgids()
    catalog = chinese_catalog()

    untranslated = sorted(msgid for msgid in msgids if not translated(catalog.get(msgid)))

    assert len(msgids) > 100
    assert untranslated == [], "run `make messages` and translate:\n" + "\n".join(untranslated)


def test_every_translation_keeps_the_placeholders_of_its_message() -> None:
    catalog = chinese_catalog()

    mismatched = [
        f"{message.id!r}: {placeholders(source, message)} -> {placeholders(text, message)}"
        for message in catalog
        if message.id and translated(message)
        for source, text in pairs(message)
        if placeholders(source, message) != placeholders(text, message)
    ]

    assert mismatched == [], "\n".join(mismatched)


def extracted_msgids() -> set[str]:
    """Every msgid in the source now, extracted as `make messages` does (same mapping file,
    Babel's default keywords plus N_ and translate), so the committed .pot can be stale."""
    with open(I18N_DIR / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "N_": None, "translate": None}
    found = extract_from_dir(str(PROJECT_ROOT), method_map, options_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def chinese_catalog() -> Catalog:
    with open(LOCALE_DIR / "zh_Hans_CN" / "LC_MESSAGES" / "renshi.po", "rb") as po:
        return read_po(po, locale="zh_Hans_CN")


def translated(message: Message | None) -> bool:
    """A message counts as translated when every plural form is filled and it is not fuzzy."""
    if message is None or message.fuzzy:
        return False
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(forms)


def pairs(message: Message) -> list[tuple[str, str]]:
    """(source, translation) pairs: each plural form is checked against the plural msgid."""
    if isinstance(message.id, str):
        return [(message.id, str(message.string))]
    return [(message.id[-1], form) for form in message.string]


def placeholders(text: str, message: Message) -> set[tuple[str, ...]]:
    """The {name:spec!conversion} fields of `text`, and its %-specifiers if python-format."""
    fields = {
        (name, spec or "", conversion or "")
        for _, name, spec, conversion in Formatter().parse(text)
        if name is not None
    }
    if "python-format" in message.flags:
        fields |= {("%", specifier) for specifier in PERCENT_SPECIFIER.findall(text)}
    return fields
