"""Holes a reviewer found in the advances, each shut and kept shut through GraphQL.

Sunrise Energy (CNY, Asia/Shanghai) as tests/advance_fixtures.py builds it: the CEO (L9,
admin) over the head of sales (L7, manager) and the finance manager (L6, finance and
manager), three sales managers (L5) over twelve reps (L3), and eleven operators reporting
to the CEO. The matrix lets a sales manager approve 10,000, the head of sales and the
finance manager 20,000 and the CEO 200,000; only the CEO is named above it. A controller
(finance, no employee record), an HR officer who is also operator op2, and operator op1
sign in besides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import to_global_id
from tests.advance_fixtures import (
    Company,
    add_user,
    approve_all,
    approved_and_paid,
    build_company,
    call,
    own_client,
    pk,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient

ADVANCE = """query($id: ID!) { advance(id: $id) {
  status disbursedAt outstanding { amount }
  entries { id kind amount { amount } }
  approvalChain { id role status approver { id } }
} }"""
CASE = "case { id status items { id kind status } }"


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        await add_user(gql, company, "controller", ["finance"])
        await add_user(gql, company, "hr2", ["hr"], employee="op2")
        await add_user(gql, company, "op1", ["employee"])
    return company


def error(field: str | None, code: str, message: str) -> dict[str, Any]:
    return {"field": field, "code": code, "message": message}


async def read(gql: GraphQLClient, company: Company, advance_id: str) -> dict[str, Any]:
    body = await gql.execute(ADVANCE, {"id": advance_id}, token=company.token("admin"))
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["advance"]
    return found


async def resign(gql: GraphQLClient, company: Company, who: str) -> dict[str, Any]:
    """HR records `who`'s resignation (or `who` resigns, if they sign in)."""
    own = who in company.tokens
    opened = await call(
        gql,
        company.token(who if own else "hr"),
        "submitResignation",
        {"lastWorkingDay": "2027-06-30", **({} if own else {"employeeId": company.ids[who]})},
        select=CASE,
    )
    assert opened["userErrors"] == [], opened
    case: dict[str, Any] = opened["case"]
    return case


async def drafted(
    gql: GraphQLClient, company: Company, who: str, amount: str, currency: str | None = None
) -> dict[str, Any]:
    """`who` asks for an advance (HR asks for those who do not sign in)."""
    own = who in company.tokens
    return await call(
        gql,
        company.token(who if own else "hr"),
        "requestAdvance",
        {
            "kind": "business",
            "amount": {"amount": amount, "currency": currency},
            "purpose": f"{amount} for {who}",
            "expectedSettlementDate": "2027-12-31",
            **({} if own else {"employeeId": company.ids[who]}),
        },
    )


def missing_advance(company: Company) -> str:
    """A well-formed advance ID of this tenant that names no advance."""
    return to_global_id("Advance", company.tenant.tenant.id, uuid.uuid4())


def shanghai_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


# --- 1. authority: a role as well as a level, and never one's own advance -------------------


async def test_a_manager_whose_level_covers_it_still_cannot_write_off(
    gql: GraphQLClient, company: Company
) -> None:
    # The head of sales approves up to 20,000 and sees his line, rep0 included.
    theirs = await approved_and_paid(gql, company, "rep0", "1000", "Dealer visit")
    own = await approved_and_paid(gql, company, "sales_head", "1000", "Own trip")

    refused = [
        await call(
            gql,
            company.token("sales_head"),
            "writeOffAdvance",
            {"advanceId": advance_id, "reason": "Never mind"},
        )
        for advance_id in (theirs, own)
    ]

    forbidden = error(None, "FORBIDDEN", "You are not allowed to do this.")
    assert refused == [{"advance": None, "userErrors": [forbidden]}] * 2
    assert [(await read(gql, company, a))["status"] for a in (theirs, own)] == ["disbursed"] * 2


