"""The organisation system through GraphQL: effective-dated units, moves, closing, inputs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import crypto
from tests.conftest import GraphQLClient, TenantWithAdmin, make_tenant
from tests.people_fixtures import Org, build_org, mutate

UNIT = """query($asOf: Date) { orgUnits(asOf: $asOf) { name parent { name } } }"""


@pytest_asyncio.fixture(loop_scope="session")
async def org(engine: AsyncEngine, app: Any) -> tuple[TenantWithAdmin, Org]:
    tenant = await make_tenant(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        token = await gql.token(tenant.tenant.slug, tenant.admin_email)
        return tenant, await build_org(gql, token, tenant.tenant.slug)


async def error_of(gql: GraphQLClient, token: str, name: str, input_: dict) -> list[dict]:
    input_type = name[0].upper() + name[1:] + "Input"
    body = await gql.execute(
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ "
        "userErrors { field code message } } }",
        {"input": input_},
        token=token,
    )
    return body["data"][name]["userErrors"]


async def test_a_rename_takes_effect_on_its_date_and_history_keeps_the_old_name(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token, ids = org[1].token, org[1].ids

    await mutate(
        gql,
        token,
        "updateOrgUnit",
        {
            "id": ids["sales"],
            "effectiveDate": "2026-01-01",
            "name": "Sales & Marketing",
        },
        "orgUnit { name validFrom }",
    )

    before = await gql.execute(UNIT, {"asOf": "2025-12-31"}, token=token)
    after = await gql.execute(UNIT, {"asOf": "2026-01-01"}, token=token)
    assert [u["name"] for u in before["data"]["orgUnits"]] == [
        "Acme Energy",
        "Engineering",
        "Sales",
    ]
    assert [u["name"] for u in after["data"]["orgUnits"]] == [
        "Acme Energy",
        "Engineering",
        "Sales & Marketing",
    ]


async def test_moving_a_unit_moves_its_subtree_and_its_people(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token, ids = org[1].token, org[1].ids
    team = await mutate(
        gql,
        token,
        "createOrgUnit",
        {
            "name": "Key Accounts",
            "kind": "team",
            "branchId": ids["cn"],
            "effectiveDate": "2020-01-01",
            "parentId": ids["sales"],
        },
        "orgUnit { id }",
    )

    await mutate(
        gql,
        token,
        "moveOrgUnit",
        {
            "id": ids["sales"],
            "newParentId": ids["eng"],
            "effectiveDate": "2026-03-01",
        },
        "orgUnit { parent { name } }",
    )

    chart = await gql.execute(
        """{ orgChart(depth: 3, asOf: "2026-03-01") { unit { name } headcount
             children { unit { name } headcount children { unit { name } headcount
               children { unit { name } } } } } }""",
        token=token,
    )
    engineering = await gql.execute(
        """query($id: ID!) { employees(first: 10, asOf: "2026-03-01",
             filter: {orgUnitId: $id}) { totalCount } }""",
        {"id": ids["eng"]},
        token=token,
    )
    assert chart["data"]["orgChart"] == [
        {
            "unit": {"name": "Acme Energy"},
            "headcount": 5,
            "children": [
                {
                    "unit": {"name": "Engineering"},
                    "headcount": 4,
                    "children": [
                        {
                            "unit": {"name": "Sales"},
                            "headcount": 2,
                            "children": [{"unit": {"name": "Key Accounts"}}],
                        }
                    ],
                },
            ],
        }
    ]
    assert engineering["data"]["employees"]["totalCount"] == 4
    assert team["orgUnit"]["id"]


async def test_a_unit_cannot_move_under_its_own_subtree(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token, ids = org[1].token, org[1].ids

    errors = await error_of(
        gql,
        token,
        "moveOrgUnit",
        {"id": ids["company"], "newParentId": ids["sales"], "effectiveDate": "2026-01-01"},
    )
    onto_itself = await error_of(
        gql,
        token,
        "moveOrgUnit",
        {"id": ids["sales"], "newParentId": ids["sales"], "effectiveDate": "2026-01-01"},
    )
    tree = await gql.execute(UNIT, {"asOf": "2026-06-01"}, token=token)

    message = "A unit cannot move under itself or one of its own sub-units."
    assert errors == [{"field": "newParentId", "code": "INVALID", "message": message}]
    assert onto_itself == [{"field": "newParentId", "code": "INVALID", "message": message}]
    assert tree["data"]["orgUnits"] == [
        {"name": "Acme Energy", "parent": None},
        {"name": "Engineering", "parent": {"name": "Acme Energy"}},
        {"name": "Sales", "parent": {"name": "Acme Energy"}},
    ]


async def test_a_unit_with_staff_cannot_close_and_an_empty_one_can(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token, ids = org[1].token, org[1].ids
    empty = await mutate(
        gql,
        token,
        "createOrgUnit",
        {
            "name": "Lab",
            "kind": "team",
            "branchId": ids["cn"],
            "effectiveDate": "2024-01-01",
            "parentId": ids["eng"],
        },
        "orgUnit { id }",
    )

    refused = await error_of(
        gql, token, "closeOrgUnit", {"id": ids["sales"], "effectiveDate": "2026-01-01"}
    )
    closed = await error_of(
        gql, token, "closeOrgUnit", {"id": empty["orgUnit"]["id"], "effectiveDate": "2026-01-01"}
    )
    before = await gql.execute(UNIT, {"asOf": "2025-12-31"}, token=token)
    after = await gql.execute(UNIT, {"asOf": "2026-01-01"}, token=token)

    assert refused == [
        {"field": "id", "code": "INVALID", "message": "Move the unit's staff elsewhere first."}
    ]
    assert closed == []
    assert "Lab" in [u["name"] for u in before["data"]["orgUnits"]]
    assert "Lab" not in [u["name"] for u in after["data"]["orgUnits"]]


async def test_bad_branch_input_is_refused_field_by_field(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token = org[1].token
    good = {
        "code": "X",
        "name": "X",
        "country": "DE",
        "currency": "EUR",
        "timeZone": "Europe/Berlin",
        "locale": "de_DE",
    }

    results = [
        await error_of(gql, token, "createBranch", good | change)
        for change in (
            {"country": "XX"},
            {"currency": "EURO"},
            {"timeZone": "Mars/Base"},
            {"locale": "klingon"},
            {"code": "CN-SH"},
            {"name": "  "},
        )
    ]
    branches = await gql.execute("{ branches { code } }", token=token)

    assert [r[0]["field"] for r in results] == [
        "country",
        "currency",
        "timeZone",
        "locale",
        "code",
        "name",
    ]
    assert results[1][0]["message"] == "EURO is not an ISO 4217 currency code."
    assert branches["data"]["branches"] == [{"code": "CN-SH"}, {"code": "US-SF"}]


async def test_job_levels_carry_pay_bands_at_the_currency_minor_unit(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token = org[1].token

    await mutate(
        gql,
        token,
        "createJobLevel",
        {
            "code": "JP3",
            "rank": 3,
            "title": "Tokyo L3",
            "payMin": "300000.4",
            "payMax": "500000.5",
            "payCurrency": "JPY",
        },
        "jobLevel { id }",
    )
    inverted = await error_of(
        gql,
        token,
        "createJobLevel",
        {
            "code": "BAD",
            "rank": 1,
            "title": "Bad",
            "payMin": "10",
            "payMax": "5",
            "payCurrency": "USD",
        },
    )
    levels = await gql.execute(
        "{ jobLevels { code payBand { min { amount formatted } max { amount } } } }", token=token
    )

    assert inverted == [
        {
            "field": "payMin",
            "code": "INVALID",
            "message": "The pay band's minimum is above its maximum.",
        }
    ]
    tokyo = next(j for j in levels["data"]["jobLevels"] if j["code"] == "JP3")
    assert tokyo["payBand"] == {
        "min": {"amount": "300000", "formatted": "¥300,000"},
        "max": {"amount": "500001"},
    }


async def test_reviews_rewards_and_projects_are_recorded(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    token, ids = org[1].token, org[1].ids

    await mutate(
        gql,
        token,
        "recordPerformanceReview",
        {
            "employeeId": ids["li"],
            "period": "2025",
            "rating": "4.5",
            "reviewedOn": "2026-01-15",
            "reviewerId": ids["ceo"],
            "comment": "Solid",
        },
        "employee { id }",
    )
    duplicate = await error_of(
        gql,
        token,
        "recordPerformanceReview",
        {"employeeId": ids["li"], "period": "2025", "rating": "3", "reviewedOn": "2026-01-16"},
    )
    off_scale = await error_of(
        gql,
        token,
        "recordPerformanceReview",
        {"employeeId": ids["li"], "period": "2024", "rating": "7", "reviewedOn": "2026-01-16"},
    )
    await mutate(
        gql,
        token,
        "recordRewardOrPenalty",
        {
            "employeeId": ids["li"],
            "kind": "reward",
            "occurredOn": "2026-02-01",
            "category": "bonus",
            "amount": {"amount": "1000.005", "currency": "CNY"},
        },
        "employee { id }",
    )
    await mutate(
        gql,
        token,
        "assignProject",
        {
            "employeeId": ids["li"],
            "projectCode": "SOLAR-7",
            "role": "Sales lead",
            "startDate": "2026-01-01",
        },
        "employee { id }",
    )
    body = await gql.execute(
        """query($id: ID!) { employee(id: $id) {
             performanceReviews { period rating comment }
             rewardsAndPenalties { kind category amount { amount currency } }
             projects { projectCode role startDate endDate } } }""",
        {"id": ids["li"]},
        token=token,
    )

    assert duplicate[0]["message"] == "This period has already been reviewed."
    assert off_scale[0]["message"] == "A rating is between 1 and 5."
    assert body["data"]["employee"] == {
        "performanceReviews": [{"period": "2025", "rating": "4.50", "comment": "Solid"}],
        "rewardsAndPenalties": [
            {
                "kind": "reward",
                "category": "bonus",
                "amount": {"amount": "1000.01", "currency": "CNY"},
            }
        ],
        "projects": [
            {
                "projectCode": "SOLAR-7",
                "role": "Sales lead",
                "startDate": "2026-01-01",
                "endDate": None,
            }
        ],
    }


async def test_national_ids_are_encrypted_at_rest_with_a_key_per_tenant(
    engine: AsyncEngine, gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    tenant, ids = org[0], org[1].ids
    other = await make_tenant(engine)
    schema, other_schema = tenant.tenant.schema, other.tenant.schema

    async with engine.begin() as conn:
        stored = await conn.scalar(
            text(
                f'SELECT national_id_encrypted FROM "{schema}".employees'
                " WHERE employee_number = 'E003'"
            )
        )
        await conn.execute(
            text(f'CREATE TABLE "{other_schema}".stolen AS SELECT * FROM "{schema}".employees')
        )
    assert b"ID-E003" not in bytes(stored)
    assert crypto.decrypt(tenant.tenant.id, stored) == "ID-E003"
    try:
        crypto.decrypt(other.tenant.id, stored)
    except crypto.InvalidToken:
        pass
    else:
        raise AssertionError("another tenant's key opened the national ID")
    assert ids["wang"]
