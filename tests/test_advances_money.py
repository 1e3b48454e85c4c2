"""Money in the advance ledger is exact: minor units, rounding, rates, plans, reversals.

Sunrise Energy (CNY, Shanghai) with a sales office in Kuwait City (KWD). Finance keeps the
tenant's exchange rates; one sales rep reads Renshi in Japanese.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.advance_fixtures import (
    MATRIX,
    Company,
    add_user,
    approved_and_paid,
    build_company,
    call,
    own_client,
    pk,
    raw_session,
)
from tests.conftest import GraphQLClient
from tests.people_fixtures import mutate

ENTRIES = """query($id: ID!) { advance(id: $id) {
  status outstanding { amount currency formatted }
  entries {
    id kind amount { amount currency } original { amount currency } rate rateDate
    occurredOn reason reverses recordedAt
  }
} }"""
RATES = [
    # One unit of base buys `rate` units of quote, from the date on.
    ("KWD", "CNY", "23.4", "2026-01-01"),
    ("CNY", "JPY", "20.5", "2026-01-01"),
    ("USD", "CNY", "7.1", "2026-01-01"),
    ("USD", "CNY", "7.05", "2026-11-15"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        # The CEO asks for 100,000 below: the finance director, named above the matrix,
        # approves what nobody's level covers when the CEO is the one asking.
        await call(
            gql,
            company.token("admin"),
            "setAuthorityMatrix",
            MATRIX
            | {
                "namedApprovers": [
                    {"role": "finance_director", "positionId": company.ids["fin_mgr_pos"]},
                    {"role": "ceo", "positionId": company.ids["ceo_pos"]},
                ]
            },
            select="ruleCount",
        )
        await add_kuwait_office(gql, company)
        await add_user(gql, company, "kw1", ["employee"])
        await add_user(gql, company, "rep1", ["employee"], locale="ja_JP")
        for key in ("rep2", "rep3", "rep4"):
            await add_user(gql, company, key, ["employee"])
        for base, quote, rate, valid_from in RATES:
            done = await call(
                gql,
                company.token("accountant"),
                "setExchangeRate",
                {"base": base, "quote": quote, "rate": rate, "validFrom": valid_from},
                select="ok",
            )
            assert done == {"ok": True, "userErrors": []}
    return company


async def add_kuwait_office(gql: GraphQLClient, company: Company) -> None:
    admin, ids = company.token("admin"), company.ids

    async def make(name: str, key: str, input_: dict[str, Any], field: str) -> None:
        ids[key] = (await mutate(gql, admin, name, input_, f"{field} {{ id }}"))[field]["id"]

    await make(
        "createBranch",
        "kw",
        {
            "code": "KW",
            "name": "Kuwait City",
            "country": "KW",
            "currency": "KWD",
            "timeZone": "Asia/Kuwait",
            "locale": "ar_KW",
        },
        "branch",
    )
    await make(
        "createOrgUnit",
        "kuwait",
        {
            "name": "Kuwait",
            "kind": "department",
            "branchId": ids["kw"],
            "effectiveDate": "2022-01-01",
            "parentId": ids["company"],
        },
        "orgUnit",
    )
    await make(
        "createPosition",
        "kw_rep_pos",
        {
            "title": "Kuwait Rep",
            "orgUnitId": ids["kuwait"],
            "openedOn": "2022-01-01",
            "jobLevelId": ids["L3"],
            "reportsToId": ids["ceo_pos"],
        },
        "position",
    )
    await make(
        "hireEmployee",
        "kw1",
        {
            "employeeNumber": "KW001",
            "givenName": "Kw",
            "familyName": "Sun",
            "hireDate": "2023-01-01",
            "branchId": ids["kw"],
            "positionId": ids["kw_rep_pos"],
        },
        "employee",
    )


async def ledger(
    gql: GraphQLClient, company: Company, advance_id: str, viewer: str = "accountant"
) -> dict[str, Any]:
    body = await gql.execute(ENTRIES, {"id": advance_id}, token=company.token(viewer))
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["advance"]
    return found


def moves(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each entry as (kind, amount, original amount and currency, rate, rate date)."""
    return [
        (
            e["kind"],
            e["amount"]["amount"],
            (e["original"]["amount"], e["original"]["currency"]) if e["original"] else None,
            e["rate"],
            e["rateDate"],
        )
        for e in found["entries"]
    ]


