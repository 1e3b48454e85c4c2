"""Reads of employees as of a date, filtered and redacted for the viewer where loaded.

What a viewer may see of an employee is decided here, row by row, so no resolver or
DataLoader can hand out more than the viewer's rights:
- full: admin, hr and finance, and the employee themselves (sensitive fields included);
- profile: auditors, and managers for their reporting line (no sensitive fields);
- directory: everyone else (name, title, unit, work email).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Select, and_, bindparam, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain import crypto
from domain.errors import DomainError, PermissionDenied
from domain.identity.actions import Viewer
from domain.organisation.queries import (
    in_force,
    managers_statement,
    reporting_line,
    subtree_unit_ids,
)
from domain.people.models import Employee, EmployeePeriod, EmploymentEvent
from domain.permissions import PROFILE_READERS, SENSITIVE_READERS
from i18n import N_
from tenants.context import Tenant

MAX_PAGE = 100


class Access(enum.IntEnum):
    DIRECTORY = 1
    PROFILE = 2
    FULL = 3


# NOTE: slots and no frozen-ness: a page builds hundreds of these, and frozen dataclasses
# pay for object.__setattr__ on every field.
@dataclasses.dataclass(slots=True)
class EmployeeRecord:
    """An employee as of a date, with the fields the viewer may not see set to None."""

    id: uuid.UUID
    access: Access
    as_of: dt.date
    given_name: str
    family_name: str
    local_name: str | None
    preferred_name: str | None
    work_email: str | None
    position_id: uuid.UUID | None
    org_unit_id: uuid.UUID | None
    branch_id: uuid.UUID | None
    # profile
    employee_number: str | None = None
    phone: str | None = None
    hire_date: dt.date | None = None
    status: str | None = None
    job_level_id: uuid.UUID | None = None
    # full
    birth_date: dt.date | None = None
    salary_amount: Decimal | None = None
    salary_currency: str | None = None
    salary_period: str | None = None
    sealed: Sealed | None = None  # encrypted fields, opened only when asked for

    @property
    def national_id(self) -> str | None:
        return self.sealed.open(self.sealed.national_id) if self.sealed else None

    @property
    def bank_account(self) -> str | None:
        return self.sealed.open(self.sealed.bank_account) if self.sealed else None


@dataclasses.dataclass(frozen=True)
class Sealed:
    """Encrypted fields of a record the viewer may read in full."""

    tenant_id: uuid.UUID
    national_id: bytes | None
    bank_account: bytes | None

    def open(self, ciphertext: bytes | None) -> str | None:
        return crypto.decrypt(self.tenant_id, ciphertext)


class Sort(enum.Enum):
    NAME = "name"
    HIRE_DATE = "hire_date"
    EMPLOYEE_NUMBER = "employee_number"


@dataclasses.dataclass(frozen=True)
class EmployeeFilter:
    org_unit_id: uuid.UUID | None = None  # the unit's whole subtree
    branch_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()
    job_level_id: uuid.UUID | None = None
    search: str | None = None


@dataclasses.dataclass(frozen=True)
class Page:
    records: list[EmployeeRecord]
    sort: Sort
    keys: list[list[Any]]  # one per record: its sort key values, for its cursor
    has_next_page: bool

    def cursor(self, index: int) -> str:
        """The cursor that continues after `records[index]`.

        Encoded on demand: a page of 100 would otherwise encode 100 cursors that most
        clients never ask for.
        """
        return encode_cursor(self.sort, self.keys[index])

    @property
    def end_cursor(self) -> str | None:
        return self.cursor(len(self.keys) - 1) if self.keys else None


@dataclasses.dataclass(frozen=True)
class Scope:
    """What the viewer may see: all rows at some level, plus their own line at profile."""

    default: Access
    line: frozenset[uuid.UUID]
    self_id: uuid.UUID | None

    def access_to(self, employee_id: uuid.UUID) -> Access:
        if employee_id == self.self_id:
            return Access.FULL
        if employee_id in self.line:
            return max(self.default, Access.PROFILE)
        return self.default

    @property
    def sees_profiles(self) -> bool:
        return self.default >= Access.PROFILE


async def viewer_scope(session: AsyncSession, viewer: Viewer, day: dt.date) -> Scope:
    if viewer.has_any_role(*SENSITIVE_READERS):
        default = Access.FULL
    elif viewer.has_any_role(*PROFILE_READERS):
        default = Access.PROFILE
    else:
        default = Access.DIRECTORY
    line: set[uuid.UUID] = set()
    if default < Access.PROFILE and viewer.has_any_role("manager") and viewer.employee_id:
        line = await reporting_line(session, viewer.employee_id, day)
    return Scope(default=default, line=frozenset(line), self_id=viewer.employee_id)


def _columns() -> list[Any]:
    # NOTE: `_record` unpacks a row in this order.
    return [
        Employee.id,
        Employee.employee_number,
        Employee.given_name,
        Employee.family_name,
        Employee.local_name,
        Employee.preferred_name,
        Employee.work_email,
        Employee.phone,
        Employee.birth_date,
        Employee.hire_date,
        Employee.national_id_encrypted,
        Employee.bank_account_encrypted,
        EmployeePeriod.branch_id,
        EmployeePeriod.position_id,
        EmployeePeriod.org_unit_id,
        EmployeePeriod.job_level_id,
        EmployeePeriod.status,
        EmployeePeriod.salary_amount,
        EmployeePeriod.salary_currency,
        EmployeePeriod.salary_period,
    ]


# The day an employee is read as of: bound when a statement built on `_BASE` is executed.
_DAY = bindparam("day", type_=Date())


def _build_base() -> Select[Any]:
    # Plain columns rather than ORM entities: a page is read-only and this is its hot path.
    period = and_(EmployeePeriod.employee_id == Employee.id, in_force(EmployeePeriod, _DAY))
    return select(*_columns()).select_from(Employee).outerjoin(EmployeePeriod, period)


# Built once: statements are immutable, and building this one cost a page more than
# running it through SQLAlchemy's compiled cache.
_BASE = _build_base()


def _record(tenant: Tenant, row: Any, access: Access, day: dt.date) -> EmployeeRecord:
    # Unpacked by position: reading twenty columns by name costs ten times as much.
    (
        pk,
        employee_number,
        given_name,
        family_name,
        local_name,
        preferred_name,
        work_email,
        phone,
        birth_date,
        hire_date,
        national_id,
        bank_account,
        branch_id,
        position_id,
        org_unit_id,
        job_level_id,
        status,
        salary_amount,
        salary_currency,
        salary_period,
    ) = row
    profile = access >= Access.PROFILE
    full = access >= Access.FULL
    status = status or ("onboarding" if hire_date > day else None)
    return EmployeeRecord(
        id=pk,
        access=access,
        as_of=day,
        given_name=given_name,
        family_name=family_name,
        local_name=local_name,
        preferred_name=preferred_name,
        work_email=work_email,
        position_id=position_id,
        org_unit_id=org_unit_id,
        branch_id=branch_id,
        employee_number=employee_number if profile else None,
        phone=phone if profile else None,
        hire_date=hire_date if profile else None,
        status=status if profile else None,
        job_level_id=job_level_id if profile else None,
        birth_date=birth_date if full else None,
        salary_amount=salary_amount if full else None,
        salary_currency=salary_currency if full else None,
        salary_period=salary_period if full else None,
        sealed=Sealed(tenant.id, national_id, bank_account) if full else None,
    )


async def employees_by_id(
    session: AsyncSession,
    tenant: Tenant,
    viewer: Viewer,
    ids: Sequence[uuid.UUID],
    day: dt.date,
) -> list[EmployeeRecord | None]:
    """Employees in the order of `ids`, redacted for the viewer; None where missing."""
    wanted = list(set(ids))
    if not wanted:
        return []
    scope = await viewer_scope(session, viewer, day)
    rows = await session.execute(_BASE.where(Employee.id.in_(wanted)), {"day": day})
    found = {row.id: _record(tenant, row, scope.access_to(row.id), day) for row in rows}
    return [found.get(i) for i in ids]


async def managers_by_position(
    session: AsyncSession,
    tenant: Tenant,
    viewer: Viewer,
    position_ids: Iterable[uuid.UUID],
    day: dt.date,
) -> dict[uuid.UUID, EmployeeRecord]:
    """For each position, its holders' manager on `day` (as `managers_of_positions` finds
    them), redacted for the viewer; positions without one are left out.

    One query: the managers' records are joined to the search for them, where finding
    them and then reading them took two round trips.
    """
    ids = list(set(position_ids))
    if not ids:
        return {}
    scope = await viewer_scope(session, viewer, day)
    managers = managers_statement(ids, day).subquery("managers")
    query = _BASE.add_columns(managers.c.start_id).join(
        managers, managers.c.manager_id == Employee.id
    )
    found: dict[uuid.UUID, EmployeeRecord] = {}
    records: dict[uuid.UUID, EmployeeRecord] = {}  # one per manager, whatever they manage
    for *columns, position_id in await session.execute(query, {"day": day}):
        manager_id = columns[0]
        record = records.get(manager_id)
        if record is None:
            access = scope.access_to(manager_id)
            record = records[manager_id] = _record(tenant, columns, access, day)
        found[position_id] = record
    return found


async def list_employees(
    session: AsyncSession,
    tenant: Tenant,
    viewer: Viewer,
    *,
    day: dt.date,
    filters: EmployeeFilter,
    sort: Sort = Sort.NAME,
    descending: bool = False,
    first: int = 20,
    after: str | None = None,
) -> Page:
    """One page of employees, keyset-paginated, in a constant number of queries."""
    if not 1 <= first <= MAX_PAGE:
        raise DomainError(N_("Ask for 1 to {count} rows at a time."), field="first", count=MAX_PAGE)
    scope = await viewer_scope(session, viewer, day)
    if sort is not Sort.NAME and not scope.sees_profiles:
        # Ordering by hire date or number would reveal them; the directory sorts by name.
        raise PermissionDenied(N_("You may sort the directory by name only."), field="sort")
    query = await _filtered(session, scope, _BASE, filters, day)
    keys = _sort_keys(sort)
    if after:
        values = decode_cursor(after, sort)
        boundary = (
            tuple_(*keys) < tuple_(*values) if descending else tuple_(*keys) > tuple_(*values)
        )
        query = query.where(boundary)
    ordering = [k.desc() for k in keys] if descending else list(keys)
    rows = list(await session.execute(query.order_by(*ordering).limit(first + 1), {"day": day}))
    has_next = len(rows) > first
    rows = rows[:first]
    records = [_record(tenant, row, scope.access_to(row.id), day) for row in rows]
    keys = [_key_values(row, sort) for row in rows]
    return Page(records=records, sort=sort, keys=keys, has_next_page=has_next)


async def count_employees(
    session: AsyncSession, viewer: Viewer, *, day: dt.date, filters: EmployeeFilter
) -> int:
    scope = await viewer_scope(session, viewer, day)
    query = await _filtered(session, scope, _BASE, filters, day)
    counted = select(func.count()).select_from(query.subquery())
    return int(await session.scalar(counted, {"day": day}) or 0)


async def _filtered(
    session: AsyncSession,
    scope: Scope,
    query: Select[Any],
    filters: EmployeeFilter,
    day: dt.date,
) -> Select[Any]:
    if filters.org_unit_id is not None:
        units = await subtree_unit_ids(session, [filters.org_unit_id], day)
        query = query.where(EmployeePeriod.org_unit_id.in_(units or [uuid.uuid4()]))
    if filters.branch_id is not None:
        query = query.where(EmployeePeriod.branch_id == filters.branch_id)
    if filters.search:
        needle = filters.search.strip().casefold()
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Employee.search_text.like(f"%{escaped}%", escape="\\"))
    if filters.statuses or filters.job_level_id is not None:
        # Status and level are profile facts: outside HR, only one's own line is searched.
        if not scope.sees_profiles:
            if not scope.line:
                raise PermissionDenied(N_("You may filter by status or level only in your team."))
            query = query.where(Employee.id.in_(scope.line))
        if filters.statuses:
            onboarding = "onboarding" in filters.statuses
            query = query.where(
                or_(
                    EmployeePeriod.status.in_(filters.statuses),
                    and_(EmployeePeriod.status.is_(None), Employee.hire_date > day)
                    if onboarding
                    else False,
                )
            )
        if filters.job_level_id is not None:
            query = query.where(EmployeePeriod.job_level_id == filters.job_level_id)
    return query


def _sort_keys(sort: Sort) -> tuple[Any, ...]:
    match sort:
        case Sort.NAME:
            return (Employee.family_name, Employee.given_name, Employee.id)
        case Sort.HIRE_DATE:
            return (Employee.hire_date, Employee.id)
        case Sort.EMPLOYEE_NUMBER:
            return (Employee.employee_number, Employee.id)


def _key_values(employee: Any, sort: Sort) -> list[Any]:
    match sort:
        case Sort.NAME:
            return [employee.family_name, employee.given_name, employee.id]
        case Sort.HIRE_DATE:
            return [employee.hire_date, employee.id]
        case Sort.EMPLOYEE_NUMBER:
            return [employee.employee_number, employee.id]


def encode_cursor(sort: Sort, values: list[Any]) -> str:
    payload = json.dumps([sort.value, [str(v) for v in values]], ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> list[Any]:
    """The sort key values in a cursor; `DomainError` for a cursor of another sort or junk."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, raw = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if kind != sort.value:
            raise ValueError(kind)
        *leading, last = raw
        key_id = uuid.UUID(last)
        if sort is Sort.HIRE_DATE:
            return [dt.date.fromisoformat(leading[0]), key_id]
        return [*leading, key_id]
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DomainError(N_("The cursor is not valid for this query."), field="after") from exc


async def history(session: AsyncSession, employee_id: uuid.UUID) -> list[EmploymentEvent]:
    return list(
        await session.scalars(
            select(EmploymentEvent)
            .where(EmploymentEvent.employee_id == employee_id)
            .order_by(EmploymentEvent.effective_date, EmploymentEvent.seq)
        )
    )
