"""`renshi import ibm-attrition`: IBM's HR attrition table, as of a given day.

The table is a snapshot without dates, names or managers. How its columns are used:
- EmployeeNumber: the employee number; the name is "Employee <number>".
- Department: an org unit ("IBM-SALES") under a company unit named after the tenant,
  all in one branch ("IBM-HQ") in `--country`, with the tenant's currency, time zone and
  locale.
- JobRole: a position per department and role ("IBM-SALES/SALES-EXECUTIVE"). The table
  names no managers, so positions report to no one.
- JobLevel: the job level ("JL2", rank 2); its pay band is the lowest and highest
  MonthlyIncome seen at that level, in the tenant's currency.
- MonthlyIncome: the monthly salary, in the tenant's currency, from the hire on.
- YearsAtCompany: the hire, that many years before the as-of day.
- YearsInCurrentRole: until then the employee is in the department without a position;
  then a transfer into the role's position.
- YearsSinceLastPromotion: a promotion to the current JobLevel; before it, the level below.
- YearsWithCurrManager: a transfer that keeps the placement, with the reason "manager
  change": the only trace a change of manager can leave without manager identities.
- PerformanceRating: the latest performance review (period = the as-of year, reviewed on
  the as-of day; the table's 1-4 scale fits the tenant's 1-5 scale unchanged).
- Attrition = Yes: a termination on the as-of day.
- Age: the birth date, Age years before the as-of day (only the year is meaningful).
Gender, MaritalStatus and the remaining survey columns have no place in the model yet
and are not imported. Years are counted back by calendar (29 February becomes 28).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from domain.errors import DomainError
from domain.imports.bulk import termination
from domain.imports.loader import Loader, PersonDraft
from domain.imports.report import ImportReport, Problem
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

COLUMNS = (
    "EmployeeNumber",
    "Age",
    "Attrition",
    "Department",
    "JobRole",
    "JobLevel",
    "MonthlyIncome",
    "PerformanceRating",
    "YearsAtCompany",
    "YearsInCurrentRole",
    "YearsSinceLastPromotion",
    "YearsWithCurrManager",
)
MANAGER_CHANGE = "manager change"
_NUMBERS = (
    "EmployeeNumber",
    "Age",
    "JobLevel",
    "MonthlyIncome",
    "PerformanceRating",
    "YearsAtCompany",
    "YearsInCurrentRole",
    "YearsSinceLastPromotion",
    "YearsWithCurrManager",
)


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _code(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")


class _Rejected(Exception):
    """Raised inside the transaction so that a rejected run rolls back."""


class IbmImport:
    def __init__(self, path: Path, *, as_of: dt.date, country: str) -> None:
        self.path = path
        self.as_of = as_of
        self.country = country
        self.tenant = current_tenant()
        self.report = ImportReport(source=path.name)

    def _rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DomainError(N_("The file has no column {value}."), value=", ".join(missing))
            for number, row in enumerate(reader, start=2):
                yield number, {k: (v or "").strip() for k, v in row.items()}

    async def run(self) -> ImportReport:
        try:
            async with tenant_session() as session:
                loader = Loader(session, self.report)
                await loader.prepare()
                self._load(loader)
                if self.report.rejected:
                    raise _Rejected()
                await loader.people(self._people(), source=f"ibm-attrition:{self.path.name}")
                if self.report.rejected:
                    raise _Rejected()
                loader.summary("import.ibm_attrition", self.path.name)
                await loader.writer.flush()
        except _Rejected:
            pass
        except DomainError as error:
            self.report.add(Problem.of(None, error.field, None, error))
        if self.report.rejected:
            self.report.created.clear()
        return self.report

    def _load(self, loader: Loader) -> None:
        tenant = self.tenant
        departments: set[str] = set()
        roles: set[tuple[str, str]] = set()
        pay: dict[int, tuple[Decimal, Decimal]] = {}
        earliest = self.as_of
        for number, row in self._rows():
            self.report.rows += 1
            bad = [c for c in _NUMBERS if not row[c].isdigit()]
            for column in bad:
                self.report.add(
                    Problem(
                        number,
                        column,
                        row[column],
                        N_("{value} is not a number."),
                        {"value": row[column]},
                    )
                )
            if bad:
                continue
            level, income = int(row["JobLevel"]), Decimal(row["MonthlyIncome"])
            departments.add(row["Department"])
            roles.add((row["Department"], row["JobRole"]))
            low, high = pay.get(level, (income, income))
            pay[level] = (min(low, income), max(high, income))
            earliest = min(earliest, years_before(self.as_of, int(row["YearsAtCompany"])))
        if self.report.rejected:
            return
        branch = loader.branch(
            code="IBM-HQ",
            name=tenant.name,
            country=self.country,
            currency=tenant.currency,
            zone=tenant.time_zone,
            locale=tenant.locale,
        )
        root = loader.org_unit(
            code="IBM",
            name=tenant.name,
            kind="company",
            branch_id=branch,
            valid_from=earliest,
        )
        self.unit_of = {
            name: loader.org_unit(
                code=f"IBM-{_code(name)}",
                name=name,
                kind="department",
                branch_id=branch,
                parent_id=root,
                valid_from=earliest,
            )
            for name in sorted(departments)
        }
        self.level_of = {
            level: loader.job_level(
                code=f"JL{level}",
                rank=level,
                title=f"Job level {level}",
                pay_min=band[0],
                pay_max=band[1],
                currency=tenant.currency,
            )
            for level, band in sorted(pay.items())
        }
        self.position_of = {
            (department, role): loader.position(
                code=f"IBM-{_code(department)}/{_code(role)}",
                title=role,
                unit_id=self.unit_of[department],
                opened_on=earliest,
            )
            for department, role in sorted(roles)
        }
        self.branch = branch

    def _people(self) -> Iterator[PersonDraft]:
        for number, row in self._rows():
            yield self._person(number, row)

    def _person(self, row_number: int, row: dict[str, str]) -> PersonDraft:
        as_of = self.as_of
        at_company = int(row["YearsAtCompany"])
        hired = years_before(as_of, at_company)
        in_role = years_before(as_of, min(int(row["YearsInCurrentRole"]), at_company))
        promoted = years_before(as_of, min(int(row["YearsSinceLastPromotion"]), at_company))
        with_manager = years_before(as_of, min(int(row["YearsWithCurrManager"]), at_company))
        level = int(row["JobLevel"])
        unit = self.unit_of[row["Department"]]
        position = self.position_of[row["Department"], row["JobRole"]]
        draft = PersonDraft(
            row=row_number,
            number=row["EmployeeNumber"],
            given_name="Employee",
            family_name=row["EmployeeNumber"],
            hire_date=hired,
            birth_date=years_before(as_of, int(row["Age"])),
        )
        start_level = level - 1 if promoted > hired and level > 1 else level
        draft.event(
            "hire",
            hired,
            status="active",
            branch_id=self.branch,
            position_id=position if in_role == hired else None,
            org_unit_id=unit if in_role > hired else None,
            job_level_id=self.level_of.get(start_level) or self.level_of[level],
            salary_amount=Decimal(row["MonthlyIncome"]),
            salary_currency=self.tenant.currency,
            salary_period="month",
        )
        changes: list[tuple[dt.date, int, str]] = []
        if in_role > hired:
            changes.append((in_role, 0, "role"))
        if promoted > hired:
            changes.append((promoted, 1, "promotion"))
        if with_manager > hired and with_manager != in_role:
            changes.append((with_manager, 2, "manager"))
        # Positions made here have no level, so every move carries the level held then.
        current = self.level_of.get(start_level) or self.level_of[level]
        for day, _order, what in sorted(changes):
            if what == "role":
                draft.event("transfer", day, position_id=position, job_level_id=current)
            elif what == "promotion":
                current = self.level_of[level]
                draft.event("promotion", day, job_level_id=current)
            else:
                holds = position if day >= in_role else None
                draft.event(
                    "transfer",
                    day,
                    position_id=holds,
                    org_unit_id=None if holds else unit,
                    job_level_id=current,
                    reason=MANAGER_CHANGE,
                )
        draft.reviews.append((str(as_of.year), Decimal(row["PerformanceRating"]), as_of))
        if row["Attrition"].casefold() == "yes":
            draft.events.append(termination(draft.id, as_of, reason="attrition"))
        return draft


async def import_ibm_attrition(path: Path, *, as_of: dt.date, country: str = "US") -> ImportReport:
    """Load IBM's attrition table in `path` into the current tenant, as of `as_of`."""
    return await IbmImport(path, as_of=as_of, country=country).run()


__all__ = ["import_ibm_attrition", "years_before"]
