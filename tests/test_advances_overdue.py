"""Overdue is judged on each branch's local calendar; aging buckets what is overdue.

Sunrise Energy (CNY, Asia/Shanghai) opens an Americas office in Los Angeles (USD). Every
advance of this module is to be settled on a date from 10 March 2027 on, so today none is
overdue; the tests ask about instants and dates after that instead. The API refuses a
settlement date in the past, so these tests need updating once 10 March 2027 has come.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.node import from_global_id
from tests.advance_fixtures import (
    Company,
    approved_and_paid,
    build_company,
    call,
    own_client,
    submitted,
)
from tests.conftest import GraphQLClient
from tests.people_fixtures import mutate

# Advances by key: employee, amount, currency (default: the branch's), settlement date,
# and what was returned before the tests look.
BOOK = {
    "sh_0310": ("rep1", "1000", None, "2027-03-10", None),
    "la_0310": ("la1", "500", None, "2027-03-10", None),
    "rep2": ("rep2", "1000", None, "2027-08-31", None),
    "rep3": ("rep3", "2000", None, "2027-08-30", None),
    "rep4": ("rep4", "3000", None, "2027-07-02", None),
    "rep5": ("rep5", "4000", None, "2027-07-01", "1500"),
    "rep6": ("rep6", "5000", None, "2027-09-30", None),
    "rep7": ("rep7", "600", "USD", "2027-08-15", None),
    "op1": ("op1", "700", None, "2027-09-10", None),
    "op2": ("op2", "800", None, "2027-04-10", "800"),
    "la2": ("la2", "700", None, "2027-04-15", None),
    "la3": ("la3", "300", None, "2027-09-20", None),
}


@pytest.fixture
def gql(gql: GraphQLClient) -> GraphQLClient:
    """These tests read the API's messages in English, as from a browser set to English
    (the company itself reads Chinese)."""
    return gql.speaking("en")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        await add_americas_office(gql, company)
        for valid_from, rate in (("2026-01-01", "7.1"), ("2027-09-01", "7.2")):
            done = await call(
                gql,
                company.token("accountant"),
                "setExchangeRate",
                {"base": "USD", "quote": "CNY", "rate": rate, "validFrom": valid_from},
                select="ok",
            )
            assert done == {"ok": True, "userErrors": []}
        paid = await asyncio.gather(
            *(
                approved_and_paid(
                    gql, company, who, amount, f"Advance {key}", currency=currency, due=LATER
                )
                for key, (who, amount, currency, _, _) in BOOK.items()
            )
        )
        company.ids |= {
            f"advance:{key}": advance_id for key, advance_id in zip(BOOK, paid, strict=True)
        }
        # The scenario's settlement dates are fixed; requests refuse dates already past, so
        # they are requested far ahead and set to the scenario's dates here, whatever today.
        for key, (*_, due, _) in BOOK.items():
            await settle_by(engine, company, company.ids[f"advance:{key}"], due)
        for key, (*_, returned) in BOOK.items():
            if returned:
                done = await call(
                    gql,
                    company.token("accountant"),
                    "recordReturn",
                    {
                        "advanceId": company.ids[f"advance:{key}"],
                        "amount": {"amount": returned},
                        "occurredOn": "2026-12-01",
                    },
                )
                assert done["userErrors"] == [], done
        # Requested long overdue but never paid out: nothing is owed.
        company.ids["advance:unpaid"] = await submitted(
            gql, company, "rep8", "900", "Advance unpaid", due=LATER
        )
        await settle_by(engine, company, company.ids["advance:unpaid"], "2027-05-01")
    return company


LATER = "2099-12-31"


async def settle_by(engine: AsyncEngine, company: Company, advance_id: str, due: str) -> None:
    """Set an advance's expected settlement date (test set-up, straight in its schema)."""
    schema = company.tenant.tenant.schema
    async with engine.begin() as conn:
        await conn.execute(
            text(f'UPDATE "{schema}".advances SET expected_settlement_date = :due WHERE id = :id'),
            {"due": dt.date.fromisoformat(due), "id": from_global_id(advance_id)[2]},
        )