async def test_nobody_writes_off_or_waives_their_own_advance(
    gql: GraphQLClient, company: Company
) -> None:
    # The finance manager holds the finance role and approves up to 20,000.
    advance_id = await approved_and_paid(gql, company, "fin_mgr", "1500", "Audit travel")

    wrote_off = await call(
        gql,
        company.token("fin_mgr"),
        "writeOffAdvance",
        {"advanceId": advance_id, "reason": "Lost receipts"},
    )
    case = await resign(gql, company, "fin_mgr")
    (item,) = case["items"]
    waived = await call(
        gql,
        company.token("fin_mgr"),
        "waiveClearanceItem",
        {"itemId": item["id"], "reason": "Lost receipts"},
        select=CASE,
    )
    completed = await call(
        gql,
        company.token("hr"),
        "completeOffboarding",
        {"caseId": case["id"]},
        select="case { id } outstandingAdvances { outstanding { amount } }",
    )

    assert wrote_off == {
        "advance": None,
        "userErrors": [error(None, "FORBIDDEN", "You cannot do this on your own advance.")],
    }
    assert waived == {
        "case": None,
        "userErrors": [error(None, "FORBIDDEN", "You cannot resolve items of your own exit.")],
    }
    assert completed["case"] is None
    assert completed["outstandingAdvances"] == [{"outstanding": {"amount": "1500.00"}}]
    assert [e["code"] for e in completed["userErrors"]] == ["OUTSTANDING_ADVANCES"]
    assert (await read(gql, company, advance_id))["status"] == "disbursed"


# --- 2. what the actor may not see does not exist for their mutations ----------------------


async def test_mutations_on_an_advance_the_actor_cannot_see_find_nothing(
    gql: GraphQLClient, company: Company
) -> None:
    # op0 reports to the CEO: outside the head of sales' line.
    paid = await approved_and_paid(gql, company, "op0", "900", "Spare parts")
    waiting = await submitted(gql, company, "op0", "300", "Safety boots")
    (first_step, *_) = (await read(gql, company, waiting))["approvalChain"]
    case = await resign(gql, company, "op0")
    item = next(i for i in case["items"] if i["kind"] == "advance")
    token = company.token("sales_head")
    seen = await gql.execute(
        "query($id: ID!) { advance(id: $id) { id } }", {"id": paid}, token=token
    )

    found = [
        await call(gql, token, "writeOffAdvance", {"advanceId": paid, "reason": "Gone"}),
        await call(
            gql,
            token,
            "submitExpenseClaim",
            {
                "advanceId": paid,
                "lines": [
                    {"spentOn": "2026-11-02", "category": "meals", "amount": {"amount": "900"}}
                ],
            },
        ),
        await call(gql, token, "cancelAdvance", {"advanceId": waiting}),
    ]
    decided = await call(
        gql,
        token,
        "decideApproval",
        {"stepId": first_step["id"], "approve": True},
        select="step { id } advance { id }",
    )
    waived = await call(
        gql, token, "waiveClearanceItem", {"itemId": item["id"], "reason": "Gone"}, select=CASE
    )

    assert seen == {"data": {"advance": None}}
    not_found = error("advanceId", "NOT_FOUND", "The advance does not exist.")
    assert found == [{"advance": None, "userErrors": [not_found]}] * 3
    assert decided == {
        "step": None,
        "advance": None,
        "userErrors": [error("stepId", "NOT_FOUND", "The approval step does not exist.")],
    }
    assert waived == {
        "case": None,
        "userErrors": [error("itemId", "NOT_FOUND", "The clearance item does not exist.")],
    }
    after = await read(gql, company, paid)
    assert (after["status"], after["outstanding"]) == ("disbursed", {"amount": "900.00"})


# --- 3. nothing goes ahead for someone leaving, and drafts lapse with the exit -------------


async def test_a_leavers_requests_are_not_submitted_approved_or_paid_and_lapse(
    gql: GraphQLClient, company: Company
) -> None:
    approved = await submitted(gql, company, "rep1", "1000", "Approved before leaving")
    await approve_all(gql, company, approved)
    waiting = await submitted(gql, company, "rep1", "600", "Waiting when leaving")
    (first_step, *_) = (await read(gql, company, waiting))["approvalChain"]
    draft = (await drafted(gql, company, "rep1", "400"))["advance"]["id"]
    case = await resign(gql, company, "rep1")
    approver = {company.ids[k]: k for k in ("mgr1", "mgr2", "mgr3")}[first_step["approver"]["id"]]

    submit = await call(gql, company.token("hr"), "submitAdvance", {"advanceId": draft})
    approve = await call(
        gql,
        company.token(approver),
        "decideApproval",
        {"stepId": first_step["id"], "approve": True},
        select="step { status }",
    )
    pay = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": approved, "idempotencyKey": f"pay-{approved}"},
    )
    completed = await call(
        gql, company.token("hr"), "completeOffboarding", {"caseId": case["id"]}, select=CASE
    )

    leaving = "The employee is leaving or has left; this advance cannot go ahead."
    assert submit == {"advance": None, "userErrors": [error("advanceId", "INVALID", leaving)]}
    assert approve == {"step": None, "userErrors": [error("stepId", "INVALID", leaving)]}
    assert pay == {"advance": None, "userErrors": [error(None, "INVALID", leaving)]}
    assert completed["userErrors"] == []
    assert completed["case"]["status"] == "completed"
    assert [(await read(gql, company, a))["status"] for a in (approved, waiting, draft)] == [
        "cancelled"
    ] * 3


