"""Department patterns through GraphQL: the big outlier is flagged, the tiny team is not.

Northwind (CNY, Asia/Shanghai) has 200 people with an advance out on 30 June 2026, the
day the tests read it as of; 20 of them (10 %) are overdue. Field Sales has 40 of them
and 12 overdue (30 %, three times the tenant's rate); the three-person Night Shift team,
under Operations, has one. Twelve months of settlements, write-offs and leavers lead up
to that day, and a few events come after it (settlements, a write-off, a transfer, a
leaver, a new advance, a new exchange rate), which the 30 June view must ignore and a
30 November view must count.

People and money are written in bulk inside the tenant's own session (the approval
workflow has tests of its own); what is under test is read through GraphQL only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from math import comb
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from scipy import stats
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.advances.models import Advance, ExchangeRate, LedgerEntry
from domain.identity.actions import create_user
from domain.imports.bulk import DraftEvent, derive_periods
from domain.people.models import Employee, EmployeePeriod, EmploymentEvent
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.advance_fixtures import cheap_password_hashing, own_client, pk
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant
from tests.people_fixtures import mutate

AS_OF = "2026-06-30"
LATER = "2026-11-30"
HIRED = dt.date(2024, 1, 1)
FAR = dt.date(2027, 12, 31)  # not due before either view
DUE = dt.date(2026, 3, 31)  # overdue on both views unless settled

QUERY = """
query($asOf: Date) {
  riskPatterns(asOf: $asOf) {
    asOf windowStart minRatio alpha minCases
    tenant { ...figures }
    units {
      orgUnit { name }
      metrics { ...figures }
      flagged flaggedMetrics
      comparisons {
        metric test unitValue restValue ratio difference pValue adjustedPValue flagged
      }
    }
  }
}
fragment figures on PatternMetrics {
  headcount borrowers overdueBorrowers overdueRate settledAdvances averageSettlementDays
  closedAdvances writtenOffAdvances writeOffRate writeOffAmount { amount currency }
  leavers averageHeadcount attritionRate
}
"""


@dataclasses.dataclass
class Built:
    tenant: TenantWithAdmin
    tokens: dict[str, str]


class Book:
    """Rows to write: people with their events, advances with their ledger entries."""

    def __init__(self, branch_id: uuid.UUID) -> None:
        self.branch_id = branch_id
        self.events: dict[uuid.UUID, list[DraftEvent]] = {}
        self.employees: list[dict[str, Any]] = []
        self.advances: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []

    def hire(self, number: str, unit: uuid.UUID) -> uuid.UUID:
        employee_id = uuid.uuid4()
        self.employees.append(
            {
                "id": employee_id,
                "employee_number": number,
                "given_name": number,
                "family_name": "Northwind",
                "hire_date": HIRED,
                "search_text": number.lower(),
            }
        )
        self.events[employee_id] = [
            DraftEvent(employee_id, "hire", HIRED, branch_id=self.branch_id, org_unit_id=unit)
        ]
        return employee_id

    def transfer(self, employee_id: uuid.UUID, on: dt.date, unit: uuid.UUID) -> None:
        self.events[employee_id].append(DraftEvent(employee_id, "transfer", on, org_unit_id=unit))

    def terminate(self, employee_id: uuid.UUID, on: dt.date) -> None:
        self.events[employee_id].append(
            DraftEvent(employee_id, "termination", on, status="terminated")
        )

    def advance(
        self,
        employee_id: uuid.UUID,
        paid_on: dt.date,
        due: dt.date,
        *moves: tuple[str, str, dt.date],
        amount: str = "1000",
        currency: str = "CNY",
    ) -> None:
        """An advance paid out on `paid_on`, then each (kind, amount owed less, day)."""
        advance_id = uuid.uuid4()
        owed = Decimal(amount)
        for _kind, less, _day in moves:
            owed -= Decimal(less)
        closing = moves[-1][0] if moves else None
        status = {None: "disbursed", "write_off": "written_off"}.get(closing, "settled")
        if owed > 0 and moves:
            status = "partially_settled"
        self.advances.append(
            {
                "id": advance_id,
                "employee_id": employee_id,
                "branch_id": self.branch_id,
                "kind": "business",
                "amount": Decimal(amount),
                "currency": currency,
                "purpose": "Field trip",
                "expected_settlement_date": due,
                "status": status,
                "disbursed_at": dt.datetime.combine(paid_on, dt.time(2), dt.UTC),
            }
        )
        rows = [("disbursement", Decimal(amount), paid_on)]
        rows += [(kind, -Decimal(less), day) for kind, less, day in moves]
        for kind, value, day in rows:
            self.entries.append(
                {
                    "id": uuid.uuid4(),
                    "advance_id": advance_id,
                    "kind": kind,
                    "amount": value,
                    "currency": currency,
                    "occurred_on": day,
                }
            )

    async def write(self) -> None:
        async with tenant_session() as session:
            await session.execute(insert(Employee), self.employees)
            events = [e for found in self.events.values() for e in found]
            await session.execute(insert(EmploymentEvent), [e.values(None) for e in events])
            periods = [
                row
                for employee_id, found in self.events.items()
                for row in derive_periods(employee_id, found, {})
            ]
            await session.execute(insert(EmployeePeriod), periods)
            await session.execute(insert(Advance), self.advances)
            await session.execute(insert(LedgerEntry), self.entries)


async def build_tenant(
    engine: AsyncEngine,
    gql: GraphQLClient,
    units: list[tuple[str, str, str, str | None]],
    fill: Callable[[Book, dict[str, uuid.UUID]], None],
) -> Built:
    """A CNY tenant with the org `units` (key, name, kind, parent key), the people and
    money that `fill` books, a USD rate, and a signed-in user per role."""
    tenant = await make_tenant(engine, currency="CNY", time_zone="Asia/Shanghai", locale="en_US")
    admin = await gql.token(tenant.tenant.slug, tenant.admin_email)
    ids: dict[str, str] = {}

    async def make(name: str, key: str, input_: dict[str, Any], field: str) -> None:
        ids[key] = (await mutate(gql, admin, name, input_, f"{field} {{ id }}"))[field]["id"]

    await make(
        "createBranch",
        "sh",
        {
            "code": "SH",
            "name": "Shanghai",
            "country": "CN",
            "currency": "CNY",
            "timeZone": "Asia/Shanghai",
            "locale": "zh_CN",
        },
        "branch",
    )
    for key, name, kind, parent in units:
        await make(
            "createOrgUnit",
            key,
            {
                "name": name,
                "kind": kind,
                "branchId": ids["sh"],
                "effectiveDate": HIRED.isoformat(),
                **({"parentId": ids[parent]} if parent else {}),
            },
            "orgUnit",
        )
    book = Book(pk(ids["sh"]))
    fill(book, {key: pk(ids[key]) for key, *_ in units})

    with use_tenant(tenant.tenant):
        await book.write()
        async with tenant_session() as session:
            await session.execute(
                insert(ExchangeRate),
                [
                    {
                        "base_currency": "USD",
                        "quote_currency": "CNY",
                        "rate": Decimal(rate),
                        "valid_from": day,
                    }
                    for rate, day in (("7.1", dt.date(2026, 1, 1)), ("7.3", dt.date(2026, 9, 1)))
                ],
            )
        with cheap_password_hashing():
            for role in ("hr", "finance", "manager", "employee", "auditor"):
                await create_user(
                    tenant.tenant,
                    email=f"{role}@northwind.test",
                    display_name=role,
                    password=PASSWORD,
                    roles=[role],
                )
    tokens = {"admin": admin}
    with cheap_password_hashing():
        for role in ("hr", "finance", "manager", "employee", "auditor"):
            tokens[role] = await gql.token(tenant.tenant.slug, f"{role}@northwind.test")
    return Built(tenant=tenant, tokens=tokens)


NORTHWIND_UNITS = [
    ("company", "Northwind", "company", None),
    ("sales", "Field Sales", "department", "company"),
    ("ops", "Operations", "department", "company"),
    ("night", "Night Shift", "team", "ops"),
    ("eng", "Engineering", "department", "company"),
]


def book_northwind(book: Book, unit: dict[str, uuid.UUID]) -> None:
    sales = [book.hire(f"FS{n:02}", unit["sales"]) for n in range(40)]
    ops = [book.hire(f"OP{n:02}", unit["ops"]) for n in range(17)]
    night = [book.hire(f"NS{n}", unit["night"]) for n in range(3)]
    eng = [book.hire(f"EN{n:03}", unit["eng"]) for n in range(140)]

    # On 30 June everyone above holds one advance of 1,000 CNY, paid in January; the
    # overdue ones were due on 31 March: 12 in Field Sales, 1 in Night Shift, 1 in
    # Operations itself and 6 in Engineering. After 30 June four of the overdue ones in
    # Field Sales are returned and one in Engineering is written off.
    paid = dt.date(2026, 1, 10)
    late = set(sales[:12]) | {night[0], ops[0]} | set(eng[:6])
    after: dict[uuid.UUID, tuple[tuple[str, str, dt.date], ...]] = {
        person: (("return", "1000", dt.date(2026, 8, 15)),) for person in sales[:4]
    }
    after[eng[5]] = (("write_off", "1000", dt.date(2026, 9, 15)),)
    for person in sales + ops + night + eng:
        book.advance(person, paid, DUE if person in late else FAR, *after.get(person, ()))

    # Settled in the twelve months: lags of 30-60 days in Field Sales, 10-25 elsewhere.
    start = dt.date(2025, 9, 1)
    for person, lag in [
        *zip(sales[20:24], (30, 40, 50, 60), strict=True),
        *zip(eng[10:16], (10, 12, 14, 16, 18, 20), strict=True),
        *zip(ops[5:7], (15, 25), strict=True),
    ]:
        book.advance(person, start, FAR, ("return", "1000", start + dt.timedelta(days=lag)))
    # Settled before the window: no part of the lag.
    book.advance(eng[30], dt.date(2025, 1, 20), FAR, ("return", "1000", dt.date(2025, 5, 1)))
    # Written off in the window: 100 USD in Field Sales, 1,500 CNY after a return in
    # Engineering.
    book.advance(
        sales[24],
        dt.date(2025, 10, 1),
        FAR,
        ("write_off", "100", dt.date(2026, 2, 1)),
        amount="100",
        currency="USD",
    )
    book.advance(
        eng[20],
        dt.date(2025, 8, 1),
        FAR,
        ("return", "500", dt.date(2025, 9, 1)),
        ("write_off", "1500", dt.date(2026, 3, 1)),
        amount="2000",
    )

    # Leavers in the twelve months: three in Engineering on 1 January, one in Field Sales
    # on 1 April.
    for n in range(3):
        book.terminate(book.hire(f"EL{n}", unit["eng"]), dt.date(2026, 1, 1))
    book.terminate(book.hire("SL0", unit["sales"]), dt.date(2026, 4, 1))

    # Also after 30 June: an engineer moves to Field Sales, another leaves, and a Night
    # Shift worker takes an advance that falls overdue.
    book.transfer(eng[100], dt.date(2026, 8, 1), unit["sales"])
    book.terminate(book.hire("EL3", unit["eng"]), dt.date(2026, 10, 1))
    book.advance(night[1], dt.date(2026, 9, 1), dt.date(2026, 10, 1))


SOUTHWIND_UNITS = [
    ("company", "Southwind", "company", None),
    ("sales", "Field Sales", "department", "company"),
    ("depot", "Depot", "department", "company"),
]


def book_southwind(book: Book, unit: dict[str, uuid.UUID]) -> None:
    """Another tenant: ten people in its Field Sales, all overdue, and a USD write-off."""
    for n in range(10):
        book.advance(book.hire(f"FS{n:02}", unit["sales"]), dt.date(2026, 1, 10), DUE)
        book.advance(book.hire(f"DP{n:02}", unit["depot"]), dt.date(2026, 1, 10), FAR)
    book.advance(
        book.hire("DP99", unit["depot"]),
        dt.date(2025, 10, 1),
        FAR,
        ("write_off", "50", dt.date(2026, 2, 1)),
        amount="50",
        currency="USD",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def northwind(engine: AsyncEngine, app: Any) -> Built:
    async with own_client(app) as gql:
        return await build_tenant(engine, gql, NORTHWIND_UNITS, book_northwind)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def southwind(engine: AsyncEngine, app: Any) -> Built:
    async with own_client(app) as gql:
        return await build_tenant(engine, gql, SOUTHWIND_UNITS, book_southwind)


async def patterns(gql: GraphQLClient, token: str, as_of: str | None) -> dict[str, Any]:
    body = await gql.execute(QUERY, {"asOf": as_of}, token=token)
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["riskPatterns"]
    return found


def by_name(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["orgUnit"]["name"]: u for u in found["units"]}


def comparison(unit: dict[str, Any], metric: str) -> dict[str, Any]:
    (found,) = [c for c in unit["comparisons"] if c["metric"] == metric]
    return found


def hypergeometric_tail(hits: int, size: int, all_hits: int, population: int) -> float:
    """P(X >= hits) for X the hits among `size` drawn from `population` holding `all_hits`:
    the one-sided p-value of Fisher's exact test, counted by hand."""
    favourable = sum(
        comb(all_hits, k) * comb(population - all_hits, size - k)
        for k in range(hits, min(size, all_hits) + 1)
    )
    return favourable / comb(population, size)


