"""A small energy start-up, built through GraphQL, for the advance tests.

CEO (L9) <- Head of Sales (L7) <- three Sales Managers (L5) <- Sales Reps (L3)
CEO <- Finance Manager (L6) <- Accountant (L3); plus staff up to 30 people in Shanghai.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.identity import passwords
from domain.identity.actions import create_user
from schema.node import from_global_id
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.conftest import PASSWORD, GraphQLClient, TenantWithAdmin, make_tenant
from tests.people_fixtures import mutate


@dataclasses.dataclass
class Company:
    tenant: TenantWithAdmin
    ids: dict[str, str]
    tokens: dict[str, str]

    def token(self, who: str) -> str:
        return self.tokens[who]


MATRIX = {
    "rules": [
        # Staff and managers may hold up to 50,000 CNY; approval limits grow with rank.
        {
            "minRank": 1,
            "maxRank": 4,
            "currency": "CNY",
            "maxSingleAmount": "20000",
            "maxOutstanding": "30000",
            "maxOpenAdvances": 2,
            "approvalLimit": "0",
        },
        {
            "minRank": 5,
            "maxRank": 5,
            "currency": "CNY",
            "maxSingleAmount": "50000",
            "maxOutstanding": "60000",
            "maxOpenAdvances": 3,
            "approvalLimit": "10000",
        },
        {
            "minRank": 6,
            "maxRank": 7,
            "currency": "CNY",
            "maxSingleAmount": "80000",
            "maxOutstanding": "100000",
            "maxOpenAdvances": 3,
            "approvalLimit": "20000",
        },
        {"minRank": 8, "maxRank": 9, "currency": "CNY", "approvalLimit": "200000"},
    ],
    "blockWhenOverdue": True,
}


@contextlib.contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 at its cheapest while fixtures create users and sign them in: each of a
    company's dozen users would otherwise cost a second of hashing, which is what keeps
    passwords safe, not what these tests are about."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher.from_parameters(CHEAPEST))
        yield


async def build_company(engine: AsyncEngine, gql: GraphQLClient) -> Company:
    with cheap_password_hashing():
        return await _build_company(engine, gql)


async def _build_company(engine: AsyncEngine, gql: GraphQLClient) -> Company:
    tenant = await make_tenant(engine, currency="CNY", time_zone="Asia/Shanghai", locale="zh_CN")
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
    for rank in (3, 5, 6, 7, 9):
        await make(
            "createJobLevel",
            f"L{rank}",
            {"code": f"L{rank}", "rank": rank, "title": f"Level {rank}"},
            "jobLevel",
        )
    await make(
        "createOrgUnit",
        "company",
        {
            "name": "Sunrise Energy",
            "kind": "company",
            "branchId": ids["sh"],
            "effectiveDate": "2022-01-01",
        },
        "orgUnit",
    )
    for unit in ("sales", "finance", "ops"):
        await make(
            "createOrgUnit",
            unit,
            {
                "name": unit.title(),
                "kind": "department",
                "branchId": ids["sh"],
                "effectiveDate": "2022-01-01",
                "parentId": ids["company"],
            },
            "orgUnit",
        )
    positions = [
        ("ceo_pos", "CEO", "company", "L9", None, 1),
        ("sales_head_pos", "Head of Sales", "sales", "L7", "ceo_pos", 1),
        ("sales_mgr_pos", "Sales Manager", "sales", "L5", "sales_head_pos", 3),
        ("rep_pos", "Sales Rep", "sales", "L3", "sales_mgr_pos", 20),
        ("fin_mgr_pos", "Finance Manager", "finance", "L6", "ceo_pos", 1),
        ("accountant_pos", "Accountant", "finance", "L3", "fin_mgr_pos", 2),
        ("ops_pos", "Operator", "ops", "L3", "ceo_pos", 10),
    ]
    for key, title, unit, level, boss, headcount in positions:
        await make(
            "createPosition",
            key,
            {
                "title": title,
                "orgUnitId": ids[unit],
                "openedOn": "2022-01-01",
                "jobLevelId": ids[level],
                "headcount": headcount,
                **({"reportsToId": ids[boss]} if boss else {}),
            },
            "position",
        )
    await mutate(
        gql,
        admin,
        "updateOrgUnit",
        {
            "id": ids["sales"],
            "effectiveDate": "2022-01-01",
            "headPositionId": ids["sales_head_pos"],
        },
        "orgUnit { id }",
    )
    people = [
        ("ceo", "ceo_pos"),
        ("sales_head", "sales_head_pos"),
        ("mgr1", "sales_mgr_pos"),
        ("mgr2", "sales_mgr_pos"),
        ("mgr3", "sales_mgr_pos"),
        ("fin_mgr", "fin_mgr_pos"),
        ("accountant", "accountant_pos"),
    ]
    people += [(f"rep{n}", "rep_pos") for n in range(12)]
    people += [(f"op{n}", "ops_pos") for n in range(11)]
    # Thirty independent hires, sent at once as a busy HR team would.
    await asyncio.gather(
        *(
            make(
                "hireEmployee",
                key,
                {
                    "employeeNumber": f"S{number:03}",
                    "givenName": key.title(),
                    "familyName": "Sun",
                    "hireDate": "2023-01-01",
                    "branchId": ids["sh"],
                    "positionId": ids[position],
                    "salary": {"amount": {"amount": "20000"}},
                },
                "employee",
            )
            for number, (key, position) in enumerate(people, start=1)
        )
    )
    await mutate(
        gql,
        admin,
        "setAuthorityMatrix",
        MATRIX | {"namedApprovers": [{"role": "ceo", "positionId": ids["ceo_pos"]}]},
        "ruleCount",
    )

    roles = {
        "ceo": ["manager", "admin"],
        "sales_head": ["manager"],
        "mgr1": ["employee"],
        "mgr2": ["employee"],
        "mgr3": ["employee"],
        "fin_mgr": ["finance", "manager"],
        "accountant": ["finance"],
        "rep0": ["employee"],
    }
    with use_tenant(tenant.tenant):
        for key, user_roles in roles.items():
            await create_user(
                tenant.tenant,
                email=f"{key}@sunrise.test",
                display_name=key,
                password=PASSWORD,
                roles=user_roles,
                employee_id=pk(ids[key]),
            )
        await create_user(
            tenant.tenant,
            email="hr@sunrise.test",
            display_name="HR",
            password=PASSWORD,
            roles=["hr"],
        )
    tokens = {"admin": admin}
    for key in [*roles, "hr"]:
        tokens[key] = await gql.token(tenant.tenant.slug, f"{key}@sunrise.test")
    return Company(tenant=tenant, ids=ids, tokens=tokens)


@contextlib.asynccontextmanager
async def own_client(app: Any) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client of its own, for module-scoped fixtures."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http)


async def add_user(
    gql: GraphQLClient,
    company: Company,
    key: str,
    roles: list[str],
    *,
    employee: str | None = None,
    locale: str | None = None,
) -> None:
    """A user `key`@sunrise.test with `roles`, linked to employee `employee` (default: the
    employee called `key`, if any), signed in as `company.token(key)`."""
    linked = employee or (key if key in company.ids else None)
    with cheap_password_hashing():
        with use_tenant(company.tenant.tenant):
            await create_user(
                company.tenant.tenant,
                email=f"{key}@sunrise.test",
                display_name=key,
                password=PASSWORD,
                roles=roles,
                locale=locale,
                employee_id=pk(company.ids[linked]) if linked else None,
            )
        company.tokens[key] = await gql.token(company.tenant.tenant.slug, f"{key}@sunrise.test")


def pk(global_id: str) -> uuid.UUID:
    """The primary key behind a global ID."""
    decoded = from_global_id(global_id)
    assert decoded is not None, global_id
    return decoded[2]


@contextlib.asynccontextmanager
async def raw_session(company: Company) -> AsyncIterator[AsyncSession]:
    """A transaction in the company's schema, for what the API cannot do (or must refuse)."""
    with use_tenant(company.tenant.tenant):
        async with tenant_session() as session:
            yield session


