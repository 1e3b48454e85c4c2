"""`renshi import employees`, run as a process; results read back through GraphQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from domain.audit import AuditEntry
from domain.people.models import EmploymentEvent
from renshi.settings import PROJECT_ROOT
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.conftest import GraphQLClient, TenantWithAdmin
from tests.import_support import employee_by_number, renshi_import, total
from tests.people_fixtures import build_org

CHINESE_MAPPING = """
[file]
date_order = "DMY"

[columns]
employee_number = "工号"
given_name = "名"
family_name = "姓"
local_name = "中文名"
work_email = "邮箱"
birth_date = "出生日期"
hire_date = "入职日期"
org_unit = "部门"
job_title = "职位"
job_level = "职级"
manager = "上级"
salary = "月薪"

[defaults]
branch = "CN-SH"
salary_period = "month"
"""

CHINESE_ROWS = """工号,名,姓,中文名,邮箱,出生日期,入职日期,部门,职位,职级,上级,月薪
E010, Fang ,Zhou,周芳,fang@acme.test,17/05/1992,01/03/2024,Engineering,Engineer,L3,E004,"20,000.00"
E011,Qiang,Wu,吴强,qiang@acme.test,02/11/1990,15/04/2024,Engineering,Engineer,L3,陈静,21000
E012,Na,Xu,徐娜,na@acme.test,30/06/1988,01/05/2024,Sales,Sales Lead,L5,Mei Sun,30000
"""

MAPPING = """
[file]
date_order = "DMY"

[columns]
employee_number = "No"
given_name = "Given"
family_name = "Family"
local_name = "Local"
work_email = "Email"
birth_date = "Born"
hire_date = "Hired"
org_unit = "Unit"
job_title = "Title"
job_level = "Level"
manager = "Manager"
salary = "Salary"

[defaults]
branch = "CN-SH"

