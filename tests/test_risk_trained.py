"""A tenant's own advance-risk model: trained once enough advances went bad, then scoring.

Eastwind (CNY, Asia/Shanghai) hired 71 people 600 to 2,000 days ago on 20,000 CNY a
month:

- 30 "late payers" were paid a 10,000 advance 300 days ago, due 270 days ago, never
  settled (the first ten were written off 100 days ago): more than 60 days overdue from
  209 days ago, each a labelled outcome;
- 25 "prompt payers" were paid the same advance and returned it 280 days ago, in time;
- 15 "quiet" people never asked;
- a clerk whose expense claims test the receipt features as of past dates.

History is written in bulk inside the tenant's own session with the instants it was
recorded at (a snapshot months ago sees only what had been recorded by then); what is under
test is read through the scoring, the workers' actors and GraphQL. Dates are relative to
today in Shanghai, so the figures hold whenever the suite runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import clock
from domain.advances.models import Advance, ExpenseClaim, ExpenseClaimLine, LedgerEntry
from domain.analytics import advance_model, model_store
from domain.analytics.attrition import FEATURES
from domain.analytics.features import features_as_of
from domain.analytics.scoring import score_employees
from domain.errors import DomainError
from domain.imports.bulk import DraftEvent, derive_periods
from domain.people.models import Employee, EmployeePeriod, EmploymentEvent
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.advance_fixtures import own_client, pk
from tests.conftest import GraphQLClient, TenantWithAdmin, make_tenant
from tests.people_fixtures import mutate
from workers import risk, risk_models  # noqa: F401  (records the actors)
from workers.actors import spec

TODAY = clock.local_today("Asia/Shanghai")
FOUNDED = TODAY - dt.timedelta(days=2100)
SALARY = Decimal(20000)
LATE, PROMPT, QUIET = 30, 25, 15
WRITTEN_OFF = 10


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def instant(day: dt.date) -> dt.datetime:
    """10:00 in Shanghai that day: what was recorded then is seen from that day on."""
    return dt.datetime.combine(day, dt.time(2), dt.UTC)


@dataclasses.dataclass
class Eastwind:
    tenant: TenantWithAdmin
    admin: str
    people: dict[str, uuid.UUID]


class History:
    """Rows to write: people with their hire, advances, claims and ledger entries."""

    def __init__(self, branch_id: uuid.UUID, units: list[uuid.UUID]) -> None:
        self.branch_id = branch_id
        self.units = units
        self.people: dict[str, uuid.UUID] = {}
        self.rows: dict[type, list[dict[str, Any]]] = {
            Employee: [],
            EmploymentEvent: [],
            EmployeePeriod: [],
            Advance: [],
            ExpenseClaim: [],
            ExpenseClaimLine: [],
            LedgerEntry: [],
        }

    def hire(self, key: str) -> uuid.UUID:
        employee_id = uuid.uuid4()
        number = len(self.people)
        self.people[key] = employee_id
        # Hire dates spread over four years, so that tenure does not stand for how long
        # ago a snapshot was.
        hired = ago(600 + number * 337 % 1400)
        self.rows[Employee].append(
            {
                "id": employee_id,
                "employee_number": f"E{number:03}",
                "given_name": key,
                "family_name": "Eastwind",
                "hire_date": hired,
                "birth_date": dt.date(1970 + number % 30, 1 + number % 12, 1),
                "search_text": key,
            }
        )
        hire = DraftEvent(
            employee_id,
            "hire",
            hired,
            branch_id=self.branch_id,
            org_unit_id=self.units[number % len(self.units)],
            salary_amount=SALARY,
            salary_currency="CNY",
            salary_period="month",
        )
        self.rows[EmploymentEvent].append(hire.values(None))
        self.rows[EmployeePeriod] += derive_periods(employee_id, [hire], {})
        return employee_id

    def advance(self, key: str, paid: dt.date, due: dt.date, amount: str = "10000") -> uuid.UUID:
        advance_id = uuid.uuid4()
        self.rows[Advance].append(
            {
                "id": advance_id,
                "employee_id": self.people[key],
                "branch_id": self.branch_id,
                "kind": "business",
                "amount": Decimal(amount),
                "currency": "CNY",
                "purpose": "Field trip",
                "expected_settlement_date": due,
                "status": "disbursed",
                "created_at": instant(paid - dt.timedelta(days=5)),
                "decided_at": instant(paid - dt.timedelta(days=3)),
                "disbursed_at": instant(paid),
            }
        )
        self.entry(advance_id, "disbursement", amount, paid)
        return advance_id

    def entry(
        self,
        advance_id: uuid.UUID,
        kind: str,
        amount: str,
        day: dt.date,
        *,
        recorded: dt.date | None = None,
        claim_id: uuid.UUID | None = None,
        reverses: uuid.UUID | None = None,
    ) -> uuid.UUID:
        entry_id = uuid.uuid4()
        self.rows[LedgerEntry].append(
            {
                "id": entry_id,
                "advance_id": advance_id,
                "kind": kind,
                "amount": Decimal(amount),
                "currency": "CNY",
                "occurred_on": day,
                "claim_id": claim_id,
                "reverses_id": reverses,
                "recorded_at": instant(recorded or day),
            }
        )
        return entry_id

    def claim(
        self, advance_id: uuid.UUID, submitted: dt.date, *lines: tuple[str, str | None]
    ) -> list[uuid.UUID]:
        """A claim of (amount, receipt) lines handed in on `submitted`; its entries' ids."""
        claim_id = uuid.uuid4()
        total = sum(Decimal(amount) for amount, _ in lines)
        self.rows[ExpenseClaim].append(
            {
                "id": claim_id,
                "advance_id": advance_id,
                "total": total,
                "currency": "CNY",
                "submitted_at": instant(submitted),
            }
        )
        entries = []
        for amount, receipt in lines:
            spent = submitted - dt.timedelta(days=7)
            self.rows[ExpenseClaimLine].append(
                {
                    "id": uuid.uuid4(),
                    "claim_id": claim_id,
                    "spent_on": spent,
                    "category": "travel",
                    "amount": Decimal(amount),
                    "currency": "CNY",
                    "receipt_reference": receipt,
                }
            )
            entries.append(
                self.entry(
                    advance_id,
                    "expense_settlement",
                    f"-{amount}",
                    spent,
                    recorded=submitted,
                    claim_id=claim_id,
                )
            )
        return entries

    async def write(self) -> None:
        async with tenant_session() as session:
            for table, rows in self.rows.items():
                if rows:
                    await session.execute(insert(table), rows)