async def claim(
    gql: GraphQLClient, company: Company, who: str, advance_id: str, lines: list[Any]
) -> Any:
    return await call(
        gql,
        company.token(who),
        "submitExpenseClaim",
        {
            "advanceId": advance_id,
            "lines": [
                {
                    "spentOn": spent_on,
                    "category": "travel",
                    "amount": {"amount": amount, "currency": currency},
                    "receiptReference": f"R-{n}",
                }
                for n, (spent_on, amount, currency) in enumerate(lines)
            ],
        },
        select="advance { status outstanding { amount } }",
    )


async def plan(
    gql: GraphQLClient,
    company: Company,
    advance_id: str,
    instalments: int,
    starts_on: str,
    viewer: str = "accountant",
) -> dict[str, Any]:
    done = await call(
        gql,
        company.token("accountant"),
        "createRepaymentPlan",
        {"advanceId": advance_id, "instalments": instalments, "startsOn": starts_on},
    )
    assert done["userErrors"] == [], done
    body = await gql.execute(
        """query($id: ID!) { advance(id: $id) { repaymentPlans {
             amount { amount } startsOn status
             instalments { seq dueOn amount { amount formatted } deducted }
           } } }""",
        {"id": advance_id},
        token=company.token(viewer),
    )
    assert "errors" not in body, body
    (found,) = body["data"]["advance"]["repaymentPlans"]
    result: dict[str, Any] = found
    return result


async def test_a_plan_of_100000_in_36_instalments_sums_exactly_and_falls_due_month_ends(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "ceo", "100000.00", "Plant site deposit")

    found = await plan(gql, company, advance_id, 36, "2027-01-31")

    instalments = found["instalments"]
    amounts = [Decimal(i["amount"]["amount"]) for i in instalments]
    assert found["amount"] == {"amount": "100000.00"}
    assert found["status"] == "active"
    assert [i["seq"] for i in instalments] == list(range(1, 37))
    # 100,000 / 36 = 2,777.777...: 35 instalments of 2,777.78, the last absorbs the rest.
    assert [i["amount"]["amount"] for i in instalments] == ["2777.78"] * 35 + ["2777.70"]
    assert sum(amounts) == Decimal("100000.00")
    assert [i["dueOn"] for i in instalments[:3]] == ["2027-02-28", "2027-03-31", "2027-04-30"]
    assert instalments[12]["dueOn"] == "2028-02-29"  # a leap year
    assert instalments[-1]["dueOn"] == "2030-01-31"
    assert {i["deducted"] for i in instalments} == {False}


async def test_kuwaiti_dinars_keep_three_decimals_rounded_half_up(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "kw1", "1.2345", "Visa fees")

    claimed = await claim(gql, company, "kw1", advance_id, [("2026-11-02", "1.0005", None)])

    async with raw_session(company) as session:
        stored = (
            await session.execute(
                text(
                    "SELECT a.amount, l.amount FROM advances a"
                    " JOIN expense_claims c ON c.advance_id = a.id"
                    " JOIN expense_claim_lines l ON l.claim_id = c.id WHERE a.id = :id"
                ),
                {"id": pk(advance_id)},
            )
        ).one()
    found = await ledger(gql, company, advance_id)

    assert tuple(stored) == (Decimal("1.235"), Decimal("1.001"))
    assert claimed == {
        "advance": {"status": "partially_settled", "outstanding": {"amount": "0.234"}},
        "userErrors": [],
    }
    assert moves(found) == [
        ("disbursement", "1.235", None, None, None),
        ("expense_settlement", "-1.001", None, None, None),
    ]