# --- 4. money coming back is above zero -----------------------------------------------------


async def test_a_return_or_deduction_of_nothing_or_less_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep2", "100", "Taxi fares")

    refused = [
        await call(
            gql,
            company.token("accountant"),
            mutation,
            {"advanceId": advance_id, "amount": {"amount": amount}, "occurredOn": "2026-12-01"},
        )
        for mutation in ("recordReturn", "recordPayrollDeduction")
        for amount in ("-500", "0", "0.001")
    ]

    above_zero = error("amount", "INVALID", "The amount must be above zero.")
    assert refused == [{"advance": None, "userErrors": [above_zero]}] * 6
    found = await read(gql, company, advance_id)
    assert (found["status"], found["outstanding"]) == ("disbursed", {"amount": "100.00"})
    assert [e["kind"] for e in found["entries"]] == ["disbursement"]


# --- 5. a reversed payment leaves an approved advance, and the exit never waits on zero ----


async def test_a_reversed_payment_puts_the_advance_back_to_approved_to_be_paid_again(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep3", "1000", "Paid twice by mistake")
    (payment,) = (await read(gql, company, advance_id))["entries"]

    reversed_ = await call(
        gql,
        company.token("accountant"),
        "reverseLedgerEntry",
        {"entryId": payment["id"], "reason": "Paid to the wrong account"},
        select="advance { status disbursedAt outstanding { amount } }",
    )
    same_key = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": f"pay-{advance_id}"},
    )
    paid_again = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": f"repay-{advance_id}"},
        select="advance { status outstanding { amount } }",
    )
    await call(
        gql,
        company.token("accountant"),
        "recordReturn",
        {"advanceId": advance_id, "amount": {"amount": "200"}, "occurredOn": "2026-12-01"},
    )
    second_payment = (await read(gql, company, advance_id))["entries"][2]
    under_a_return = await call(
        gql,
        company.token("accountant"),
        "reverseLedgerEntry",
        {"entryId": second_payment["id"], "reason": "Oops"},
    )

    assert reversed_ == {
        "advance": {"status": "approved", "disbursedAt": None, "outstanding": {"amount": "0.00"}},
        "userErrors": [],
    }
    assert same_key == {
        "advance": None,
        "userErrors": [
            error(
                "idempotencyKey",
                "INVALID",
                "The payment with this idempotency key was reversed; use a new key.",
            )
        ],
    }
    assert paid_again == {
        "advance": {"status": "disbursed", "outstanding": {"amount": "1000.00"}},
        "userErrors": [],
    }
    assert under_a_return == {
        "advance": None,
        "userErrors": [
            error("entryId", "INVALID", "Reverse the entries recorded after the payment first.")
        ],
    }
    found = await read(gql, company, advance_id)
    assert [(e["kind"], e["amount"]["amount"]) for e in found["entries"]] == [
        ("disbursement", "1000.00"),
        ("reversal", "-1000.00"),
        ("disbursement", "1000.00"),
        ("return", "-200.00"),
    ]


