"""Who sees which advances, and the routes around the exit gate that must stay shut.

Sunrise Energy: rep0 and rep1 report to the sales managers under the head of sales; an
operator, the accountant and a sales manager hold advances too. Another tenant's admin
holds a valid token, for another tenant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.people.actions import change_status, record_event
from tenants.context import use_tenant
from tests.advance_fixtures import (
    Company,
    add_user,
    approved_and_paid,
    build_company,
    call,
    cheap_password_hashing,
    own_client,
    pk,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient, make_tenant

# Requested in this order, so listed newest first in the reverse one.
REQUESTERS = ("rep0", "rep1", "op0", "accountant", "mgr1")
LIST = "{ advances(first: 100) { nodes { purpose } } }"
ONE = "query($id: ID!) { advance(id: $id) { purpose audit { action } } node(id: $id) { id } }"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        await add_user(gql, company, "auditor", ["auditor"])
        for who in REQUESTERS:
            company.ids[f"advance:{who}"] = await submitted(
                gql, company, who, "1000", f"Advance of {who}"
            )
        with cheap_password_hashing():
            other = await make_tenant(engine)
            company.tokens["other_admin"] = await gql.token(other.tenant.slug, other.admin_email)
    return company


async def listed(gql: GraphQLClient, company: Company, viewer: str) -> list[str]:
    body = await gql.execute(LIST, token=company.token(viewer))
    assert "errors" not in body, body
    return [node["purpose"] for node in body["data"]["advances"]["nodes"]]


async def one(gql: GraphQLClient, company: Company, viewer: str, whose: str) -> Any:
    body = await gql.execute(
        ONE, {"id": company.ids[f"advance:{whose}"]}, token=company.token(viewer)
    )
    assert "errors" not in body, body
    return body["data"]


def purposes(*requesters: str) -> list[str]:
    return [f"Advance of {who}" for who in reversed(REQUESTERS) if who in requesters]


async def test_an_employee_sees_only_their_own_advances(
    gql: GraphQLClient, company: Company
) -> None:
    own = await one(gql, company, "rep0", "rep0")
    colleague = await one(gql, company, "rep0", "rep1")
    filtered = await gql.execute(
        "query($e: ID!) { advances(filter: {employeeId: $e}) { nodes { purpose } } }",
        {"e": company.ids["rep1"]},
        token=company.token("rep0"),
    )

    assert await listed(gql, company, "rep0") == purposes("rep0")
    assert own == {
        "advance": {"purpose": "Advance of rep0", "audit": None},
        "node": {"id": company.ids["advance:rep0"]},
    }
    assert colleague == {"advance": None, "node": None}
    assert filtered == {"data": {"advances": {"nodes": []}}}


async def test_a_manager_sees_their_lines_advances(gql: GraphQLClient, company: Company) -> None:
    outside = await one(gql, company, "sales_head", "op0")

    assert await listed(gql, company, "sales_head") == purposes("rep0", "rep1", "mgr1")
    assert outside == {"advance": None, "node": None}


async def test_finance_sees_every_advance_but_no_audit_trail(
    gql: GraphQLClient, company: Company
) -> None:
    found = await one(gql, company, "accountant", "op0")

    assert await listed(gql, company, "accountant") == purposes(*REQUESTERS)
    assert found["advance"] == {"purpose": "Advance of op0", "audit": None}


async def test_an_auditor_sees_every_advance_and_its_audit_trail(
    gql: GraphQLClient, company: Company
) -> None:
    found = await one(gql, company, "auditor", "op0")

    assert await listed(gql, company, "auditor") == purposes(*REQUESTERS)
    assert found["advance"] == {
        "purpose": "Advance of op0",
        "audit": [{"action": "advance.request"}, {"action": "advance.submit"}],
    }


async def test_nobody_in_another_tenant_sees_anything(gql: GraphQLClient, company: Company) -> None:
    found = await one(gql, company, "other_admin", "rep0")

    assert await listed(gql, company, "other_admin") == []
    assert found == {"advance": None, "node": None}


INTROSPECTION = """{ __schema {
  mutationType { fields { name args { name type { ...ref } } } }
  types { name kind inputFields { name type { ...ref } } }
} }
fragment ref on __Type { name kind ofType { name kind ofType { name kind ofType { name } } } }"""


def named(ref: dict[str, Any]) -> str:
    while ref.get("ofType"):
        ref = ref["ofType"]
    name: str = ref["name"]
    return name


async def test_no_mutation_can_set_an_employee_to_terminated(
    gql: GraphQLClient, company: Company
) -> None:
    schema = (await gql.execute(INTROSPECTION, token=company.token("admin")))["data"]["__schema"]
    inputs = {t["name"]: t["inputFields"] for t in schema["types"] if t["kind"] == "INPUT_OBJECT"}

    def status_fields(type_name: str, path: str, seen: set[str]) -> list[str]:
        found = []
        for field in inputs.get(type_name, []):
            inner = named(field["type"])
            if inner == "EmployeeStatus":
                found.append(f"{path}.{field['name']}")
            elif inner in inputs and inner not in seen:
                found += status_fields(inner, f"{path}.{field['name']}", seen | {inner})
        return found

    setters = []
    for mutation in schema["mutationType"]["fields"]:
        for arg in mutation["args"]:
            if named(arg["type"]) == "EmployeeStatus":
                setters.append(f"{mutation['name']}.{arg['name']}")
            setters += status_fields(named(arg["type"]), f"{mutation['name']}.{arg['name']}", set())
    count = "{ employees { totalCount } }"
    before = await gql.execute(count, token=company.token("hr"))
    hired = await call(
        gql,
        company.token("hr"),
        "hireEmployee",
        {
            "employeeNumber": "GHOST1",
            "givenName": "Ghost",
            "familyName": "Sun",
            "hireDate": "2023-01-01",
            "branchId": company.ids["sh"],
            "status": "TERMINATED",
        },
        select="employee { id }",
    )
    after = await gql.execute(count, token=company.token("hr"))

    # The only status a mutation takes is a new hire's, and it cannot be "terminated".
    assert setters == ["hireEmployee.input.status"]
    assert hired == {
        "employee": None,
        "userErrors": [
            {
                "field": "status",
                "code": "INVALID",
                # "A new hire is onboarding or active.", in the tenant's Chinese.
                "message": "新入职员工的状态只能是“入职中”或“在职”。",
            }
        ],
    }
    assert after == before


def importer(company: Company) -> Viewer:
    """The admin, as an import job acts: in the domain, with no request around it."""
    admin = company.tenant
    return Viewer(
        id=admin.admin_id,
        email=admin.admin_email,
        display_name="Admin",
        roles=("admin",),
        locale=None,
        session_id=admin.admin_id,
    )


HISTORY = "query($id: ID!) { employee(id: $id) { status history { kind status } } }"


async def test_a_status_change_to_terminated_is_refused_in_the_domain(
    gql: GraphQLClient, company: Company
) -> None:
    before = await gql.execute(HISTORY, {"id": company.ids["rep1"]}, token=company.token("hr"))

    with use_tenant(company.tenant.tenant), pytest.raises(DomainError) as refused:
        await change_status(
            importer(company),
            pk(company.ids["rep1"]),
            effective_date=dt.date(2026, 12, 1),
            status="terminated",
        )

    assert str(refused.value) == "The status can only be set to onboarding, active or offboarding."
    assert await gql.execute(HISTORY, {"id": company.ids["rep1"]}, token=company.token("hr")) == (
        before
    )


@pytest.mark.parametrize(
    ("kind", "status"), [("termination", None), ("status_change", "terminated")]
)
async def test_an_import_cannot_terminate_an_employee_with_an_open_advance(
    gql: GraphQLClient, company: Company, kind: str, status: str | None
) -> None:
    before = await gql.execute(HISTORY, {"id": company.ids["rep0"]}, token=company.token("hr"))

    # As an import writes: record_event inside its own tenant transaction. (Written around
    # the domain, the database refuses it too: tests/test_advances_exit_routes.py.)
    with pytest.raises(DomainError, match="open advances") as refused:
        async with raw_session(company) as session:
            await record_event(
                session,
                importer(company),
                pk(company.ids["rep0"]),
                kind,
                dt.date(2026, 12, 1),
                status=status,
                reason="imported from the old HR system",
            )

    assert refused.value.code == "OUTSTANDING_ADVANCES"
    assert before == {
        "data": {
            "employee": {"status": "ACTIVE", "history": [{"kind": "hire", "status": "active"}]}
        }
    }
    assert await gql.execute(HISTORY, {"id": company.ids["rep0"]}, token=company.token("hr")) == (
        before
    )


async def test_write_offs_and_waivers_record_who_when_why_and_how_much(
    gql: GraphQLClient, company: Company
) -> None:
    gql = gql.speaking("en")  # its refusals are read in English
    written_off = await approved_and_paid(gql, company, "rep2", "1234.56", "Fair in Xi'an")
    waived = await approved_and_paid(gql, company, "rep3", "800", "Dealer dinners")
    resigned = await call(
        gql,
        company.token("hr"),
        "submitResignation",
        {"employeeId": company.ids["rep3"], "lastWorkingDay": "2099-06-30"},
        select="case { items { id kind } }",
    )
    (item,) = resigned["case"]["items"]
    ceo = (await gql.execute("{ viewer { user { id } } }", token=company.token("ceo")))["data"]
    trail = (
        "query($id: ID!) { advance(id: $id) { status audit { occurredAt actorId action after } } }"
    )

    refused = await call(
        gql,
        company.token("accountant"),
        "writeOffAdvance",
        {"advanceId": written_off, "reason": "Never mind"},
    )
    unchanged = await gql.execute(trail, {"id": written_off}, token=company.token("auditor"))
    started = dt.datetime.now(dt.UTC)
    wrote_off = await call(
        gql,
        company.token("ceo"),
        "writeOffAdvance",
        {"advanceId": written_off, "reason": "The fair was cancelled; the deposit is lost"},
    )
    waiver = await call(
        gql,
        company.token("ceo"),
        "waiveClearanceItem",
        {"itemId": item["id"], "reason": "Receipts lost in the office move"},
        select="case { items { status resolution } }",
    )
    finished = dt.datetime.now(dt.UTC)
    trails = [
        (await gql.execute(trail, {"id": advance_id}, token=company.token("auditor")))["data"][
            "advance"
        ]
        for advance_id in (written_off, waived)
    ]

    assert refused == {
        "advance": None,
        "userErrors": [
            {
                "field": None,
                "code": "FORBIDDEN",
                "message": "Your authority does not cover 1234.56 CNY.",
            }
        ],
    }
    assert unchanged["data"]["advance"]["status"] == "disbursed"
    assert unchanged["data"]["advance"]["audit"][-1]["action"] == "advance.disburse"
    assert wrote_off["advance"]["status"] == "written_off"
    assert waiver["case"]["items"] == [
        {"status": "waived", "resolution": "Receipts lost in the office move"}
    ]
    expected = [
        (
            "written_off",
            "advance.write_off",
            "The fair was cancelled; the deposit is lost",
            "1234.56",
        ),
        ("written_off", "advance.waiver", "Receipts lost in the office move", "800.00"),
    ]
    for found, (status, action, reason, amount) in zip(trails, expected, strict=True):
        last = found["audit"][-1]
        assert found["status"] == status
        assert (last["action"], last["actorId"]) == (action, ceo["viewer"]["user"]["id"])
        assert (last["after"]["reason"], last["after"]["amount"]) == (reason, amount)
        assert started <= dt.datetime.fromisoformat(last["occurredAt"]) <= finished