def book(history: History) -> None:
    paid, due = ago(300), ago(270)
    for n in range(LATE):
        history.hire(f"late{n}")
        advance_id = history.advance(f"late{n}", paid, due)
        if n < WRITTEN_OFF:
            history.entry(advance_id, "write_off", "-10000", ago(100))
    for n in range(PROMPT):
        history.hire(f"prompt{n}")
        advance_id = history.advance(f"prompt{n}", paid, due)
        history.entry(advance_id, "return", "-10000", ago(280))
    for n in range(QUIET):
        history.hire(f"quiet{n}")

    # The clerk: 10,000 paid 200 days ago, due 150 days ago. A claim handed in on time
    # (160 days ago, one of two lines without a receipt), one late (100 days ago), the
    # rest returned 90 days ago (within 60 days of the due date: no bad advance), and a
    # claim late again (30 days ago, no receipt) whose entry was reversed 20 days ago.
    history.hire("clerk")
    advance_id = history.advance("clerk", ago(200), ago(150))
    history.claim(advance_id, ago(160), ("1000", "R-1"), ("500", None))
    history.claim(advance_id, ago(100), ("2000", "R-2"))
    history.entry(advance_id, "return", "-6500", ago(90))
    [wrong] = history.claim(advance_id, ago(30), ("700", None))
    history.entry(advance_id, "reversal", "700", ago(20), reverses=wrong)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def eastwind(engine: AsyncEngine, app: Any) -> Eastwind:
    tenant = await make_tenant(engine, currency="CNY", time_zone="Asia/Shanghai", locale="en_US")
    async with own_client(app) as gql:
        admin = await gql.token(tenant.tenant.slug, tenant.admin_email)
        ids = {}
        branch = await mutate(
            gql,
            admin,
            "createBranch",
            {
                "code": "SH",
                "name": "Shanghai",
                "country": "CN",
                "currency": "CNY",
                "timeZone": "Asia/Shanghai",
                "locale": "zh_CN",
            },
            "branch { id }",
        )
        ids["sh"] = branch["branch"]["id"]
        units = []
        for name in ("Sales", "Operations"):
            unit = await mutate(
                gql,
                admin,
                "createOrgUnit",
                {
                    "name": name,
                    "kind": "department",
                    "branchId": ids["sh"],
                    "effectiveDate": FOUNDED.isoformat(),
                },
                "orgUnit { id }",
            )
            units.append(pk(unit["orgUnit"]["id"]))
    history = History(pk(ids["sh"]), units)
    book(history)
    with use_tenant(tenant.tenant):
        await history.write()
    return Eastwind(tenant=tenant, admin=admin, people=history.people)