async def add_americas_office(gql: GraphQLClient, company: Company) -> None:
    hr, ids = company.token("hr"), company.ids

    async def make(name: str, key: str, input_: dict[str, Any], field: str) -> None:
        ids[key] = (await mutate(gql, hr, name, input_, f"{field} {{ id }}"))[field]["id"]

    await make(
        "createBranch",
        "la",
        {
            "code": "LA",
            "name": "Los Angeles",
            "country": "US",
            "currency": "USD",
            "timeZone": "America/Los_Angeles",
            "locale": "en_US",
        },
        "branch",
    )
    await make(
        "createOrgUnit",
        "americas",
        {
            "name": "Americas",
            "kind": "department",
            "branchId": ids["la"],
            "effectiveDate": "2022-01-01",
            "parentId": ids["company"],
        },
        "orgUnit",
    )
    await make(
        "createPosition",
        "americas_pos",
        {
            "title": "Americas Rep",
            "orgUnitId": ids["americas"],
            "openedOn": "2022-01-01",
            "jobLevelId": ids["L3"],
            "reportsToId": ids["ceo_pos"],
            "headcount": 3,
        },
        "position",
    )
    for n in (1, 2, 3):
        await make(
            "hireEmployee",
            f"la{n}",
            {
                "employeeNumber": f"LA{n:03}",
                "givenName": f"La{n}",
                "familyName": "Sun",
                "hireDate": "2023-01-01",
                "branchId": ids["la"],
                "positionId": ids["americas_pos"],
            },
            "employee",
        )


OVERDUE_AT = """query($sh: ID!, $la: ID!) {
  sh: advance(id: $sh) { ...instants }
  la: advance(id: $la) { ...instants }
}
fragment instants on Advance {
  now: overdue
  shanghaiLastSecond: overdue(at: "2027-03-10T15:59:59Z")
  shanghaiHalfPastMidnight: overdue(at: "2027-03-10T16:30:00Z")
  losAngelesLastSecond: overdue(at: "2027-03-11T07:59:59Z")
  losAngelesMidnight: overdue(at: "2027-03-11T08:00:00Z")
}"""


async def test_an_advance_is_overdue_from_midnight_on_its_branchs_calendar(
    gql: GraphQLClient, company: Company
) -> None:
    body = await gql.execute(
        OVERDUE_AT,
        {"sh": company.ids["advance:sh_0310"], "la": company.ids["advance:la_0310"]},
        token=company.token("accountant"),
    )

    # Both are due on 10 March 2027. 16:30 UTC is 00:30 on the 11th in Shanghai but still
    # 08:30 on the 10th in Los Angeles, whose 11th starts at 08:00 UTC.
    assert body == {
        "data": {
            "sh": {
                "now": False,
                "shanghaiLastSecond": False,
                "shanghaiHalfPastMidnight": True,
                "losAngelesLastSecond": True,
                "losAngelesMidnight": True,
            },
            "la": {
                "now": False,
                "shanghaiLastSecond": False,
                "shanghaiHalfPastMidnight": False,
                "losAngelesLastSecond": False,
                "losAngelesMidnight": True,
            },
        }
    }