async def test_an_exit_completes_over_a_reversed_payment_even_one_recorded_before_the_fix(
    gql: GraphQLClient, company: Company
) -> None:
    reversed_now = await approved_and_paid(gql, company, "rep4", "700", "Reversed today")
    reversed_before = await approved_and_paid(gql, company, "rep4", "800", "Reversed long ago")
    for advance_id in (reversed_now, reversed_before):
        (payment,) = (await read(gql, company, advance_id))["entries"]
        done = await call(
            gql,
            company.token("accountant"),
            "reverseLedgerEntry",
            {"entryId": payment["id"], "reason": "Never left the bank"},
        )
        assert done["userErrors"] == [], done
    async with raw_session(company) as session:
        # As the ledger left it before reversals restored the status: disbursed, owing 0.
        await session.execute(
            text("UPDATE advances SET status = 'disbursed' WHERE id = :id"),
            {"id": pk(reversed_before)},
        )
    case = await resign(gql, company, "rep4")

    completed = await call(
        gql,
        company.token("hr"),
        "completeOffboarding",
        {"caseId": case["id"]},
        select="case { status } outstandingAdvances { purpose }",
    )

    assert completed == {
        "case": {"status": "completed"},
        "outstandingAdvances": [],
        "userErrors": [],
    }
    for advance_id in (reversed_now, reversed_before):
        found = await read(gql, company, advance_id)
        assert (found["status"], found["outstanding"]) == ("cancelled", {"amount": "0.00"})


# --- 6. nobody moves the money of their own advance -----------------------------------------


async def test_finance_and_hr_cannot_move_the_money_of_their_own_advances(
    gql: GraphQLClient, company: Company
) -> None:
    # The accountant's chain: the finance manager, then finance (the controller).
    own = await submitted(gql, company, "accountant", "2000", "Audit in Chengdu")
    manager_step, finance_step = (await read(gql, company, own))["approvalChain"]
    for who, step in (("fin_mgr", manager_step), ("controller", finance_step)):
        done = await call(
            gql,
            company.token(who),
            "decideApproval",
            {"stepId": step["id"], "approve": True},
            select="step { status }",
        )
        assert done["userErrors"] == [], done
    accountant = company.token("accountant")
    pay_own = await call(
        gql, accountant, "disburseAdvance", {"advanceId": own, "idempotencyKey": f"own-{own}"}
    )
    paid = await call(
        gql,
        company.token("controller"),
        "disburseAdvance",
        {"advanceId": own, "idempotencyKey": f"pay-{own}"},
    )
    (payment,) = (await read(gql, company, own))["entries"]
    hr_own = await approved_and_paid(gql, company, "op2", "500", "Job fair stand")
    money = {"amount": {"amount": "2000"}, "occurredOn": "2026-12-01"}

    refusals = [
        pay_own,
        await call(gql, accountant, "recordReturn", {"advanceId": own, **money}),
        await call(gql, accountant, "recordPayrollDeduction", {"advanceId": own, **money}),
        await call(
            gql,
            accountant,
            "createRepaymentPlan",
            {"advanceId": own, "instalments": 2, "startsOn": "2027-01-15"},
        ),
        await call(
            gql, accountant, "reverseLedgerEntry", {"entryId": payment["id"], "reason": "x"}
        ),
        await call(
            gql,
            company.token("hr2"),
            "recordPayrollDeduction",
            {"advanceId": hr_own, "amount": {"amount": "500"}, "occurredOn": "2026-12-01"},
        ),
    ]
    # Their own route stays open: receipts, like any employee.
    claimed = await call(
        gql,
        accountant,
        "submitExpenseClaim",
        {
            "advanceId": own,
            "lines": [{"spentOn": "2026-11-20", "category": "travel", "amount": {"amount": "300"}}],
        },
        select="advance { status outstanding { amount } }",
    )

    assert paid["userErrors"] == []
    own_advance = error(None, "FORBIDDEN", "You cannot do this on your own advance.")
    assert refusals == [{"advance": None, "userErrors": [own_advance]}] * 6
    assert claimed == {
        "advance": {"status": "partially_settled", "outstanding": {"amount": "1700.00"}},
        "userErrors": [],
    }
    assert (await read(gql, company, hr_own))["outstanding"] == {"amount": "500.00"}


# --- 7. and 8. absurd numbers and missing advances are user errors --------------------------


TOO_LARGE = "The amount must be less than 1,000,000,000,000."


@pytest.mark.parametrize("amount", ["1e30", "99999999999999999999", "-1e30"])
async def test_an_amount_beyond_what_an_advance_holds_is_refused(
    gql: GraphQLClient, company: Company, amount: str
) -> None:
    requested = await drafted(gql, company, "rep0", amount)

    assert requested == {"advance": None, "userErrors": [error("amount", "INVALID", TOO_LARGE)]}