async def call(
    gql: GraphQLClient,
    token: str,
    name: str,
    input_: dict[str, Any],
    select: str = "advance { id status }",
) -> dict[str, Any]:
    """Run an advance mutation and return its payload (user errors included)."""
    input_type = name[0].upper() + name[1:] + "Input"
    if name in ("submitAdvance", "cancelAdvance"):
        input_type = "AdvanceActionInput"
    body = await gql.execute(
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {select} "
        "userErrors { field code message } } }",
        {"input": input_},
        token=token,
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][name]
    return payload


async def submitted(
    gql: GraphQLClient,
    company: Company,
    who: str,
    amount: str,
    purpose: str,
    *,
    currency: str | None = None,
    due: str = "2099-12-31",
) -> str:
    """Request and submit an advance for employee `who`; returns its ID.

    `who` asks with their own user if they have one; otherwise HR asks for them.
    """
    own = who in company.tokens
    token = company.token(who if own else "hr")
    requested = await call(
        gql,
        token,
        "requestAdvance",
        {
            "kind": "business",
            "amount": {"amount": amount, "currency": currency},
            "purpose": purpose,
            "expectedSettlementDate": due,
            **({} if own else {"employeeId": company.ids[who]}),
        },
    )
    assert requested["userErrors"] == [], requested
    advance_id: str = requested["advance"]["id"]
    done = await call(gql, token, "submitAdvance", {"advanceId": advance_id})
    assert done["userErrors"] == [], done
    return advance_id


async def approved_and_paid(
    gql: GraphQLClient,
    company: Company,
    who: str,
    amount: str,
    purpose: str,
    *,
    currency: str | None = None,
    due: str = "2099-12-31",
) -> str:
    """Request, submit, approve every step and disburse an advance; returns its ID."""
    advance_id = await submitted(gql, company, who, amount, purpose, currency=currency, due=due)
    await approve_all(gql, company, advance_id)
    paid = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": f"pay-{advance_id}"},
    )
    assert paid["advance"]["status"] == "disbursed", paid
    return advance_id


APPROVERS = {
    "manager": None,
    "unit_head": None,
    "escalation": None,
    "named:ceo": "ceo",
    "finance": "accountant",
}


async def approve_all(gql: GraphQLClient, company: Company, advance_id: str) -> list[str]:
    """Approve each step in turn as its approver; returns the roles in order."""
    body = await gql.execute(
        "query($id: ID!) { advance(id: $id) { approvalChain { id role approver { id } } } }",
        {"id": advance_id},
        token=company.token("admin"),
    )
    by_employee = {company.ids[k]: k for k in company.tokens if k in company.ids}
    roles = []
    for step in body["data"]["advance"]["approvalChain"]:
        who = APPROVERS.get(step["role"]) or by_employee[step["approver"]["id"]]
        decided = await call(
            gql,
            company.token(who),
            "decideApproval",
            {"stepId": step["id"], "approve": True},
            select="step { status }",
        )
        assert decided["userErrors"] == [], (step, decided)
        roles.append(step["role"])
    return roles
