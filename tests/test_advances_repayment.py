"""Repayment plans follow the ledger: what each instalment has recovered, what is overdue.

Sunrise Energy (CNY, Asia/Shanghai): sales reps repay advances by monthly payroll
deduction. Plans start on 2027-01-15, so instalments fall due on the 15th from February;
every read names the instant it is judged at.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import Company, approved_and_paid, build_company, call, own_client
from tests.conftest import GraphQLClient

PLANS = """query($id: ID!, $at: DateTime) { advance(id: $id) {
  status outstanding { amount }
  repaymentPlans(at: $at) {
    status amount { amount } recovered { amount } remaining { amount }
    nextDue { seq dueOn }
    instalments { seq dueOn amount { amount } recovered { amount } status }
  }
} }"""
BEFORE_ANY_DUE = "2027-01-20T00:00:00Z"


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        return await build_company(engine, gql)


async def planned(
    gql: GraphQLClient, company: Company, who: str, amount: str, instalments: int
) -> str:
    """A paid-out advance of `amount` CNY with a plan of `instalments` from 2027-01-15."""
    advance_id = await approved_and_paid(gql, company, who, amount, f"Trade fair of {who}")
    done = await call(
        gql,
        company.token("accountant"),
        "createRepaymentPlan",
        {"advanceId": advance_id, "instalments": instalments, "startsOn": "2027-01-15"},
    )
    assert done["userErrors"] == [], done
    return advance_id


async def deduct(gql: GraphQLClient, company: Company, advance_id: str, amount: str) -> None:
    done = await call(
        gql,
        company.token("accountant"),
        "recordPayrollDeduction",
        {"advanceId": advance_id, "amount": {"amount": amount}, "occurredOn": "2027-02-10"},
    )
    assert done["userErrors"] == [], done


async def plan_of(
    gql: GraphQLClient, company: Company, advance_id: str, at: str = BEFORE_ANY_DUE
) -> dict[str, Any]:
    body = await gql.execute(PLANS, {"id": advance_id, "at": at}, token=company.token("hr"))
    assert "errors" not in body, body
    advance = body["data"]["advance"]
    (plan,) = advance["repaymentPlans"]
    return {
        "advance": (advance["status"], advance["outstanding"]["amount"]),
        "plan": (
            plan["status"],
            plan["amount"]["amount"],
            plan["recovered"]["amount"],
            plan["remaining"]["amount"],
        ),
        "next": plan["nextDue"],
        "instalments": [
            (i["seq"], i["dueOn"], i["amount"]["amount"], i["recovered"]["amount"], i["status"])
            for i in plan["instalments"]
        ],
    }


async def test_a_deduction_pays_instalments_in_due_date_order_and_a_reversal_reopens_them(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep4", "1000.00", 3)
    fresh = await plan_of(gql, company, advance_id)

    await deduct(gql, company, advance_id, "400.00")
    after_deduction = await plan_of(gql, company, advance_id)
    entries = await gql.execute(
        "query($id: ID!) { advance(id: $id) { entries { id kind } } }",
        {"id": advance_id},
        token=company.token("accountant"),
    )
    (deduction,) = [
        e["id"] for e in entries["data"]["advance"]["entries"] if e["kind"] == "payroll_deduction"
    ]
    reversed_ = await call(
        gql,
        company.token("accountant"),
        "reverseLedgerEntry",
        {"entryId": deduction, "reason": "Deducted from the wrong payslip"},
    )
    after_reversal = await plan_of(gql, company, advance_id)

    assert fresh == {
        "advance": ("disbursed", "1000.00"),
        "plan": ("active", "1000.00", "0.00", "1000.00"),
        "next": {"seq": 1, "dueOn": "2027-02-15"},
        "instalments": [
            (1, "2027-02-15", "333.33", "0.00", "due"),
            (2, "2027-03-15", "333.33", "0.00", "due"),
            (3, "2027-04-15", "333.34", "0.00", "due"),
        ],
    }
    assert after_deduction == {
        "advance": ("partially_settled", "600.00"),
        "plan": ("active", "1000.00", "400.00", "600.00"),
        "next": {"seq": 2, "dueOn": "2027-03-15"},
        "instalments": [
            (1, "2027-02-15", "333.33", "333.33", "paid"),
            (2, "2027-03-15", "333.33", "66.67", "partly_paid"),
            (3, "2027-04-15", "333.34", "0.00", "due"),
        ],
    }
    assert reversed_["userErrors"] == []
    assert after_reversal == fresh | {"advance": ("disbursed", "1000.00")}


async def test_an_instalment_is_overdue_from_the_next_day_on_the_branch_calendar(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep5", "500.00", 2)
    await deduct(gql, company, advance_id, "100.00")

    # 23:30 and 00:30 in Shanghai: the first instalment falls due on the 15th there.
    last_evening = await plan_of(gql, company, advance_id, at="2027-02-15T15:30:00Z")
    next_morning = await plan_of(gql, company, advance_id, at="2027-02-15T16:30:00Z")

    assert last_evening["instalments"] == [
        (1, "2027-02-15", "250.00", "100.00", "partly_paid"),
        (2, "2027-03-15", "250.00", "0.00", "due"),
    ]
    assert next_morning["instalments"] == [
        (1, "2027-02-15", "250.00", "100.00", "overdue"),
        (2, "2027-03-15", "250.00", "0.00", "due"),
    ]
    assert next_morning["plan"] == ("active", "500.00", "100.00", "400.00")
    assert next_morning["next"] == {"seq": 1, "dueOn": "2027-02-15"}


async def test_the_plan_completes_when_the_advance_is_settled(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep6", "1000.00", 3)
    await deduct(gql, company, advance_id, "400.00")

    returned = await call(
        gql,
        company.token("accountant"),
        "recordReturn",
        {"advanceId": advance_id, "amount": {"amount": "600.00"}, "occurredOn": "2027-02-20"},
    )
    found = await plan_of(gql, company, advance_id, at="2027-06-01T00:00:00Z")

    assert returned["userErrors"] == []
    assert found == {
        "advance": ("settled", "0.00"),
        "plan": ("completed", "1000.00", "1000.00", "0.00"),
        "next": None,
        "instalments": [
            (1, "2027-02-15", "333.33", "333.33", "paid"),
            (2, "2027-03-15", "333.33", "333.33", "paid"),
            (3, "2027-04-15", "333.34", "333.34", "paid"),
        ],
    }


async def test_a_write_off_closes_what_the_plan_will_never_collect(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep7", "900.00", 3)
    await deduct(gql, company, advance_id, "300.00")

    written_off = await call(
        gql,
        company.token("ceo"),
        "writeOffAdvance",
        {"advanceId": advance_id, "reason": "The rep emigrated"},
    )
    found = await plan_of(gql, company, advance_id, at="2027-06-01T00:00:00Z")

    assert written_off["userErrors"] == []
    assert found == {
        "advance": ("written_off", "0.00"),
        "plan": ("written_off", "900.00", "300.00", "0.00"),
        "next": None,
        "instalments": [
            (1, "2027-02-15", "300.00", "300.00", "paid"),
            (2, "2027-03-15", "300.00", "0.00", "closed"),
            (3, "2027-04-15", "300.00", "0.00", "closed"),
        ],
    }


async def test_a_second_plan_is_refused_while_the_first_is_in_progress(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep8", "600.00", 2)
    before = await plan_of(gql, company, advance_id)

    again = await call(
        gql,
        company.token("accountant"),
        "createRepaymentPlan",
        {"advanceId": advance_id, "instalments": 6, "startsOn": "2027-01-15"},
    )

    assert again == {
        "advance": None,
        "userErrors": [
            {
                "field": "advanceId",
                "code": "INVALID",
                "message": "This advance already has a repayment plan in progress.",
            }
        ],
    }
    assert await plan_of(gql, company, advance_id) == before


CASE = """{ offboardingCases(status: "open") {
  employee { displayName }
  items { kind description remaining { amount }
    repaymentPlan { remaining { amount } nextDue { seq } } }
} }"""


async def test_the_clearance_list_shows_what_each_plan_has_still_to_recover(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await planned(gql, company, "rep9", "1000.00", 3)
    await deduct(gql, company, advance_id, "400.00")

    resigned = await call(
        gql,
        company.token("hr"),
        "submitResignation",
        {"employeeId": company.ids["rep9"], "lastWorkingDay": "2099-06-30"},
        select="case { id }",
    )
    opened = await gql.execute(CASE, token=company.token("hr"))
    await deduct(gql, company, advance_id, "600.00")
    repaid = await gql.execute(CASE, token=company.token("hr"))
    completed = await call(
        gql,
        company.token("hr"),
        "completeOffboarding",
        {"caseId": resigned["case"]["id"]},
        select="case { status }",
    )

    assert resigned["userErrors"] == []
    (case,) = [
        c for c in opened["data"]["offboardingCases"] if c["employee"]["displayName"] == "Rep9 Sun"
    ]
    assert case["items"] == [
        {
            "kind": "advance",
            "description": "Advance 'Trade fair of rep9' (partially_settled): outstanding "
            "600.00 CNY",
            "remaining": {"amount": "600.00"},
            "repaymentPlan": None,
        },
        {
            "kind": "repayment_plan",
            "description": "Repayment plan of 1000.00 CNY in 3 instalments: 600.00 CNY remaining",
            "remaining": {"amount": "600.00"},
            "repaymentPlan": {"remaining": {"amount": "600.00"}, "nextDue": {"seq": 2}},
        },
    ]
    (case,) = [
        c for c in repaid["data"]["offboardingCases"] if c["employee"]["displayName"] == "Rep9 Sun"
    ]
    assert [(i["kind"], i["remaining"]) for i in case["items"]] == [
        ("advance", {"amount": "0.00"}),
        ("repayment_plan", {"amount": "0.00"}),
    ]
    assert completed == {"case": {"status": "completed"}, "userErrors": []}