async def test_huge_returns_limits_and_rates_and_far_plans_are_refused(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep5", "1200", "Trade fair")
    today = shanghai_today()
    rule = {"minRank": 1, "maxRank": 4, "currency": "CNY"}

    returned = await call(
        gql,
        company.token("accountant"),
        "recordReturn",
        {"advanceId": advance_id, "amount": {"amount": "1e30"}, "occurredOn": "2026-12-01"},
    )
    matrix = await call(
        gql,
        company.token("admin"),
        "setAuthorityMatrix",
        {"rules": [rule | {"approvalLimit": "1e40"}]},
        select="ruleCount",
    )
    rates = [
        await call(
            gql,
            company.token("accountant"),
            "setExchangeRate",
            {"base": "USD", "quote": "CNY", "rate": rate, "validFrom": "2026-01-01"},
            select="ok",
        )
        for rate in ("1e20", "1e-20", "0")
    ]
    planned = await call(
        gql,
        company.token("accountant"),
        "createRepaymentPlan",
        {"advanceId": advance_id, "instalments": 12, "startsOn": "9999-06-30"},
    )

    assert returned == {"advance": None, "userErrors": [error("amount", "INVALID", TOO_LARGE)]}
    assert matrix == {
        "ruleCount": 0,
        "userErrors": [error("rules.0.approvalLimit", "INVALID", TOO_LARGE)],
    }
    bad_rate = error("rate", "INVALID", "A rate is between 0.000001 and 1,000,000.")
    assert rates == [{"ok": False, "userErrors": [bad_rate]}] * 3
    earliest = today.replace(year=today.year - 1)
    latest = today.replace(year=today.year + 5)
    assert planned == {
        "advance": None,
        "userErrors": [
            error("startsOn", "INVALID", f"A plan starts between {earliest} and {latest}.")
        ],
    }
    found = await read(gql, company, advance_id)
    assert (found["status"], found["outstanding"]) == ("disbursed", {"amount": "1200.00"})


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [
        ("recordReturn", {"amount": {"amount": "10"}, "occurredOn": "2026-12-01"}),
        ("recordPayrollDeduction", {"amount": {"amount": "10"}, "occurredOn": "2026-12-01"}),
        ("disburseAdvance", {"idempotencyKey": "nowhere", "paid": {"amount": "10"}}),
    ],
)
async def test_money_for_an_advance_that_does_not_exist_is_not_found(
    gql: GraphQLClient, company: Company, mutation: str, extra: dict[str, Any]
) -> None:
    found = await call(
        gql,
        company.token("accountant"),
        mutation,
        {"advanceId": missing_advance(company), **extra},
    )

    assert found == {
        "advance": None,
        "userErrors": [error("advanceId", "NOT_FOUND", "The advance does not exist.")],
    }


# --- 9. the smaller holes -------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["XAU", "XXX"])
async def test_advances_and_rates_are_in_money_not_gold_or_no_currency(
    gql: GraphQLClient, company: Company, currency: str
) -> None:
    requested = await drafted(gql, company, "rep0", "100", currency)
    rate = await call(
        gql,
        company.token("accountant"),
        "setExchangeRate",
        {"base": currency, "quote": "CNY", "rate": "4000", "validFrom": "2026-01-01"},
        select="ok",
    )

    message = f"{currency} is not a currency money is paid in."
    assert requested == {"advance": None, "userErrors": [error("currency", "INVALID", message)]}
    assert rate == {"ok": False, "userErrors": [error("base", "INVALID", message)]}


async def test_the_matrix_refuses_negative_counts_and_ranks_and_rates_refuse_one_currency(
    gql: GraphQLClient, company: Company
) -> None:
    rule = {"minRank": 1, "maxRank": 4, "currency": "CNY"}

    refused = [
        await call(
            gql,
            company.token("admin"),
            "setAuthorityMatrix",
            {"rules": [rule | change]},
            select="ruleCount",
        )
        for change in ({"maxOpenAdvances": -1}, {"minRank": -1})
    ]
    same = await call(
        gql,
        company.token("accountant"),
        "setExchangeRate",
        {"base": "USD", "quote": "usd", "rate": "2", "validFrom": "2026-01-01"},
        select="ok",
    )

    assert refused == [
        {
            "ruleCount": 0,
            "userErrors": [
                error(
                    "rules.0.maxOpenAdvances",
                    "INVALID",
                    "The number of open advances is 0 or more.",
                )
            ],
        },
        {
            "ruleCount": 0,
            "userErrors": [error("rules.0.minRank", "INVALID", "A rank is 0 or more.")],
        },
    ]
    assert same == {
        "ok": False,
        "userErrors": [
            error("quote", "INVALID", "A rate converts between two different currencies.")
        ],
    }


