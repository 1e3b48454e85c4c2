"""Building a small organisation through the public GraphQL API, for people tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.conftest import GraphQLClient


@dataclasses.dataclass
class Org:
    token: str
    tenant: str
    ids: dict[str, str]


async def mutate(
    gql: GraphQLClient, token: str, name: str, input_: dict[str, Any], select: str
) -> dict[str, Any]:
    """Run mutation `name` with `input_`; fail loudly on user errors."""
    input_type = name[0].upper() + name[1:] + "Input"
    if name in ("startLeave", "endLeave"):
        input_type = "LeaveInput"
    body = await gql.execute(
        f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {select} "
        "userErrors { field code message } } }",
        {"input": input_},
        token=token,
    )
    assert "errors" not in body, body
    payload = body["data"][name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def build_org(gql: GraphQLClient, token: str, tenant: str) -> Org:
    """A company (CN) with sales and engineering, a CEO, two managers and staff.

    CEO -> Head of Sales (vacant) -> Sales Rep (Li, Wang)
    CEO -> Head of Engineering (Chen) -> Engineer (Zhao)
    """
    ids: dict[str, str] = {}

    async def make(name: str, key: str, input_: dict[str, Any], field: str) -> None:
        payload = await mutate(gql, token, name, input_, f"{field} {{ id }}")
        ids[key] = payload[field]["id"]

    await make(
        "createBranch",
        "cn",
        {
            "code": "CN-SH",
            "name": "Shanghai",
            "country": "CN",
            "currency": "CNY",
            "timeZone": "Asia/Shanghai",
            "locale": "zh_CN",
        },
        "branch",
    )
    await make(
        "createBranch",
        "us",
        {
            "code": "US-SF",
            "name": "San Francisco",
            "country": "US",
            "currency": "USD",
            "timeZone": "America/Los_Angeles",
            "locale": "en_US",
        },
        "branch",
    )
    for code, rank in (("L1", 1), ("L3", 3), ("L5", 5), ("L9", 9)):
        await make(
            "createJobLevel",
            code,
            {
                "code": code,
                "rank": rank,
                "title": f"Level {rank}",
                "payMin": str(rank * 1000),
                "payMax": str(rank * 3000),
                "payCurrency": "CNY",
            },
            "jobLevel",
        )
    await make(
        "createOrgUnit",
        "company",
        {
            "name": "Acme Energy",
            "kind": "company",
            "branchId": ids["cn"],
            "effectiveDate": "2020-01-01",
            "costCentre": "CC-100",
        },
        "orgUnit",
    )
    await make(
        "createOrgUnit",
        "sales",
        {
            "name": "Sales",
            "kind": "department",
            "branchId": ids["cn"],
            "effectiveDate": "2020-01-01",
            "parentId": ids["company"],
        },
        "orgUnit",
    )
    await make(
        "createOrgUnit",
        "eng",
        {
            "name": "Engineering",
            "kind": "department",
            "branchId": ids["cn"],
            "effectiveDate": "2020-01-01",
            "parentId": ids["company"],
        },
        "orgUnit",
    )
    await make(
        "createPosition",
        "ceo_pos",
        {
            "title": "CEO",
            "orgUnitId": ids["company"],
            "openedOn": "2020-01-01",
            "jobLevelId": ids["L9"],
        },
        "position",
    )
    await make(
        "createPosition",
        "sales_head_pos",
        {
            "title": "Head of Sales",
            "orgUnitId": ids["sales"],
            "openedOn": "2020-01-01",
            "jobLevelId": ids["L5"],
            "reportsToId": ids["ceo_pos"],
        },
        "position",
    )
    await make(
        "createPosition",
        "rep_pos",
        {
            "title": "Sales Rep",
            "orgUnitId": ids["sales"],
            "openedOn": "2020-01-01",
            "jobLevelId": ids["L3"],
            "reportsToId": ids["sales_head_pos"],
            "headcount": 5,
        },
        "position",
    )
    await make(
        "createPosition",
        "eng_head_pos",
        {
            "title": "Head of Engineering",
            "orgUnitId": ids["eng"],
            "openedOn": "2020-01-01",
            "jobLevelId": ids["L5"],
            "reportsToId": ids["ceo_pos"],
        },
        "position",
    )
    await make(
        "createPosition",
        "engineer_pos",
        {
            "title": "Engineer",
            "orgUnitId": ids["eng"],
            "openedOn": "2020-01-01",
            "jobLevelId": ids["L3"],
            "reportsToId": ids["eng_head_pos"],
            "headcount": 5,
        },
        "position",
    )
    people = [
        ("ceo", "E001", "Mei", "Sun", "孙美", "ceo_pos", "60000.00"),
        ("li", "E002", "Lei", "Li", "李雷", "rep_pos", "15000.00"),
        ("wang", "E003", "Xiaoming", "Wang", "王小明", "rep_pos", "16000.00"),
        ("chen", "E004", "Jing", "Chen", "陈静", "eng_head_pos", "40000.00"),
        ("zhao", "E005", "Yun", "Zhao", "赵云", "engineer_pos", "25000.00"),
    ]
    for key, number, given, family, local, position, salary in people:
        await make(
            "hireEmployee",
            key,
            {
                "employeeNumber": number,
                "givenName": given,
                "familyName": family,
                "localName": local,
                "hireDate": "2021-03-01",
                "branchId": ids["cn"],
                "positionId": ids[position],
                "workEmail": f"{given.lower()}@acme.test",
                "birthDate": "1990-05-17",
                "nationalId": f"ID-{number}",
                "salary": {"amount": {"amount": salary}, "period": "month"},
            },
            "employee",
        )
    return Org(token=token, tenant=tenant, ids=ids)
