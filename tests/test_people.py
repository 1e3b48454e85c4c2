"""The personnel system through GraphQL: hiring, history, reporting lines, the directory."""

from __future__ import annotations

from tests.conftest import GraphQLClient, TenantWithAdmin
from tests.people_fixtures import build_org, mutate

EMPLOYEE = """query($id: ID!, $asOf: Date) { employee(id: $id, asOf: $asOf) {
  employeeNumber displayName localName status hireDate
  salary { amount { amount currency formatted } period }
  branch { code currency } orgUnit { name } position { title } jobLevel { code }
  manager { employeeNumber } directReports { employeeNumber }
} }"""


async def test_a_hire_is_visible_with_position_unit_level_and_salary(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)

    body = await gql.execute(EMPLOYEE, {"id": org.ids["wang"], "asOf": "2026-01-01"}, token=token)

    assert body == {
        "data": {
            "employee": {
                "employeeNumber": "E003",
                "displayName": "Xiaoming Wang",
                "localName": "王小明",
                "status": "ACTIVE",
                "hireDate": "2021-03-01",
                "salary": {
                    "amount": {
                        "amount": "16000.00",
                        "currency": "CNY",
                        "formatted": "CN¥16,000.00",
                    },
                    "period": "month",
                },
                "branch": {"code": "CN-SH", "currency": "CNY"},
                "orgUnit": {"name": "Sales"},
                "position": {"title": "Sales Rep"},
                "jobLevel": {"code": "L3"},
                # The Head of Sales position is vacant, so the question passes up to the CEO.
                "manager": {"employeeNumber": "E001"},
                "directReports": [],
            }
        }
    }


async def test_the_ceo_manages_through_a_vacant_position(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)

    body = await gql.execute(EMPLOYEE, {"id": org.ids["ceo"]}, token=token)

    reports = body["data"]["employee"]["directReports"]
    assert reports == [
        {"employeeNumber": "E002"},
        {"employeeNumber": "E003"},
        {"employeeNumber": "E004"},
    ]
    assert body["data"]["employee"]["manager"] is None


async def test_history_is_effective_dated_and_any_date_can_be_asked(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)

    await mutate(
        gql,
        token,
        "promoteEmployee",
        {
            "employeeId": org.ids["zhao"],
            "effectiveDate": "2024-07-01",
            "jobLevelId": org.ids["L5"],
            "reason": "Strong year",
        },
        "employee { id }",
    )
    await mutate(
        gql,
        token,
        "changeSalary",
        {
            "employeeId": org.ids["zhao"],
            "effectiveDate": "2024-07-01",
            "salary": {"amount": {"amount": "31000.456"}, "period": "month"},
        },
        "employee { id }",
    )
    await mutate(
        gql,
        token,
        "transferEmployee",
        {"employeeId": org.ids["zhao"], "effectiveDate": "2025-01-01", "branchId": org.ids["us"]},
        "employee { id }",
    )
    await mutate(
        gql,
        token,
        "startLeave",
        {"employeeId": org.ids["zhao"], "effectiveDate": "2025-06-01"},
        "employee { id }",
    )
    await mutate(
        gql,
        token,
        "endLeave",
        {"employeeId": org.ids["zhao"], "effectiveDate": "2025-09-01"},
        "employee { id }",
    )

    query = """query($id: ID!, $asOf: Date) { employee(id: $id, asOf: $asOf) {
        status jobLevel { code } branch { code } salary { amount { amount } }
        history { kind effectiveDate reason } } }"""
    before = await gql.execute(query, {"id": org.ids["zhao"], "asOf": "2024-06-30"}, token=token)
    during = await gql.execute(query, {"id": org.ids["zhao"], "asOf": "2025-07-15"}, token=token)
    after = await gql.execute(query, {"id": org.ids["zhao"], "asOf": "2025-09-01"}, token=token)

    assert before["data"]["employee"]["jobLevel"] == {"code": "L3"}
    assert before["data"]["employee"]["salary"] == {"amount": {"amount": "25000.00"}}
    assert before["data"]["employee"]["branch"] == {"code": "CN-SH"}
    assert during["data"]["employee"]["status"] == "ON_LEAVE"
    assert during["data"]["employee"]["jobLevel"] == {"code": "L5"}
    assert during["data"]["employee"]["branch"] == {"code": "US-SF"}
    assert during["data"]["employee"]["salary"] == {"amount": {"amount": "31000.46"}}
    assert after["data"]["employee"]["status"] == "ACTIVE"
    assert [(e["kind"], e["effectiveDate"]) for e in after["data"]["employee"]["history"]] == [
        ("hire", "2021-03-01"),
        ("promotion", "2024-07-01"),
        ("salary_change", "2024-07-01"),
        ("transfer", "2025-01-01"),
        ("leave_start", "2025-06-01"),
        ("leave_end", "2025-09-01"),
    ]