[changes]
effective_date = 2026-01-01
"""
HEADER = "No,Given,Family,Local,Email,Born,Hired,Unit,Title,Level,Manager,Salary\n"
TWO_ROWS = (
    HEADER + "E020,Lei,Wang,王蕾,lei@acme.test,1991-02-03,2024-03-01,Engineering,Engineer,"
    "L3,Chen Jing,18000\n"
    "E021,Yu,Sun,孙宇,yu@acme.test,1993-04-05,2024-03-15,Engineering,Engineer,L3,E004,19000\n"
)

FIELDS = """employeeNumber givenName familyName localName workEmail birthDate hireDate
  salary { amount { amount currency } period } branch { code } orgUnit { name }
  position { title } jobLevel { code } manager { employeeNumber }"""


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


async def counts(tenant: TenantWithAdmin) -> tuple[int, int]:
    """Employment events and audit entries of the tenant, read directly."""
    with use_tenant(tenant.tenant):
        async with tenant_session() as session:
            events = await session.scalar(select(func.count()).select_from(EmploymentEvent))
            entries = await session.scalar(select(func.count()).select_from(AuditEntry))
    return int(events or 0), int(entries or 0)


async def test_a_gbk_file_is_imported_with_managers_matched_by_number_and_by_name(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    data = write(tmp_path, "员工.csv", CHINESE_ROWS.encode("gbk"))
    mapping = write(tmp_path, "map.toml", CHINESE_MAPPING)

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "员工.csv: 3 rows read.",
        "Created: 3 employees, 1 positions.",
        "Changed: 0.",
        "Unchanged: 0.",
    ]
    fang = await employee_by_number(gql, token, "E010", fields=FIELDS)
    assert fang == {
        "employeeNumber": "E010",
        "givenName": "Fang",
        "familyName": "Zhou",
        "localName": "周芳",
        "workEmail": "fang@acme.test",
        "birthDate": "1992-05-17",
        "hireDate": "2024-03-01",
        "salary": {"amount": {"amount": "20000.00", "currency": "CNY"}, "period": "month"},
        "branch": {"code": "CN-SH"},
        "orgUnit": {"name": "Engineering"},
        "position": {"title": "Engineer"},
        "jobLevel": {"code": "L3"},
        "manager": {"employeeNumber": "E004"},
    }
    wu = await employee_by_number(gql, token, "E011", fields=FIELDS)
    xu = await employee_by_number(gql, token, "E012", fields=FIELDS)
    assert wu["manager"] == {"employeeNumber": "E004"}  # by the name in local script, 陈静
    assert (xu["manager"], xu["position"]) == ({"employeeNumber": "E001"}, {"title": "Sales Lead"})
    assert await total(gql, token) == 8


@pytest.mark.parametrize("kind", ["utf-16", "utf-8-sig", "xlsx"])
async def test_utf16_bom_and_xlsx_files_are_read_alike(
    kind: str, gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    mapping = write(tmp_path, "map.toml", MAPPING)
    if kind == "xlsx":
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(HEADER.strip().split(","))
        # A real date cell, and an Excel serial number (45352 is 2024-03-01).
        lei = ["E020", "Lei", "Wang", "王蕾", "lei@acme.test", dt.date(1991, 2, 3), 45352]
        yu = ["E021", "Yu", "Sun", "孙宇", "yu@acme.test", "1993-04-05", "15/03/2024"]
        sheet.append([*lei, "Engineering", "Engineer", "L3", "Chen Jing", 18000])
        sheet.append([*yu, "Engineering", "Engineer", "L3", "E004", 19000.0])
        data = tmp_path / "staff.xlsx"
        workbook.save(data)
    else:
        data = write(tmp_path, "staff.csv", TWO_ROWS.encode(kind))

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1] == "Created: 2 employees."
    lei = await employee_by_number(gql, token, "E020", fields=FIELDS)
    yu = await employee_by_number(gql, token, "E021", fields=FIELDS)
    assert (lei["localName"], lei["birthDate"], lei["hireDate"]) == (
        "王蕾",
        "1991-02-03",
        "2024-03-01",
    )
    assert (yu["localName"], yu["birthDate"], yu["hireDate"]) == (
        "孙宇",
        "1993-04-05",
        "2024-03-15",
    )
    assert lei["manager"] == yu["manager"] == {"employeeNumber": "E004"}
    assert yu["salary"]["amount"] == {"amount": "19000.00", "currency": "CNY"}


async def test_one_bad_row_rejects_the_whole_file_and_nothing_is_written(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    before = await counts(tenant)
    data = write(
        tmp_path,
        "bad.csv",
        HEADER + "E030,Ok,Fine,,ok@acme.test,1990-01-01,2024-01-02,Sales,Sales Rep,L3,E001,9000\n"
        "E031,Bad,Date,,not-an-email,1990-01-01,31/02/2024,Marketing,Rep,L3,E001,9000\n"
        "E032,No,Boss,,no@acme.test,1990-01-01,2024-01-02,Sales,Sales Rep,L3,Nobody,-5\n",
    )
    mapping = write(tmp_path, "map.toml", MAPPING)

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "bad.csv: 3 rows read.",
        'row 3, column "Email", value "not-an-email": Enter a valid e-mail address.',
        'row 3, column "Hired", value "31/02/2024": 31/02/2024 is not a valid date.',
        'row 3, column "Unit", value "Marketing": No org unit has the code or name Marketing.',
        'row 4, column "Salary", value "-5": A salary is above zero.',
        'row 4, column "Manager", value "Nobody": No employee has the number or name Nobody.',
        "Problems: 5; nothing was written.",
    ]
    assert result.stderr == "Error: bad.csv was rejected; nothing was written.\n"
    assert await total(gql, token) == 5
    assert await counts(tenant) == before


async def test_a_dry_run_reports_what_it_would_do_and_writes_nothing(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    before = await counts(tenant)
    data = write(tmp_path, "good.csv", TWO_ROWS)
    mapping = write(tmp_path, "map.toml", MAPPING)

    result = renshi_import(
        database_url,
        "employees",
        data,
        "--tenant",
        tenant.tenant.slug,
        "--mapping",
        mapping,
        "--dry-run",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "good.csv: 2 rows read.",
        "Created: 2 employees.",
        "Changed: 0.",
        "Unchanged: 0.",
        "Dry run: nothing was written.",
    ]
    assert await total(gql, token) == 5
    assert await counts(tenant) == before


async def test_duplicate_employee_numbers_are_reported_not_merged(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    data = write(
        tmp_path,
        "dup.csv",
        HEADER + "E040,A,One,,a@acme.test,1990-01-01,2024-01-02,Sales,Sales Rep,L3,E001,9000\n"
        "E040,B,Two,,b@acme.test,1990-01-01,2024-01-02,Sales,Sales Rep,L3,E001,9000\n",
    )
    mapping = write(tmp_path, "map.toml", MAPPING)

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "dup.csv: 2 rows read.",
        'row 3, column "No", value "E040": Employee number E040 appears more than once in the'
        " file.",
        "Problems: 1; nothing was written.",
    ]
    assert await total(gql, token) == 5


async def test_the_same_file_twice_changes_nothing_and_changed_facts_become_events(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    data = write(tmp_path, "staff.csv", TWO_ROWS)
    mapping = write(tmp_path, "map.toml", MAPPING)
    args = ("employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping)
    assert renshi_import(database_url, *args).returncode == 0
    after_first = await counts(tenant)

    again = renshi_import(database_url, *args)

    assert again.stdout.splitlines()[1:] == [
        "Created: 0.",
        "Changed: 0.",
        "Unchanged: 2 employees.",
    ]
    assert await counts(tenant) == after_first

    changed = write(
        tmp_path,
        "staff.csv",
        HEADER + "E020,Lei,Wang,王蕾,lei.wang@acme.test,1991-02-03,2024-03-01,Sales,Sales Rep,"
        "L5,E001,25000\n",
    )
    result = renshi_import(database_url, "employees", changed, *args[2:])

    assert result.stdout.splitlines()[1:] == [
        "Created: 1 positions.",  # Sales Rep under the CEO: the existing one reports elsewhere
        "Changed: 1 employees.",
        "Unchanged: 0.",
    ]
    lei = await employee_by_number(
        gql, token, "E020", fields=FIELDS + " history { kind effectiveDate }"
    )
    assert lei["history"] == [
        {"kind": "hire", "effectiveDate": "2024-03-01"},
        {"kind": "promotion", "effectiveDate": "2026-01-01"},
        {"kind": "salary_change", "effectiveDate": "2026-01-01"},
    ]
    assert (lei["workEmail"], lei["jobLevel"], lei["orgUnit"]) == (
        "lei.wang@acme.test",
        {"code": "L5"},
        {"name": "Sales"},
    )
    assert lei["manager"] == {"employeeNumber": "E001"}
    assert lei["salary"]["amount"] == {"amount": "25000.00", "currency": "CNY"}


async def test_two_digit_years_follow_the_documented_rule(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str, tmp_path: Path
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    data = write(
        tmp_path,
        "years.csv",
        HEADER + "E050,Old,Timer,,,03/04/45,15/06/21,Sales,Sales Rep,L3,E001,9000\n"
        "E051,New,Comer,,,17/05/99,01/02/24,Sales,Sales Rep,L3,E001,9000\n",
    )
    mapping = write(tmp_path, "map.toml", MAPPING)

    result = renshi_import(
        database_url, "employees", data, "--tenant", tenant.tenant.slug, "--mapping", mapping
    )

    assert result.returncode == 0, result.stdout + result.stderr
    old = await employee_by_number(gql, token, "E050", fields=FIELDS)
    new = await employee_by_number(gql, token, "E051", fields=FIELDS)
    # A birth year is never in the future; other years fall within 80 back and 19 ahead.
    assert (old["birthDate"], old["hireDate"]) == ("1945-04-03", "2021-06-15")
    assert (new["birthDate"], new["hireDate"]) == ("1999-05-17", "2024-02-01")


async def test_the_example_mapping_reads_the_example_file(
    gql: GraphQLClient, tenant: TenantWithAdmin, database_url: str
) -> None:
    token = await gql.token(tenant.tenant.slug, tenant.admin_email)
    await build_org(gql, token, tenant.tenant.slug)
    examples = PROJECT_ROOT / "examples"

    result = renshi_import(
        database_url,
        "employees",
        examples / "employees.csv",
        "--tenant",
        tenant.tenant.slug,
        "--mapping",
        examples / "employees-mapping.toml",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1] == "Created: 3 employees, 1 positions."
    wu = await employee_by_number(gql, token, "E102", fields=FIELDS)
    assert (wu["birthDate"], wu["manager"]) == ("1990-11-02", {"employeeNumber": "E004"})