async def test_the_big_outlier_is_flagged_and_the_tiny_team_is_not(
    gql: GraphQLClient, northwind: Built
) -> None:
    # Given Northwind as of 30 June 2026, when HR asks for its patterns
    found = await patterns(gql, northwind.tokens["admin"], AS_OF)
    units = by_name(found)

    # then the flagged unit comes first, then the others by name, the company's too
    assert [u["orgUnit"]["name"] for u in found["units"]] == [
        "Field Sales",
        "Engineering",
        "Night Shift",
        "Northwind",
        "Operations",
    ]
    assert (found["asOf"], found["windowStart"]) == (AS_OF, "2025-07-01")
    assert (found["minRatio"], found["alpha"], found["minCases"]) == (1.5, 0.05, 3)

    # Field Sales: 12 of its 40 borrowers overdue (30 %, three times the tenant's 10 %)
    # against 8 of the other 160 (5 %): six times the rest, far beyond chance.
    sales = units["Field Sales"]
    assert sales["metrics"]["overdueRate"] == 0.3
    assert found["tenant"]["overdueRate"] == 0.1
    overdue = comparison(sales, "OVERDUE_RATE")
    p_sales = hypergeometric_tail(12, 40, 20, 200)
    p_night = hypergeometric_tail(1, 3, 20, 200)
    assert overdue == {
        "metric": "OVERDUE_RATE",
        "test": "fisher_exact",
        "unitValue": 0.3,
        "restValue": 0.05,
        "ratio": 6.0,
        "difference": 0.25,
        "pValue": pytest.approx(p_sales, rel=1e-9),
        # Benjamini-Hochberg over the four units tested (the company has no "rest"):
        # the smallest of four p-values is multiplied by four.
        "adjustedPValue": pytest.approx(4 * p_sales, rel=1e-9),
        "flagged": True,
    }
    assert round(p_sales, 10) == 0.0000346776
    # Its settlements also take longer: 45 days on average against 16.25.
    lag = comparison(sales, "SETTLEMENT_LAG")
    welch = stats.ttest_ind(
        [30, 40, 50, 60], [10, 12, 14, 16, 18, 20, 15, 25], equal_var=False, alternative="greater"
    )
    assert (lag["test"], lag["unitValue"], lag["restValue"]) == ("welch_t", 45.0, 16.25)
    assert lag["ratio"] == 45 / 16.25
    assert lag["pValue"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert lag["flagged"] is True
    assert sales["flaggedMetrics"] == ["OVERDUE_RATE", "SETTLEMENT_LAG"]

    # Night Shift: 1 of 3 overdue is 3.5 times the rest (19 of 197), but three people
    # prove nothing: p = 0.27, adjusted 0.54, and one case is below the three needed.
    night = units["Night Shift"]
    assert night["metrics"]["headcount"] == 3
    assert night["metrics"]["overdueBorrowers"] == 1
    assert comparison(night, "OVERDUE_RATE") == {
        "metric": "OVERDUE_RATE",
        "test": "fisher_exact",
        "unitValue": 1 / 3,
        "restValue": 19 / 197,
        "ratio": 197 / 57,
        "difference": pytest.approx(1 / 3 - 19 / 197, rel=1e-12),
        "pValue": pytest.approx(p_night, rel=1e-9),
        "adjustedPValue": pytest.approx(2 * p_night, rel=1e-9),
        "flagged": False,
    }
    assert p_night == pytest.approx(1 - comb(180, 3) / comb(200, 3), rel=1e-12)
    assert round(p_night, 4) == 0.2722
    assert night["flagged"] is False
    for name in ("Engineering", "Night Shift", "Northwind", "Operations"):
        assert units[name]["flaggedMetrics"] == [], name
    assert units["Northwind"]["comparisons"] == []


async def test_the_figures_are_exact_as_of_the_day(gql: GraphQLClient, northwind: Built) -> None:
    # Given the twelve months up to 30 June 2026 (365 days)
    found = await patterns(gql, northwind.tokens["hr"], AS_OF)

    # then Field Sales counts its own people and money, and a Field Sales leaver who
    # worked 274 of the 365 days
    assert by_name(found)["Field Sales"]["metrics"] == {
        "headcount": 40,
        "borrowers": 40,
        "overdueBorrowers": 12,
        "overdueRate": 0.3,
        "settledAdvances": 4,
        "averageSettlementDays": 45.0,
        "closedAdvances": 5,
        "writtenOffAdvances": 1,
        "writeOffRate": 0.2,
        "writeOffAmount": {"amount": "710.00", "currency": "CNY"},  # 100 USD at 7.1
        "leavers": 1,
        "averageHeadcount": (40 * 365 + 274) / 365,
        "attritionRate": 365 / (40 * 365 + 274),
    }
    # and Operations includes its Night Shift team
    operations = by_name(found)["Operations"]["metrics"]
    assert (operations["headcount"], operations["borrowers"], operations["overdueBorrowers"]) == (
        20,
        20,
        2,
    )
    # and the tenant adds everyone up: 201 people (one leaves only in October), twelve
    # settlements averaging 310 / 12 days (not the one settled in May 2025), 1,500 CNY
    # and 100 USD written off, four leavers.
    person_days = 40 * 365 + 274 + 17 * 365 + 3 * 365 + 141 * 365 + 3 * 184
    assert found["tenant"] == {
        "headcount": 201,
        "borrowers": 200,
        "overdueBorrowers": 20,
        "overdueRate": 0.1,
        "settledAdvances": 12,
        "averageSettlementDays": 310 / 12,
        "closedAdvances": 14,
        "writtenOffAdvances": 2,
        "writeOffRate": 2 / 14,
        "writeOffAmount": {"amount": "2210.00", "currency": "CNY"},
        "leavers": 4,
        "averageHeadcount": person_days / 365,
        "attritionRate": 4 * 365 / person_days,
    }


async def test_a_past_date_ignores_what_happened_after_it(
    gql: GraphQLClient, northwind: Built
) -> None:
    # Given the events after 30 June (returns, a write-off, a transfer, a leaver, a new
    # advance, a new rate), when the same tenant is read as of 30 November
    later = await patterns(gql, northwind.tokens["admin"], LATER)
    earlier = await patterns(gql, northwind.tokens["admin"], AS_OF)

    # then they count there
    sales = by_name(later)["Field Sales"]["metrics"]
    assert (sales["headcount"], sales["borrowers"], sales["overdueBorrowers"]) == (41, 37, 8)
    # (the four returned on 15 August were paid on 10 January: 217 days each)
    assert (sales["settledAdvances"], sales["averageSettlementDays"]) == (4, 217.0)
    assert sales["writeOffAmount"] == {"amount": "730.00", "currency": "CNY"}  # at 7.3
    assert (later["tenant"]["headcount"], later["tenant"]["leavers"]) == (200, 5)
    assert later["tenant"]["writeOffAmount"] == {"amount": "3230.00", "currency": "CNY"}
    # and two of Night Shift's three are overdue now: significant, yet two cases are
    # fewer than the three a flag needs
    night = comparison(by_name(later)["Night Shift"], "OVERDUE_RATE")
    assert (night["unitValue"], night["adjustedPValue"] < 0.05, night["flagged"]) == (
        2 / 3,
        True,
        False,
    )

    # and none of them counts as of 30 June
    assert by_name(earlier)["Field Sales"]["metrics"]["overdueBorrowers"] == 12
    assert by_name(earlier)["Field Sales"]["metrics"]["headcount"] == 40
    assert by_name(earlier)["Night Shift"]["metrics"]["overdueBorrowers"] == 1
    assert earlier["tenant"]["writeOffAmount"] == {"amount": "2210.00", "currency": "CNY"}
    assert (earlier["tenant"]["headcount"], earlier["tenant"]["leavers"]) == (201, 4)


@pytest.mark.parametrize("role", ["employee", "manager", "finance", "auditor"])
async def test_only_admin_and_hr_see_patterns(
    gql: GraphQLClient, northwind: Built, role: str
) -> None:
    body = await gql.execute(QUERY, {"asOf": AS_OF}, token=northwind.tokens[role])

    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_signed_out_callers_are_asked_to_sign_in(
    gql: GraphQLClient, northwind: Built
) -> None:
    body = await gql.execute(QUERY, {"asOf": AS_OF}, tenant=northwind.tenant.tenant.slug)

    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_a_future_date_is_refused(gql: GraphQLClient, northwind: Built) -> None:
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)  # ahead everywhere

    body = await gql.execute(QUERY, {"asOf": tomorrow.isoformat()}, token=northwind.tokens["hr"])

    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == "The as-of date cannot be in the future."


