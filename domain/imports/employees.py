"""`renshi import employees`: upsert employees from a CSV or XLSX file and a column mapping.

Rows are streamed in three passes, so memory grows only with the set of employee numbers
and the positions made, never with whole rows:
1. every cell is checked with the domain's own rules, duplicate employee numbers and
   new employees' missing fields are reported, and manager references are collected; the
   checked rows go to a temporary spool file, and new employees' own rows are copied
   already (they depend on nothing later, and a later problem rolls them back too);
2. managers are matched, by employee number and then by name, in the file (read again,
   lightly) and among the tenant's employees; reporting loops are reported;
3. the spooled rows are written in batches inside one transaction: new employees get a
   hire event, existing ones an event for each fact that changed (on the effective date),
   and the periods of both are rebuilt from their events with `replay`.
Any problem rejects the whole file and the transaction is rolled back. A dry run does all
three passes and rolls back at the end, so it reports exactly what a real run would.

Reporting lines follow positions, so the importer places people in positions:
- someone who manages anyone in the file holds a position of their own (a "seat"), keyed
  by unit, title, the position it reports to and the holder;
- everyone else holds the position shared by everyone with the same unit, title and
  manager (one position per job title per org unit per manager);
- an existing employee whose current position already has that unit, title and reporting
  line keeps it, so positions created through the API are reused, not duplicated.
A manager who is not in the file keeps their current position, which must be theirs alone.

Employment facts (branch, unit, position, job level, salary, status) are never edited in
place: a change becomes a transfer, promotion (a higher job level rank), salary change,
leave start or end, or status change. Identity facts (names, e-mail, phone, birth date,
national ID, bank account) have no history and are updated in place with an audit entry.
An empty cell leaves the recorded value as it is. Hire dates are not changed by imports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import pickle
import re
import tempfile
import time
import uuid
from array import array
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import crypto
from domain.clock import local_today
from domain.errors import DomainError
from domain.imports.bulk import (
    BATCH,
    LOOKUP,
    BulkWriter,
    DraftEvent,
    derive_periods,
    load_events,
    new_id,
    plan_for_growing_tables,
    state_on,
)
from domain.imports.dates import parse_date
from domain.imports.files import Row, RowSource, cell_text
from domain.imports.mapping import Mapping
from domain.imports.report import ImportRejected, ImportReport, Problem
from domain.organisation.models import Branch, JobLevel, Position
from domain.people.actions import (
    SalaryInput,
    check_birth_before_hire,
    check_hire_status,
    checked_salary,
    employee_number,
    search_text_of,
    work_email,
)
from domain.people.history import PositionFacts, State
from domain.people.models import STATUSES, Employee, EmployeePeriod
from domain.validation import optional_text, required_text
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

_IDENTITY = (
    "given_name",
    "family_name",
    "local_name",
    "preferred_name",
    "work_email",
    "phone",
    "birth_date",
)
_SECRETS = ("national_id", "bank_account")
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")


class _DryRun(Exception):
    """Raised at the end of a dry run so that the transaction rolls back."""


class _Ref(NamedTuple):
    """A branch or job level found by code (a tuple: rows carry it to the spool and back)."""

    id: uuid.UUID
    currency: str | None = None
    rank: int | None = None


@dataclasses.dataclass(slots=True)
class Parsed:
    """One row's values after the domain's checks; None where the cell was empty."""

    row: int
    number: str
    values: dict[str, Any]
    failed: frozenset[str] = frozenset()  # fields whose cells broke a rule
    id: uuid.UUID | None = None  # a new employee's id, once their row is copied

    def get(self, field: str) -> Any:
        return self.values.get(field)


@dataclasses.dataclass(frozen=True, slots=True)
class _PositionKey:
    unit_id: uuid.UUID
    title: str
    reports_to_id: uuid.UUID | None
    holder: str | None  # the employee number of a manager's own seat

    @property
    def code(self) -> str:
        raw = f"{self.unit_id}|{self.title.casefold()}|{self.reports_to_id or ''}|{self.holder}"
        digest = hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()
        return f"seat-{self.holder}-{digest[:8]}" if self.holder else f"pos-{digest}"


@dataclasses.dataclass
class _Catalog:
    """The tenant's reference data, loaded once: small next to the employees."""

    branches: dict[str, _Ref]
    units_by_code: dict[str, uuid.UUID]
    units_by_name: dict[str, set[uuid.UUID]]
    levels: dict[str, _Ref]
    level_ranks: dict[uuid.UUID, int]
    positions: dict[uuid.UUID, Position]
    position_codes: dict[str, uuid.UUID]
    facts: dict[uuid.UUID, PositionFacts]
    # Open positions that are nobody's seat, by (unit, title, reports-to): reused as they are.
    shared: dict[tuple[uuid.UUID, str, uuid.UUID | None], uuid.UUID]

    @classmethod
    async def load(cls, session: AsyncSession, day: dt.date) -> _Catalog:
        branches = {
            b.code.casefold(): _Ref(b.id, currency=b.currency)
            for b in await session.scalars(select(Branch))
        }
        units_by_code: dict[str, uuid.UUID] = {}
        units_by_name: dict[str, set[uuid.UUID]] = defaultdict(set)
        rows = await session.execute(
            text(
                "SELECT u.id, u.code, v.name FROM org_units u JOIN org_unit_versions v"
                " ON v.org_unit_id = u.id AND v.valid_from <= :day"
                " AND (v.valid_to IS NULL OR v.valid_to > :day)"
            ),
            {"day": day},
        )
        for unit_id, code, name in rows:
            if code:
                units_by_code[code.casefold()] = unit_id
            units_by_name[_key(name)].add(unit_id)
        levels = {
            j.code.casefold(): _Ref(j.id, rank=j.rank)
            for j in await session.scalars(select(JobLevel))
        }
        positions = {p.id: p for p in await session.scalars(select(Position))}
        return cls(
            branches=branches,
            units_by_code=units_by_code,
            units_by_name=units_by_name,
            levels=levels,
            level_ranks={ref.id: ref.rank or 0 for ref in levels.values()},
            positions=positions,
            position_codes={p.code: p.id for p in positions.values() if p.code},
            facts={p.id: PositionFacts(p.org_unit_id, p.job_level_id) for p in positions.values()},
            shared={
                (p.org_unit_id, p.title.casefold(), p.reports_to_id): p.id
                for p in sorted(positions.values(), key=lambda p: p.opened_on, reverse=True)
                if p.closed_on is None and not (p.code or "").startswith("seat-")
            },
        )


