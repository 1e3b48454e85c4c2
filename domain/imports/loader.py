"""Loading a whole organisation with its history: what the Oracle and IBM importers share.

Everything is keyed by a stable code (branch, unit, job level and position codes, employee
numbers), so a second run finds what the first one made and writes nothing. Reference data
is validated with the domain's own validators; employees get their complete event history,
and their periods are derived from it with `replay`.

An employee who already exists keeps their record. When the source now says something else
about them, the run leaves them as recorded and says so in its report: these importers load
a data set once, while `renshi import employees` is the one that updates people. Leavers
are loaded as history (a termination event for someone new), but a source that says an
existing employee left while they hold an open advance or have an offboarding case open
is a problem of its row: they leave through offboarding only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit
from domain.advances.exit_gate import exit_blockers, refusal
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
)
from domain.imports.report import ImportReport, Problem
from domain.money import Money, currency_code
from domain.organisation.models import Branch, JobLevel, OrgUnit, OrgUnitVersion, Position
from domain.people.actions import (
    check_birth_before_hire,
    check_rating,
    employee_number,
    search_text_of,
    work_email,
)
from domain.people.history import PositionFacts
from domain.people.models import Employee, PerformanceReview
from domain.validation import country_code, locale_tag, optional_text, required_text, time_zone
from i18n import N_


@dataclasses.dataclass
class PersonDraft:
    """An employee as a source describes them, with their whole history as draft events."""

    row: int
    number: str
    given_name: str
    family_name: str
    hire_date: dt.date
    id: uuid.UUID = dataclasses.field(default_factory=new_id)
    phone: str | None = None
    work_email: str | None = None
    birth_date: dt.date | None = None
    events: list[DraftEvent] = dataclasses.field(default_factory=list)
    reviews: list[tuple[str, Decimal, dt.date]] = dataclasses.field(default_factory=list)

    def event(self, kind: str, day: dt.date, **facts: Any) -> DraftEvent:
        draft = DraftEvent(employee_id=self.id, kind=kind, effective_date=day, **facts)
        self.events.append(draft)
        return draft


class Loader:
    """Creates what is missing, by code, in one tenant transaction; see the module docstring."""

    def __init__(self, session: AsyncSession, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.writer = BulkWriter(session)
        self.facts: dict[uuid.UUID, PositionFacts] = {}
        self._codes: dict[Any, dict[str, uuid.UUID]] = {}
        self._new_versions: dict[uuid.UUID, dict[str, Any]] = {}

    async def prepare(self) -> None:
        await plan_for_growing_tables(self.session)
        for model in (Branch, JobLevel, OrgUnit, Position):
            codes = await self.session.execute(select(model.code, model.id))
            self._codes[model] = {code: ident for code, ident in codes.tuples() if code}
        facts = await self.session.execute(
            select(Position.id, Position.org_unit_id, Position.job_level_id)
        )
        self.facts = {pid: PositionFacts(unit, level) for pid, unit, level in facts.tuples()}

    def existing(self, model: Any, code: str) -> uuid.UUID | None:
        return self._codes[model].get(code)

    def branch(
        self,
        *,
        code: str,
        name: str,
        country: str,
        currency: str,
        zone: str,
        locale: str,
        address: str | None = None,
        parent_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        if found := self.existing(Branch, code):
            return found
        values = {
            "id": new_id(),
            "code": required_text(code, "code", max_length=32),
            "name": required_text(name, "name"),
            "country": country_code(country),
            "currency": currency_code(currency),
            "time_zone": time_zone(zone),
            "locale": locale_tag(locale),
            "address": optional_text(address, "address", max_length=2000),
            "parent_id": parent_id,
        }
        return self._create(Branch, "branch", values, after=values)

    def job_level(
        self,
        *,
        code: str,
        rank: int,
        title: str,
        pay_min: Decimal | None,
        pay_max: Decimal | None,
        currency: str | None,
    ) -> uuid.UUID:
        if found := self.existing(JobLevel, code):
            return found
        low = (
            Money.of(pay_min, currency, field="payMin")
            if pay_min is not None and currency
            else None
        )
        high = (
            Money.of(pay_max, currency, field="payMax")
            if pay_max is not None and currency
            else None
        )
        if low and high and low.amount > high.amount:
            raise DomainError(N_("The pay band's minimum is above its maximum."), field="payMin")
        values = {
            "id": new_id(),
            "code": required_text(code, "code", max_length=32),
            "rank": rank,
            "title": required_text(title, "title"),
            "pay_min": low.amount if low else None,
            "pay_max": high.amount if high else None,
            "pay_currency": low.currency if low else None,
        }
        return self._create(JobLevel, "job_level", values, after=values)

    def org_unit(
        self,
        *,
        code: str,
        name: str,
        kind: str,
        branch_id: uuid.UUID,
        valid_from: dt.date,
        parent_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        if found := self.existing(OrgUnit, code):
            return found
        unit_id = self._create(
            OrgUnit,
            "org_unit",
            {"id": new_id(), "code": required_text(code, "code", max_length=64), "kind": kind},
            after={"code": code, "kind": kind, "name": name, "parent_id": parent_id},
        )
        version = {
            "id": new_id(),
            "org_unit_id": unit_id,
            "valid_from": valid_from,
            "valid_to": None,
            "name": required_text(name, "name"),
            "parent_id": parent_id,
            "branch_id": branch_id,
            "cost_centre": None,
            "head_position_id": None,
        }
        self.writer.add(OrgUnitVersion, version)
        self._new_versions[unit_id] = version
        return unit_id

    def set_head(self, unit_id: uuid.UUID, position_id: uuid.UUID) -> None:
        """Name the head position of a unit made in this run (existing units keep theirs)."""
        if unit_id in self._new_versions:
            self._new_versions[unit_id]["head_position_id"] = position_id

    def position(
        self,
        *,
        code: str,
        title: str,
        unit_id: uuid.UUID,
        opened_on: dt.date,
        level_id: uuid.UUID | None = None,
        reports_to_id: uuid.UUID | None = None,
        headcount: int = 1,
    ) -> uuid.UUID:
        if found := self.existing(Position, code):
            return found
        position_id = new_id()
        values = {
            "id": position_id,
            "code": required_text(code, "code", max_length=64),
            "title": required_text(title, "title"),
            "org_unit_id": unit_id,
            "job_level_id": level_id,
            "reports_to_id": reports_to_id,
            "headcount": headcount,
            "opened_on": opened_on,
        }
        self._codes[Position][code] = position_id
        self.facts[position_id] = PositionFacts(unit_id, level_id)
        self.writer.position(values)
        self.report.created["positions"] += 1
        return position_id

    def _create(
        self, model: Any, entity: str, values: dict[str, Any], *, after: dict[str, Any]
    ) -> uuid.UUID:
        self._codes[model][values["code"]] = values["id"]
        self.writer.add(model, values)
        self.writer.audit(f"{entity}.create", entity, values["id"], after=after)
        self.report.created[_PLURALS[entity]] += 1
        ident: uuid.UUID = values["id"]
        return ident

    # --- people -----------------------------------------------------------------------------

    async def people(self, drafts: Iterable[PersonDraft], *, source: str) -> None:
        """Write new employees with their histories; leave existing ones as recorded."""
        await self.writer.flush()  # reference data first: people point at it
        for chunk in _chunks(iter(drafts), BATCH):
            await self.writer.wait()
            found: dict[str, uuid.UUID] = {}
            numbers = [d.number for d in chunk]
            for start in range(0, len(numbers), LOOKUP):
                rows = await self.session.execute(
                    select(Employee.employee_number, Employee.id).where(
                        Employee.employee_number.in_(numbers[start : start + LOOKUP])
                    )
                )
                found.update({number: ident for number, ident in rows.tuples()})
            recorded = await load_events(self.session, list(found.values()))
            held = await exit_blockers(self.session, found.values())
            for index, draft in enumerate(chunk):
                if index % 50 == 0:
                    await asyncio.sleep(0)  # let the batch in flight move on
                try:
                    if draft.number in found:
                        if _terminates(draft) and found[draft.number] in held:
                            # Current staff who owe money leave through offboarding only.
                            raise refusal(held[found[draft.number]])
                        self._compare(draft, recorded[found[draft.number]])
                    else:
                        self._hire(draft, source)
                except DomainError as error:
                    self.report.add(Problem.of(draft.row, error.field, draft.number, error))
            if not self.report.rejected:
                await self.writer.flush_if_full()
        await self.writer.wait()
        if not self.report.rejected:
            await self.writer.flush()

    def _compare(self, draft: PersonDraft, recorded: list[Any]) -> None:
        if [_signature(e) for e in recorded] == [_signature(e) for e in draft.events]:
            self.report.unchanged["employees"] += 1
            return
        self.report.note(
            N_("Employee {number} already has another history; it was left as recorded."),
            number=draft.number,
        )
        self.report.unchanged["employees"] += 1

    def _hire(self, draft: PersonDraft, source: str) -> None:
        number = employee_number(draft.number)
        email = work_email(draft.work_email)
        check_birth_before_hire(draft.birth_date, draft.hire_date)
        given = required_text(draft.given_name, "givenName", max_length=100)
        family = required_text(draft.family_name, "familyName", max_length=100)
        periods = derive_periods(draft.id, draft.events, self.facts)
        self.writer.employee(
            {
                "id": draft.id,
                "employee_number": number,
                "given_name": given,
                "family_name": family,
                "local_name": None,
                "preferred_name": None,
                "work_email": email,
                "phone": optional_text(draft.phone, "phone", max_length=40),
                "birth_date": draft.birth_date,
                "national_id_encrypted": None,
                "bank_account_encrypted": None,
                "hire_date": draft.hire_date,
                "search_text": search_text_of(
                    given_name=given,
                    family_name=family,
                    local_name=None,
                    preferred_name=None,
                    employee_number=number,
                    work_email=email,
                ),
            }
        )
        for event in draft.events:
            self.writer.event(event)
        self.writer.periods(draft.id, periods, replace=False)
        for period, rating, reviewed_on in draft.reviews:
            check_rating(rating)
            self.writer.add(
                PerformanceReview,
                {
                    "id": new_id(),
                    "employee_id": draft.id,
                    "period": period,
                    "rating": rating,
                    "reviewer_id": None,
                    "comment": None,
                    "reviewed_on": reviewed_on,
                },
            )
        self.writer.audit(
            "employee.hire",
            "employee",
            draft.id,
            after={
                "employee_number": number,
                "hire_date": draft.hire_date,
                "events": len(draft.events),
                "source": source,
            },
        )
        self.report.created["employees"] += 1

    def summary(self, action: str, source: str) -> None:
        """One audit entry for the run itself, when it wrote anything."""
        if self.report.wrote:
            self.writer.add(
                audit.AuditEntry,
                audit.values(
                    actor_id=None,
                    action=action,
                    entity_type="import",
                    entity_id=source[:64],
                    after={"created": dict(self.report.created)},
                ),
            )


_PLURALS = {
    "branch": "branches",
    "job_level": "job levels",
    "org_unit": "org units",
}


def _signature(event: Any) -> tuple[Any, ...]:
    amount = event.salary_amount
    return (
        event.kind,
        event.effective_date,
        event.branch_id,
        event.position_id,
        event.org_unit_id,
        event.job_level_id,
        event.status,
        amount.normalize() if amount is not None else None,
        event.salary_currency,
        event.salary_period,
        event.reason,
    )


def _terminates(draft: PersonDraft) -> bool:
    return any(e.kind == "termination" or e.status == "terminated" for e in draft.events)


def _chunks(items: Iterator[PersonDraft], size: int) -> Iterator[list[PersonDraft]]:
    chunk: list[PersonDraft] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
