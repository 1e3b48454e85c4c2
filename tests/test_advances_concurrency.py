"""Decisions and payments under concurrency: exactly one of each is recorded.

The calls go through the ASGI app at once (asyncio.gather); the engine's pool holds ten
connections, so the rest wait for one, as they would behind a busy server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import (
    Company,
    add_user,
    approve_all,
    build_company,
    call,
    own_client,
    submitted,
)
from tests.conftest import GraphQLClient

ADVANCE = """query($id: ID!) { advance(id: $id) {
  status
  approvalChain { id role status }
  entries { kind amount { amount } }
  audit { action after }
} }"""


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        for n in range(1, 7):  # each test's requester, within the two open advances allowed
            await add_user(gql, company, f"rep{n}", ["employee"])
    return company


async def advance(gql: GraphQLClient, company: Company, advance_id: str) -> dict[str, Any]:
    body = await gql.execute(ADVANCE, {"id": advance_id}, token=company.token("admin"))
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["advance"]
    return found


async def decide(gql: GraphQLClient, company: Company, viewer: str, step_id: str) -> Any:
    return await call(
        gql,
        company.token(viewer),
        "decideApproval",
        {"stepId": step_id, "approve": True},
        select="step { status }",
    )


async def disburse(gql: GraphQLClient, company: Company, advance_id: str, key: str) -> Any:
    return await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": key},
        select="advance { id status outstanding { amount } }",
    )


async def test_twenty_simultaneous_approvals_of_one_step_record_one_decision(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep1", "5000", "Booth at the solar expo")
    manager_step, head_step, finance_step = (await advance(gql, company, advance_id))[
        "approvalChain"
    ]
    await decide(gql, company, "mgr1", manager_step["id"])
    await decide(gql, company, "sales_head", head_step["id"])

    # Both finance users press "approve" on the finance step, ten times each, at once.
    deciders = ["accountant", "fin_mgr"] * 10
    results = await asyncio.gather(
        *(decide(gql, company, viewer, finance_step["id"]) for viewer in deciders)
    )
    after = await advance(gql, company, advance_id)

    succeeded = [r for r in results if r["userErrors"] == []]
    refused = [r for r in results if r["userErrors"] != []]
    assert succeeded == [{"step": {"status": "approved"}, "userErrors": []}]
    assert len(refused) == 19
    assert {r["step"] for r in refused} == {None}
    # The callers take turns on the advance's row lock; each one after the first finds
    # the step decided (its turn would be over too, but that is checked second).
    assert [e["code"] for r in refused for e in r["userErrors"]] == ["ALREADY_DECIDED"] * 19
    assert after["status"] == "approved"
    assert [s["status"] for s in after["approvalChain"]] == ["approved"] * 3
    finance_decisions = [
        entry
        for entry in after["audit"]
        if entry["action"].startswith("approval.") and entry["after"]["step"] == 3
    ]
    assert len(finance_decisions) == 1


async def test_a_late_approval_is_told_the_step_was_already_decided(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep2", "1000", "Taxi to the airport")
    manager_step = (await advance(gql, company, advance_id))["approvalChain"][0]
    await decide(gql, company, "mgr1", manager_step["id"])

    again = await decide(gql, company, "mgr1", manager_step["id"])

    assert again == {
        "step": None,
        "userErrors": [
            {
                "field": "stepId",
                "code": "ALREADY_DECIDED",
                "message": "This step has already been decided.",
            }
        ],
    }


async def test_a_decision_on_a_step_whose_turn_has_not_come_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep3", "2000", "Hotel in Suzhou")
    before = await advance(gql, company, advance_id)
    _, head_step, finance_step = before["approvalChain"]

    early_head = await decide(gql, company, "sales_head", head_step["id"])
    early_finance = await decide(gql, company, "accountant", finance_step["id"])

    not_yet = [
        {
            "field": "stepId",
            "code": "NOT_CURRENT_STEP",
            "message": "It is not this step's turn.",
        }
    ]
    assert early_head == {"step": None, "userErrors": not_yet}
    assert early_finance == {"step": None, "userErrors": not_yet}
    assert await advance(gql, company, advance_id) == before
    assert [s["status"] for s in before["approvalChain"]] == ["pending"] * 3
    assert [e["action"] for e in before["audit"]] == ["advance.request", "advance.submit"]


async def test_ten_simultaneous_payouts_with_one_key_pay_once(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep4", "3000", "Installer training")
    await approve_all(gql, company, advance_id)

    results = await asyncio.gather(
        *(disburse(gql, company, advance_id, "bank-batch-0815/1") for _ in range(10))
    )
    after = await advance(gql, company, advance_id)

    paid = {
        "advance": {"id": advance_id, "status": "disbursed", "outstanding": {"amount": "3000.00"}},
        "userErrors": [],
    }
    assert results == [paid] * 10
    assert after["entries"] == [{"kind": "disbursement", "amount": {"amount": "3000.00"}}]
    assert [e["action"] for e in after["audit"]].count("advance.disburse") == 1


async def test_an_idempotency_key_used_for_another_advance_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    first = await submitted(gql, company, "rep5", "500", "Courier fees")
    second = await submitted(gql, company, "rep5", "600", "Printing")
    await approve_all(gql, company, first)
    await approve_all(gql, company, second)
    await disburse(gql, company, first, "bank-batch-0816/1")
    before = await advance(gql, company, second)

    reused = await disburse(gql, company, second, "bank-batch-0816/1")

    assert reused == {
        "advance": None,
        "userErrors": [
            {
                "field": "idempotencyKey",
                "code": "INVALID",
                "message": "This idempotency key was used for another payment.",
            }
        ],
    }
    assert await advance(gql, company, second) == before
    assert before["status"] == "approved"
    assert before["entries"] == []


async def test_one_key_sent_for_two_advances_at_once_pays_one_of_them(
    gql: GraphQLClient, company: Company
) -> None:
    first = await submitted(gql, company, "rep6", "700", "Booth furniture")
    second = await submitted(gql, company, "rep6", "800", "Booth lighting")
    await approve_all(gql, company, first)
    await approve_all(gql, company, second)

    results = await asyncio.gather(
        *(disburse(gql, company, advance_id, "bank-batch-0817/1") for advance_id in (first, second))
    )
    after = [await advance(gql, company, advance_id) for advance_id in (first, second)]

    paid = [r for r in results if r["userErrors"] == []]
    refused = [r for r in results if r["userErrors"] != []]
    assert len(paid) == 1
    assert refused == [
        {
            "advance": None,
            "userErrors": [
                {
                    "field": "idempotencyKey",
                    "code": "INVALID",
                    "message": "This idempotency key was used for another payment.",
                }
            ],
        }
    ]
    assert sorted(a["status"] for a in after) == ["approved", "disbursed"]
    assert sum(len(a["entries"]) for a in after) == 1
