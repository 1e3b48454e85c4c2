"""`renshi import ibm-attrition` on IBM's HR attrition table (shared data, pinned by hash)."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import GraphQLClient, make_tenant, shared_data
from tests.import_support import employee_by_number, renshi_import

SHA256 = "a5c31e38bd7fafc9bc333884eb181b06b41b8e5e488e8f7ccb27199fb3be7659"
FIELDS = """employeeNumber displayName status hireDate birthDate
  salary { amount { amount currency } period } orgUnit { name } position { title }
  jobLevel { code } performanceReviews { period rating reviewedOn }
  history { kind effectiveDate reason }"""
AS_OF = """query($id: ID!, $asOf: Date) { employee(id: $id, asOf: $asOf) {
  status orgUnit { name } position { title } jobLevel { code } } }"""


async def test_the_ibm_table_becomes_1470_people_with_dated_histories(
    gql: GraphQLClient, engine: AsyncEngine, database_url: str
) -> None:
    path = shared_data("ibm_attrition", "WA_Fn-UseC_-HR-Employee-Attrition.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256
    tenant = await make_tenant(engine)
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    args = ("ibm-attrition", path, "--tenant", tenant.tenant.slug, "--as-of", "2026-06-30")

    result = renshi_import(database_url, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "WA_Fn-UseC_-HR-Employee-Attrition.csv: 1470 rows read.",
        "Created: 1 branches, 1470 employees, 5 job levels, 4 org units, 11 positions.",
        "Changed: 0.",
        "Unchanged: 0.",
    ]
    counts = await gql.execute(
        """{ all: employees(first: 1) { totalCount }
             left: employees(first: 1, filter: {status: [TERMINATED]}) { totalCount } }""",
        token=token,
    )
    assert counts["data"] == {"all": {"totalCount": 1470}, "left": {"totalCount": 237}}

    # Row 1: 41, Sales Executive at level 2, 6 years at the company, 4 in the role,
    # promoted this year, 5 years with the manager, rated 3, and gone.
    first = await employee_by_number(gql, token, "1", fields=FIELDS)
    assert first == {
        "employeeNumber": "1",
        "displayName": "Employee 1",
        "status": "TERMINATED",
        "hireDate": "2020-06-30",
        "birthDate": "1985-06-30",
        "salary": {"amount": {"amount": "5993.00", "currency": "USD"}, "period": "month"},
        "orgUnit": {"name": "Sales"},
        "position": {"title": "Sales Executive"},
        "jobLevel": {"code": "JL2"},
        "performanceReviews": [{"period": "2026", "rating": "3.00", "reviewedOn": "2026-06-30"}],
        "history": [
            {"kind": "hire", "effectiveDate": "2020-06-30", "reason": None},
            {"kind": "transfer", "effectiveDate": "2021-06-30", "reason": "manager change"},
            {"kind": "transfer", "effectiveDate": "2022-06-30", "reason": None},
            {"kind": "promotion", "effectiveDate": "2026-06-30", "reason": None},
            {"kind": "termination", "effectiveDate": "2026-06-30", "reason": "attrition"},
        ],
    }
    ident = (await employee_by_number(gql, token, "1", fields="id employeeNumber"))["id"]
    earlier = await gql.execute(AS_OF, {"id": ident, "asOf": "2021-01-01"}, token=token)
    on_the_eve = await gql.execute(AS_OF, {"id": ident, "asOf": "2026-06-29"}, token=token)
    assert earlier["data"]["employee"] == {
        "status": "ACTIVE",
        "orgUnit": {"name": "Sales"},
        "position": None,
        "jobLevel": {"code": "JL1"},
    }
    assert on_the_eve["data"]["employee"] == {
        "status": "ACTIVE",
        "orgUnit": {"name": "Sales"},
        "position": {"title": "Sales Executive"},
        "jobLevel": {"code": "JL1"},
    }

    second = renshi_import(database_url, *args)

    assert second.stdout.splitlines()[1:] == [
        "Created: 0.",
        "Changed: 0.",
        "Unchanged: 1470 employees.",
    ]
    assert await employee_by_number(gql, token, "1", fields=FIELDS) == first