@dataclasses.dataclass
class _Existing:
    id: uuid.UUID
    hire_date: dt.date


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


class EmployeeImport:
    """One run of the employee import over one file; `run()` fills and returns the report."""

    def __init__(
        self, path: Path, mapping: Mapping, *, dry_run: bool = False, today: dt.date | None = None
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.dry_run = dry_run
        self.tenant = current_tenant()
        self.today = today or local_today(self.tenant.time_zone)
        self.effective = mapping.effective_date or self.today
        self.report = ImportReport(source=path.name, dry_run=dry_run)
        self.source = RowSource(
            path,
            encoding=mapping.encoding,
            delimiter=mapping.delimiter,
            sheet=mapping.sheet,
            header_row=mapping.header_row,
        )
        self.earliest = self.effective
        self.numbers: set[str] = set()
        self.manager_refs: dict[str, array[int]] = {}
        self.managers: dict[str, str] = {}  # manager reference -> employee number
        self.seats: dict[str, uuid.UUID] = {}  # manager in the file -> their seat
        self.outside_managers: dict[str, uuid.UUID] = {}  # manager not in the file -> position
        self.made_positions = False
        self.position_ids: dict[_PositionKey, uuid.UUID] = {}
        self.existing_numbers: set[str] = set()  # numbers of the file already recorded
        # (field, column, default) of each field the mapping uses, in parsing order.
        self._plan = [
            (field, mapping.columns.get(field), mapping.defaults.get(field))
            for field in _FIELD_ORDER
            if field in mapping.columns or field in mapping.defaults
        ]
        self.pending_positions: list[dict[str, Any]] = []

    async def run(self) -> ImportReport:
        try:
            with tempfile.TemporaryFile() as spool:
                self.spool = spool
                await self._run()
        except (ImportRejected, _DryRun):
            pass
        except DomainError as error:  # a file-level problem: encoding, sheet, header
            self.report.add(Problem.of(None, None, None, error))
        if self.report.rejected:
            self.report.created.clear()
            self.report.changed.clear()
            self.report.unchanged.clear()
        return self.report

    async def _run(self) -> None:
        async with tenant_session() as session:
            await plan_for_growing_tables(session)
            self.writer = BulkWriter(session)
            started = time.perf_counter()
            self.catalog = await _Catalog.load(session, self.effective)
            await self._check(session)
            logger.debug("Checked %d rows in %.1f s.", self.report.rows, _since(started))
            await self._match_managers(session)
            logger.debug("Matched managers after %.1f s.", _since(started))
            if not self.report.rejected:
                await self._write(session)
                logger.debug("Wrote the rows after %.1f s.", _since(started))
            if self.report.rejected:
                raise ImportRejected()
            if self.dry_run:
                raise _DryRun()

    # --- pass 1: cells, duplicates, required fields -----------------------------------------

    async def _check(self, session: AsyncSession) -> None:
        self._check_columns()
        if self.report.rejected:
            return
        writer = self.writer
        for chunk in _chunks(self._parsed_rows(count=True), BATCH):
            await writer.wait()
            existing = await self._existing(session, [p.number for p in chunk])
            self.existing_numbers.update(existing)
            for parsed in chunk:
                problems = self.report.problem_count
                self._check_row(parsed, existing.get(parsed.number))
                if parsed.failed:
                    continue
                # NOTE: a new employee's own row needs nothing from later passes, so it is
                # copied now, while the database would otherwise idle; a problem anywhere
                # later still rolls it back with the rest.
                clean = self.report.problem_count == problems and not self.report.rejected
                if clean and parsed.number not in existing:
                    parsed.id = new_id()
                    writer.employee(self._employee_row(parsed))
                # Checked rows wait on disk for the writing pass: no second parse, and
                # memory stays flat.
                record = (parsed.row, parsed.number, parsed.values, parsed.id)
                pickle.dump(record, self.spool, protocol=pickle.HIGHEST_PROTOCOL)
            if not self.report.rejected:
                await writer.flush_if_full()
        await writer.wait()
        if not self.report.rejected:
            await writer.flush()

    def _check_columns(self) -> None:
        present = set(self.source.header())
        for field, column in self.mapping.columns.items():
            if column not in present:
                self.report.add(
                    Problem(
                        1,
                        column,
                        None,
                        N_("The file has no column {value} (mapped to {field})."),
                        {"value": column, "field": field},
                    )
                )

    def _check_row(self, parsed: Parsed, existing: _Existing | None) -> None:
        number = parsed.number
        if number in self.numbers:
            self._problem(
                parsed.row,
                "employee_number",
                number,
                N_("Employee number {value} appears more than once in the file."),
                value=number,
            )
            return
        self.numbers.add(number)
        hire = parsed.get("hire_date")
        if existing is None:
            for field in ("given_name", "family_name", "hire_date", "branch"):
                if parsed.get(field) is None and field not in parsed.failed:
                    self._problem(parsed.row, field, None, N_("A new employee needs this field."))
            status = parsed.get("status") or "active"
            self._guard(parsed.row, "status", status, lambda: check_hire_status(status))
        else:
            if hire is not None and hire != existing.hire_date:
                self._problem(
                    parsed.row,
                    "hire_date",
                    hire.isoformat(),
                    N_("The recorded hire date is {date}; imports do not change hire dates."),
                    date=existing.hire_date.isoformat(),
                )
            hire = existing.hire_date
        birth = parsed.get("birth_date")
        if birth is not None and hire is not None:
            self._guard(
                parsed.row, "birth_date", birth, lambda: check_birth_before_hire(birth, hire)
            )
        if hire is not None and hire < self.earliest:
            self.earliest = hire
        unit_missing = parsed.get("org_unit") is None and "org_unit" not in parsed.failed
        if parsed.get("job_title") is not None and unit_missing and not existing:
            self._problem(parsed.row, "org_unit", None, N_("A position needs an org unit."))
        if parsed.get("salary") is not None:
            self._guard(
                parsed.row,
                "salary",
                parsed.get("salary"),
                lambda: self._salary(parsed, parsed.get("branch"), None),
            )
        reference = parsed.get("manager")
        if reference is not None:
            if reference == number:
                self._problem(
                    parsed.row, "manager", reference, N_("An employee cannot manage themself.")
                )
            elif parsed.get("job_title") is None and existing is None and not parsed.failed:
                self._problem(
                    parsed.row,
                    "job_title",
                    None,
                    N_("A job title is needed to place the employee under a manager."),
                )
            else:
                self.manager_refs.setdefault(reference, array("I")).append(parsed.row)

    async def _existing(self, session: AsyncSession, numbers: list[str]) -> dict[str, _Existing]:
        found: dict[str, _Existing] = {}
        for start in range(0, len(numbers), LOOKUP):
            rows = await session.execute(
                select(Employee.employee_number, Employee.id, Employee.hire_date).where(
                    Employee.employee_number.in_(numbers[start : start + LOOKUP])
                )
            )
            found.update({number: _Existing(eid, hired) for number, eid, hired in rows})
        return found

    # --- parsing ------------------------------------------------------------------------------

    def _spooled(self) -> Iterator[Parsed]:
        self.spool.seek(0)
        while True:
            try:
                row, number, values, ident = pickle.load(self.spool)  # noqa: S301  (ours)
            except EOFError:
                return
            yield Parsed(row, number, values, id=ident)

    def _parsed_rows(self, *, count: bool = False) -> Iterator[Parsed]:
        for row in self.source.rows():
            if count:
                self.report.rows += 1
            parsed = self._parse(row, report=count)
            if parsed is not None:
                yield parsed

    def _parse(self, row: Row, *, report: bool) -> Parsed | None:
        values: dict[str, Any] = {}
        failed: set[str] = set()
        cells = row.cells
        for field, column, default in self._plan:
            raw = cells.get(column) if column is not None else None
            if raw is None or raw == "":
                raw = default
                if raw is None:
                    continue
            try:
                values[field] = self._value(field, raw, values)
            except DomainError as error:
                failed.add(field)
                if report:
                    column = self._column(field, row)
                    self.report.add(Problem.of(row.number, column, cell_text(raw), error))
        number = values.get("employee_number")
        if number is None:
            if "employee_number" not in failed and report:
                self._problem(row.number, "employee_number", None, N_("This field is required."))
            return None
        return Parsed(row.number, number, values, frozenset(failed))

    def _column(self, field: str, row: Row) -> str:
        column = self.mapping.columns.get(field)
        if column is not None and row.cells.get(column) not in (None, ""):
            return column
        return column or f"[defaults] {field}"

    def _value(self, field: str, raw: Any, values: dict[str, Any]) -> Any:
        order = self.mapping.date_order
        match field:
            case "employee_number":
                return employee_number(cell_text(raw))
            case "given_name" | "family_name":
                return required_text(cell_text(raw), field, max_length=100)
            case "local_name" | "preferred_name":
                return optional_text(cell_text(raw), field, max_length=100)
            case "work_email":
                return work_email(cell_text(raw))
            case "phone":
                return optional_text(cell_text(raw), field, max_length=40)
            case "national_id" | "bank_account":
                return optional_text(cell_text(raw), field)
            case "birth_date":
                return parse_date(raw, today=self.today, order=order, birth=True)
            case "hire_date" | "effective_date":
                return parse_date(raw, today=self.today, order=order)
            case "branch":
                return self._lookup(
                    self.catalog.branches, raw, N_("No branch has the code {value}.")
                )
            case "job_level":
                return self._lookup(
                    self.catalog.levels, raw, N_("No job level has the code {value}.")
                )
            case "org_unit":
                return self._unit(cell_text(raw))
            case "job_title":
                return required_text(cell_text(raw), field)
            case "manager":
                return " ".join(cell_text(raw).split())
            case "salary":
                text = cell_text(raw).replace(" ", "")
                if _THOUSANDS.fullmatch(text):
                    text = text.replace(",", "")
                try:
                    return Decimal(text)
                except ArithmeticError as exc:
                    raise DomainError(N_("{value} is not a number."), value=text) from exc
            case "salary_currency":
                return cell_text(raw).upper()
            case "salary_period":
                return cell_text(raw).lower()
            case "status":
                status = re.sub(r"[\s-]+", "_", cell_text(raw).casefold())
                if status not in STATUSES:
                    raise DomainError(
                        N_("{value} is not a status: onboarding, active, on_leave or offboarding."),
                        value=cell_text(raw),
                    )
                if status == "terminated":
                    raise DomainError(
                        N_("An import cannot terminate an employee; offboarding does that.")
                    )
                return status
        raise AssertionError(field)

    def _lookup(self, table: dict[str, _Ref], raw: Any, message: str) -> _Ref:
        found = table.get(cell_text(raw).casefold())
        if found is None:
            raise DomainError(message, value=cell_text(raw))
        return found

    def _unit(self, value: str) -> uuid.UUID:
        unit = self.catalog.units_by_code.get(value.casefold())
        if unit is not None:
            return unit
        named = self.catalog.units_by_name.get(_key(value), set())
        if len(named) == 1:
            return next(iter(named))
        if named:
            raise DomainError(
                N_("Several org units are called {value}; use the unit's code."), value=value
            )
        raise DomainError(N_("No org unit has the code or name {value}."), value=value)

    def _problem(self, row: int, field: str, shown: object, message: str, **params: object) -> None:
        column = self.mapping.columns.get(field, field)
        self.report.add(
            Problem(row, column, None if shown is None else str(shown), message, params)
        )

    def _guard(self, row: int, field: str, value: object, check: Any) -> None:
        try:
            check()
        except DomainError as error:
            column = self.mapping.columns.get(field, field)
            self.report.add(Problem.of(row, column, value, error))

    # --- pass 2: managers -----------------------------------------------------------------

    async def _match_managers(self, session: AsyncSession) -> None:
        if not self.manager_refs:
            return
        refs = set(self.manager_refs)
        by_name: dict[str, set[str]] = defaultdict(set)
        by_number: dict[str, str] = {}
        rows_of: dict[str, Parsed] = {}
        wanted = {_key(r): r for r in refs}
        number_column = self.mapping.columns["employee_number"]
        name_columns = [
            (field, self.mapping.columns.get(field), self.mapping.defaults.get(field))
            for field in ("given_name", "family_name", "local_name", "preferred_name")
        ]
        # A light pass: only rows whose number or name is referenced are parsed in full.
        for line in self.source.rows():
            number = cell_text(line.cells.get(number_column))
            names = _names(
                {f: cell_text(line.cells.get(c)) if c else d for f, c, d in name_columns}
            )
            hits = [wanted[n] for n in names if n in wanted]
            if number not in refs and not hits:
                continue
            parsed = self._parse(line, report=False)
            if parsed is None:
                continue
            if parsed.number in refs:
                by_number[parsed.number] = parsed.number
            for reference in hits:
                by_name[reference].add(parsed.number)
            rows_of[parsed.number] = parsed
        unresolved = {key: ref for key, ref in wanted.items() if ref not in by_number}
        outside = await self._managers_outside(session, refs - set(by_number), unresolved)
        for number, names in outside.items():
            if number in refs:
                by_number.setdefault(number, number)
            for name in names:
                by_name[wanted[name]].add(number)
        for reference, rows in self.manager_refs.items():
            matched = by_number.get(reference)
            candidates = by_name.get(reference, set())
            if matched is None and len(candidates) == 1:
                matched = next(iter(candidates))
            if matched is not None:
                self.managers[reference] = matched
                continue
            for row in rows:
                if candidates:
                    self._problem(
                        row,
                        "manager",
                        reference,
                        N_("{value} names several employees ({numbers}); use the employee number."),
                        value=reference,
                        numbers=", ".join(sorted(candidates)),
                    )
                else:
                    self._problem(
                        row,
                        "manager",
                        reference,
                        N_("No employee has the number or name {value}."),
                        value=reference,
                    )
        if not self.report.rejected:
            await self._plan_seats(session, rows_of)

    async def _managers_outside(
        self, session: AsyncSession, numbers: set[str], names: dict[str, str]
    ) -> dict[str, set[str]]:
        """Employees of the tenant, not only of the file, whom a reference may name."""
        if not numbers and not names:
            return {}
        # One array parameter per list: a file may name tens of thousands of managers.
        rows = await session.execute(
            text(
                "SELECT employee_number, given_name, family_name, local_name, preferred_name"
                " FROM employees WHERE employee_number = ANY(CAST(:numbers AS text[]))"
                " OR lower(given_name || ' ' || family_name) = ANY(CAST(:keys AS text[]))"
                " OR lower(family_name || ' ' || given_name) = ANY(CAST(:keys AS text[]))"
                " OR lower(local_name) = ANY(CAST(:keys AS text[]))"
                " OR lower(preferred_name) = ANY(CAST(:keys AS text[]))"
                " OR lower(preferred_name || ' ' || family_name) = ANY(CAST(:keys AS text[]))"
            ),
            {"numbers": sorted(numbers), "keys": sorted(names)},
        )
        found: dict[str, set[str]] = {}
        for number, given, family, local, preferred_name in rows:
            if number in self.numbers:
                continue  # the file's row is the truth about this person
            values = {
                "given_name": given,
                "family_name": family,
                "local_name": local,
                "preferred_name": preferred_name,
            }
            found[number] = {n for n in _names(values) if n in names}
        return found

    async def _plan_seats(self, session: AsyncSession, rows_of: dict[str, Parsed]) -> None:
        """Give every manager in the file a seat, top-down; loops in the line are problems."""
        managed = set(self.managers.values())
        in_file = {n for n in managed if n in self.numbers}
        for number in managed - in_file:
            await self._outside_manager(session, number)
        existing = await self._existing(session, sorted(in_file))
        states = await self._states(session, [e.id for e in existing.values()])
        order = self._top_down(in_file, rows_of)
        for number in order:
            parsed = rows_of[number]
            current = existing.get(number)
            state = states.get(current.id) if current else None
            unit, title = self._unit_and_title(parsed, state)
            if unit is None or title is None:
                self._problem(
                    parsed.row,
                    "job_title" if unit is not None else "org_unit",
                    None,
                    N_("A manager needs an org unit and a job title for their position."),
                )
                continue
            reports_to = self._position_of_manager(parsed.get("manager"))
            key = _PositionKey(unit, title, reports_to, number)
            self.seats[number] = self._position(key)

    def _top_down(self, in_file: set[str], rows_of: dict[str, Parsed]) -> list[str]:
        order: list[str] = []
        done: set[str] = set()
        for start in sorted(in_file):
            path: list[str] = []
            number: str | None = start
            while number is not None and number in in_file and number not in done:
                if number in path:
                    for looped in path[path.index(number) :]:
                        self._problem(
                            rows_of[looped].row,
                            "manager",
                            rows_of[looped].get("manager"),
                            N_("The reporting line loops back to this employee."),
                        )
                        done.add(looped)
                    path = []
                    break
                path.append(number)
                reference = rows_of[number].get("manager")
                number = self.managers.get(reference) if reference else None
            for number in reversed(path):
                done.add(number)
                order.append(number)
        return order

    async def _outside_manager(self, session: AsyncSession, number: str) -> None:
        row = await session.execute(
            select(EmployeePeriod.position_id)
            .join(Employee, Employee.id == EmployeePeriod.employee_id)
            .where(
                Employee.employee_number == number,
                EmployeePeriod.valid_from <= self.effective,
                or_(EmployeePeriod.valid_to.is_(None), EmployeePeriod.valid_to > self.effective),
            )
        )
        position = row.scalar()
        holders = 0
        if position is not None:
            holders = (
                await session.scalar(
                    select(func.count())
                    .select_from(EmployeePeriod)
                    .where(
                        EmployeePeriod.position_id == position,
                        EmployeePeriod.status != "terminated",
                        EmployeePeriod.valid_from <= self.effective,
                        or_(
                            EmployeePeriod.valid_to.is_(None),
                            EmployeePeriod.valid_to > self.effective,
                        ),
                    )
                )
                or 0
            )
        if position is None or holders > 1:
            for reference, target in self.managers.items():
                if target != number:
                    continue
                for row_number in self.manager_refs[reference]:
                    self._problem(
                        row_number,
                        "manager",
                        reference,
                        N_(
                            "{value} holds no position of their own, so nobody can report to"
                            " them; give them one first."
                        ),
                        value=reference,
                    )
            return
        self.outside_managers[number] = position

    def _position_of_manager(self, reference: str | None) -> uuid.UUID | None:
        if reference is None:
            return None
        number = self.managers[reference]
        return self.seats.get(number) or self.outside_managers.get(number)

    def _unit_and_title(
        self, parsed: Parsed, state: State | None
    ) -> tuple[uuid.UUID | None, str | None]:
        current = (
            self.catalog.positions.get(state.position_id) if state and state.position_id else None
        )
        unit = parsed.get("org_unit") or (state.org_unit_id if state else None)
        title = parsed.get("job_title") or (current.title if current else None)
        return unit, title

    # --- pass 3: writing ----------------------------------------------------------------------

    async def _states(
        self, session: AsyncSession, employee_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, State]:
        events = await load_events(session, employee_ids)
        states: dict[uuid.UUID, State] = {}
        for employee_id, recorded in events.items():
            state = state_on(recorded, self.catalog.facts, self.effective)
            if state is not None:
                states[employee_id] = state
        return states

    async def _write(self, session: AsyncSession) -> None:
        writer = self.writer
        self._flush_positions(writer)
        for chunk in _chunks(self._spooled(), BATCH):
            numbers = [p.number for p in chunk if p.number in self.existing_numbers]
            employees: dict[str, Employee] = {}
            events: dict[uuid.UUID, list[Any]] = {}
            if numbers:  # only then does the chunk need the session before the last batch
                await writer.wait()
                for start in range(0, len(numbers), LOOKUP):
                    found = await session.scalars(
                        select(Employee).where(
                            Employee.employee_number.in_(numbers[start : start + LOOKUP])
                        )
                    )
                    employees.update((e.employee_number, e) for e in found)
                events = await load_events(session, [e.id for e in employees.values()])
            for index, parsed in enumerate(chunk):
                if index % 50 == 0:
                    await asyncio.sleep(0)  # let the batch in flight move on
                employee = employees.get(parsed.number)
                try:
                    if employee is None:
                        self._hire(writer, parsed)
                    else:
                        await self._update(session, writer, parsed, employee, events[employee.id])
                except DomainError as error:
                    field = _FIELD_OF_ERROR.get(error.field or "", error.field or "")
                    column = self.mapping.columns.get(field)
                    value = parsed.get(field)
                    shown = value.isoformat() if isinstance(value, dt.date) else value
                    self.report.add(Problem.of(parsed.row, column, shown, error))
            self._flush_positions(writer)
            if self.report.rejected:
                continue  # keep checking the rest of the file, write nothing more
            await writer.flush_if_full()
        await writer.wait()
        if self.report.rejected:
            return
        await writer.flush()
        logger.debug("Seconds copying by table, and waiting: %s", dict(writer.seconds))
        if self.made_positions:
            # The positions made here are those created in this transaction (now() is its
            # start); each is for as many people as hold it. They were written with a
            # headcount of 1, so only those that more people hold are written again.
            await session.execute(
                text(
                    "UPDATE positions p SET headcount = h.n FROM ("
                    " SELECT e.position_id, count(*) AS n FROM employee_periods e"
                    " JOIN positions q ON q.id = e.position_id AND q.created_at = now()"
                    " WHERE e.valid_to IS NULL AND e.status <> 'terminated'"
                    " GROUP BY e.position_id HAVING count(*) > 1) h"
                    " WHERE p.id = h.position_id"
                )
            )
        if self.report.wrote:
            writer.audit(
                "import.employees",
                "import",
                self.path.name[:64],
                after={
                    "rows": self.report.rows,
                    "created": dict(self.report.created),
                    "changed": dict(self.report.changed),
                },
            )
            await writer.flush()

    def _flush_positions(self, writer: BulkWriter) -> None:
        for values in self.pending_positions:
            writer.position(values)
        self.pending_positions.clear()

    def _placement(self, parsed: Parsed, state: State | None) -> uuid.UUID | None:
        """The position the row places the employee in (None: a unit without a position)."""
        number = parsed.number
        if number in self.seats:
            return self.seats[number]
        reference = parsed.get("manager")
        current = (
            self.catalog.positions.get(state.position_id) if state and state.position_id else None
        )
        if state is not None and not any(
            parsed.get(f) for f in ("org_unit", "job_title", "manager")
        ):
            return state.position_id
        unit, title = self._unit_and_title(parsed, state)
        if title is None or unit is None:
            if reference:
                raise DomainError(
                    N_("A job title is needed to place the employee under a manager."),
                    field="job_title",
                )
            return None
        reports_to = (
            self._position_of_manager(reference)
            if reference
            else (current.reports_to_id if current else None)
        )
        if (
            current is not None
            and current.org_unit_id == unit
            and current.title.casefold() == title.casefold()
            and current.reports_to_id == reports_to
            and not (current.code or "").startswith("seat-")
        ):
            return current.id
        return self._position(_PositionKey(unit, title, reports_to, None))

    def _position(self, key: _PositionKey) -> uuid.UUID:
        """The position of `key`, created (and audited) on first use.

        Positions made by imports have no job level: the level is the employee's, carried
        on their events, since people of several levels share a title under one manager.
        """
        found = self.position_ids.get(key) or self.catalog.position_codes.get(key.code)
        if found is None and key.holder is None:
            found = self.catalog.shared.get((key.unit_id, key.title.casefold(), key.reports_to_id))
        if found is not None:
            self.position_ids[key] = found
            return found
        position_id = new_id()
        self.pending_positions.append(
            {
                "id": position_id,
                "code": key.code,
                "title": key.title,
                "org_unit_id": key.unit_id,
                "job_level_id": None,
                "reports_to_id": key.reports_to_id,
                "headcount": 1,
                "opened_on": self.earliest,
            }
        )
        # Only what replaying needs is kept, so memory grows little with many teams.
        self.position_ids[key] = position_id
        self.catalog.facts[position_id] = PositionFacts(key.unit_id, None)
        self.made_positions = True
        self.report.created["positions"] += 1
        return position_id

    def _salary(
        self, parsed: Parsed, branch: _Ref | None, state: State | None
    ) -> tuple[Decimal, str, str] | None:
        amount = parsed.get("salary")
        if amount is None:
            return None
        default_currency = (branch.currency if branch else None) or self.tenant.currency
        period = parsed.get("salary_period") or (state.salary_period if state else None) or "month"
        money, period = checked_salary(
            SalaryInput(amount, parsed.get("salary_currency"), period), default_currency
        )
        return money.amount, money.currency, period

    def _employee_row(self, parsed: Parsed) -> dict[str, Any]:
        values = parsed.values
        row: dict[str, Any] = {
            "id": parsed.id,
            "employee_number": parsed.number,
            "given_name": values["given_name"],
            "family_name": values["family_name"],
            "local_name": values.get("local_name"),
            "preferred_name": values.get("preferred_name"),
            "work_email": values.get("work_email"),
            "phone": values.get("phone"),
            "birth_date": values.get("birth_date"),
            "national_id_encrypted": crypto.encrypt(self.tenant.id, values.get("national_id")),
            "bank_account_encrypted": crypto.encrypt(self.tenant.id, values.get("bank_account")),
            "hire_date": values["hire_date"],
        }
        row["search_text"] = search_text_of(
            given_name=row["given_name"],
            family_name=row["family_name"],
            local_name=row["local_name"],
            preferred_name=row["preferred_name"],
            employee_number=parsed.number,
            work_email=row["work_email"],
        )
        return row

    def _hire(self, writer: BulkWriter, parsed: Parsed) -> None:
        values = parsed.values
        employee_id = parsed.id
        assert employee_id is not None  # copied in the checking pass
        branch: _Ref = values["branch"]
        level: _Ref | None = values.get("job_level")
        position = self._placement(parsed, None)
        salary = self._salary(parsed, branch, None)
        hire = DraftEvent(
            employee_id=employee_id,
            kind="hire",
            effective_date=values["hire_date"],
            branch_id=branch.id,
            position_id=position,
            org_unit_id=None if position else values.get("org_unit"),
            job_level_id=level.id if level else None,
            status=values.get("status") or "active",
        )
        if salary:
            hire.salary_amount, hire.salary_currency, hire.salary_period = salary
        periods = derive_periods(employee_id, [hire], self.catalog.facts)
        writer.event(hire)
        writer.periods(employee_id, periods, replace=False)
        writer.audit(
            "employee.hire",
            "employee",
            employee_id,
            after={
                "employee_number": parsed.number,
                "hire_date": hire.effective_date,
                "branch_id": branch.id,
                "position_id": position,
                "source": f"import:{self.path.name}",
            },
        )
        self.report.created["employees"] += 1

    async def _update(
        self,
        session: AsyncSession,
        writer: BulkWriter,
        parsed: Parsed,
        employee: Employee,
        recorded: list[Any],
    ) -> None:
        day = parsed.get("effective_date") or self.effective
        state = state_on(recorded, self.catalog.facts, day)
        if state is None:
            raise DomainError(
                N_("No change can take effect before the hire date ({date})."),
                field="effective_date",
                date=day.isoformat(),
            )
        drafts = self._changes(parsed, employee, state, day)
        identity = self._identity_changes(parsed, employee)
        if not drafts and not identity:
            self.report.unchanged["employees"] += 1
            return
        if drafts:
            periods = derive_periods(employee.id, [*recorded, *drafts], self.catalog.facts)
            for draft in drafts:
                writer.event(draft)
                writer.audit(
                    f"employee.{draft.kind}", "employee", employee.id, after=draft.audit_after()
                )
            writer.periods(employee.id, periods, replace=True)
        if identity:
            before = {k: _shown(k, getattr(employee, _column_of(k))) for k in identity}
            after = {k: _shown(k, v) for k, v in identity.items()}
            columns = {_column_of(k): _stored(self.tenant.id, k, v) for k, v in identity.items()}
            merged = {f: columns.get(f, getattr(employee, f)) for f in _SEARCHED}
            columns["search_text"] = search_text_of(**merged)
            await session.execute(
                update(Employee).where(Employee.id == employee.id).values(**columns)
            )
            writer.audit("employee.update", "employee", employee.id, before=before, after=after)
        self.report.changed["employees"] += 1

    def _changes(
        self, parsed: Parsed, employee: Employee, state: State, day: dt.date
    ) -> list[DraftEvent]:
        drafts: list[DraftEvent] = []
        branch: _Ref | None = parsed.get("branch")
        level: _Ref | None = parsed.get("job_level")
        position = self._placement(parsed, state)
        branch_id = branch.id if branch else state.branch_id
        level_id = level.id if level else state.job_level_id
        unit_id = (
            self.catalog.facts[position].org_unit_id
            if position
            else (parsed.get("org_unit") or state.org_unit_id)
        )
        if (branch_id, position, unit_id, level_id) != (
            state.branch_id,
            state.position_id,
            state.org_unit_id,
            state.job_level_id,
        ):
            up = self._rank(level_id) > self._rank(state.job_level_id)
            drafts.append(
                DraftEvent(
                    employee_id=employee.id,
                    kind="promotion" if up else "transfer",
                    effective_date=day,
                    branch_id=branch_id,
                    position_id=position,
                    org_unit_id=None if position else unit_id,
                    job_level_id=level_id,
                )
            )
        currency_branch = branch or next(
            (b for b in self.catalog.branches.values() if b.id == state.branch_id), None
        )
        salary = self._salary(parsed, currency_branch, state)
        if salary and salary != (state.salary_amount, state.salary_currency, state.salary_period):
            amount, currency, period = salary
            drafts.append(
                DraftEvent(
                    employee_id=employee.id,
                    kind="salary_change",
                    effective_date=day,
                    salary_amount=amount,
                    salary_currency=currency,
                    salary_period=period,
                )
            )
        status = parsed.get("status")
        if status and status != state.status:
            drafts.append(_status_event(employee.id, state.status, status, day))
        return drafts

    def _rank(self, level_id: uuid.UUID | None) -> int:
        return self.catalog.level_ranks.get(level_id, 0) if level_id else 0

    def _identity_changes(self, parsed: Parsed, employee: Employee) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for field in _IDENTITY:
            value = parsed.get(field)
            if value is not None and value != getattr(employee, field):
                changes[field] = value
        for field in _SECRETS:
            value = parsed.get(field)
            stored = getattr(employee, f"{field}_encrypted")
            if value is not None and value != crypto.decrypt(self.tenant.id, stored):
                changes[field] = value
        return changes


_FIELD_ORDER = (
    "employee_number",
    "given_name",
    "family_name",
    "local_name",
    "preferred_name",
    "work_email",
    "phone",
    "birth_date",
    "hire_date",
    "effective_date",
    "national_id",
    "bank_account",
    "branch",
    "org_unit",
    "job_title",
    "job_level",
    "manager",
    "salary",
    "salary_currency",
    "salary_period",
    "status",
)
# Fields named by domain errors, as the mapping calls them.
_FIELD_OF_ERROR = {
    "effectiveDate": "effective_date",
    "salary.amount": "salary",
    "salary.period": "salary_period",
    "currency": "salary_currency",
}
_SEARCHED = (
    "given_name",
    "family_name",
    "local_name",
    "preferred_name",
    "employee_number",
    "work_email",
)


def _since(started: float) -> float:
    return time.perf_counter() - started


def _status_event(employee_id: uuid.UUID, current: str, wanted: str, day: dt.date) -> DraftEvent:
    if wanted == "on_leave":
        kind = "leave_start"
    elif current == "on_leave" and wanted == "active":
        kind = "leave_end"
    elif current == "on_leave":
        raise DomainError(N_("The employee is on leave; end the leave first."), field="status")
    else:
        kind = "status_change"
    return DraftEvent(
        employee_id=employee_id,
        kind=kind,
        effective_date=day,
        status=wanted if kind == "status_change" else None,
    )


def _names(values: dict[str, Any]) -> set[str]:
    given, family = values.get("given_name"), values.get("family_name")
    local, preferred = values.get("local_name"), values.get("preferred_name")
    names: set[str] = set()
    if given and family:
        names.update((_key(f"{given} {family}"), _key(f"{family} {given}")))
    if local:
        names.add(_key(local))
    if preferred:
        names.add(_key(preferred))
        if family:
            names.add(_key(f"{preferred} {family}"))
    return names


def _column_of(field: str) -> str:
    return f"{field}_encrypted" if field in _SECRETS else field


def _stored(tenant_id: uuid.UUID, field: str, value: Any) -> Any:
    return crypto.encrypt(tenant_id, value) if field in _SECRETS else value


def _shown(field: str, value: Any) -> Any:
    # Never put a national ID or bank account in the audit log: only that it changed.
    return "(encrypted)" if field in _SECRETS and value is not None else value


def _chunks(rows: Iterator[Parsed], size: int) -> Iterator[list[Parsed]]:
    chunk: list[Parsed] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def import_employees(
    path: Path, mapping: Mapping, *, dry_run: bool = False, today: dt.date | None = None
) -> ImportReport:
    """Run the employee import for the current tenant (see the module docstring)."""
    return await EmployeeImport(path, mapping, dry_run=dry_run, today=today).run()
