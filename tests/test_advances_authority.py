"""The authority matrix and the approval chain it shapes.

Sunrise Energy's matrix for this module: staff (levels 1-4) may ask for 50,000 CNY at a
time, hold 60,000 and have two advances open, and approve nothing; a sales manager (5)
approves up to 10,000, the head of sales (7) 20,000 and the CEO (9) 200,000. Above that
the named approvers decide: the finance director, then the CEO.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import (
    Company,
    add_user,
    approved_and_paid,
    build_company,
    call,
    own_client,
    pk,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient

RULES = [
    {
        "minRank": 1,
        "maxRank": 4,
        "currency": "CNY",
        "maxSingleAmount": "50000",
        "maxOutstanding": "60000",
        "maxOpenAdvances": 2,
        "approvalLimit": "0",
    },
    {
        "minRank": 5,
        "maxRank": 5,
        "currency": "CNY",
        "maxSingleAmount": "300000",
        "maxOutstanding": "400000",
        "maxOpenAdvances": 3,
        "approvalLimit": "10000",
    },
    {"minRank": 6, "maxRank": 7, "currency": "CNY", "approvalLimit": "20000"},
    {"minRank": 8, "maxRank": 9, "currency": "CNY", "approvalLimit": "200000"},
]
CHAIN = "approvalChain { id role approverRole status approver { id } }"


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        for n in range(1, 7):
            await add_user(gql, company, f"rep{n}", ["employee"])
        await set_matrix(gql, company, block_when_overdue=True)
    return company


async def set_matrix(gql: GraphQLClient, company: Company, *, block_when_overdue: bool) -> None:
    done = await call(
        gql,
        company.token("admin"),
        "setAuthorityMatrix",
        {
            "rules": RULES,
            "blockWhenOverdue": block_when_overdue,
            "namedApprovers": [
                {"role": "finance_director", "positionId": company.ids["fin_mgr_pos"]},
                {"role": "ceo", "positionId": company.ids["ceo_pos"]},
            ],
        },
        select="ruleCount",
    )
    assert done == {"ruleCount": 4, "userErrors": []}


def who(company: Company, step: dict[str, Any]) -> tuple[str, str | None]:
    """A step as (role, the approver's key in the company, or None for a role step)."""
    names = {global_id: key for key, global_id in company.ids.items()}
    approver = step["approver"]
    return step["role"], names[approver["id"]] if approver else None


async def preview(
    gql: GraphQLClient, company: Company, requester: str, amount: str
) -> list[tuple[str, str | None]]:
    body = await gql.execute(
        "query($input: ApprovalChainPreviewInput!) { approvalChainPreview(input: $input) "
        "{ role approverRole approver { id } } }",
        {"input": {"kind": "business", "amount": {"amount": amount}}},
        token=company.token(requester),
    )
    assert "errors" not in body, body
    return [who(company, step) for step in body["data"]["approvalChainPreview"]]


async def advance(gql: GraphQLClient, company: Company, advance_id: str) -> dict[str, Any]:
    body = await gql.execute(
        f"query($id: ID!) {{ advance(id: $id) {{ status {CHAIN} audit {{ action }} }} }}",
        {"id": advance_id},
        token=company.token("admin"),
    )
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["advance"]
    return found


async def frozen_chain(
    gql: GraphQLClient, company: Company, advance_id: str
) -> list[tuple[str, str | None]]:
    return [who(company, s) for s in (await advance(gql, company, advance_id))["approvalChain"]]


async def drafted(gql: GraphQLClient, company: Company, requester: str, amount: str) -> str:
    requested = await call(
        gql,
        company.token(requester),
        "requestAdvance",
        {
            "kind": "business",
            "amount": {"amount": amount},
            "purpose": f"{amount} for {requester}",
            "expectedSettlementDate": "2099-12-31",
        },
    )
    assert requested["userErrors"] == [], requested
    advance_id: str = requested["advance"]["id"]
    return advance_id


async def submit(gql: GraphQLClient, company: Company, requester: str, advance_id: str) -> Any:
    return await call(gql, company.token(requester), "submitAdvance", {"advanceId": advance_id})


async def test_an_amount_beyond_the_managers_limits_escalates_to_the_level_that_may(
    gql: GraphQLClient, company: Company
) -> None:
    small = await preview(gql, company, "rep1", "8000")
    previewed = await preview(gql, company, "rep1", "30000")

    advance_id = await submitted(gql, company, "rep1", "30000", "Trade fair in Chengdu")

    # 8,000 is within the head of sales' 20,000: no escalation.
    assert small == [("manager", "mgr1"), ("unit_head", "sales_head"), ("finance", None)]
    # 30,000 is beyond the sales manager's 10,000 and the head's 20,000: up to the CEO.
    assert previewed == [
        ("manager", "mgr1"),
        ("unit_head", "sales_head"),
        ("escalation", "ceo"),
        ("finance", None),
    ]
    assert await frozen_chain(gql, company, advance_id) == previewed


async def test_an_amount_above_every_level_goes_to_the_named_approvers(
    gql: GraphQLClient, company: Company
) -> None:
    previewed = await preview(gql, company, "mgr2", "250000")

    advance_id = await submitted(gql, company, "mgr2", "250000", "Provincial distributor deposit")

    # Beyond the CEO's 200,000 on the matrix: the finance director, then the CEO by name.
    # The sales manager's peers, who hold the same position, are nowhere in the chain.
    assert previewed == [
        ("manager", "sales_head"),
        ("named:finance_director", "fin_mgr"),
        ("named:ceo", "ceo"),
        ("finance", None),
    ]
    assert await frozen_chain(gql, company, advance_id) == previewed


async def test_the_head_of_a_unit_asking_skips_themselves(
    gql: GraphQLClient, company: Company
) -> None:
    previewed = await preview(gql, company, "sales_head", "15000")

    advance_id = await submitted(gql, company, "sales_head", "15000", "Key account dinner")

    # The head of sales would be the unit head step; the CEO above approves instead.
    assert previewed == [("manager", "ceo"), ("finance", None)]
    assert await frozen_chain(gql, company, advance_id) == previewed


async def test_a_finance_user_cannot_approve_their_own_request(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "accountant", "5000", "Audit travel")
    manager_step, finance_step = (await advance(gql, company, advance_id))["approvalChain"]
    approved = await call(
        gql,
        company.token("fin_mgr"),
        "decideApproval",
        {"stepId": manager_step["id"], "approve": True},
        select="step { status }",
    )

    inbox = await gql.execute(
        "{ approvalInbox { items { step { id } } } }", token=company.token("accountant")
    )
    refused = await call(
        gql,
        company.token("accountant"),
        "decideApproval",
        {"stepId": finance_step["id"], "approve": True},
        select="step { status }",
    )
    after_refusal = await advance(gql, company, advance_id)
    by_colleague = await call(
        gql,
        company.token("fin_mgr"),
        "decideApproval",
        {"stepId": finance_step["id"], "approve": True},
        select="step { status } advance { status }",
    )

    assert approved == {"step": {"status": "approved"}, "userErrors": []}
    assert inbox == {"data": {"approvalInbox": {"items": []}}}
    assert refused == {
        "step": None,
        "userErrors": [
            {"field": None, "code": "FORBIDDEN", "message": "Nobody approves their own request."}
        ],
    }
    assert [s["status"] for s in after_refusal["approvalChain"]] == ["approved", "pending"]
    assert after_refusal["status"] == "submitted"
    # The colleague already approved as the line manager: one person approves once.
    assert by_colleague == {
        "step": None,
        "advance": None,
        "userErrors": [
            {
                "field": None,
                "code": "FORBIDDEN",
                "message": "You have already approved this request at an earlier step.",
            }
        ],
    }


async def assert_refused_and_nothing_written(
    gql: GraphQLClient, company: Company, requester: str, advance_id: str, message: str
) -> None:
    refused = await submit(gql, company, requester, advance_id)

    assert refused == {
        "advance": None,
        "userErrors": [{"field": "amount", "code": "INVALID", "message": message}],
    }
    assert await advance(gql, company, advance_id) == {
        "status": "draft",
        "approvalChain": [],
        "audit": [{"action": "advance.request"}],
    }


async def test_a_request_above_the_levels_single_amount_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await drafted(gql, company, "rep2", "50000.01")

    await assert_refused_and_nothing_written(
        gql, company, "rep2", advance_id, "Your level may ask for at most 50000 CNY at a time."
    )


async def test_a_request_beyond_the_outstanding_limit_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    await approved_and_paid(gql, company, "rep3", "40000", "Exhibition stand")
    advance_id = await drafted(gql, company, "rep3", "20000.01")

    await assert_refused_and_nothing_written(
        gql,
        company,
        "rep3",
        advance_id,
        "This would take your outstanding advances above 60000 CNY.",
    )


async def test_requests_awaiting_approval_count_towards_the_outstanding_limit(
    gql: GraphQLClient, company: Company
) -> None:
    await submitted(gql, company, "rep4", "35000", "Samples for a client")
    advance_id = await drafted(gql, company, "rep4", "30000")

    # Paid out, the two would owe 65,000: the second is refused before anything is paid.
    await assert_refused_and_nothing_written(
        gql,
        company,
        "rep4",
        advance_id,
        "This would take your outstanding advances above 60000 CNY.",
    )


async def test_a_request_beyond_the_open_advances_limit_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    await submitted(gql, company, "rep5", "1000", "Taxi fares")
    await submitted(gql, company, "rep5", "1000", "Train tickets")
    advance_id = await drafted(gql, company, "rep5", "1000")

    await assert_refused_and_nothing_written(
        gql, company, "rep5", advance_id, "Your level may have at most 2 open advances."
    )


async def test_no_new_advance_while_one_is_overdue_unless_the_policy_allows(
    gql: GraphQLClient, company: Company
) -> None:
    overdue_id = await approved_and_paid(gql, company, "rep6", "1000", "Client lunch")
    async with raw_session(company) as session:
        # Time passes: the settlement date is now behind us (the API refuses past dates).
        await session.execute(
            text("UPDATE advances SET expected_settlement_date = '2026-01-31' WHERE id = :id"),
            {"id": pk(overdue_id)},
        )
    advance_id = await drafted(gql, company, "rep6", "500")

    await assert_refused_and_nothing_written(
        gql,
        company,
        "rep6",
        advance_id,
        "A new advance cannot be requested while an earlier one is overdue.",
    )

    await set_matrix(gql, company, block_when_overdue=False)
    try:
        allowed = await submit(gql, company, "rep6", advance_id)
    finally:
        await set_matrix(gql, company, block_when_overdue=True)

    assert allowed["userErrors"] == []
    assert allowed["advance"]["status"] == "submitted"


async def test_one_person_approves_a_request_once(engine: AsyncEngine, app: Any) -> None:
    # The finance manager manages the accountant and holds the finance role: having
    # approved as the line manager, they may not approve the finance step too.
    async with own_client(app) as own:
        gql = own.speaking("en")
        company = await build_company(engine, gql)
        advance_id = await submitted(gql, company, "accountant", "500", "Stationery")
        chain = await gql.execute(
            "query($id: ID!) { advance(id: $id) { approvalChain { id role } } }",
            {"id": advance_id},
            token=company.token("admin"),
        )
        steps = {s["role"]: s["id"] for s in chain["data"]["advance"]["approvalChain"]}

        as_manager = await call(
            gql,
            company.token("fin_mgr"),
            "decideApproval",
            {"stepId": steps["manager"], "approve": True},
            select="step { status }",
        )
        later = [s for r, s in steps.items() if r not in ("manager",)]
        for step_id in later[:-1]:
            await call(
                gql,
                company.token("ceo"),
                "decideApproval",
                {"stepId": step_id, "approve": True},
                select="step { status }",
            )
        again = await call(
            gql,
            company.token("fin_mgr"),
            "decideApproval",
            {"stepId": steps["finance"], "approve": True},
            select="step { status }",
        )

    assert as_manager["userErrors"] == []
    assert again["step"] is None
    assert again["userErrors"] == [
        {
            "field": None,
            "code": "FORBIDDEN",
            "message": "You have already approved this request at an earlier step.",
        }
    ]