async def test_another_tenants_data_never_shows(
    gql: GraphQLClient, northwind: Built, southwind: Built
) -> None:
    # Given two tenants, each with a Field Sales
    north = await patterns(gql, northwind.tokens["admin"], AS_OF)
    south = await patterns(gql, southwind.tokens["admin"], AS_OF)

    # then each sees only its own units and people
    assert sorted(by_name(north)) == [
        "Engineering",
        "Field Sales",
        "Night Shift",
        "Northwind",
        "Operations",
    ]
    assert sorted(by_name(south)) == ["Depot", "Field Sales", "Southwind"]
    assert (north["tenant"]["headcount"], north["tenant"]["overdueBorrowers"]) == (201, 20)
    assert (south["tenant"]["headcount"], south["tenant"]["overdueBorrowers"]) == (21, 10)
    assert by_name(south)["Field Sales"]["metrics"]["overdueRate"] == 1.0
    assert south["tenant"]["writeOffAmount"] == {"amount": "355.00", "currency": "CNY"}


async def test_the_cost_does_not_grow_with_the_number_of_units(
    engine: AsyncEngine, gql: GraphQLClient, northwind: Built, southwind: Built
) -> None:
    # Given five units in one tenant and three in the other, when each is read
    north = await statements_for(engine, gql, northwind.tokens["admin"])
    south = await statements_for(engine, gql, southwind.tokens["admin"])

    # then both cost the same 13 statements: the viewer (2), the patterns (the search
    # path, the unit tree, three counts, the USD rate looked up both ways) and the units'
    # names and kinds (two loader batches of 2)
    assert north == south == 13


async def statements_for(engine: AsyncEngine, gql: GraphQLClient, token: str) -> int:
    await patterns(gql, token, AS_OF)  # warm the tenant registry cache
    executed: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await patterns(gql, token, AS_OF)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    return len(executed)


async def test_without_a_date_each_branch_is_read_on_its_own_today(
    gql: GraphQLClient, northwind: Built
) -> None:
    found = await patterns(gql, northwind.tokens["admin"], None)

    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert found["asOf"] == today.isoformat()
    # The transfer of 1 August 2026 has happened on every day this test can run.
    assert by_name(found)["Field Sales"]["metrics"]["headcount"] == 41


async def test_a_tenant_without_people_has_no_patterns(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)

    found = await patterns(gql, token, AS_OF)

    assert found["units"] == []
    assert found["tenant"] == {
        "headcount": 0,
        "borrowers": 0,
        "overdueBorrowers": 0,
        "overdueRate": None,
        "settledAdvances": 0,
        "averageSettlementDays": None,
        "closedAdvances": 0,
        "writtenOffAdvances": 0,
        "writeOffRate": None,
        "writeOffAmount": {"amount": "0.00", "currency": "USD"},
        "leavers": 0,
        "averageHeadcount": 0.0,
        "attritionRate": None,
    }