async def sql(eastwind: Eastwind, statement: str, **params: Any) -> list[Any]:
    with use_tenant(eastwind.tenant.tenant):
        async with tenant_session() as session:
            return list(await session.execute(text(statement), params))


async def test_receipts_count_as_they_stood_on_each_past_day(eastwind: Eastwind) -> None:
    clerk = eastwind.people["clerk"]

    async def habits(days: int) -> tuple[int, int, int]:
        with use_tenant(eastwind.tenant.tenant):
            async with tenant_session() as session:
                found = (await features_as_of(session, ago(days), [clerk]))[clerk]
        return found.claim_lines_12m, found.missing_receipts_12m, found.late_receipts_12m

    # (lines, without receipt, handed in after the due date), day by day.
    assert await habits(161) == (0, 0, 0)
    assert await habits(130) == (2, 1, 0)
    assert await habits(50) == (3, 1, 1)
    assert await habits(25) == (4, 2, 2)  # the wrong claim, not yet reversed
    assert await habits(0) == (3, 1, 1)


async def test_a_tenant_without_bad_advances_keeps_the_points_model(engine: AsyncEngine) -> None:
    empty = await make_tenant(engine)

    with use_tenant(empty.tenant):
        queued = await advance_model.queue_training_if_due(TODAY)
        with pytest.raises(DomainError) as refused:
            await advance_model.retrain_advance_model(None, as_of=TODAY)
        report = await score_employees(TODAY)

    assert queued is None
    assert str(refused.value) == (
        "Too little history to train an advance-risk model: 0 of 0 people had an advance "
        "more than 60 days overdue or written off within 6 months of a snapshot; at least "
        "20 of them and 20 others are needed."
    )
    assert (report.model_kind, report.model_version) == ("points", "points-2")


MODELS = """{ riskModels { id kind horizonMonths version active trainedTo features
  metrics { rows people positives leavers rocAuc { mean } calibration { count } }
  fairness { threshold attributes { attribute groups { group count } } } } }"""
SCORE = """query($id: ID!) { employee(id: $id) { riskScore {
  score band probability modelKind modelVersion factors { name contribution description } } } }"""
RETRAIN = """mutation($input: RetrainRiskModelsInput) { retrainRiskModels(input: $input) {
  jobId userErrors { field code message } } }"""


async def retrain_messages(eastwind: Eastwind) -> list[Any]:
    return await sql(
        eastwind,
        "SELECT payload, idempotency_key FROM outbox"
        " WHERE actor_name = 'risk.retrain_models' ORDER BY id",
    )


