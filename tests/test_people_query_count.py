"""A page of employees costs the same number of SQL statements whatever its size."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.identity.actions import Viewer
from domain.organisation import actions as org
from domain.people import actions as people
from tenants.context import use_tenant
from tests.conftest import GraphQLClient, TenantWithAdmin, make_tenant

PAGE = """query($first: Int!) { employees(first: $first) { edges { node {
  displayName branch { code } orgUnit { name } position { title } jobLevel { code }
  manager { displayName }
} } } }"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine) -> TenantWithAdmin:
    """120 people in 4 teams under 4 managers under a CEO, built with domain actions."""
    tenant = await make_tenant(engine)
    actor = Viewer(
        id=tenant.admin_id,
        email=tenant.admin_email,
        display_name="Admin",
        roles=("admin",),
        locale=None,
        session_id=tenant.admin_id,
    )
    start = dt.date(2022, 1, 1)
    with use_tenant(tenant.tenant):
        branch = await org.create_branch(
            actor,
            code="HQ",
            name="HQ",
            country="CN",
            currency="CNY",
            time_zone_name="Asia/Shanghai",
            locale="zh_CN",
        )
        level = await org.create_job_level(actor, code="L1", rank=1, title="Staff")
        root = await org.create_org_unit(
            actor, name="Company", kind="company", branch_id=branch.id, effective_date=start
        )
        ceo = await org.create_position(actor, title="CEO", org_unit_id=root.id, opened_on=start)
        await people.hire_employee(
            actor,
            people.HireInput(
                employee_number="C0",
                given_name="Chief",
                family_name="Boss",
                hire_date=start,
                branch_id=branch.id,
                position_id=ceo.id,
            ),
        )
        for team in range(4):
            unit = await org.create_org_unit(
                actor,
                name=f"Team {team}",
                kind="team",
                branch_id=branch.id,
                parent_id=root.id,
                effective_date=start,
            )
            lead = await org.create_position(
                actor,
                title="Lead",
                org_unit_id=unit.id,
                opened_on=start,
                reports_to_id=ceo.id,
                job_level_id=level.id,
            )
            seat = await org.create_position(
                actor,
                title="Member",
                org_unit_id=unit.id,
                opened_on=start,
                reports_to_id=lead.id,
                job_level_id=level.id,
                headcount=40,
            )
            await people.hire_employee(
                actor,
                people.HireInput(
                    employee_number=f"L{team}",
                    given_name="Lead",
                    family_name=f"T{team}",
                    hire_date=start,
                    branch_id=branch.id,
                    position_id=lead.id,
                ),
            )
            for n in range(29):
                await people.hire_employee(
                    actor,
                    people.HireInput(
                        employee_number=f"M{team}-{n:02}",
                        given_name=f"Member{n:02}",
                        family_name=f"T{team}",
                        hire_date=start,
                        branch_id=branch.id,
                        position_id=seat.id,
                    ),
                )
    return tenant


async def statements_for(
    engine: AsyncEngine, gql: GraphQLClient, token: str, first: int
) -> tuple[int, list[Any]]:
    executed: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        body = await gql.execute(PAGE, {"first": first}, token=token)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert "errors" not in body, body
    return len(executed), body["data"]["employees"]["edges"]


async def test_a_page_of_100_costs_what_a_page_of_10_costs(
    engine: AsyncEngine, gql: GraphQLClient, company: TenantWithAdmin
) -> None:
    token = await gql.token(company.tenant.slug, company.admin_email)
    await gql.execute(PAGE, {"first": 1}, token=token)  # warm the tenant registry cache

    small, ten = await statements_for(engine, gql, token, 10)
    large, hundred = await statements_for(engine, gql, token, 100)

    assert len(ten) == 10
    assert len(hundred) == 100
    assert small == large
    assert hundred[0]["node"] == {
        "displayName": "Chief Boss",
        "branch": {"code": "HQ"},
        "orgUnit": {"name": "Company"},
        "position": {"title": "CEO"},
        "jobLevel": None,
        "manager": None,
    }
    assert hundred[1]["node"] == {
        "displayName": "Lead T0",
        "branch": {"code": "HQ"},
        "orgUnit": {"name": "Team 0"},
        "position": {"title": "Lead"},
        "jobLevel": {"code": "L1"},
        "manager": {"displayName": "Chief Boss"},
    }
    assert hundred[2]["node"]["manager"] == {"displayName": "Lead T0"}