async def test_a_change_before_the_hire_is_refused_and_nothing_is_written(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)

    body = await gql.execute(
        """mutation($input: TransferEmployeeInput!) { transferEmployee(input: $input) {
             employee { id } userErrors { field code message } } }""",
        {
            "input": {
                "employeeId": org.ids["li"],
                "effectiveDate": "2020-12-31",
                "branchId": org.ids["us"],
            }
        },
        token=token,
    )
    history = await gql.execute(
        "query($id: ID!) { employee(id: $id) { history { kind } } }",
        {"id": org.ids["li"]},
        token=token,
    )

    assert body["data"]["transferEmployee"] == {
        "employee": None,
        "userErrors": [
            {
                "field": "effectiveDate",
                "code": "INVALID",
                "message": "No change can take effect before the hire date (2020-12-31).",
            }
        ],
    }
    assert history["data"]["employee"]["history"] == [{"kind": "hire"}]


async def test_leave_cannot_end_before_it_starts(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)

    body = await gql.execute(
        """mutation($input: LeaveInput!) { endLeave(input: $input) {
             userErrors { field code message } } }""",
        {"input": {"employeeId": org.ids["li"], "effectiveDate": "2025-01-01"}},
        token=token,
    )

    assert body["data"]["endLeave"]["userErrors"] == [
        {
            "field": "effectiveDate",
            "code": "INVALID",
            "message": "The employee is not on leave then.",
        }
    ]


async def test_employees_page_filters_by_subtree_and_searches_any_script(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)
    query = """query($filter: EmployeeFilterInput, $first: Int!, $after: String) {
        employees(filter: $filter, first: $first, after: $after) {
          totalCount edges { node { employeeNumber } } pageInfo { hasNextPage endCursor } } }"""

    sales = await gql.execute(
        query, {"filter": {"orgUnitId": org.ids["sales"]}, "first": 10}, token=token
    )
    company = await gql.execute(
        query, {"filter": {"orgUnitId": org.ids["company"]}, "first": 2}, token=token
    )
    rest = await gql.execute(
        query,
        {
            "filter": {"orgUnitId": org.ids["company"]},
            "first": 10,
            "after": company["data"]["employees"]["pageInfo"]["endCursor"],
        },
        token=token,
    )
    chinese = await gql.execute(query, {"filter": {"search": "小明"}, "first": 10}, token=token)

    def numbers(body: dict) -> list[str]:
        return [e["node"]["employeeNumber"] for e in body["data"]["employees"]["edges"]]

    assert numbers(sales) == ["E002", "E003"]  # by family name: Li, Wang
    assert sales["data"]["employees"]["totalCount"] == 2
    assert numbers(company) == ["E004", "E002"]  # Chen, Li
    assert company["data"]["employees"]["pageInfo"]["hasNextPage"] is True
    assert numbers(rest) == ["E001", "E003", "E005"]  # Sun, Wang, Zhao
    assert rest["data"]["employees"]["pageInfo"]["hasNextPage"] is False
    assert numbers(chinese) == ["E003"]


async def test_each_edge_cursor_continues_after_its_own_row(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    query = """query($after: String) { employees(first: 10, after: $after, sort: HIRE_DATE) {
        edges { cursor node { employeeNumber } } pageInfo { endCursor } } }"""

    first = await gql.execute(query, {}, token=token)
    edges = first["data"]["employees"]["edges"]
    after_each = [
        await gql.execute(query, {"after": edge["cursor"]}, token=token) for edge in edges
    ]

    def numbers(body: dict) -> list[str]:
        return [e["node"]["employeeNumber"] for e in body["data"]["employees"]["edges"]]

    everyone = numbers(first)
    assert len(everyone) == 5
    assert [numbers(body) for body in after_each] == [everyone[i + 1 :] for i in range(5)]
    assert first["data"]["employees"]["pageInfo"]["endCursor"] == edges[-1]["cursor"]


async def test_org_chart_nests_units_with_heads_and_headcounts(
    gql: GraphQLClient, tenant: TenantWithAdmin
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    org = await build_org(gql, token, tenant.tenant.slug)
    await mutate(
        gql,
        token,
        "updateOrgUnit",
        {
            "id": org.ids["eng"],
            "effectiveDate": "2020-01-01",
            "headPositionId": org.ids["eng_head_pos"],
        },
        "orgUnit { id }",
    )

    body = await gql.execute(
        """{ orgChart(depth: 2) { unit { name } headcount
             children { unit { name head { employeeNumber } } headcount children { unit { name } } }
           } }""",
        token=token,
    )

    assert body == {
        "data": {
            "orgChart": [
                {
                    "unit": {"name": "Acme Energy"},
                    "headcount": 5,
                    "children": [
                        {
                            "unit": {"name": "Engineering", "head": {"employeeNumber": "E004"}},
                            "headcount": 2,
                            "children": [],
                        },
                        {"unit": {"name": "Sales", "head": None}, "headcount": 2, "children": []},
                    ],
                }
            ]
        }
    }
