"""The demo organisation of `make run`, seen through the API the way a newcomer sees it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.clock import local_today
from renshi import demo
from renshi.demo_data import Plan
from renshi.settings import get_settings
from tests.conftest import GraphQLClient, make_tenant

PAGE = """query($after: String) {
  employees(first: 100, after: $after, sort: EMPLOYEE_NUMBER) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { %s } }
  }
}"""

ROW = """employeeNumber givenName familyName localName hireDate status
  position { title } branch { code currency }
  manager { employeeNumber position { title } }
  salary { amount { amount currency } period }
  jobLevel { code payBand { min { amount currency } max { amount currency } } }"""


@dataclasses.dataclass
class Demo:
    tenant: str
    as_of: dt.date
    plan: Plan


async def fill_new_tenant(engine: AsyncEngine, as_of: dt.date | None = None) -> Demo:
    """A new tenant filled the way `renshi dev` fills the demo tenant."""
    made = await make_tenant(engine, currency="CNY", time_zone="Asia/Shanghai")
    as_of = as_of or local_today(made.tenant.time_zone)
    plan = await demo.populate(made.tenant, as_of=as_of)
    return Demo(tenant=made.tenant.slug, as_of=as_of, plan=plan)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def meridian(engine: AsyncEngine) -> Demo:
    """One demo organisation for the module: the tests only read it."""
    return await fill_new_tenant(engine)


async def sign_in(gql: GraphQLClient, tenant: str, email: str = demo.DEMO_EMAIL) -> str:
    return await gql.token(tenant, email, demo.DEMO_PASSWORD)


async def everyone(gql: GraphQLClient, token: str, fields: str = ROW) -> list[dict[str, Any]]:
    """Every employee, by employee number, in pages of 100."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gql.execute(PAGE % fields, {"after": after}, token=token)
        assert "errors" not in body, body
        page = body["data"]["employees"]
        rows += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return rows
        after = page["pageInfo"]["endCursor"]


async def test_the_group_has_300_people_in_a_headquarters_and_four_countries(
    gql: GraphQLClient, meridian: Demo
) -> None:
    token = await sign_in(gql, meridian.tenant)

    body = await gql.execute(
        """{ employees(first: 1) { totalCount }
             branches { code country currency timeZone locale parent { code } } }""",
        token=token,
    )

    assert body["data"]["employees"]["totalCount"] == 300
    branches = [
        (b["code"], b["country"], b["currency"], b["timeZone"], b["locale"], b["parent"])
        for b in body["data"]["branches"]
    ]
    hq = {"code": "HQ-SHA"}
    assert branches == [
        ("CN-SZX", "CN", "CNY", "Asia/Shanghai", "zh_CN", hq),
        ("DE-MUC", "DE", "EUR", "Europe/Berlin", "de_DE", hq),
        ("HQ-SHA", "CN", "CNY", "Asia/Shanghai", "zh_CN", None),
        ("JP-TYO", "JP", "JPY", "Asia/Tokyo", "ja_JP", hq),
        ("US-SJC", "US", "USD", "America/Los_Angeles", "en_US", hq),
    ]


async def test_the_org_chart_runs_from_the_group_to_teams_under_the_ceo(
    gql: GraphQLClient, meridian: Demo
) -> None:
    token = await sign_in(gql, meridian.tenant)
    node = "unit { name kind head { displayName } } headcount"
    nested = node
    for _level in range(4):
        nested = f"{node} children {{ {nested} }}"

    body = await gql.execute(f"{{ orgChart(depth: 5) {{ {nested} }} }}", token=token)

    assert "errors" not in body, body
    [root] = body["data"]["orgChart"]
    assert root["unit"] == {
        "name": "Meridian Group",
        "kind": "company",
        "head": {"displayName": meridian.plan.users[0].display_name},
    }
    assert root["headcount"] == 300
    kinds_by_depth: dict[int, set[str]] = {}
    stack = [(root, 0)]
    while stack:
        unit, depth = stack.pop()
        kinds_by_depth.setdefault(depth, set()).add(unit["unit"]["kind"])
        stack += [(child, depth + 1) for child in unit["children"]]
    assert kinds_by_depth == {
        0: {"company"},
        1: {"division"},
        2: {"department"},
        3: {"team"},
    }


async def test_everyone_but_the_ceo_has_a_manager_and_pay_within_their_band(
    gql: GraphQLClient, meridian: Demo
) -> None:
    token = await sign_in(gql, meridian.tenant)

    rows = await everyone(gql, token)

    assert len(rows) == 300
    without_manager = [
        (r["employeeNumber"], r["position"]["title"]) for r in rows if not r["manager"]
    ]
    assert without_manager == [("MG00001", "Chief Executive Officer")]
    for row in rows:
        salary, band = row["salary"]["amount"], row["jobLevel"]["payBand"]
        currency = row["branch"]["currency"]
        assert salary["currency"] == band["min"]["currency"] == currency, row
        assert row["jobLevel"]["code"].endswith(currency), row
        assert Decimal(band["min"]["amount"]) <= Decimal(salary["amount"]), row
        assert Decimal(salary["amount"]) <= Decimal(band["max"]["amount"]), row
        if currency == "JPY":
            assert "." not in salary["amount"], row
    statuses = sorted({r["status"] for r in rows})
    assert statuses == ["ACTIVE", "ONBOARDING", "ON_LEAVE"]
    assert sum(r["status"] == "ON_LEAVE" for r in rows) == 8
    assert {r["branch"]["currency"] for r in rows} == {"CNY", "USD", "EUR", "JPY"}


