"""The approval inbox with credit profiles costs the same statements whatever its size.

Sunrise Energy's eleven operators report straight to the CEO, so the CEO's inbox holds
the first step of every advance they submit: 21 pending steps from 11 requesters. op0 also
holds an advance already paid out.
"""

from __future__ import annotations

from typing import Any

import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import (
    Company,
    approved_and_paid,
    build_company,
    own_client,
    submitted,
)
from tests.conftest import GraphQLClient

PAGE = """query($first: Int!) { approvalInbox(first: $first) { items {
  advance { purpose employee { displayName } }
  creditProfile {
    outstanding { amount currency } openAdvances overdueCount overdueAmount { amount }
    averageDaysToSettle rejectionsLast12Months writeOffsLast12Months
  }
} } }"""
PLAIN = """query($first: Int!) { approvalInbox(first: $first) { items {
  advance { purpose employee { displayName } }
} } }"""
PROFILE = "query($id: ID!) { employee(id: $id) { creditProfile { openAdvances } } }"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        await approved_and_paid(gql, company, "op0", "500", "Spare parts")
        await submitted(gql, company, "op0", "120.50", "Safety boots")
        for n in range(1, 11):
            for purpose in ("Tools", "Travel"):
                await submitted(gql, company, f"op{n}", "100", f"{purpose} of op{n}")
    return company


async def statements_for(
    engine: AsyncEngine, gql: GraphQLClient, token: str, query: str, first: int
) -> tuple[int, list[Any]]:
    executed: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The tenant registry re-reads its row every few seconds, whatever the request.
        if "shared.tenants" not in statement:
            executed.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        body = await gql.execute(query, {"first": first}, token=token)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert "errors" not in body, body
    return len(executed), body["data"]["approvalInbox"]["items"]


async def test_an_inbox_page_of_20_with_profiles_costs_what_a_page_of_3_costs(
    engine: AsyncEngine, gql: GraphQLClient, company: Company
) -> None:
    token = company.token("ceo")
    await gql.execute(PAGE, {"first": 1}, token=token)  # warm the tenant registry cache

    small, three = await statements_for(engine, gql, token, PAGE, 3)
    large, twenty = await statements_for(engine, gql, token, PAGE, 20)
    plain, _ = await statements_for(engine, gql, token, PLAIN, 20)

    assert len(three) == 3
    assert len(twenty) == 20
    assert len({item["advance"]["employee"]["displayName"] for item in twenty}) == 11
    assert small == large
    # The whole page's profiles in one transaction: its search path, the requesters'
    # advances with their balances, and every branch's local date.
    assert large - plain == 3
    assert twenty[0] == {
        "advance": {"purpose": "Safety boots", "employee": {"displayName": "Op0 Sun"}},
        "creditProfile": {
            "outstanding": [{"amount": "500.00", "currency": "CNY"}],
            "openAdvances": 2,
            "overdueCount": 0,
            "overdueAmount": [],
            "averageDaysToSettle": None,
            "rejectionsLast12Months": 0,
            "writeOffsLast12Months": 0,
        },
    }
    assert twenty[1]["creditProfile"]["outstanding"] == []
    assert twenty[1]["creditProfile"]["openAdvances"] == 2


async def test_an_employee_still_cannot_read_a_colleagues_profile(
    gql: GraphQLClient, company: Company
) -> None:
    by_hr = await gql.execute(PROFILE, {"id": company.ids["op0"]}, token=company.token("hr"))
    by_colleague = await gql.execute(
        PROFILE, {"id": company.ids["op0"]}, token=company.token("rep0")
    )

    assert by_hr == {"data": {"employee": {"creditProfile": {"openAdvances": 2}}}}
    assert by_colleague == {"data": {"employee": {"creditProfile": None}}}
