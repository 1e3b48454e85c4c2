"""A tenant's attrition models: trained on its own history, stored versioned and hash-checked."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import clock
from domain.analytics import model_store
from domain.analytics.attrition import (
    FEATURES,
    months_before,
    predict_attrition,
    retrain_attrition_model,
    training_set,
)
from domain.analytics.attrition_model import (
    CALIBRATIONS,
    attrition_pipeline,
    contributions,
    fit_explainable,
    predict_and_explain,
)
from domain.analytics.evaluation import FEATURES as IBM_FEATURES
from domain.analytics.evaluation import column_indices, read_ibm_attrition
from domain.audit import AuditEntry
from domain.errors import DomainError
from domain.identity.actions import create_user
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tests.advance_fixtures import pk
from tests.conftest import PASSWORD, GraphQLClient, make_tenant, shared_data
from tests.import_support import employee_by_number, renshi_import
from workers import risk_models
from workers.actors import spec as actor_spec

IBM = ("ibm_attrition", "WA_Fn-UseC_-HR-Employee-Attrition.csv")
IMPORTED_AS_OF = dt.date(2026, 6, 30)  # everyone who left, left that day
TRAINED_TO = dt.date(2026, 9, 29)


def ibm_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_months_are_counted_back_by_calendar() -> None:
    assert months_before(dt.date(2026, 9, 29), 3) == dt.date(2026, 6, 29)
    assert months_before(dt.date(2026, 9, 29), 7) == dt.date(2026, 2, 28)
    assert months_before(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_before(dt.date(2026, 1, 15), 13) == dt.date(2024, 12, 15)


async def test_a_tenant_trains_stores_and_serves_its_own_attrition_model(
    engine: AsyncEngine, database_url: str
) -> None:
    # Given IBM's table imported into one tenant as of 30 June 2026, and another tenant
    path = shared_data(*IBM)
    ibm = await make_tenant(engine)
    other = await make_tenant(engine)
    imported = renshi_import(
        database_url, "ibm-attrition", path, "--tenant", ibm.tenant.slug, "--as-of", "2026-06-30"
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr

    # When HR trains the 3-month model on 29 September 2026
    with use_tenant(ibm.tenant):
        model = await retrain_attrition_model(None, 3, as_of=TRAINED_TO)

    # Then twelve monthly snapshots from 29 June 2026 back hold everyone hired a year or
    # more before the import (hired on the import day means not yet employed), and the
    # leavers are positive in the three snapshots whose 3 months reach 30 June.
    rows = ibm_rows(path)
    employed = [r for r in rows if int(r["YearsAtCompany"]) >= 1]
    leavers = [r for r in employed if r["Attrition"] == "Yes"]
    metrics = model.metrics
    assert (model.kind, model.horizon_months, model.version, model.active) == (
        "attrition",
        3,
        1,
        True,
    )
    assert (model.trained_from, model.trained_to) == (dt.date(2025, 7, 29), TRAINED_TO)
    assert metrics["snapshots"][:5] == [
        "2026-06-29", "2026-05-29", "2026-04-29", "2026-03-29", "2026-02-28",
    ]  # fmt: skip
    assert (metrics["rows"], metrics["positive_rows"]) == (12 * len(employed), 3 * len(leavers))
    assert (metrics["people"], metrics["leavers"]) == (len(employed), len(leavers))
    assert model.features == list(FEATURES)
    assert not {"birth_date", "age", "gender"} & set(model.features)
    assert metrics["scored_folds"] == 5
    assert 0.5 < metrics["roc_auc"]["mean"] <= 1
    deciles = metrics["calibration"]["deciles"]
    assert sum(d["count"] for d in deciles) == metrics["rows"]

    # The fairness report covers every row by age band; the records hold no gender.
    fairness = model.fairness
    gender, age = fairness["attributes"]
    assert [(g["group"], g["count"]) for g in gender["groups"]] == [("unknown", metrics["rows"])]
    assert gender["selection_rate_ratio"] is None
    assert sum(g["count"] for g in age["groups"]) == metrics["rows"]
    assert fairness["threshold"] == 0.5

    # The stored bytes are signed with the tenant's key (not a bare hash anyone could
    # recompute), and the model serves the tenant's people
    assert model.artifact_sha256 == model_store.signature(model.artifact, ibm.tenant.id)
    assert model.artifact_sha256 != hashlib.sha256(model.artifact).hexdigest()
    assert model.artifact_sha256 != model_store.signature(model.artifact, other.tenant.id)
    with use_tenant(ibm.tenant):
        async with tenant_session() as session:
            served = await predict_attrition(session, 3, dt.date(2026, 6, 29))
            data = await training_set(session, trained_to=TRAINED_TO, horizon_months=3)
        estimator = model_store.load(model)
    assert served is not None
    serving, probabilities = served
    assert serving.id == model.id
    assert len(probabilities) == len(employed)
    assert all(0 <= p <= 1 for p in probabilities.values())
    snapshot = data.features[: len(employed)]  # the newest snapshot: 29 June 2026
    by_person = sorted(data.employees[: len(employed)])
    assert np.allclose(
        estimator.predict_proba(snapshot)[:, 1], [probabilities[e] for e in by_person]
    )

    # And the other tenant sees no model and cannot borrow this one
    with use_tenant(other.tenant):
        async with tenant_session() as session:
            assert await model_store.list_models(session) == []
            assert await predict_attrition(session, 3, dt.date(2026, 6, 29)) is None

    # A second training is version 2 and takes over; version 1 is kept, inactive
    with use_tenant(ibm.tenant):
        second = await retrain_attrition_model(None, 3, as_of=TRAINED_TO)
        async with tenant_session() as session:
            stored = await model_store.list_models(session)
            trainings = (
                await session.scalars(
                    select(AuditEntry.entity_id).where(AuditEntry.action == "risk_model.train")
                )
            ).all()
    assert [(m.version, m.active) for m in stored] == [(2, True), (1, False)]
    assert second.artifact_sha256 == stored[0].artifact_sha256
    assert sorted(trainings) == sorted([str(model.id), str(second.id)])

    # A damaged artifact is refused before it is unpickled
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f'UPDATE "t_{ibm.tenant.slug}".risk_models '
                "SET artifact = artifact || '\\x00'::bytea WHERE version = 2"
            )
        )
    with use_tenant(ibm.tenant):
        async with tenant_session() as session:
            with pytest.raises(model_store.ModelIntegrityError) as refused:
                await predict_attrition(session, 3, dt.date(2026, 6, 29))
    assert refused.value.code == "MODEL_INTEGRITY"
    assert str(refused.value) == "The stored model 2 is damaged and was not loaded; retrain it."


async def test_a_tenant_without_leavers_is_told_it_has_too_little_history(
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant(engine)

    with use_tenant(tenant.tenant):
        with pytest.raises(DomainError) as refused:
            await retrain_attrition_model(None, 6, as_of=TRAINED_TO)
        with pytest.raises(DomainError) as bad_horizon:
            await retrain_attrition_model(None, 5, as_of=TRAINED_TO)
        async with tenant_session() as session:
            stored = await model_store.list_models(session)

    assert str(refused.value) == (
        "Too little history to train an attrition model: 0 of 0 people left within 6 months "
        "of a snapshot; at least 20 leavers and 20 stayers are needed."
    )
    assert (refused.value.field, bad_horizon.value.field) == ("horizonMonths", "horizonMonths")
    assert str(bad_horizon.value) == "The horizon is 3, 6 or 12 months."
    assert stored == []


# --- through GraphQL ---------------------------------------------------------------------

MODELS = """{ riskModels { id kind horizonMonths version active trainedFrom trainedTo features
  metrics { rows people leavers rocAuc { mean std } expectedCalibrationError
            calibration { decile count } }
  fairness { threshold warnings attributes { attribute selectionRateRatio
             groups { group count selectionRate truePositiveRate } } } } }"""
RETRAIN = """mutation($input: RetrainRiskModelsInput) { retrainRiskModels(input: $input) {
  jobId userErrors { field code message } } }"""
FORECAST = """query($id: ID!) { employee(id: $id) {
  attritionRisk(horizonMonths: 3) { probability horizonMonths asOf modelVersion trainedTo
    factors { name contribution description } } } }"""


async def outbox_rows(engine: AsyncEngine, slug: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f'SELECT payload, idempotency_key FROM "t_{slug}".outbox '
                "WHERE actor_name = 'risk.retrain_models' ORDER BY id"
            )
        )
        return [dict(row._mapping) for row in rows]


async def audit_actions(engine: AsyncEngine, slug: str, action: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                f'SELECT actor_id, entity_id, after FROM "t_{slug}".audit_log '
                "WHERE action = :action ORDER BY id"
            ),
            {"action": action},
        )
        return [dict(row._mapping) for row in rows]


async def test_hr_retrains_through_graphql_and_reads_models_and_forecasts(
    engine: AsyncEngine, gql: GraphQLClient, database_url: str
) -> None:
    # Given IBM's table imported two months ago (so today's snapshots reach the leavers),
    # an admin and a finance user
    path = shared_data(*IBM)
    company = await make_tenant(engine)
    slug, tenant = company.tenant.slug, company.tenant
    today = clock.local_today(tenant.time_zone)
    imported_on = months_before(today, 2)
    imported = renshi_import(
        database_url, "ibm-attrition", path, "--tenant", slug, "--as-of", imported_on.isoformat()
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    with use_tenant(tenant):
        await create_user(
            tenant,
            email=f"finance@{slug}.test",
            display_name="Finance",
            password=PASSWORD,
            roles=["finance"],
        )
    admin = await gql.token(slug, company.admin_email)
    finance = await gql.token(slug, f"finance@{slug}.test")

    # When the admin asks for the 3-month model
    asked = await gql.execute(RETRAIN, {"input": {"horizonMonths": [3]}}, token=admin)

    # Then a job is queued with the tenant's own outbox, and nothing is trained yet
    payload = asked["data"]["retrainRiskModels"]
    assert payload["userErrors"] == []
    job_id = payload["jobId"]
    assert await outbox_rows(engine, slug) == [
        {
            "payload": {
                "job_id": job_id,
                "horizons": [3],
                "kinds": ["advance_risk", "attrition"],
                "requested_by": str(company.admin_id),
                "idempotency_key": f"risk.retrain_models:{job_id}",
            },
            "idempotency_key": f"risk.retrain_models:{job_id}",
        }
    ]
    assert (await gql.execute(MODELS, token=admin))["data"] == {"riskModels": []}

    # When the worker handles the message, and the broker delivers it a second time
    message = (await outbox_rows(engine, slug))[0]["payload"]
    with use_tenant(tenant):
        for _ in range(2):
            await actor_spec(risk_models.retrain_models.name).fn(**message)

    # Then one model is stored, trained to today, audited with the job and the admin
    body = await gql.execute(MODELS, token=admin)
    assert "errors" not in body, body
    [model] = body["data"]["riskModels"]
    assert {k: model[k] for k in ("kind", "horizonMonths", "version", "active")} == {
        "kind": "ATTRITION",
        "horizonMonths": 3,
        "version": 1,
        "active": True,
    }
    assert model["trainedTo"] == today.isoformat()
    assert model["trainedFrom"] == months_before(today, 14).isoformat()
    assert model["features"] == list(FEATURES)
    metrics = model["metrics"]
    assert metrics["leavers"] == sum(
        1 for r in ibm_rows(path) if r["Attrition"] == "Yes" and int(r["YearsAtCompany"]) >= 1
    )
    assert sum(d["count"] for d in metrics["calibration"]) == metrics["rows"]
    assert 0.5 < metrics["rocAuc"]["mean"] <= 1
    fairness = model["fairness"]
    below = [
        a["attribute"]
        for a in fairness["attributes"]
        if a["selectionRateRatio"] is not None and a["selectionRateRatio"] < 0.8
    ]
    assert [w.split(":")[0] for w in fairness["warnings"]] == below
    trainings = await audit_actions(engine, slug, "risk_model.train")
    assert [(t["actor_id"], t["after"]["job_id"]) for t in trainings] == [
        (company.admin_id, job_id)
    ]

    # And HR reads one employee's forecast (audited); a leaver has none
    stayer = (await employee_by_number(gql, admin, "2068", fields="id employeeNumber"))["id"]
    leaver = (await employee_by_number(gql, admin, "2055", fields="id employeeNumber"))["id"]
    forecast = await gql.execute(FORECAST, {"id": stayer}, token=admin)
    risk = forecast["data"]["employee"]["attritionRisk"]
    assert 0 <= risk.pop("probability") <= 1
    factors = risk.pop("factors")
    assert len(factors) == 5
    weights = [abs(f["contribution"]) for f in factors]
    assert weights == sorted(weights, reverse=True)
    assert {f["name"] for f in factors} <= set(FEATURES)
    assert all(f["description"].endswith(".") for f in factors)
    assert risk == {
        "horizonMonths": 3,
        "asOf": today.isoformat(),
        "modelVersion": 1,
        "trainedTo": today.isoformat(),
    }
    gone = await gql.execute(FORECAST, {"id": leaver}, token=admin)
    assert gone["data"]["employee"]["attritionRisk"] is None
    reads = await audit_actions(engine, slug, "risk.attrition_read")
    assert [(r["actor_id"], r["entity_id"]) for r in reads] == [(company.admin_id, str(pk(stayer)))]

    # Finance sees no model, queues nothing and reads no forecast
    refused = await gql.execute(MODELS, token=finance)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    not_queued = await gql.execute(RETRAIN, {"input": None}, token=finance)
    assert not_queued["data"]["retrainRiskModels"] == {
        "jobId": None,
        "userErrors": [
            {"field": None, "code": "FORBIDDEN", "message": "You are not allowed to do this."}
        ],
    }
    hidden = await gql.execute(FORECAST, {"id": stayer}, token=finance)
    assert hidden["data"]["employee"]["attritionRisk"] is None

    # A horizon other than 3, 6 or 12 is refused and queues nothing
    bad = await gql.execute(RETRAIN, {"input": {"horizonMonths": [3, 5]}}, token=admin)
    assert bad["data"]["retrainRiskModels"] == {
        "jobId": None,
        "userErrors": [
            {
                "field": "horizonMonths",
                "code": "INVALID",
                "message": "The horizon is 3, 6 or 12 months.",
            }
        ],
    }
    assert len(await outbox_rows(engine, slug)) == 1
    assert len(await audit_actions(engine, slug, "risk.attrition_read")) == 1


def test_factors_add_up_to_the_log_odds_against_the_average_employee() -> None:
    # Given an uncalibrated model fitted on IBM's table (the evaluation's own columns)
    table = read_ibm_attrition(shared_data(*IBM))
    template = attrition_pipeline(**column_indices(), calibration="none")
    model = fit_explainable(template, table.features, table.outcomes)
    pipeline = model.estimator

    # When the first row is explained input by input
    row = table.features[0]
    every = contributions(model, row, IBM_FEATURES, top=len(IBM_FEATURES))

    # Then the contributions add up to its log-odds minus those of the average row
    coefficients = pipeline.named_steps["classify"].coef_[0]
    own = pipeline.decision_function(row.reshape(1, -1))[0]
    average = coefficients @ model.baselines[0] + pipeline.named_steps["classify"].intercept_[0]
    assert sum(c.contribution for c in every) == pytest.approx(own - average)
    assert len(every) == len(IBM_FEATURES)
    top = contributions(model, row, IBM_FEATURES)
    assert top == every[:5]
    assert [abs(c.contribution) for c in top] == sorted(
        (abs(c.contribution) for c in top), reverse=True
    )


@pytest.mark.parametrize("calibration", CALIBRATIONS)
def test_one_pass_predictions_agree_with_scikit_learns(calibration: Any) -> None:
    # Given a model fitted on IBM's table, with each calibration
    table = read_ibm_attrition(shared_data(*IBM))
    template = attrition_pipeline(**column_indices(), calibration=calibration)
    model = fit_explainable(template, table.features, table.outcomes)

    # When the scorer's one pass predicts and explains every row
    explained = predict_and_explain(model, table.features, IBM_FEATURES)

    # Then its probabilities are scikit-learn's, and its contributions those of one row
    expected = model.predict_proba(table.features)[:, 1]
    assert np.allclose(explained.probabilities, expected, rtol=0, atol=1e-12)
    first = contributions(model, table.features[0], IBM_FEATURES, top=len(IBM_FEATURES))
    by_name = dict(zip(IBM_FEATURES, explained.contributions[0], strict=True))
    assert [c.contribution for c in first] == pytest.approx([by_name[c.feature] for c in first])
