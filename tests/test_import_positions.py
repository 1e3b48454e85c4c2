"""Positions that `renshi import employees` makes count the people who hold them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import GraphQLClient, TenantWithAdmin
from tests.import_support import employee_by_number, renshi_import
from tests.people_fixtures import build_org

MAPPING = """
[columns]
employee_number = "No"
given_name = "Given"
family_name = "Family"
hire_date = "Hired"
org_unit = "Unit"
job_title = "Title"
manager = "Manager"

[defaults]
branch = "CN-SH"
"""
ROWS = """No,Given,Family,Hired,Unit,Title,Manager
E100,Mia,Ho,2024-02-01,Engineering,Engineering Lead,E004
E101,Bo,Tan,2024-03-01,Engineering,Engineer,E100
E102,Yan,Lu,2024-03-01,Engineering,Engineer,E100
E103,Ke,Ma,2024-03-01,Engineering,Designer,E100
"""
NUMBERS = ("E100", "E101", "E102", "E103")
FIELDS = "employeeNumber position { title headcount }"


async def test_a_position_made_by_an_import_counts_everyone_placed_in_it(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    data = tmp_path / "team.csv"
    data.write_text(ROWS, encoding="utf-8")
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING, encoding="utf-8")

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1] == "Created: 4 employees, 3 positions."
    found = [await employee_by_number(gql, token, n, fields=FIELDS) for n in NUMBERS]
    assert found == [
        {"employeeNumber": "E100", "position": {"title": "Engineering Lead", "headcount": 1}},
        {"employeeNumber": "E101", "position": {"title": "Engineer", "headcount": 2}},
        {"employeeNumber": "E102", "position": {"title": "Engineer", "headcount": 2}},
        {"employeeNumber": "E103", "position": {"title": "Designer", "headcount": 1}},
    ]