async def test_the_overdue_filter_judges_each_branch_at_the_same_instant(
    gql: GraphQLClient, company: Company
) -> None:
    query = """query($overdue: Boolean!, $branch: ID!) {
      advances(first: 100, filter: {
        overdue: $overdue, overdueAt: "2027-03-10T16:30:00Z", branchId: $branch
      }) { nodes { purpose } }
    }"""

    found = {}
    for branch in ("sh", "la"):
        for overdue in (True, False):
            body = await gql.execute(
                query,
                {"overdue": overdue, "branch": company.ids[branch]},
                token=company.token("accountant"),
            )
            assert "errors" not in body, body
            nodes = body["data"]["advances"]["nodes"]
            found[branch, overdue] = sorted(n["purpose"] for n in nodes)

    assert found == {
        ("sh", True): ["Advance sh_0310"],
        # Not overdue: money not yet due, and advances with nothing out (op2 is settled,
        # the unpaid one was never paid out).
        ("sh", False): [
            "Advance op1",
            "Advance op2",
            "Advance rep2",
            "Advance rep3",
            "Advance rep4",
            "Advance rep5",
            "Advance rep6",
            "Advance rep7",
            "Advance unpaid",
        ],
        # Due the same day, but it is still the 10th in Los Angeles.
        ("la", True): [],
        ("la", False): ["Advance la2", "Advance la3", "Advance la_0310"],
    }


async def test_an_instant_without_its_utc_offset_is_refused(
    gql: GraphQLClient, company: Company
) -> None:
    body = await gql.execute(
        'query($id: ID!) { advance(id: $id) { overdue(at: "2027-03-10T16:30:00") } }',
        {"id": company.ids["advance:sh_0310"]},
        token=company.token("accountant"),
    )

    assert body["data"] == {"advance": None}
    assert body["errors"][0]["message"] == "Give the time with its UTC offset."
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


AGING = """query($asOf: Date) { advanceAging(asOf: $asOf) {
  group orgUnit { name } branch { code } bucket
  amount { amount currency } converted { amount currency } count
} }"""


async def test_aging_buckets_overdue_money_per_unit_and_branch_in_both_currencies(
    gql: GraphQLClient, company: Company
) -> None:
    today = await gql.execute(AGING, token=company.token("accountant"))
    body = await gql.execute(AGING, {"asOf": "2027-09-30"}, token=company.token("accountant"))

    assert today == {"data": {"advanceAging": []}}
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in body["data"]["advanceAging"]:
        name = row["orgUnit"]["name"] if row["orgUnit"] else row["branch"]["code"]
        groups.setdefault((row["group"], name), []).append(
            (
                row["bucket"],
                row["amount"]["amount"],
                row["amount"]["currency"],
                row["converted"]["amount"],
                row["count"],
            )
        )
    assert {row["converted"]["currency"] for row in body["data"]["advanceAging"]} == {"CNY"}
    # On 30 September 2027: 30 days overdue is 0-30, 31 is 31-60, 90 is 61-90, 91 is 90+.
    # Dollars convert at 7.2, the rate in force from 1 September 2027.
    assert groups == {
        ("branch", "SH"): [
            ("0-30", "1700.00", "CNY", "1700.00", 2),  # rep2 1,000 (30 days), op1 700 (20)
            ("31-60", "2000.00", "CNY", "2000.00", 1),  # rep3 (31 days)
            ("31-60", "600.00", "USD", "4320.00", 1),  # rep7 (46 days)
            ("61-90", "3000.00", "CNY", "3000.00", 1),  # rep4 (90 days)
            ("90+", "3500.00", "CNY", "3500.00", 2),  # rep1 1,000 (204), rep5 2,500 of 4,000
        ],
        ("branch", "LA"): [
            ("0-30", "300.00", "USD", "2160.00", 1),  # la3 (10 days)
            ("90+", "1200.00", "USD", "8640.00", 2),  # la1 500 (204), la2 700 (168)
        ],
        ("org_unit", "Sales"): [
            ("0-30", "1000.00", "CNY", "1000.00", 1),
            ("31-60", "2000.00", "CNY", "2000.00", 1),
            ("31-60", "600.00", "USD", "4320.00", 1),
            ("61-90", "3000.00", "CNY", "3000.00", 1),
            ("90+", "3500.00", "CNY", "3500.00", 2),
        ],
        ("org_unit", "Ops"): [("0-30", "700.00", "CNY", "700.00", 1)],
        ("org_unit", "Americas"): [
            ("0-30", "300.00", "USD", "2160.00", 1),
            ("90+", "1200.00", "USD", "8640.00", 2),
        ],
    }
