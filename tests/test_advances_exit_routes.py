"""Current staff who owe money or are leaving reach "terminated" through offboarding only.

Acme (English, from `build_org`): Lei Li (E002) and employee 7001 have an advance
waiting for approval; Xiaoming Wang (E003), Yun Zhao (E005) and employee 7002 have
resigned, their offboarding cases open; employee 7003 owes nothing and is not leaving.
Each route that could write a termination is tried: the domain's event writer, the
database directly, `renshi import employees` and `renshi import ibm-attrition`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.people.actions import record_event
from domain.people.models import EmploymentEvent
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.advance_fixtures import call, own_client, pk
from tests.conftest import GraphQLClient, TenantWithAdmin, make_tenant
from tests.import_support import renshi_import
from tests.people_fixtures import build_org, mutate

# Read after every change has taken effect, whichever zone's today it is.
STATUS = """query($id: ID!) { employee(id: $id, asOf: "2027-01-01") {
  status history { kind status } } }"""
IBM_HEADER = (
    "EmployeeNumber,Age,Attrition,Department,JobRole,JobLevel,MonthlyIncome,"
    "PerformanceRating,YearsAtCompany,YearsInCurrentRole,YearsSinceLastPromotion,"
    "YearsWithCurrManager\n"
)


@dataclasses.dataclass
class Acme:
    tenant: TenantWithAdmin
    token: str
    ids: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def acme(engine: AsyncEngine, app: Any) -> Acme:
    tenant = await make_tenant(engine)
    async with own_client(app) as gql:
        token = await gql.token(tenant.tenant.slug, tenant.admin_email)
        org = await build_org(gql, token, tenant.tenant.slug)
        ids = dict(org.ids)
        for number in ("7001", "7002", "7003"):
            hired = await mutate(
                gql,
                token,
                "hireEmployee",
                {
                    "employeeNumber": number,
                    "givenName": "Employee",
                    "familyName": number,
                    "hireDate": "2021-03-01",
                    "branchId": ids["cn"],
                },
                "employee { id }",
            )
            ids[number] = hired["employee"]["id"]
        for key in ("li", "7001"):
            requested = await mutate(
                gql,
                token,
                "requestAdvance",
                {
                    "employeeId": ids[key],
                    "kind": "travel",
                    "amount": {"amount": "3000"},
                    "purpose": "Customer visit",
                    "expectedSettlementDate": "2099-12-31",
                },
                "advance { id }",
            )
            submitted = await call(
                gql, token, "submitAdvance", {"advanceId": requested["advance"]["id"]}
            )
            assert submitted["advance"]["status"] == "submitted", submitted
        for key in ("wang", "zhao", "7002"):
            resigned = await mutate(
                gql,
                token,
                "submitResignation",
                {"employeeId": ids[key], "lastWorkingDay": "2026-12-31"},
                "case { id }",
            )
            ids[f"case:{key}"] = resigned["case"]["id"]
    return Acme(tenant=tenant, token=token, ids=ids)


def admin_of(acme: Acme) -> Viewer:
    admin = acme.tenant
    return Viewer(
        id=admin.admin_id,
        email=admin.admin_email,
        display_name="Admin",
        roles=("admin",),
        locale=None,
        session_id=admin.admin_id,
    )


async def events(acme: Acme) -> int:
    with use_tenant(acme.tenant.tenant):
        async with tenant_session() as session:
            count = await session.scalar(select(func.count()).select_from(EmploymentEvent))
    return int(count or 0)


async def test_the_event_writer_refuses_to_terminate_someone_whose_exit_is_open(
    gql: GraphQLClient, acme: Acme
) -> None:
    before = await gql.execute(STATUS, {"id": acme.ids["wang"]}, token=acme.token)

    with use_tenant(acme.tenant.tenant), pytest.raises(DomainError) as refused:
        async with tenant_session() as session:
            await record_event(
                session,
                admin_of(acme),
                pk(acme.ids["wang"]),
                "termination",
                dt.date(2026, 12, 1),
                reason="left without a word",
            )

    assert (refused.value.code, refused.value.field, str(refused.value)) == (
        "CLEARANCE_OPEN",
        "employeeId",
        "The employee's offboarding is in progress; complete it to terminate them.",
    )
    assert before == {
        "data": {
            "employee": {
                "status": "OFFBOARDING",
                "history": [
                    {"kind": "hire", "status": "active"},
                    {"kind": "status_change", "status": "offboarding"},
                ],
            }
        }
    }
    assert await gql.execute(STATUS, {"id": acme.ids["wang"]}, token=acme.token) == before


@pytest.mark.parametrize(
    ("who", "code"), [("li", "OUTSTANDING_ADVANCES"), ("wang", "CLEARANCE_OPEN")]
)
async def test_the_database_refuses_a_terminated_period_written_around_the_domain(
    gql: GraphQLClient, acme: Acme, who: str, code: str
) -> None:
    before = await gql.execute(STATUS, {"id": acme.ids[who]}, token=acme.token)

    with use_tenant(acme.tenant.tenant), pytest.raises(IntegrityError, match=code):
        async with tenant_session() as session:
            await session.execute(
                text("UPDATE employee_periods SET status = 'terminated' WHERE employee_id = :id"),
                {"id": pk(acme.ids[who])},
            )

    assert await gql.execute(STATUS, {"id": acme.ids[who]}, token=acme.token) == before


async def test_completing_the_case_is_the_way_out(gql: GraphQLClient, acme: Acme) -> None:
    completed = await mutate(
        gql, acme.token, "completeOffboarding", {"caseId": acme.ids["case:zhao"]}, "case { status }"
    )
    found = await gql.execute(STATUS, {"id": acme.ids["zhao"]}, token=acme.token)

    assert completed == {"case": {"status": "completed"}, "userErrors": []}
    assert found == {
        "data": {
            "employee": {
                "status": "TERMINATED",
                "history": [
                    {"kind": "hire", "status": "active"},
                    {"kind": "status_change", "status": "offboarding"},
                    {"kind": "termination", "status": None},
                ],
            }
        }
    }


async def test_import_employees_refuses_to_terminate_anyone_row_by_row(
    acme: Acme, database_url: str, tmp_path: Path
) -> None:
    before = await events(acme)
    data = tmp_path / "leavers.csv"
    data.write_text("No,Status\nE002,terminated\nE003,Terminated\n", encoding="utf-8")
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[columns]\nemployee_number = "No"\nstatus = "Status"\n\n'
        "[changes]\neffective_date = 2026-12-01\n",
        encoding="utf-8",
    )

    result = renshi_import(
        database_url, "employees", data, "--tenant", acme.tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "leavers.csv: 2 rows read.",
        'row 2, column "Status", value "terminated": An import cannot terminate an '
        "employee; offboarding does that.",
        'row 3, column "Status", value "Terminated": An import cannot terminate an '
        "employee; offboarding does that.",
        "Problems: 2; nothing was written.",
    ]
    assert result.stderr == "Error: leavers.csv was rejected; nothing was written.\n"
    assert await events(acme) == before


def ibm_row(number: str, attrition: str) -> str:
    return f"{number},40,{attrition},Sales,Sales Executive,2,5000,3,5,2,1,2\n"


async def test_the_ibm_import_loads_leavers_as_history_but_not_staff_held_by_the_gate(
    gql: GraphQLClient, acme: Acme, database_url: str, tmp_path: Path
) -> None:
    before = await events(acme)
    held = tmp_path / "held.csv"
    held.write_text(
        IBM_HEADER + ibm_row("7001", "Yes") + ibm_row("7002", "Yes") + ibm_row("7004", "Yes"),
        encoding="utf-8",
    )
    clean = tmp_path / "clean.csv"
    clean.write_text(IBM_HEADER + ibm_row("7003", "Yes") + ibm_row("7004", "Yes"), "utf-8")
    args = ("--tenant", acme.tenant.tenant.slug, "--as-of", "2026-06-30")

    refused = renshi_import(database_url, "ibm-attrition", held, *args)
    after_refusal = await events(acme)
    loaded = renshi_import(database_url, "ibm-attrition", clean, *args)
    leaver = await gql.execute(
        """{ employees(first: 5, filter: {search: "7004"}) { edges { node {
             employeeNumber status history { kind effectiveDate } } } } }""",
        token=acme.token,
    )
    staying = await gql.execute(STATUS, {"id": acme.ids["7003"]}, token=acme.token)

    assert refused.returncode == 1
    assert refused.stdout.splitlines() == [
        "held.csv: 3 rows read.",
        'row 2, column "-", value "7001": The employee has open advances; only a completed '
        "offboarding case can terminate them.",
        'row 3, column "-", value "7002": The employee\'s offboarding is in progress; '
        "complete it to terminate them.",
        "Problems: 2; nothing was written.",
    ]
    assert after_refusal == before
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert loaded.stdout.splitlines()[-1] == (
        "Employee 7003 already has another history; it was left as recorded."
    )
    assert leaver["data"]["employees"]["edges"] == [
        {
            "node": {
                "employeeNumber": "7004",
                "status": "TERMINATED",
                "history": [
                    {"kind": "hire", "effectiveDate": "2021-06-30"},
                    {"kind": "transfer", "effectiveDate": "2024-06-30"},
                    {"kind": "promotion", "effectiveDate": "2025-06-30"},
                    {"kind": "termination", "effectiveDate": "2026-06-30"},
                ],
            }
        }
    ]
    assert staying["data"]["employee"] == {
        "status": "ACTIVE",
        "history": [{"kind": "hire", "status": "active"}],
    }
