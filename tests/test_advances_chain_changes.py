"""An approval chain is frozen when the advance is submitted; vacancies and delegations.

Sunrise Energy: sales reps report to the first sales manager (mgr1), the head of sales
heads the sales unit, finance reviews last. Reorganisations take effect today, on the
Shanghai calendar.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import (
    Company,
    add_user,
    build_company,
    call,
    own_client,
    submitted,
)
from tests.conftest import GraphQLClient
from tests.people_fixtures import mutate

STEPS = "approvalChain { id role status approver { id } decidedFor { id } decidedBy }"


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        for key in ("rep1", "rep2", "rep3"):
            await add_user(gql, company, key, ["employee"])
    return company


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def day(offset: int) -> str:
    return (today() + dt.timedelta(days=offset)).isoformat()


def names(company: Company) -> dict[str, str]:
    return {global_id: key for key, global_id in company.ids.items()}


async def chain(gql: GraphQLClient, company: Company, advance_id: str) -> list[dict[str, Any]]:
    body = await gql.execute(
        f"query($id: ID!) {{ advance(id: $id) {{ {STEPS} }} }}",
        {"id": advance_id},
        token=company.token("admin"),
    )
    assert "errors" not in body, body
    steps: list[dict[str, Any]] = body["data"]["advance"]["approvalChain"]
    return steps


def approvers(company: Company, steps: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    known = names(company)
    return [(s["role"], known[s["approver"]["id"]] if s["approver"] else None) for s in steps]


async def preview(gql: GraphQLClient, company: Company, requester: str) -> list[Any]:
    body = await gql.execute(
        "query($input: ApprovalChainPreviewInput!) { approvalChainPreview(input: $input) "
        "{ role approver { id } } }",
        {"input": {"kind": "business", "amount": {"amount": "5000"}}},
        token=company.token(requester),
    )
    assert "errors" not in body, body
    return approvers(company, body["data"]["approvalChainPreview"])


async def inbox(gql: GraphQLClient, company: Company, viewer: str) -> list[str]:
    """The step IDs in the viewer's approval inbox."""
    body = await gql.execute(
        "{ approvalInbox(first: 100) { items { step { id } } } }", token=company.token(viewer)
    )
    assert "errors" not in body, body
    return [item["step"]["id"] for item in body["data"]["approvalInbox"]["items"]]


async def decide(gql: GraphQLClient, company: Company, viewer: str, step_id: str) -> Any:
    return await call(
        gql,
        company.token(viewer),
        "decideApproval",
        {"stepId": step_id, "approve": True},
        select="step { status } advance { status }",
    )


async def hr(gql: GraphQLClient, company: Company, name: str, input_: dict[str, Any]) -> Any:
    field = {"hireEmployee": "employee", "transferEmployee": "employee"}.get(name)
    field = field or ("orgUnit" if "OrgUnit" in name else "position")
    return await mutate(gql, company.token("hr"), name, input_, f"{field} {{ id }}")


async def test_a_vacant_manager_position_passes_to_the_holder_above(
    gql: GraphQLClient, company: Company
) -> None:
    ids = company.ids
    unit = await hr(
        gql,
        company,
        "createOrgUnit",
        {
            "name": "Key Accounts",
            "kind": "team",
            "branchId": ids["sh"],
            "parentId": ids["company"],
            "effectiveDate": "2022-01-01",
        },
    )
    lead = await hr(
        gql,
        company,
        "createPosition",
        {
            "title": "Regional Lead",
            "orgUnitId": unit["orgUnit"]["id"],
            "openedOn": "2022-01-01",
            "jobLevelId": ids["L5"],
            "reportsToId": ids["sales_head_pos"],
        },
    )
    seat = await hr(
        gql,
        company,
        "createPosition",
        {
            "title": "Field Rep",
            "orgUnitId": unit["orgUnit"]["id"],
            "openedOn": "2022-01-01",
            "jobLevelId": ids["L3"],
            "reportsToId": lead["position"]["id"],
        },
    )
    hired = await hr(
        gql,
        company,
        "hireEmployee",
        {
            "employeeNumber": "K001",
            "givenName": "Field",
            "familyName": "Sun",
            "hireDate": "2023-01-01",
            "branchId": ids["sh"],
            "positionId": seat["position"]["id"],
        },
    )
    ids["field1"] = hired["employee"]["id"]
    await add_user(gql, company, "field1", ["employee"])

    previewed = await preview(gql, company, "field1")
    advance_id = await submitted(gql, company, "field1", "5000", "Customer site visits")

    # The regional lead's seat is empty: the head of sales above it is the manager.
    assert previewed == [("manager", "sales_head"), ("finance", None)]
    assert approvers(company, await chain(gql, company, advance_id)) == previewed

    filled = await hr(
        gql,
        company,
        "hireEmployee",
        {
            "employeeNumber": "K002",
            "givenName": "Lead",
            "familyName": "Sun",
            "hireDate": today().isoformat(),
            "branchId": ids["sh"],
            "positionId": lead["position"]["id"],
        },
    )
    ids["lead1"] = filled["employee"]["id"]

    # Once the seat is filled, new requests go to its holder; the frozen chain stays.
    assert await preview(gql, company, "field1") == [("manager", "lead1"), ("finance", None)]
    assert approvers(company, await chain(gql, company, advance_id)) == previewed