async def test_names_fit_each_country(gql: GraphQLClient, meridian: Demo) -> None:
    token = await sign_in(gql, meridian.tenant)

    rows = await everyone(gql, token)

    by_branch: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_branch.setdefault(row["branch"]["code"], []).append(row)
    chinese = by_branch["CN-SZX"] + by_branch["HQ-SHA"]
    # Chinese names in characters; except those who moved to China from elsewhere, if any.
    assert all(r["localName"] and "\u4e00" <= r["localName"][0] <= "\u9fff" for r in chinese)
    assert sum(bool(r["localName"]) for r in by_branch["JP-TYO"]) == len(by_branch["JP-TYO"])
    assert sum(r["localName"] is None for r in by_branch["US-SJC"]) > 50
    assert sum(r["localName"] is None for r in by_branch["DE-MUC"]) > 45


async def test_a_vacant_lead_passes_the_team_up_to_the_department_head(
    gql: GraphQLClient, meridian: Demo
) -> None:
    token = await sign_in(gql, meridian.tenant)
    units = await gql.execute("{ orgUnits { id name } }", token=token)
    optics = next(u["id"] for u in units["data"]["orgUnits"] if u["name"] == "Optics")

    body = await gql.execute(
        """query($unit: ID!) { employees(first: 100, filter: {orgUnitId: $unit}) {
             edges { node { position { title } manager { position { title } } } } } }""",
        {"unit": optics},
        token=token,
    )

    managers = {
        e["node"]["manager"]["position"]["title"] for e in body["data"]["employees"]["edges"]
    }
    assert managers == {"Head of R&D Europe"}


async def test_people_have_a_history_of_moves_pay_leave_reviews_awards_and_projects(
    gql: GraphQLClient, meridian: Demo
) -> None:
    token = await sign_in(gql, meridian.tenant)

    rows = await everyone(
        gql,
        token,
        """employeeNumber history { kind } performanceReviews { period rating }
           rewardsAndPenalties { kind } projects { projectCode }""",
    )

    kinds = [event["kind"] for row in rows for event in row["history"]]
    assert kinds.count("hire") == 300
    for kind in ("promotion", "transfer", "salary_change", "leave_start", "leave_end"):
        assert kinds.count(kind) >= 8, kind
    assert sum(bool(row["performanceReviews"]) for row in rows) > 200
    awards = [a["kind"] for row in rows for a in row["rewardsAndPenalties"]]
    assert awards.count("reward") > 30 and awards.count("penalty") >= 3
    assert sum(bool(row["projects"]) for row in rows) > 40


async def test_two_runs_give_the_same_organisation(
    engine: AsyncEngine, gql: GraphQLClient, meridian: Demo
) -> None:
    again = await fill_new_tenant(engine, meridian.as_of)

    first = await everyone(gql, await sign_in(gql, meridian.tenant))
    second = await everyone(gql, await sign_in(gql, again.tenant))

    assert [r["employeeNumber"] for r in second][:3] == ["MG00001", "MG00002", "MG00003"]
    assert second == first


async def test_each_demo_user_sees_what_their_role_allows(
    gql: GraphQLClient, meridian: Demo
) -> None:
    numbers = {user.email.split("@")[0]: user.person for user in meridian.plan.users}
    admin = await sign_in(gql, meridian.tenant)
    ids = {
        row["employeeNumber"]: row["id"] for row in await everyone(gql, admin, "id employeeNumber")
    }
    card = """query($id: ID!) { employee(id: $id) {
      displayName employeeNumber salary { amount { amount } } birthDate } }"""

    async def seen_by(who: str, whom: str) -> dict[str, Any]:
        token = await sign_in(gql, meridian.tenant, f"{who}@demo.renshi.test")
        body = await gql.execute(card, {"id": ids[numbers[whom]]}, token=token)
        assert "errors" not in body, body
        return body["data"]["employee"]

    own = await seen_by("employee", "employee")
    assert own["salary"] is not None and own["birthDate"] is not None
    boss = await seen_by("employee", "manager")
    assert boss["displayName"] and boss["employeeNumber"] is None
    assert boss["salary"] is None and boss["birthDate"] is None
    report = await seen_by("manager", "employee")
    assert report["employeeNumber"] == numbers["employee"] and report["salary"] is None
    assert (await seen_by("finance", "ceo"))["salary"] is not None
    assert (await seen_by("hr", "manager"))["birthDate"] is not None


async def test_prepare_fills_the_demo_tenant_once_and_lists_its_users(
    gql: GraphQLClient, engine: AsyncEngine
) -> None:
    first = await demo.prepare(get_settings())
    again = await demo.prepare(get_settings())

    assert again == first
    assert [(u.email, u.roles) for u in first.users] == [
        ("admin@demo.renshi.test", ("admin",)),
        ("ceo@demo.renshi.test", ("admin",)),
        ("hr@demo.renshi.test", ("hr",)),
        ("finance@demo.renshi.test", ("finance",)),
        ("manager@demo.renshi.test", ("manager",)),
        ("employee@demo.renshi.test", ("employee",)),
    ]
    token = await sign_in(gql, "demo", "ceo@demo.renshi.test")
    body = await gql.execute("{ employees(first: 1) { totalCount } }", token=token)
    assert body["data"]["employees"]["totalCount"] == 300