async def test_cancelling_a_rejected_advance_says_it_is_closed(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep6", "500", "Rejected lunch")
    (first_step, *_) = (await read(gql, company, advance_id))["approvalChain"]
    approver = {company.ids[k]: k for k in ("mgr1", "mgr2", "mgr3")}[first_step["approver"]["id"]]
    rejected = await call(
        gql,
        company.token(approver),
        "decideApproval",
        {"stepId": first_step["id"], "approve": False, "comment": "Not this quarter"},
        select="advance { status }",
    )

    cancelled = await call(gql, company.token("hr"), "cancelAdvance", {"advanceId": advance_id})

    assert rejected["advance"] == {"status": "rejected"}
    assert cancelled == {
        "advance": None,
        "userErrors": [error("id", "INVALID", "This advance is already closed.")],
    }


async def test_approvals_are_not_delegated_to_someone_leaving(
    gql: GraphQLClient, company: Company
) -> None:
    await resign(gql, company, "op5")

    delegated = await call(
        gql,
        company.token("sales_head"),
        "delegateApprovals",
        {"delegateId": company.ids["op5"], "startsOn": "2026-12-01", "endsOn": "2027-12-31"},
        select="ok",
    )

    assert delegated == {
        "ok": False,
        "userErrors": [
            error("delegateId", "INVALID", "Approvals can only be delegated to a current employee.")
        ],
    }


async def test_a_delegate_sees_the_advance_of_the_step_they_decide(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep7", "800", "Customer workshop")
    (first_step, *_) = (await read(gql, company, advance_id))["approvalChain"]
    approver = {company.ids[k]: k for k in ("mgr1", "mgr2", "mgr3")}[first_step["approver"]["id"]]
    today = shanghai_today()
    delegated = await call(
        gql,
        company.token(approver),
        "delegateApprovals",
        {
            "delegateId": company.ids["op1"],
            "startsOn": today.isoformat(),
            "endsOn": (today + dt.timedelta(days=1)).isoformat(),
        },
        select="ok",
    )
    inbox = "{ approvalInbox { items { step { id advance { purpose } } } } }"

    by_delegate = await gql.execute(inbox, token=company.token("op1"))
    by_approver = await gql.execute(inbox, token=company.token(approver))
    by_colleague = await gql.execute(
        "query($id: ID!) { advance(id: $id) { purpose } }",
        {"id": advance_id},
        token=company.token("rep0"),
    )

    assert delegated == {"ok": True, "userErrors": []}
    mine = {"step": {"id": first_step["id"], "advance": {"purpose": "Customer workshop"}}}
    assert mine in by_delegate["data"]["approvalInbox"]["items"]
    assert mine in by_approver["data"]["approvalInbox"]["items"]
    assert by_colleague == {"data": {"advance": None}}


async def test_a_claim_has_at_most_200_lines(gql: GraphQLClient, company: Company) -> None:
    advance_id = await approved_and_paid(gql, company, "rep8", "5000", "Long roadshow")
    line = {"spentOn": "2026-11-02", "category": "meals", "amount": {"amount": "1"}}

    too_long = await call(
        gql,
        company.token("accountant"),
        "submitExpenseClaim",
        {"advanceId": advance_id, "lines": [line] * 201},
    )
    longest = await call(
        gql,
        company.token("accountant"),
        "submitExpenseClaim",
        {"advanceId": advance_id, "lines": [line] * 200},
        select="advance { outstanding { amount } }",
    )

    assert too_long == {
        "advance": None,
        "userErrors": [
            error(
                "lines", "INVALID", "A claim has at most 200 lines; split it into several claims."
            )
        ],
    }
    assert longest == {"advance": {"outstanding": {"amount": "4800.00"}}, "userErrors": []}


async def test_aging_converts_with_the_inverse_rate_when_only_that_one_is_known(
    gql: GraphQLClient, company: Company
) -> None:
    done = await call(
        gql,
        company.token("accountant"),
        "setExchangeRate",
        {"base": "CNY", "quote": "JPY", "rate": "20.5", "validFrom": "2026-01-01"},
        select="ok",
    )
    assert done == {"ok": True, "userErrors": []}
    advance_id = await approved_and_paid(
        gql, company, "rep9", "10000", "Osaka expo", currency="JPY"
    )
    async with raw_session(company) as session:
        # Time passes: due on 1 October (the API refuses a settlement date in the past).
        await session.execute(
            text("UPDATE advances SET expected_settlement_date = '2026-10-01' WHERE id = :id"),
            {"id": pk(advance_id)},
        )

    body = await gql.execute(
        """query { advanceAging(asOf: "2026-12-01") { group bucket
             amount { amount currency } converted { amount currency } count } }""",
        token=company.token("accountant"),
    )

    assert "errors" not in body, body
    # 10,000 yen at 1 / 20.5 = 0.0487804878 yuan (ten decimals, half-up): 487.80 yuan.
    yen = [r for r in body["data"]["advanceAging"] if r["amount"]["currency"] == "JPY"]
    assert yen == [
        {
            "group": group,
            "bucket": "61-90",
            "amount": {"amount": "10000", "currency": "JPY"},
            "converted": {"amount": "487.80", "currency": "CNY"},
            "count": 1,
        }
        for group in ("branch", "org_unit")
    ]


async def test_a_request_nobody_available_may_approve_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    # The CEO asks: nobody is above him, and he is the only approver named above the matrix.
    requested = await drafted(gql, company, "ceo", "5000")
    advance_id = requested["advance"]["id"]

    previewed = await gql.execute(
        "query($input: ApprovalChainPreviewInput!) { approvalChainPreview(input: $input) "
        "{ role } }",
        {"input": {"kind": "business", "amount": {"amount": "5000"}}},
        token=company.token("ceo"),
    )
    refused = await call(gql, company.token("ceo"), "submitAdvance", {"advanceId": advance_id})

    message = (
        "Nobody available may approve this amount: an administrator can name an approver "
        "above the authority matrix."
    )
    assert previewed["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in previewed["errors"]] == [
        (message, "BAD_USER_INPUT")
    ]
    assert refused == {"advance": None, "userErrors": [error("amount", "INVALID", message)]}
    found = await read(gql, company, advance_id)
    assert (found["status"], found["approvalChain"]) == ("draft", [])


async def test_two_approvers_who_delegated_to_each_other_do_not_fill_two_steps(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await submitted(gql, company, "rep10", "3000", "Distributor summit")
    manager_step, head_step, _ = (await read(gql, company, advance_id))["approvalChain"]
    manager = {company.ids[k]: k for k in ("mgr1", "mgr2", "mgr3")}[manager_step["approver"]["id"]]
    today = shanghai_today()
    dates = {"startsOn": today.isoformat(), "endsOn": (today + dt.timedelta(days=1)).isoformat()}
    for delegator, delegate in ((manager, "sales_head"), ("sales_head", manager)):
        done = await call(
            gql,
            company.token(delegator),
            "delegateApprovals",
            {"delegateId": company.ids[delegate], **dates},
            select="ok",
        )
        assert done == {"ok": True, "userErrors": []}

    for_the_manager = await call(
        gql,
        company.token("sales_head"),
        "decideApproval",
        {"stepId": manager_step["id"], "approve": True},
        select="step { status }",
    )
    for_the_head = await call(
        gql,
        company.token(manager),
        "decideApproval",
        {"stepId": head_step["id"], "approve": True},
        select="step { status }",
    )
    by_the_head = await call(
        gql,
        company.token("sales_head"),
        "decideApproval",
        {"stepId": head_step["id"], "approve": True},
        select="step { status }",
    )

    assert for_the_manager == {"step": {"status": "approved"}, "userErrors": []}
    assert for_the_head == {
        "step": None,
        "userErrors": [
            error(
                None,
                "FORBIDDEN",
                "This request already carries an approval by you or by whom you act for.",
            )
        ],
    }
    assert by_the_head == {
        "step": None,
        "userErrors": [
            error(None, "FORBIDDEN", "You have already approved this request at an earlier step.")
        ],
    }
    chain = (await read(gql, company, advance_id))["approvalChain"]
    assert [s["status"] for s in chain] == ["approved", "pending", "pending"]