async def test_a_delegate_decides_for_the_approver_within_the_dates_only(
    gql: GraphQLClient, company: Company
) -> None:
    delegated = await call(
        gql,
        company.token("mgr1"),
        "delegateApprovals",
        {"delegateId": company.ids["mgr2"], "startsOn": day(-1), "endsOn": day(6)},
        select="ok",
    )
    elsewhere = [
        await call(
            gql,
            company.token("sales_head"),
            "delegateApprovals",
            {"delegateId": company.ids["fin_mgr"], "startsOn": start, "endsOn": end},
            select="ok",
        )
        for start, end in ((day(-10), day(-1)), (day(1), day(10)))
    ]
    advance_id = await submitted(gql, company, "rep3", "5000", "Dealer training")
    manager_step, head_step, _ = await chain(gql, company, advance_id)

    delegate_sees = await inbox(gql, company, "mgr2")
    by_delegate = await decide(gql, company, "mgr2", manager_step["id"])
    outside_sees = await inbox(gql, company, "fin_mgr")
    outside = await decide(gql, company, "fin_mgr", head_step["id"])
    after_refusal = await chain(gql, company, advance_id)
    by_approver = await decide(gql, company, "sales_head", head_step["id"])
    decided = await chain(gql, company, advance_id)

    assert delegated == {"ok": True, "userErrors": []}
    assert elsewhere == [{"ok": True, "userErrors": []}] * 2
    assert delegate_sees == [manager_step["id"]]
    assert by_delegate == {
        "step": {"status": "approved"},
        "advance": {"status": "submitted"},
        "userErrors": [],
    }
    assert head_step["id"] not in outside_sees
    assert outside == {
        "step": None,
        "advance": None,
        "userErrors": [
            {"field": None, "code": "FORBIDDEN", "message": "This step is not yours to decide."}
        ],
    }
    assert [(s["status"], s["decidedFor"]) for s in after_refusal[1:]] == [
        ("pending", None),
        ("pending", None),
    ]
    assert by_approver["userErrors"] == []
    users = await user_ids(gql, company, "mgr2", "sales_head")
    assert [(s["status"], s["decidedFor"], s["decidedBy"]) for s in decided] == [
        ("approved", {"id": company.ids["mgr1"]}, users["mgr2"]),
        ("approved", {"id": company.ids["sales_head"]}, users["sales_head"]),
        ("pending", None, None),
    ]


async def user_ids(gql: GraphQLClient, company: Company, *keys: str) -> dict[str, str]:
    found = {}
    for key in keys:
        body = await gql.execute("{ viewer { user { id } } }", token=company.token(key))
        found[key] = body["data"]["viewer"]["user"]["id"]
    return found


async def test_the_frozen_chain_survives_a_reorganisation_and_stays_decidable(
    gql: GraphQLClient, company: Company
) -> None:
    ids = company.ids
    advance_id = await submitted(gql, company, "rep1", "5000", "Regional roadshow")
    frozen = await chain(gql, company, advance_id)

    # After submission: sales moves under operations, the requester moves to an operator's
    # seat reporting to the CEO, and the approving sales manager becomes an accountant.
    effective = today().isoformat()
    await hr(
        gql,
        company,
        "moveOrgUnit",
        {"id": ids["sales"], "newParentId": ids["ops"], "effectiveDate": effective},
    )
    await hr(
        gql,
        company,
        "transferEmployee",
        {"employeeId": ids["rep1"], "positionId": ids["ops_pos"], "effectiveDate": effective},
    )
    await hr(
        gql,
        company,
        "transferEmployee",
        {
            "employeeId": ids["mgr1"],
            "positionId": ids["accountant_pos"],
            "effectiveDate": effective,
        },
    )

    after_reorganisation = await chain(gql, company, advance_id)
    now_previewed = await preview(gql, company, "rep1")
    former_manager_sees = await inbox(gql, company, "mgr1")
    decisions = [
        await decide(gql, company, approver, step["id"])
        for approver, step in zip(("mgr1", "sales_head", "accountant"), frozen, strict=True)
    ]

    assert approvers(company, frozen) == [
        ("manager", "mgr1"),
        ("unit_head", "sales_head"),
        ("finance", None),
    ]
    assert after_reorganisation == frozen
    # The organisation did change: a new request would go to the CEO.
    assert now_previewed == [("manager", "ceo"), ("finance", None)]
    assert former_manager_sees == [frozen[0]["id"]]
    assert [d["userErrors"] for d in decisions] == [[], [], []]
    assert [d["advance"]["status"] for d in decisions] == ["submitted", "submitted", "approved"]
