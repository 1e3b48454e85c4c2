"""`renshi import oracle-hr` on Oracle's sample HR schema (shared data, pinned by hash)."""

from __future__ import annotations

import hashlib
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import GraphQLClient, make_tenant, shared_data
from tests.import_support import all_employees, employee_by_number, renshi_import

EMPLOYEES_SHA256 = "5176f52a2b8b08a1b101b09ccfb3c4f345721cd159978dcf325e4cfe4724296c"
FIELDS = """employeeNumber status branch { code country currency timeZone parent { code } }
  orgUnit { name } position { title } jobLevel { code } manager { employeeNumber }"""


def _depths(people: list[dict]) -> dict[str, int]:
    manager = {p["employeeNumber"]: (p["manager"] or {}).get("employeeNumber") for p in people}
    depths: dict[str, int] = {}
    for number in manager:
        depth, boss = 0, manager[number]
        while boss is not None:
            depth, boss = depth + 1, manager[boss]
        depths[number] = depth
    return depths


async def test_oracle_hr_becomes_an_organisation_of_107_under_one_root(
    gql: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    directory = shared_data("oracle_hr")
    digest = hashlib.sha256((directory / "employees.csv").read_bytes()).hexdigest()
    assert digest == EMPLOYEES_SHA256
    tenant = await make_tenant(engine)
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)

    result = renshi_import(database_url, "oracle-hr", directory, "--tenant", tenant.tenant.slug)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "oracle_hr: 211 rows read.",
        "Created: 37 branches, 107 employees, 19 job levels, 29 org units, 51 positions.",
        "Changed: 0.",
        "Unchanged: 0.",
        "11 countries have no location and became no branch: AR, BE, DK, EG, FR, IL, KW, ML,"
        " NG, ZM, ZW.",
        'Employee 178 (Kimberely Grant) has no department: placed in the unit "No department",'
        " with no branch.",
    ]
    people = await all_employees(gql, token, fields=FIELDS)
    depths = _depths(people)
    assert len(people) == 107
    assert [n for n, d in depths.items() if d == 0] == ["100"]
    assert Counter(depths.values()) == {0: 1, 1: 14, 2: 82, 3: 10}
    countries = Counter(p["branch"]["country"] for p in people if p["branch"])
    assert countries == {"US": 68, "GB": 35, "CA": 2, "DE": 1}
    grant = next(p for p in people if p["employeeNumber"] == "178")
    assert grant == {
        "employeeNumber": "178",
        "status": "ACTIVE",
        "branch": None,
        "orgUnit": {"name": "No department"},
        "position": {"title": "Sales Representative"},
        "jobLevel": {"code": "SA_REP"},
        "manager": {"employeeNumber": "149"},
    }
    king = next(p for p in people if p["employeeNumber"] == "100")
    assert king["branch"] == {
        "code": "US-1700",
        "country": "US",
        "currency": "USD",
        "timeZone": "America/Los_Angeles",
        "parent": {"code": "US"},
    }
    zones = {p["branch"]["code"]: p["branch"]["timeZone"] for p in people if p["branch"]}
    assert zones == {
        "US-1400": "America/Chicago",
        "US-1500": "America/Los_Angeles",
        "US-1700": "America/Los_Angeles",
        "CA-1800": "America/Toronto",
        "GB-2400": "Europe/London",
        "GB-2500": "Europe/London",
        "DE-2700": "Europe/Berlin",
    }


async def test_job_history_becomes_past_events_and_a_second_run_changes_nothing(
    gql: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    directory = shared_data("oracle_hr")
    tenant = await make_tenant(engine)
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    first = renshi_import(database_url, "oracle-hr", directory, "--tenant", tenant.tenant.slug)
    assert first.returncode == 0, first.stdout + first.stderr
    history = " history { kind effectiveDate position { title } salary { amount { amount } } }"
    before = await employee_by_number(gql, token, "101", fields=FIELDS + history)

    second = renshi_import(database_url, "oracle-hr", directory, "--tenant", tenant.tenant.slug)

    assert second.stdout.splitlines()[1:4] == [
        "Created: 0.",
        "Changed: 0.",
        "Unchanged: 107 employees.",
    ]
    after = await employee_by_number(gql, token, "101", fields=FIELDS + history)
    assert after == before
    steps = [
        (e["kind"], e["effectiveDate"], (e["position"] or {}).get("title"))
        for e in after["history"]
    ]
    assert steps == [
        ("hire", "2007-09-21", "Public Accountant"),
        ("promotion", "2011-10-28", "Accounting Manager"),
        ("promotion", "2015-03-16", "Administration Vice President"),
        ("salary_change", "2015-03-16", None),
    ]
    assert after["history"][-1]["salary"] == {"amount": {"amount": "17000.00"}}
    assert after["manager"] == {"employeeNumber": "100"}
