"""The story Renshi was started for, end to end through GraphQL.

Three sales managers hold advances of 6,000, 15,000 and 30,000 CNY and resign. Their exits
cannot complete while the money is owed; once one settles by expense claim, one by a
final-pay deduction and one by a waiver from the CEO, all three complete, and the audit
log shows every step.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id
from tests.advance_fixtures import approved_and_paid, build_company, call
from tests.conftest import GraphQLClient

CASE = (
    "case { id status items { kind status } } "
    "outstandingAdvances { purpose outstanding { amount currency formatted } }"
)


async def test_three_exits_wait_for_the_money_then_complete(
    engine: AsyncEngine, gql: GraphQLClient
) -> None:
    company = await build_company(engine, gql)
    amounts = {"mgr1": "6000", "mgr2": "15000", "mgr3": "30000"}
    advances = {
        who: await approved_and_paid(gql, company, who, amount, f"Client visits {who}")
        for who, amount in amounts.items()
    }

    cases = {}
    for who in amounts:
        resigned = await call(
            gql,
            company.token(who),
            "submitResignation",
            {"lastWorkingDay": "2099-06-30", "reason": "New job"},
            select=CASE,
        )
        assert resigned["userErrors"] == []
        assert resigned["case"]["items"] == [{"kind": "advance", "status": "open"}]
        cases[who] = resigned["case"]["id"]

    for who, amount in amounts.items():
        blocked = await call(
            gql, company.token("hr"), "completeOffboarding", {"caseId": cases[who]}, select=CASE
        )
        assert blocked["case"] is None
        assert blocked["userErrors"][0]["code"] == "OUTSTANDING_ADVANCES"
        assert blocked["outstandingAdvances"] == [
            {
                "purpose": f"Client visits {who}",
                "outstanding": {
                    "amount": f"{amount}.00",
                    "currency": "CNY",
                    "formatted": f"¥{int(amount):,}.00",
                },
            }
        ]

    claim = await call(
        gql,
        company.token("mgr1"),
        "submitExpenseClaim",
        {
            "advanceId": advances["mgr1"],
            "lines": [
                {
                    "spentOn": "2026-11-02",
                    "category": "travel",
                    "amount": {"amount": "4200.00"},
                    "receiptReference": "INV-1",
                },
                {
                    "spentOn": "2026-11-03",
                    "category": "meals",
                    "amount": {"amount": "1800.00"},
                    "receiptReference": "INV-2",
                },
            ],
        },
    )
    deduction = await call(
        gql,
        company.token("accountant"),
        "recordPayrollDeduction",
        {
            "advanceId": advances["mgr2"],
            "amount": {"amount": "15000"},
            "occurredOn": "2099-06-30",
            "reason": "final pay",
        },
    )
    refused = await call(
        gql,
        company.token("hr"),
        "waiveClearanceItem",
        {"itemId": await item_of(gql, company, cases["mgr3"]), "reason": "goodwill"},
        select=CASE,
    )
    waiver = await call(
        gql,
        company.token("ceo"),
        "waiveClearanceItem",
        {
            "itemId": await item_of(gql, company, cases["mgr3"]),
            "reason": "Client dinner receipts lost in the move; CEO accepts the loss",
        },
        select=CASE,
    )

    assert claim["advance"]["status"] == "settled"
    assert deduction["advance"]["status"] == "settled"
    assert refused["userErrors"][0]["code"] == "FORBIDDEN"
    assert waiver["userErrors"] == []
    for who in amounts:
        done = await call(
            gql, company.token("hr"), "completeOffboarding", {"caseId": cases[who]}, select=CASE
        )
        assert done["userErrors"] == []
        assert done["case"]["status"] == "completed"

    statuses = await gql.execute(
        "query($a: ID!, $b: ID!, $c: ID!) { a: employee(id: $a) { status } "
        "b: employee(id: $b) { status } c: employee(id: $c) { status } }",
        {"a": company.ids["mgr1"], "b": company.ids["mgr2"], "c": company.ids["mgr3"]},
        token=company.token("hr"),
    )
    audit = await gql.execute(
        "query($id: ID!) { advance(id: $id) { status outstanding { amount } "
        "audit { action after } } }",
        {"id": advances["mgr3"]},
        token=company.token("admin"),
    )

    # Terminated from the day after the last working day; today they are offboarding.
    assert statuses["data"] == {
        "a": {"status": "OFFBOARDING"},
        "b": {"status": "OFFBOARDING"},
        "c": {"status": "OFFBOARDING"},
    }
    trail = audit["data"]["advance"]
    assert trail["status"] == "written_off"
    assert trail["outstanding"] == {"amount": "0.00"}
    assert [entry["action"] for entry in trail["audit"]] == [
        "advance.request",
        "advance.submit",
        "approval.approve",
        "approval.approve",
        "approval.approve",
        "advance.disburse",
        "advance.waiver",
    ]


async def item_of(gql: GraphQLClient, company, case_id: str) -> str:
    body = await gql.execute(
        '{ offboardingCases(status: "open") { id items { id kind } } }', token=company.token("hr")
    )
    case = next(c for c in body["data"]["offboardingCases"] if c["id"] == case_id)
    return next(i["id"] for i in case["items"] if i["kind"] == "advance")


async def test_the_audit_log_is_for_admins_and_auditors_and_cannot_be_edited(
    engine: AsyncEngine, gql: GraphQLClient
) -> None:
    company = await build_company(engine, gql)
    advance = await approved_and_paid(gql, company, "mgr1", "6000", "Trade fair")
    query = """query($id: String!) { auditLog(entityType: "advance", entityId: $id, first: 3)
               { entries { action } numbers hasNextPage } }"""
    entity_id = str(from_global_id(advance)[2])
    as_admin = await gql.execute(query, {"id": entity_id}, token=company.token("admin"))
    as_employee = await gql.execute(query, {"id": entity_id}, token=company.token("mgr1"))
    page = as_admin["data"]["auditLog"]
    rest = await gql.execute(
        """query($id: String!, $before: Int!) { auditLog(entityType: "advance",
             entityId: $id, beforeId: $before) { entries { action } hasNextPage } }""",
        {"id": entity_id, "before": page["numbers"][-1]},
        token=company.token("admin"),
    )

    assert [e["action"] for e in page["entries"]] == [
        "advance.disburse",
        "approval.approve",
        "approval.approve",
    ]
    assert page["hasNextPage"] is True
    assert [e["action"] for e in rest["data"]["auditLog"]["entries"]] == [
        "advance.submit",
        "advance.request",
    ]
    assert as_employee["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    schema = company.tenant.tenant.schema
    for statement in (
        f'UPDATE "{schema}".audit_log SET action = action',
        f'DELETE FROM "{schema}".audit_log',
    ):
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        except DBAPIError as error:
            assert "append-only" in str(error.orig)
        else:
            raise AssertionError(f"the database allowed: {statement}")