async def test_yen_never_carry_decimals_and_read_in_japanese(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(
        gql, company, "rep1", "1000.6", "Osaka trade show", currency="JPY"
    )
    claimed = await claim(gql, company, "rep1", advance_id, [("2026-11-02", "400.4", "JPY")])

    found = await ledger(gql, company, advance_id, viewer="rep1")
    planned = await plan(gql, company, advance_id, 3, "2027-01-31", viewer="rep1")

    assert claimed["userErrors"] == []
    assert moves(found) == [
        ("disbursement", "1001", None, None, None),
        ("expense_settlement", "-400", None, None, None),
    ]
    assert found["outstanding"] == {"amount": "601", "currency": "JPY", "formatted": "￥601"}
    assert planned["amount"] == {"amount": "601"}
    assert [(i["amount"]["amount"], i["amount"]["formatted"]) for i in planned["instalments"]] == [
        ("200", "￥200"),
        ("200", "￥200"),
        ("201", "￥201"),
    ]
    body = await gql.execute(
        "query($id: ID!) { advance(id: $id) { amount { amount currency formatted } } }",
        {"id": advance_id},
        token=company.token("rep1"),
    )
    assert body == {
        "data": {
            "advance": {"amount": {"amount": "1001", "currency": "JPY", "formatted": "￥1,001"}}
        }
    }


async def test_a_dollar_claim_settles_a_yuan_advance_at_the_rate_of_its_day(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep2", "1000", "Client visit, Houston")

    claimed = await claim(
        gql,
        company,
        "rep2",
        advance_id,
        [("2026-11-02", "100.00", "USD"), ("2026-11-20", "20.00", "USD")],
    )
    found = await ledger(gql, company, advance_id)

    assert claimed == {
        "advance": {"status": "partially_settled", "outstanding": {"amount": "149.00"}},
        "userErrors": [],
    }
    # 100 USD at 7.1 (in force from 1 January) and 20 USD at 7.05 (from 15 November).
    assert moves(found) == [
        ("disbursement", "1000.00", None, None, None),
        ("expense_settlement", "-710.00", ("100.00", "USD"), "7.1000000000", "2026-01-01"),
        ("expense_settlement", "-141.00", ("20.00", "USD"), "7.0500000000", "2026-11-15"),
    ]


async def test_spending_beyond_the_advance_is_reimbursed_to_the_employee(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep3", "1000", "Regional meeting")

    claimed = await claim(
        gql,
        company,
        "rep3",
        advance_id,
        [("2026-11-02", "800.00", None), ("2026-11-03", "450.00", None)],
    )
    found = await ledger(gql, company, advance_id)

    assert claimed == {
        "advance": {"status": "settled", "outstanding": {"amount": "0.00"}},
        "userErrors": [],
    }
    assert moves(found) == [
        ("disbursement", "1000.00", None, None, None),
        ("expense_settlement", "-800.00", None, None, None),
        ("expense_settlement", "-450.00", None, None, None),
        ("reimbursement", "250.00", None, None, None),
    ]
    assert found["entries"][-1]["reason"] == "overspending reimbursed"


async def test_a_reversal_restores_the_balance_and_leaves_the_original_entry(
    gql: GraphQLClient, company: Company
) -> None:
    advance_id = await approved_and_paid(gql, company, "rep4", "2000", "Warehouse audit")
    returned = await call(
        gql,
        company.token("accountant"),
        "recordReturn",
        {"advanceId": advance_id, "amount": {"amount": "500"}, "occurredOn": "2026-11-30"},
        select="advance { status outstanding { amount } }",
    )
    before = await ledger(gql, company, advance_id)
    mistaken = before["entries"][1]

    reversed_ = await call(
        gql,
        company.token("accountant"),
        "reverseLedgerEntry",
        {"entryId": mistaken["id"], "reason": "The transfer bounced"},
        select="advance { status outstanding { amount } }",
    )
    after = await ledger(gql, company, advance_id)

    assert returned == {
        "advance": {"status": "partially_settled", "outstanding": {"amount": "1500.00"}},
        "userErrors": [],
    }
    assert reversed_ == {
        "advance": {"status": "disbursed", "outstanding": {"amount": "2000.00"}},
        "userErrors": [],
    }
    assert after["entries"][:2] == before["entries"]
    assert [(e["kind"], e["amount"]["amount"], e["reason"]) for e in after["entries"]] == [
        ("disbursement", "2000.00", None),
        ("return", "-500.00", "bank return"),
        ("reversal", "500.00", "The transfer bounced"),
    ]
    assert after["entries"][2]["reverses"] == mistaken["id"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = 0 WHERE advance_id = :id",
        "DELETE FROM ledger_entries WHERE advance_id = :id",
    ],
)
async def test_the_database_refuses_to_edit_or_delete_ledger_entries(
    gql: GraphQLClient, company: Company, statement: str
) -> None:
    (advance_id,) = [
        a["id"]
        for a in (
            await gql.execute(
                '{ advances(filter: {status: ["disbursed"]}) { nodes { id purpose } } }',
                token=company.token("accountant"),
            )
        )["data"]["advances"]["nodes"]
        if a["purpose"] == "Warehouse audit"
    ]
    before = await ledger(gql, company, advance_id)

    with pytest.raises(DBAPIError, match="ledger entries are append-only"):
        async with raw_session(company) as session:
            await session.execute(text(statement), {"id": pk(advance_id)})

    assert await ledger(gql, company, advance_id) == before
