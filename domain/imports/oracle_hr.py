"""`renshi import oracle-hr`: Oracle's sample HR schema, from its tables saved as CSV.

How the tables become Renshi's model:
- countries with at least one location become group branches (code = country code), and
  each location a branch under its country (code "US-1700", named after the city, with the
  street address). Currency comes from CLDR through Babel (the country's current tender),
  the locale from CLDR's likely language of the country. The time zone is the country's
  only IANA zone; for countries with several (US, Canada, Australia, Brazil, Mexico, but also
  Germany and China, whose second zones are tiny) it is chosen per location from its state
  or city in `LOCATION_ZONES`. A country branch takes the zone of its first location.
  Countries without a location become no branch; the report lists them.
- departments become org units (code "DEPT-90") under one company unit named after the
  tenant (code "ORACLE-HR"), each in its location's branch; empty departments are kept.
  Employees without a department sit in the unit "No department" (code "DEPT-NONE") and
  have no branch; the report names each of them.
- jobs become job levels (code = job id). The rank is the order of the jobs' minimum
  salaries (1 = lowest; equal minimums share a rank); the pay band is min/max salary in the
  currency of the branch where most of the job's holders work.
- reporting lines: every manager (of an employee or of a department) holds a position of
  their own ("SEAT-100"); everyone else holds the position of their job in their department
  under their manager ("IT_PROG@60>103"). A department's head position is its manager's.
- job_history becomes past events: the hire on the earliest known date (the hire date or
  the first job's start), then a promotion (to a job of higher rank) or a transfer for
  each later job, and finally the current job on the day after the last one ended, with a
  salary change to the current salary. Past jobs are positions of their own ("AC_MGR@110")
  reporting to the department's head. The salary, in the branch's currency (employees
  without a branch: the currency of their job's pay band), is monthly; the commission
  percentage has no place in the model and is not imported, nor is the e-mail column,
  which holds a mailbox name without a domain.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.core import get_global
from babel.numbers import get_territory_currencies

from domain.errors import DomainError
from domain.imports.loader import Loader, PersonDraft
from domain.imports.report import ImportReport, Problem
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

# Locations in countries with more than one time zone, by (country, state or city).
LOCATION_ZONES = {
    ("US", "Texas"): "America/Chicago",
    ("US", "California"): "America/Los_Angeles",
    ("US", "New Jersey"): "America/New_York",
    ("US", "Washington"): "America/Los_Angeles",
    ("CA", "Ontario"): "America/Toronto",
    ("CA", "Yukon"): "America/Whitehorse",
    ("AU", "New South Wales"): "Australia/Sydney",
    ("BR", "Sao Paulo"): "America/Sao_Paulo",
    ("MX", "Distrito Federal"): "America/Mexico_City",
    ("DE", "Bavaria"): "Europe/Berlin",
    ("CN", "Beijing"): "Asia/Shanghai",
}
FILES = ("countries", "locations", "departments", "jobs", "employees", "job_history")
NO_DEPARTMENT = "NONE"


@dataclasses.dataclass(frozen=True)
class _Job:
    id: str
    title: str
    low: Decimal
    high: Decimal


def _read(directory: Path, name: str) -> list[dict[str, str]]:
    path = directory / f"{name}.csv"
    if not path.exists():
        raise DomainError(N_("{value} is missing from the directory."), value=path.name)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def zone_of(country: str, state: str, city: str) -> str:
    """The IANA time zone of a location, by the rule in the module docstring."""
    zones = get_global("territory_zones").get(country, [])
    if len(zones) == 1:
        return str(zones[0])
    for place in (state, city):
        if (country, place) in LOCATION_ZONES:
            return LOCATION_ZONES[country, place]
    raise DomainError(
        N_("{value} is in a country with several time zones; its zone is not known."),
        value=f"{city}, {country}",
    )


def currency_of(country: str) -> str:
    return str(get_territory_currencies(country)[0])


def locale_of(country: str) -> str:
    return str(Locale.parse(f"und_{country}"))


class OracleImport:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tenant = current_tenant()
        self.report = ImportReport(source=directory.name)

    async def run(self) -> ImportReport:
        try:
            tables = {name: _read(self.directory, name) for name in FILES}
            self.report.rows = sum(len(rows) for rows in tables.values())
            async with tenant_session() as session:
                loader = Loader(session, self.report)
                await loader.prepare()
                self._load(loader, tables)
                await loader.people(self._people(tables), source=f"oracle-hr:{self.directory}")
                if self.report.rejected:
                    raise _Rejected()
                loader.summary("import.oracle_hr", self.directory.name)
                await loader.writer.flush()
        except _Rejected:
            pass
        except DomainError as error:
            self.report.add(Problem.of(None, error.field, None, error))
        if self.report.rejected:
            self.report.created.clear()
        return self.report

    def _load(self, loader: Loader, tables: dict[str, list[dict[str, str]]]) -> None:
        employees = tables["employees"]
        history = defaultdict(list)
        for row in tables["job_history"]:
            history[row["employee_id"]].append(row)
        for rows in history.values():
            rows.sort(key=lambda r: r["start_date"])
        self.history = history
        self.employees = {e["employee_id"]: e for e in employees}
        dates = [_date(e["hire_date"]) for e in employees]
        dates += [_date(r["start_date"]) for r in tables["job_history"]]
        self.opened = min(dates)
        self.departments = {d["department_id"]: d for d in tables["departments"]}
        self.jobs = {
            j["job_id"]: _Job(
                j["job_id"], j["job_title"], _money(j["min_salary"]), _money(j["max_salary"])
            )
            for j in tables["jobs"]
        }

        # Branches: one per location, under one per country.
        locations = sorted(tables["locations"], key=lambda r: int(r["location_id"]))
        names = {c["country_id"]: c["country_name"] for c in tables["countries"]}
        self.branch_of_location: dict[str, uuid.UUID] = {}
        self.currency_of_location: dict[str, str] = {}
        country_branch: dict[str, uuid.UUID] = {}
        for location in locations:
            country = location["country_id"]
            zone = zone_of(country, location["state_province"], location["city"])
            if country not in country_branch:
                country_branch[country] = loader.branch(
                    code=country,
                    name=names.get(country, country),
                    country=country,
                    currency=currency_of(country),
                    zone=zone,
                    locale=locale_of(country),
                )
            address = ", ".join(
                p
                for p in (
                    location["street_address"],
                    " ".join(p for p in (location["postal_code"], location["city"]) if p),
                    location["state_province"],
                )
                if p
            )
            self.branch_of_location[location["location_id"]] = loader.branch(
                code=f"{country}-{location['location_id']}",
                name=location["city"],
                country=country,
                currency=currency_of(country),
                zone=zone,
                locale=locale_of(country),
                address=address,
                parent_id=country_branch[country],
            )
            self.currency_of_location[location["location_id"]] = currency_of(country)
        without = sorted(set(names) - set(country_branch))
        if without:
            self.report.note(
                N_("{count} countries have no location and became no branch: {codes}."),
                count=len(without),
                codes=", ".join(without),
            )

        # Units: a company with the departments under it.
        head_office = self.departments["90"]["location_id"] if "90" in self.departments else None
        root_branch = self.branch_of_location[head_office or locations[0]["location_id"]]
        self.root_currency = self.currency_of_location[head_office or locations[0]["location_id"]]
        root = loader.org_unit(
            code="ORACLE-HR",
            name=self.tenant.name,
            kind="company",
            branch_id=root_branch,
            valid_from=self.opened,
        )
        self.unit_of: dict[str, uuid.UUID] = {}
        for department in sorted(self.departments.values(), key=lambda d: int(d["department_id"])):
            self.unit_of[department["department_id"]] = loader.org_unit(
                code=f"DEPT-{department['department_id']}",
                name=department["department_name"],
                kind="department",
                branch_id=self.branch_of_location[department["location_id"]],
                parent_id=root,
                valid_from=self.opened,
            )
        if any(not e["department_id"] for e in employees):
            self.unit_of[NO_DEPARTMENT] = loader.org_unit(
                code=f"DEPT-{NO_DEPARTMENT}",
                name="No department",
                kind="unit",
                branch_id=root_branch,
                parent_id=root,
                valid_from=self.opened,
            )

        # Job levels: ranked by minimum salary, banded in their holders' usual currency.
        minimums = sorted({job.low for job in self.jobs.values()})
        holders: dict[str, Counter[str]] = defaultdict(Counter)
        for employee in employees:
            place = self._location(employee["department_id"])
            if place:
                holders[employee["job_id"]][place] += 1
        self.level_of: dict[str, uuid.UUID] = {}
        self.rank_of: dict[str, int] = {}
        self.level_currency: dict[str, str] = {}
        for job in self.jobs.values():
            common = holders[job.id].most_common()
            currency = (
                self.currency_of_location[min(common, key=lambda c: (-c[1], int(c[0])))[0]]
                if common
                else self.root_currency
            )
            self.rank_of[job.id] = minimums.index(job.low) + 1
            self.level_currency[job.id] = currency
            self.level_of[job.id] = loader.job_level(
                code=job.id,
                rank=self.rank_of[job.id],
                title=job.title,
                pay_min=job.low,
                pay_max=job.high,
                currency=currency,
            )

        # Positions: a seat for every manager, top-down, then shared and past positions.
        managers = {e["manager_id"] for e in employees if e["manager_id"]}
        managers |= {d["manager_id"] for d in self.departments.values() if d["manager_id"]}
        self.seat: dict[str, uuid.UUID] = {}
        for number in sorted(managers, key=lambda n: (self._depth(n), int(n))):
            employee = self.employees[number]
            self.seat[number] = loader.position(
                code=f"SEAT-{number}",
                title=self.jobs[employee["job_id"]].title,
                unit_id=self._unit(employee["department_id"]),
                level_id=self.level_of[employee["job_id"]],
                reports_to_id=self.seat.get(employee["manager_id"]),
                opened_on=self.opened,
            )
        for department in self.departments.values():
            if department["manager_id"]:
                loader.set_head(
                    self.unit_of[department["department_id"]], self.seat[department["manager_id"]]
                )
        self.current: dict[str, uuid.UUID] = {}
        shared: Counter[str] = Counter()
        for employee in employees:
            if employee["employee_id"] not in self.seat:
                shared[self._shared_code(employee)] += 1
        for employee in sorted(employees, key=lambda e: int(e["employee_id"])):
            number = employee["employee_id"]
            if number in self.seat:
                self.current[number] = self.seat[number]
                continue
            code = self._shared_code(employee)
            self.current[number] = loader.position(
                code=code,
                title=self.jobs[employee["job_id"]].title,
                unit_id=self._unit(employee["department_id"]),
                level_id=self.level_of[employee["job_id"]],
                reports_to_id=self.seat.get(employee["manager_id"]),
                opened_on=self.opened,
                headcount=shared[code],
            )
        self.past: dict[tuple[str, str], uuid.UUID] = {}
        for rows in self.history.values():
            for row in rows:
                key = (row["job_id"], row["department_id"])
                if key in self.past:
                    continue
                head = self.departments[row["department_id"]]["manager_id"]
                self.past[key] = loader.position(
                    code=f"{row['job_id']}@{row['department_id']}",
                    title=self.jobs[row["job_id"]].title,
                    unit_id=self._unit(row["department_id"]),
                    level_id=self.level_of[row["job_id"]],
                    reports_to_id=self.seat.get(head),
                    opened_on=self.opened,
                )
        for employee in employees:
            if not employee["department_id"]:
                self.report.note(
                    N_(
                        "Employee {number} ({name}) has no department: placed in the unit"
                        ' "No department", with no branch.'
                    ),
                    number=employee["employee_id"],
                    name=f"{employee['first_name']} {employee['last_name']}",
                )

    def _people(self, tables: dict[str, list[dict[str, str]]]) -> Any:
        for index, employee in enumerate(tables["employees"], start=2):
            yield self._person(index, employee)

    def _person(self, row: int, employee: dict[str, str]) -> PersonDraft:
        number = employee["employee_id"]
        past = self.history.get(number, [])
        hired = _date(employee["hire_date"])
        start = min([hired, *(_date(r["start_date"]) for r in past)])
        draft = PersonDraft(
            row=row,
            number=number,
            given_name=employee["first_name"],
            family_name=employee["last_name"],
            hire_date=start,
            phone=employee["phone_number"] or None,
        )
        salary = {
            "salary_amount": _money(employee["salary"]),
            "salary_currency": self._currency(employee),
            "salary_period": "month",
        }
        now = (employee["job_id"], employee["department_id"])
        # (day, job, department, position) for each job held, in order.
        jobs: list[tuple[dt.date, str, str, uuid.UUID]] = []
        if not past or hired < _date(past[0]["start_date"]):
            jobs.append((start, *now, self.current[number]))
        for record in past:
            key = (record["job_id"], record["department_id"])
            jobs.append((_date(record["start_date"]), *key, self.past[key]))
        if past:
            resumed = _date(past[-1]["end_date"]) + dt.timedelta(days=1)
            jobs.append((resumed, *now, self.current[number]))
        previous: str | None = None
        for day, job, department, position in jobs:
            placement = {"branch_id": self._branch(department), "position_id": position}
            if previous is None:
                draft.event(
                    "hire", day, status="active", **placement, **(salary if not past else {})
                )
            else:
                up = self.rank_of[job] > self.rank_of[previous]
                draft.event("promotion" if up else "transfer", day, **placement)
            previous = job
        if past:
            draft.event("salary_change", jobs[-1][0], **salary)
        return draft

    def _location(self, department: str) -> str | None:
        return self.departments[department]["location_id"] if department else None

    def _branch(self, department: str) -> uuid.UUID | None:
        location = self._location(department)
        return self.branch_of_location[location] if location else None

    def _currency(self, employee: dict[str, str]) -> str:
        location = self._location(employee["department_id"])
        if location:
            return self.currency_of_location[location]
        return self.level_currency[employee["job_id"]]

    def _unit(self, department: str) -> uuid.UUID:
        return self.unit_of[department or NO_DEPARTMENT]

    def _shared_code(self, employee: dict[str, str]) -> str:
        department = employee["department_id"] or NO_DEPARTMENT
        return f"{employee['job_id']}@{department}>{employee['manager_id']}"

    def _depth(self, number: str) -> int:
        depth, seen = 0, {number}
        manager = self.employees[number]["manager_id"]
        while manager and manager not in seen:
            seen.add(manager)
            depth += 1
            manager = self.employees[manager]["manager_id"]
        return depth


class _Rejected(Exception):
    """Raised inside the transaction so that a rejected run rolls back."""


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _money(value: str) -> Decimal:
    return Decimal(value)


async def import_oracle_hr(directory: Path) -> ImportReport:
    """Load the Oracle HR sample in `directory` into the current tenant."""
    return await OracleImport(directory).run()


__all__ = ["LOCATION_ZONES", "import_oracle_hr", "zone_of"]