async def latest_scores(eastwind: Eastwind) -> dict[str, Any]:
    by_id = {v: k for k, v in eastwind.people.items()}
    rows = await sql(
        eastwind,
        "SELECT DISTINCT ON (employee_id) employee_id, score, band, probability, factors,"
        " model_kind, model_version, model_id FROM risk_scores"
        " ORDER BY employee_id, scored_at DESC, id DESC",
    )
    return {by_id[row.employee_id]: row for row in rows}


async def test_the_tenants_own_model_takes_over_once_enough_advances_went_bad(
    eastwind: Eastwind, gql: GraphQLClient
) -> None:
    tenant = eastwind.tenant.tenant
    nightly = spec("risk.rescore_all").fn

    # Given the first night: scored by points, and a training queued for the tenant
    with use_tenant(tenant):
        await nightly()
        await nightly()  # a second run the same day queues nothing more
    scores = await latest_scores(eastwind)
    assert {row.model_version for row in scores.values()} == {"points-2"}
    [message] = await retrain_messages(eastwind)
    key = f"risk.retrain_models:advance_risk:{TODAY.isoformat()}"
    assert message.idempotency_key == key
    job_id = message.payload.pop("job_id")
    assert message.payload == {
        "horizons": [],
        "kinds": ["advance_risk"],
        "requested_by": None,
        "idempotency_key": key,
    }

    # When the worker trains (and the message is delivered twice)
    with use_tenant(tenant):
        for _ in range(2):
            await spec("risk.retrain_models").fn(job_id=job_id, **message.payload)

    # Then one model is stored: twelve monthly snapshots of 71 people, of which each late
    # payer's seven newest are positive (their advance is more than 60 days overdue from
    # 209 days ago: inside the six months after each snapshot from 6 to 12 months back).
    body = await gql.execute(MODELS, token=eastwind.admin)
    assert "errors" not in body, body
    [model] = body["data"]["riskModels"]
    assert {k: model[k] for k in ("kind", "horizonMonths", "version", "active", "trainedTo")} == {
        "kind": "ADVANCE_RISK",
        "horizonMonths": None,
        "version": 1,
        "active": True,
        "trainedTo": TODAY.isoformat(),
    }
    assert model["features"] == list(FEATURES)
    people = LATE + PROMPT + QUIET + 1
    metrics = model["metrics"]
    assert {k: metrics[k] for k in ("rows", "people", "positives", "leavers")} == {
        "rows": 12 * people,
        "people": people,
        "positives": LATE,
        "leavers": None,
    }
    assert sum(d["count"] for d in metrics["calibration"]) == 12 * people
    assert 0.5 < metrics["rocAuc"]["mean"] <= 1
    fairness = model["fairness"]
    assert fairness["threshold"] == 0.4  # the medium threshold, 40 of 100
    assert [a["attribute"] for a in fairness["attributes"]] == ["gender", "age band"]
    [stored] = await sql(
        eastwind, "SELECT id, metrics->>'positive_rows' AS positive_rows FROM risk_models"
    )
    assert int(stored.positive_rows) == 7 * LATE
    [trained] = await sql(
        eastwind,
        "SELECT actor_id, entity_id, after FROM audit_log WHERE action = 'risk_model.train'",
    )
    assert (trained.actor_id, trained.entity_id, trained.after["job_id"]) == (
        None,
        str(stored.id),
        job_id,
    )

    # When the next night scores
    with use_tenant(tenant):
        await nightly()

    # Then everyone is scored by the tenant's model: 100 x its calibrated probability, with
    # at most five factors, largest first; late payers above prompt payers and the quiet
    scores = await latest_scores(eastwind)
    assert len(scores) == people
    assert {(r.model_kind, r.model_version, r.model_id) for r in scores.values()} == {
        ("trained", "advance_risk-v1", stored.id)
    }
    for row in scores.values():
        assert row.score == row.probability * 100
        assert 0 < len(row.factors) <= 5
        assert {f["name"] for f in row.factors} <= set(FEATURES)
        weights = [abs(Decimal(f["contribution"])) for f in row.factors]
        assert weights == sorted(weights, reverse=True)
    lowest_late = min(scores[f"late{n}"].score for n in range(WRITTEN_OFF, LATE))
    assert lowest_late > max(scores[f"prompt{n}"].score for n in range(PROMPT))
    assert lowest_late > max(scores[f"quiet{n}"].score for n in range(QUIET))
    # A fresh model: the night queued no other training.
    assert len(await retrain_messages(eastwind)) == 1

    # And HR reads which model scored, with the factors in words
    late = await gql.execute(
        SCORE, {"id": global_employee_id(eastwind, "late29")}, token=eastwind.admin
    )
    assert "errors" not in late, late
    found = late["data"]["employee"]["riskScore"]
    assert (found["modelKind"], found["modelVersion"]) == ("TRAINED", "advance_risk-v1")
    assert Decimal(found["score"]) == Decimal(str(found["probability"])) * 100
    assert all(f["description"].endswith(".") for f in found["factors"])
    described = {f["name"]: f["description"] for f in found["factors"]}
    assert described["max_overdue_days"] == "An advance is 270 days overdue."

    # When the admin asks for the advance-risk model again through GraphQL
    asked = await gql.execute(RETRAIN, {"input": {"kinds": ["ADVANCE_RISK"]}}, token=eastwind.admin)
    assert asked["data"]["retrainRiskModels"]["userErrors"] == []
    requested = (await retrain_messages(eastwind))[-1]
    assert requested.payload["kinds"] == ["advance_risk"]
    assert requested.payload["horizons"] == []
    with use_tenant(tenant):
        await spec("risk.retrain_models").fn(**requested.payload)
        report = await score_employees(TODAY)

    # Then version 2 serves and version 1 is kept, inactive
    assert (report.model_kind, report.model_version) == ("trained", "advance_risk-v2")
    versions = await sql(eastwind, "SELECT version, active FROM risk_models ORDER BY version")
    assert [tuple(v) for v in versions] == [(1, False), (2, True)]


