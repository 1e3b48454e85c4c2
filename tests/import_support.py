"""Running `renshi import` as a process and reading the result back through GraphQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import GraphQLClient

RENSHI = Path(sys.executable).parent / "renshi"


def renshi_import(database_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `renshi import ARGS...` against the test session's database."""
    env = dict(os.environ, DATABASE_URL=database_url, RENSHI_SPARE_SCHEMAS="0")
    return subprocess.run(
        [str(RENSHI), "import", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


EMPLOYEE_FIELDS = """id employeeNumber givenName familyName localName workEmail status
  hireDate birthDate salary { amount { amount currency } period }
  branch { code country } orgUnit { name } position { title headcount } jobLevel { code }
  manager { employeeNumber }"""


async def all_employees(
    gql: GraphQLClient, token: str, *, as_of: str | None = None, fields: str = EMPLOYEE_FIELDS
) -> list[dict[str, Any]]:
    """Every employee on `as_of`, page after page, sorted by employee number."""
    query = f"""query($after: String, $asOf: Date) {{
      employees(first: 100, after: $after, sort: EMPLOYEE_NUMBER, asOf: $asOf) {{
        totalCount edges {{ node {{ {fields} }} }} pageInfo {{ hasNextPage endCursor }}
      }} }}"""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gql.execute(query, {"after": after, "asOf": as_of}, token=token)
        assert "errors" not in body, body
        page = body["data"]["employees"]
        found.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            assert len(found) == page["totalCount"]
            return found
        after = page["pageInfo"]["endCursor"]


async def employee_by_number(
    gql: GraphQLClient, token: str, number: str, *, fields: str = EMPLOYEE_FIELDS
) -> dict[str, Any]:
    body = await gql.execute(
        f"""query($search: String!) {{ employees(first: 100, filter: {{search: $search}}) {{
              edges {{ node {{ {fields} }} }} }} }}""",
        {"search": number},
        token=token,
    )
    assert "errors" not in body, body
    nodes = [e["node"] for e in body["data"]["employees"]["edges"]]
    matches = [n for n in nodes if n["employeeNumber"] == number]
    assert len(matches) == 1, nodes
    return matches[0]


async def total(gql: GraphQLClient, token: str) -> int:
    body = await gql.execute("{ employees(first: 1) { totalCount } }", token=token)
    return int(body["data"]["employees"]["totalCount"])
