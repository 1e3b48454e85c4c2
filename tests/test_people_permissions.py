"""Who sees what of an employee, enforced where the data is loaded (DataLoaders included)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import create_user
from schema.node import from_global_id
from tenants.context import use_tenant
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant
from tests.people_fixtures import Org, build_org

CARD = """query($id: ID!) { employee(id: $id) {
  displayName workEmail position { title } employeeNumber status
  salary { amount { amount } } nationalId birthDate
} }"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def org(engine: AsyncEngine, app: Any) -> tuple[TenantWithAdmin, Org]:
    """One organisation for the whole module: the tests only read it (or fail to write)."""
    tenant = await make_tenant(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        gql = GraphQLClient(http)
        token = await gql.token(tenant.tenant.slug, tenant.admin_email)
        org = await build_org(gql, token, tenant.tenant.slug)
    users = {
        "hr": (["hr"], None),
        "finance": (["finance"], None),
        "auditor": (["auditor"], None),
        "chen": (["manager"], "chen"),
        "li": (["employee"], "li"),
    }
    with use_tenant(tenant.tenant):
        for name, (roles, employee) in users.items():
            employee_id = from_global_id(org.ids[employee])[2] if employee else None
            await create_user(
                tenant.tenant,
                email=f"{name}@acme.test",
                display_name=name,
                password=PASSWORD,
                roles=roles,
                employee_id=employee_id,
            )
    return tenant, org


async def card(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org], viewer: str, subject: str
) -> dict:
    tenant, ids = org[0], org[1].ids
    token = await gql.token(tenant.tenant.slug, f"{viewer}@acme.test")
    body = await gql.execute(CARD, {"id": ids[subject]}, token=token)
    assert "errors" not in body, body
    return body["data"]["employee"]


FULL_WANG = {
    "displayName": "Xiaoming Wang",
    "workEmail": "xiaoming@acme.test",
    "position": {"title": "Sales Rep"},
    "employeeNumber": "E003",
    "status": "ACTIVE",
    "salary": {"amount": {"amount": "16000.00"}},
    "nationalId": "ID-E003",
    "birthDate": "1990-05-17",
}
PROFILE_WANG = FULL_WANG | {"salary": None, "nationalId": None, "birthDate": None}
DIRECTORY_WANG = PROFILE_WANG | {"employeeNumber": None, "status": None}


@pytest.mark.parametrize(
    ("viewer", "expected"),
    [
        ("hr", FULL_WANG),
        ("finance", FULL_WANG),
        ("auditor", PROFILE_WANG),
        ("chen", DIRECTORY_WANG),
        ("li", DIRECTORY_WANG),
    ],
)
async def test_each_role_sees_its_share_of_a_colleague(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org], viewer: str, expected: dict
) -> None:
    assert await card(gql, org, viewer, "wang") == expected


async def test_a_manager_sees_the_profile_of_their_line_but_not_its_salary(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    zhao = await card(gql, org, "chen", "zhao")

    assert zhao["employeeNumber"] == "E005"
    assert zhao["status"] == "ACTIVE"
    assert zhao["salary"] is None
    assert zhao["nationalId"] is None


async def test_an_employee_sees_all_of_themselves(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    li = await card(gql, org, "li", "li")

    assert li["salary"] == {"amount": {"amount": "15000.00"}}
    assert li["nationalId"] == "ID-E002"
    assert li["employeeNumber"] == "E002"


async def test_data_reached_through_a_dataloader_is_redacted_too(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    tenant, ids = org[0], org[1].ids
    token = await gql.token(tenant.tenant.slug, "li@acme.test")

    body = await gql.execute(
        """query($id: ID!) { employee(id: $id) { manager {
             displayName employeeNumber salary { amount { amount } } } } }""",
        {"id": ids["li"]},
        token=token,
    )
    page = await gql.execute(
        "{ employees(first: 10) { edges { node { employeeNumber salary { period } } } } }",
        token=token,
    )

    assert body["data"]["employee"]["manager"] == {
        "displayName": "Mei Sun",
        "employeeNumber": None,
        "salary": None,
    }
    visible = [e["node"] for e in page["data"]["employees"]["edges"]]
    assert visible == [
        {"employeeNumber": None, "salary": None},  # Chen
        {"employeeNumber": "E002", "salary": {"period": "month"}},  # Li herself
        {"employeeNumber": None, "salary": None},  # Sun
        {"employeeNumber": None, "salary": None},  # Wang
        {"employeeNumber": None, "salary": None},  # Zhao
    ]


async def test_an_employee_cannot_filter_or_sort_by_profile_facts(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    tenant = org[0]
    token = await gql.token(tenant.tenant.slug, "li@acme.test")

    by_status = await gql.execute(
        "{ employees(first: 5, filter: {status: [ON_LEAVE]}) { edges { cursor } } }",
        token=token,
    )
    by_hire_date = await gql.execute(
        "{ employees(first: 5, sort: HIRE_DATE) { edges { cursor } } }", token=token
    )

    assert by_status["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert by_hire_date["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_only_hr_may_change_records_and_a_refusal_writes_nothing(
    gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    tenant, ids = org[0], org[1].ids
    token = await gql.token(tenant.tenant.slug, "chen@acme.test")

    body = await gql.execute(
        """mutation($input: ChangeSalaryInput!) { changeSalary(input: $input) {
             employee { id } userErrors { field code message } } }""",
        {
            "input": {
                "employeeId": ids["zhao"],
                "effectiveDate": "2026-01-01",
                "salary": {"amount": {"amount": "99999"}},
            }
        },
        token=token,
    )
    hr = await gql.token(tenant.tenant.slug, "hr@acme.test")
    history = await gql.execute(
        "query($id: ID!) { employee(id: $id) { history { kind } } }",
        {"id": ids["zhao"]},
        token=hr,
    )

    assert body["data"]["changeSalary"] == {
        "employee": None,
        "userErrors": [
            {"field": None, "code": "FORBIDDEN", "message": "You are not allowed to do this."}
        ],
    }
    assert history["data"]["employee"]["history"] == [{"kind": "hire"}]


async def test_an_employee_id_from_another_tenant_reads_as_nothing(
    engine: AsyncEngine, gql: GraphQLClient, org: tuple[TenantWithAdmin, Org]
) -> None:
    other = await make_tenant(engine)
    token = await gql.token(other.tenant.slug, other.admin_email)

    body = await gql.execute(CARD, {"id": org[1].ids["wang"]}, token=token)
    node = await gql.execute(
        "query($id: ID!) { node(id: $id) { id } }", {"id": org[1].ids["wang"]}, token=token
    )

    assert body == {"data": {"employee": None}}
    assert node == {"data": {"node": None}}