def global_employee_id(eastwind: Eastwind, key: str) -> str:
    from schema.node import to_global_id

    return to_global_id("Employee", eastwind.tenant.tenant.id, eastwind.people[key])


async def test_a_model_copied_into_another_tenant_is_not_loaded_there(
    eastwind: Eastwind, engine: AsyncEngine
) -> None:
    # Given the active model's row copied straight into another tenant's schema
    other = await make_tenant(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f'INSERT INTO "t_{other.tenant.slug}".risk_models '
                f'SELECT * FROM "t_{eastwind.tenant.tenant.slug}".risk_models WHERE active'
            )
        )

    # When the other tenant loads it, or scores
    with use_tenant(other.tenant):
        async with tenant_session() as session:
            copied = await model_store.active_model(session, advance_model.KIND, None)
        assert copied is not None
        with pytest.raises(model_store.ModelIntegrityError):
            model_store.load(copied)
        report = await score_employees(TODAY)

    # Then its signature, made with the first tenant's key, does not match: the points
    # model scores there
    assert (report.model_kind, report.model_version) == ("points", "points-2")


async def test_a_damaged_model_is_not_loaded_and_points_score_meanwhile(
    eastwind: Eastwind, engine: AsyncEngine
) -> None:
    # Given the active model's bytes changed behind the store's back
    slug = eastwind.tenant.tenant.slug
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"UPDATE \"t_{slug}\".risk_models SET artifact = artifact || '\\x00'::bytea "
                "WHERE active"
            )
        )

    # When the tenant is scored
    with use_tenant(eastwind.tenant.tenant):
        report = await score_employees(TODAY)

    # Then the damaged model is refused before unpickling, and the points model scores
    assert (report.model_kind, report.model_version) == ("points", "points-2")
    scores = await latest_scores(eastwind)
    assert {(r.model_kind, r.probability, r.model_id) for r in scores.values()} == {
        ("points", None, None)
    }
