"""Advance risk scores under the points model: features, exact scores, alerts, access.

Sunrise Energy (tests/advance_fixtures.py) hires four more sales reps 800 days before
today, each paid 20,000 CNY a month, and gives them a history:

- Risky: a 20,000 advance paid out and 60 days overdue, ratings 4 then 2, two penalties;
- Late: a 6,000 advance paid out and 30 days overdue;
- Picky: a 12,000 request rejected, one reward;
- Quiet: nothing.

Dates are relative to today in Shanghai, so the scores hold whenever the suite runs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest_asyncio
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import clock
from domain.analytics.features import features_as_of
from domain.analytics.scoring import rescore_employee, score_employees
from tenants.context import use_tenant
from tests.advance_fixtures import (
    Company,
    add_user,
    approved_and_paid,
    build_company,
    call,
    own_client,
    pk,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient, make_tenant
from tests.people_fixtures import mutate

TODAY = clock.local_today("Asia/Shanghai")
HIRED = TODAY - dt.timedelta(days=800)
SCENARIO = ("risky", "late", "picky", "quiet")


def days_ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        hr = company.token("hr")
        for number, key in enumerate(SCENARIO, start=90):
            hired = await mutate(
                gql,
                hr,
                "hireEmployee",
                {
                    "employeeNumber": f"S{number:03}",
                    "givenName": key.title(),
                    "familyName": "Sun",
                    "hireDate": HIRED.isoformat(),
                    "branchId": company.ids["sh"],
                    "positionId": company.ids["rep_pos"],
                    "salary": {"amount": {"amount": "20000"}},
                },
                "employee { id }",
            )
            company.ids[key] = hired["employee"]["id"]
        await give_history(gql, company)
        # HR in English: the sentences asserted below stay English whatever the catalogs.
        await add_user(gql, company, "hr_en", ["hr"], locale="en_US")
    return company


async def give_history(gql: GraphQLClient, company: Company) -> None:
    hr, ids = company.token("hr"), company.ids
    risky = await approved_and_paid(gql, company, "risky", "20000", "Trade fair")
    late = await approved_and_paid(gql, company, "late", "6000", "Client visit")
    await overdue_since(company, risky, 60)
    await overdue_since(company, late, 30)
    for period, rating, days in (("2025", "4", 300), ("2026H1", "2", 30)):
        await mutate(
            gql,
            hr,
            "recordPerformanceReview",
            {
                "employeeId": ids["risky"],
                "period": period,
                "rating": rating,
                "reviewedOn": days_ago(days),
            },
            "employee { id }",
        )
    for kind, who, days in (
        ("penalty", "risky", 10),
        ("penalty", "risky", 100),
        ("reward", "picky", 20),
    ):
        await mutate(
            gql,
            hr,
            "recordRewardOrPenalty",
            {
                "employeeId": ids[who],
                "kind": kind,
                "occurredOn": days_ago(days),
                "category": "conduct",
            },
            "employee { id }",
        )
    await rejected(gql, company, "picky", "12000")


async def overdue_since(company: Company, advance_id: str, days: int) -> None:
    """Set-up straight in the schema: requests refuse settlement dates in the past."""
    async with raw_session(company) as session:
        await session.execute(
            text("UPDATE advances SET expected_settlement_date = :due WHERE id = :id"),
            {"due": TODAY - dt.timedelta(days=days), "id": pk(advance_id)},
        )


async def rejected(gql: GraphQLClient, company: Company, who: str, amount: str) -> str:
    advance_id = await submitted(gql, company, who, amount, "Expo booth")
    body = await gql.execute(
        "query($id: ID!) { advance(id: $id) { approvalChain { id approver { id } } } }",
        {"id": advance_id},
        token=company.token("admin"),
    )
    step = body["data"]["advance"]["approvalChain"][0]
    approver = next(
        k for k, v in company.ids.items() if v == step["approver"]["id"] and k in company.tokens
    )
    decided = await call(
        gql,
        company.token(approver),
        "decideApproval",
        {"stepId": step["id"], "approve": False, "comment": "Not this year"},
        select="step { status }",
    )
    assert decided["userErrors"] == [], decided
    return advance_id


async def features_of(company: Company, as_of: dt.date, *keys: str) -> dict[str, Any]:
    with use_tenant(company.tenant.tenant):
        async with raw_session(company) as session:
            found = await features_as_of(session, as_of, [pk(company.ids[k]) for k in keys])
    by_pk = {pk(company.ids[k]): k for k in keys}
    return {by_pk[employee_id]: f for employee_id, f in found.items()}


async def test_features_read_the_advance_and_people_history_as_of_today(company: Company) -> None:
    found = await features_of(company, TODAY, *SCENARIO)

    risky = found["risky"]
    assert (risky.outstanding, risky.outstanding_to_salary) == (
        Decimal("20000.00"),
        Decimal("1.00"),
    )
    assert (risky.max_overdue_days, risky.advances_total, risky.advances_12m) == (60, 1, 1)
    assert (risky.last_rating, risky.rating_trend) == (Decimal("2.00"), Decimal("-2.00"))
    assert (risky.penalties_12m, risky.rewards_12m) == (2, 0)
    assert (risky.tenure_years, risky.years_since_promotion) == (Decimal("2.19"), Decimal("2.19"))
    assert risky.monthly_salary == Decimal("20000.0000")
    assert (risky.job_level_rank, risky.status) == (3, "active")
    assert found["late"].max_overdue_days == 30
    assert found["late"].outstanding_to_salary == Decimal("0.30")
    assert (found["picky"].rejections_12m, found["picky"].rewards_12m) == (1, 1)
    assert found["picky"].outstanding == Decimal("0.00")
    assert found["quiet"].advances_total == 0


async def test_features_as_of_a_past_date_ignore_later_events(company: Company) -> None:
    # Yesterday nothing of the advances existed, one penalty and one review were ahead.
    found = await features_of(company, TODAY - dt.timedelta(days=15), "risky", "picky")

    risky = found["risky"]
    assert (risky.advances_total, risky.outstanding, risky.max_overdue_days) == (
        0,
        Decimal("0.00"),
        0,
    )
    assert risky.penalties_12m == 1
    assert (risky.last_rating, risky.rating_trend) == (Decimal("2.00"), Decimal("-2.00"))
    assert (found["picky"].rejections_12m, found["picky"].rewards_12m) == (0, 1)

    earlier = await features_of(company, TODAY - dt.timedelta(days=60), "risky")
    assert (earlier["risky"].last_rating, earlier["risky"].rating_trend) == (Decimal("4.00"), None)


async def score_today(company: Company) -> Any:
    with use_tenant(company.tenant.tenant):
        return await score_employees(TODAY)


async def latest_rows(company: Company, *keys: str) -> dict[str, Any]:
    by_pk = {pk(company.ids[k]): k for k in keys or SCENARIO}
    async with raw_session(company) as session:
        rows = await session.execute(
            text(
                "SELECT DISTINCT ON (employee_id) employee_id, as_of, score, band, probability,"
                " factors, model_kind, model_version FROM risk_scores"
                " WHERE employee_id = ANY(:ids) ORDER BY employee_id, scored_at DESC, id DESC"
            ),
            {"ids": list(by_pk)},
        )
        return {by_pk[row.employee_id]: row for row in rows}


def contributions(row: Any) -> list[tuple[str, str]]:
    return [(f["name"], f["contribution"]) for f in row.factors]


async def test_the_points_model_scores_each_employee_exactly(company: Company) -> None:
    report = await score_today(company)

    assert report.scored == 34
    assert (report.model_kind, report.model_version) == ("points", "points-2")
    rows = await latest_rows(company)
    assert {k: (r.score, r.band) for k, r in rows.items()} == {
        "risky": (Decimal("58.00"), "medium"),
        "late": (Decimal("23.00"), "low"),
        "picky": (Decimal("11.00"), "low"),
        "quiet": (Decimal("10.00"), "low"),
    }
    assert contributions(rows["risky"]) == [
        ("advance_overdue", "20.00"),
        ("advance_outstanding", "10.00"),
        ("performance_decline", "10.00"),
        ("penalties", "8.00"),
    ]
    assert contributions(rows["late"]) == [
        ("advance_overdue", "10.00"),
        ("advance_outstanding", "3.00"),
    ]
    assert contributions(rows["picky"]) == [("rejections", "4.00"), ("rewards", "-3.00")]
    assert contributions(rows["quiet"]) == []
    assert {(r.as_of, r.probability, r.model_kind) for r in rows.values()} == {
        (TODAY, None, "points")
    }


SCORE_QUERY = """
query($id: ID!) {
  employee(id: $id) {
    riskScore {
      score band probability modelKind modelVersion asOf scoredAt
      factors { name contribution description }
    }
  }
}
"""


async def read_score(gql: GraphQLClient, company: Company, who: str, key: str) -> Any:
    body = await gql.execute(SCORE_QUERY, {"id": company.ids[key]}, token=company.token(who))
    assert "errors" not in body, body
    return body["data"]["employee"]["riskScore"] if body["data"]["employee"] else None


async def score_reads(company: Company, key: str) -> list[Any]:
    async with raw_session(company) as session:
        rows = await session.execute(
            text(
                "SELECT actor_id, after FROM audit_log WHERE action = 'risk.score.read'"
                " AND entity_id = :id ORDER BY id"
            ),
            {"id": str(pk(company.ids[key]))},
        )
        return list(rows)


async def test_hr_reads_the_score_and_its_factors_in_words_and_the_read_is_audited(
    company: Company, gql: GraphQLClient
) -> None:
    await score_today(company)
    before = len(await score_reads(company, "risky"))

    score = await read_score(gql, company, "hr_en", "risky")

    assert {k: score[k] for k in ("score", "band", "probability", "modelKind", "asOf")} == {
        "score": "58.00",
        "band": "MEDIUM",
        "probability": None,
        "modelKind": "POINTS",
        "asOf": TODAY.isoformat(),
    }
    assert score["modelVersion"] == "points-2"
    assert score["factors"] == [
        {
            "name": "advance_overdue",
            "contribution": "20.00",
            "description": "An advance is 60 days overdue.",
        },
        {
            "name": "advance_outstanding",
            "contribution": "10.00",
            "description": "Advance outstanding is 1x monthly salary.",
        },
        {
            "name": "performance_decline",
            "contribution": "10.00",
            "description": "The performance rating fell from 4 to 2.",
        },
        {
            "name": "penalties",
            "contribution": "8.00",
            "description": "Penalties in the last 12 months: 2.",
        },
    ]
    reads = await score_reads(company, "risky")
    assert len(reads) == before + 1
    async with raw_session(company) as session:
        hr_user = await session.scalar(
            text("SELECT id FROM users WHERE email = 'hr_en@sunrise.test'")
        )
    assert reads[-1].actor_id == hr_user
    assert reads[-1].after["risk_score_id"] is not None


async def test_employees_and_managers_cannot_read_scores_or_alerts(
    company: Company, gql: GraphQLClient
) -> None:
    await score_today(company)
    before = len(await score_reads(company, "rep0"))

    for who in ("rep0", "sales_head", "accountant"):
        assert await read_score(gql, company, who, "rep0") is None
        body = await gql.execute(
            "{ riskAlerts { edges { node { id } } } }", token=company.token(who)
        )
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        payload = await call(
            gql,
            company.token(who),
            "setRiskThresholds",
            {"medium": "10", "high": "20"},
            select="thresholds { medium }",
        )
        assert payload["thresholds"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]

    assert len(await score_reads(company, "rep0")) == before
    body = await gql.execute("{ riskThresholds { medium high } }", token=company.token("hr"))
    assert body["data"]["riskThresholds"] == {"medium": "40", "high": "70"}


async def test_bad_thresholds_are_refused_and_change_nothing(
    company: Company, gql: GraphQLClient
) -> None:
    for given, field in (
        ({"medium": "70", "high": "40"}, "high"),
        ({"medium": "0", "high": "40"}, "medium"),
        ({"medium": "40", "high": "100.5"}, "high"),
        ({"medium": "40.001", "high": "70"}, "medium"),
    ):
        payload = await call(
            gql, company.token("hr"), "setRiskThresholds", given, select="thresholds { medium }"
        )
        assert payload["thresholds"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, "INVALID")]

    body = await gql.execute("{ riskThresholds { medium high } }", token=company.token("hr"))
    assert body["data"]["riskThresholds"] == {"medium": "40", "high": "70"}


async def test_a_review_rescores_the_employee_through_its_event(
    company: Company, gql: GraphQLClient
) -> None:
    from workers import events  # noqa: F401  (records the actors)
    from workers.actors import spec

    await mutate(
        gql,
        company.token("hr"),
        "recordPerformanceReview",
        {
            "employeeId": company.ids["late"],
            "period": "2026H2",
            "rating": "3",
            "reviewedOn": days_ago(1),
        },
        "employee { id }",
    )
    async with raw_session(company) as session:
        [message] = await session.execute(
            text(
                "SELECT payload, idempotency_key FROM outbox"
                " WHERE actor_name = 'employee.reviewed' AND payload->>'employee_id' = :id"
            ),
            {"id": str(pk(company.ids["late"]))},
        )
        scores_before = await session.scalar(
            text("SELECT count(*) FROM risk_scores WHERE employee_id = :id"),
            {"id": pk(company.ids["late"])},
        )

    consume = spec("employee.reviewed").fn
    with use_tenant(company.tenant.tenant):
        await consume(**message.payload, idempotency_key=message.idempotency_key)
        await consume(**message.payload, idempotency_key=message.idempotency_key)

    async with raw_session(company) as session:
        scores_after = await session.scalar(
            text("SELECT count(*) FROM risk_scores WHERE employee_id = :id"),
            {"id": pk(company.ids["late"])},
        )
    assert scores_after == scores_before + 1
    rows = await latest_rows(company)
    assert rows["late"].score == Decimal("23.00")


ALERTS_QUERY = """
query($open: Boolean!) {
  riskAlerts(open: $open, first: 50) {
    edges { cursor node { id band score threshold closedAt acknowledgedAt employee { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def alerts_of(
    gql: GraphQLClient, company: Company, key: str, open: bool = False
) -> list[Any]:
    body = await gql.execute(ALERTS_QUERY, {"open": open}, token=company.token("hr"))
    assert "errors" not in body, body
    return [
        e["node"]
        for e in body["data"]["riskAlerts"]["edges"]
        if e["node"]["employee"]["id"] == company.ids[key]
    ]


async def set_thresholds(gql: GraphQLClient, company: Company, medium: str, high: str) -> None:
    payload = await call(
        gql,
        company.token("hr"),
        "setRiskThresholds",
        {"medium": medium, "high": high},
        select="thresholds { medium high }",
    )
    assert payload == {"thresholds": {"medium": medium, "high": high}, "userErrors": []}


async def risk_notifications(gql: GraphQLClient, company: Company, who: str) -> list[Any]:
    body = await gql.execute(
        "{ notifications(first: 100) { nodes { kind subject } } }", token=company.token(who)
    )
    return [n for n in body["data"]["notifications"]["nodes"] if n["kind"] == "risk.alert"]


async def alert_emails(company: Company, email: str) -> int:
    """E-mails queued for the user's risk alerts about Risky."""
    async with raw_session(company) as session:
        count: int = await session.scalar(
            text(
                "SELECT count(*) FROM outbox o"
                " JOIN notifications n ON o.payload->>'notification_id' = n.id::text"
                " JOIN users u ON u.id = n.recipient_id"
                " WHERE o.actor_name = 'notifications.send_email' AND n.kind = 'risk.alert'"
                " AND u.email = :email AND n.data->>'employee_id' = :employee"
            ),
            {"email": email, "employee": str(pk(company.ids["risky"]))},
        )
        return count


async def test_alerts_fire_once_per_crossing_and_again_after_a_drop(
    company: Company, gql: GraphQLClient
) -> None:
    # Given Risky at 58, in the medium band since the first scoring.
    await set_thresholds(gql, company, "40", "70")
    await score_today(company)
    alerts = await alerts_of(gql, company, "risky")
    assert [(a["band"], a["score"], a["threshold"], a["closedAt"]) for a in alerts] == [
        ("MEDIUM", "58.00", "40.00", None)
    ]

    # Re-scores in the same band raise nothing more.
    await score_today(company)
    await score_today(company)
    assert len(await alerts_of(gql, company, "risky")) == 1
    assert len(await risk_notifications(gql, company, "mgr1")) == 1

    # A drop below the threshold closes the crossing...
    await set_thresholds(gql, company, "60", "80")
    report = await score_today(company)
    assert (report.alerts_raised, report.alerts_closed) == (0, 1)
    assert await alerts_of(gql, company, "risky", open=True) == []

    # ...and a new rise is a new crossing with a new alert, told to HR and the manager.
    await set_thresholds(gql, company, "40", "70")
    report = await score_today(company)
    assert report.alerts_raised == 1
    alerts = await alerts_of(gql, company, "risky")
    assert [(a["band"], a["closedAt"] is None) for a in alerts] == [
        ("MEDIUM", True),
        ("MEDIUM", False),
    ]
    assert len(await risk_notifications(gql, company, "mgr1")) == 2
    assert len(await risk_notifications(gql, company, "hr")) == 2
    assert await risk_notifications(gql, company, "mgr2") == []
    # Each of them is also an e-mail, queued through the outbox.
    assert await alert_emails(company, "mgr1@sunrise.test") == 2
    assert await alert_emails(company, "hr@sunrise.test") == 2

    # Rising from medium to high is a crossing of the high threshold.
    await set_thresholds(gql, company, "40", "55")
    await score_today(company)
    assert [a["band"] for a in await alerts_of(gql, company, "risky", open=True)] == [
        "HIGH",
        "MEDIUM",
    ]

    # HR acknowledges once; a second time, or an employee, is refused.
    newest = alerts[0]["id"]
    done = await call(
        gql,
        company.token("hr"),
        "acknowledgeRiskAlert",
        {"alertId": newest},
        select="alert { id acknowledgedAt }",
    )
    assert done["userErrors"] == [] and done["alert"]["acknowledgedAt"] is not None
    again = await call(
        gql, company.token("hr"), "acknowledgeRiskAlert", {"alertId": newest}, select="alert { id }"
    )
    assert (again["alert"], [e["code"] for e in again["userErrors"]]) == (None, ["INVALID"])
    refused = await call(
        gql,
        company.token("rep0"),
        "acknowledgeRiskAlert",
        {"alertId": newest},
        select="alert { id }",
    )
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    await set_thresholds(gql, company, "40", "70")


async def test_another_tenant_never_sees_these_scores_or_alerts(
    company: Company, gql: GraphQLClient, engine: AsyncEngine
) -> None:
    other = await make_tenant(engine)
    admin = await gql.token(other.tenant.slug, other.admin_email)
    [alert] = (await alerts_of(gql, company, "risky"))[:1]

    with use_tenant(other.tenant):
        report = await score_employees(TODAY)
    body = await gql.execute(
        "query($id: ID!) { riskAlerts { edges { node { id } } } node(id: $id) { id } }",
        {"id": alert["id"]},
        token=admin,
    )
    employee = await gql.execute(SCORE_QUERY, {"id": company.ids["risky"]}, token=admin)

    assert report.scored == 0
    assert body["data"] == {"riskAlerts": {"edges": []}, "node": None}
    assert employee["data"]["employee"] is None or "errors" in employee


async def test_factor_sentences_use_the_viewers_number_format(
    company: Company, gql: GraphQLClient
) -> None:
    await score_today(company)
    await add_user(gql, company, "hr_de", ["hr"], locale="de_DE")

    score = await read_score(gql, company, "hr_de", "late")

    # German numbers, in the tenant's language (Chinese), as there is no German catalog.
    assert [f["description"] for f in score["factors"]] == [
        "有一笔借款已逾期 30 天。",
        "借款未清余额为月薪的 0,3 倍。",
    ]


async def test_the_nightly_actor_scores_every_employee_of_its_tenant(company: Company) -> None:
    from workers import risk  # noqa: F401  (records the actor)
    from workers.actors import spec

    async with raw_session(company) as session:
        before = await session.scalar(text("SELECT count(*) FROM risk_scores"))

    with use_tenant(company.tenant.tenant):
        await spec("risk.rescore_all").fn()

    async with raw_session(company) as session:
        after = await session.scalar(text("SELECT count(*) FROM risk_scores"))
    assert after == before + 34


async def test_an_employee_who_has_left_has_their_open_alert_closed(
    company: Company, gql: GraphQLClient
) -> None:
    # Given a new hire whose first score rises into the medium band of a low threshold.
    hired = await mutate(
        gql,
        company.token("hr"),
        "hireEmployee",
        {
            "employeeNumber": "S099",
            "givenName": "Leaver",
            "familyName": "Sun",
            "hireDate": HIRED.isoformat(),
            "branchId": company.ids["sh"],
            "positionId": company.ids["ops_pos"],
            "salary": {"amount": {"amount": "20000"}},
        },
        "employee { id }",
    )
    company.ids["leaver"] = hired["employee"]["id"]
    await set_thresholds(gql, company, "5", "70")
    with use_tenant(company.tenant.tenant):
        first = await rescore_employee(pk(company.ids["leaver"]), TODAY)
    assert (first.scored, first.alerts_raised) == (1, 1)

    # When they are gone on the day (set-up straight in the schema: an exit through the
    # API takes a clearance process this test is not about) and an event re-scores them.
    async with raw_session(company) as session:
        await session.execute(
            text("UPDATE employee_periods SET status = 'terminated' WHERE employee_id = :id"),
            {"id": pk(company.ids["leaver"])},
        )
    with use_tenant(company.tenant.tenant):
        again = await rescore_employee(pk(company.ids["leaver"]), TODAY)

    # Then nothing is scored and the crossing is over.
    assert (again.scored, again.alerts_raised, again.alerts_closed) == (0, 0, 1)
    assert await alerts_of(gql, company, "leaver", open=True) == []
    await set_thresholds(gql, company, "40", "70")


PAGE = """
query($first: Int!) {
  employees(first: $first) { edges { node { id riskScore { score band } } } }
}
"""


async def test_a_page_of_scores_costs_the_same_statements_whatever_its_size(
    company: Company, gql: GraphQLClient, engine: AsyncEngine
) -> None:
    await score_today(company)
    token = company.token("hr")
    await gql.execute(PAGE, {"first": 1}, token=token)  # warm the caches

    async def page(first: int) -> tuple[int, list[Any]]:
        executed: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            executed.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            body = await gql.execute(PAGE, {"first": first}, token=token)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert "errors" not in body, body
        return len(executed), body["data"]["employees"]["edges"]

    reads_before = await audit_reads(company)
    small, three = await page(3)
    large, thirty = await page(30)

    assert (len(three), len(thirty)) == (3, 30)
    assert large == small
    assert all(edge["node"]["riskScore"] is not None for edge in thirty)
    assert await audit_reads(company) == reads_before + 33


async def audit_reads(company: Company) -> int:
    async with raw_session(company) as session:
        count: int = await session.scalar(
            text("SELECT count(*) FROM audit_log WHERE action = 'risk.score.read'")
        )
        return count


async def test_transfers_manager_changes_and_leave_count_within_their_windows(
    company: Company, gql: GraphQLClient
) -> None:
    # A rep moved to operations (another manager) 500 days ago, back 400 days ago and to
    # operations again 100 days ago; on leave from 50 to 10 days ago.
    hr = company.token("hr")
    hired = await mutate(
        gql,
        hr,
        "hireEmployee",
        {
            "employeeNumber": "S098",
            "givenName": "Mover",
            "familyName": "Sun",
            "hireDate": HIRED.isoformat(),
            "branchId": company.ids["sh"],
            "positionId": company.ids["rep_pos"],
        },
        "employee { id }",
    )
    company.ids["mover"] = mover = hired["employee"]["id"]
    for days, position in ((500, "ops_pos"), (400, "rep_pos"), (100, "ops_pos")):
        await mutate(
            gql,
            hr,
            "transferEmployee",
            {
                "employeeId": mover,
                "effectiveDate": days_ago(days),
                "positionId": company.ids[position],
            },
            "employee { id }",
        )
    await mutate(
        gql,
        hr,
        "startLeave",
        {"employeeId": mover, "effectiveDate": days_ago(50)},
        "employee { id }",
    )
    await mutate(
        gql, hr, "endLeave", {"employeeId": mover, "effectiveDate": days_ago(10)}, "employee { id }"
    )

    today = (await features_of(company, TODAY, "mover"))["mover"]
    before = (await features_of(company, TODAY - dt.timedelta(days=30), "mover"))["mover"]

    # Three transfers in 24 months, one of them (a new manager) in 12; 40 days of leave,
    # of which 21 had been taken 30 days ago (that day included).
    assert (today.transfers_24m, today.manager_changes_12m, today.leave_days_12m) == (3, 1, 40)
    assert (before.transfers_24m, before.manager_changes_12m, before.leave_days_12m) == (3, 1, 21)
    assert today.monthly_salary is None and today.outstanding_to_salary is None


async def test_an_advance_in_another_currency_counts_at_the_rate_of_the_day(
    company: Company, gql: GraphQLClient
) -> None:
    # Given 7.1 CNY to the dollar and a 1,000 USD advance paid to a CNY earner.
    done = await call(
        gql,
        company.token("accountant"),
        "setExchangeRate",
        {"base": "USD", "quote": "CNY", "rate": "7.1", "validFrom": days_ago(365)},
        select="ok",
    )
    assert done == {"ok": True, "userErrors": []}
    hired = await mutate(
        gql,
        company.token("hr"),
        "hireEmployee",
        {
            "employeeNumber": "S097",
            "givenName": "Traveller",
            "familyName": "Sun",
            "hireDate": HIRED.isoformat(),
            "branchId": company.ids["sh"],
            "positionId": company.ids["rep_pos"],
            "salary": {"amount": {"amount": "20000"}},
        },
        "employee { id }",
    )
    company.ids["traveller"] = hired["employee"]["id"]
    await approved_and_paid(gql, company, "traveller", "1000", "Trip", currency="USD")

    found = (await features_of(company, TODAY, "traveller"))["traveller"]

    # 7,100 CNY of 20,000 a month.
    assert (found.outstanding, found.outstanding_to_salary) == (
        Decimal("7100.00"),
        Decimal("0.36"),
    )


# --- expense habits, and re-scores through the outbox -------------------------------------


async def hire_rep(gql: GraphQLClient, company: Company, key: str, number: str) -> None:
    hired = await mutate(
        gql,
        company.token("hr"),
        "hireEmployee",
        {
            "employeeNumber": number,
            "givenName": key.title(),
            "familyName": "Sun",
            "hireDate": HIRED.isoformat(),
            "branchId": company.ids["sh"],
            "positionId": company.ids["rep_pos"],
            "salary": {"amount": {"amount": "20000"}},
        },
        "employee { id }",
    )
    company.ids[key] = hired["employee"]["id"]


async def claim(
    gql: GraphQLClient, company: Company, advance_id: str, *lines: tuple[str, int, str | None]
) -> None:
    """Finance submits an expense claim of (amount, days ago spent, receipt) lines."""
    done = await call(
        gql,
        company.token("accountant"),
        "submitExpenseClaim",
        {
            "advanceId": advance_id,
            "lines": [
                {
                    "spentOn": days_ago(days),
                    "category": "travel",
                    "amount": {"amount": amount},
                    "receiptReference": receipt,
                }
                for amount, days, receipt in lines
            ],
        },
    )
    assert done["userErrors"] == [], done


async def test_receipts_handed_in_late_or_missing_are_features_as_of_their_claim(
    company: Company, gql: GraphQLClient
) -> None:
    # Given a 10,000 advance due 10 days ago, settled in part today by a claim of two
    # lines, one without a receipt; and a second claim whose only entry finance reversed.
    await hire_rep(gql, company, "claimant", "S096")
    advance_id = await approved_and_paid(gql, company, "claimant", "10000", "Roadshow")
    await overdue_since(company, advance_id, 10)
    await claim(gql, company, advance_id, ("3000", 20, "R-0001"), ("2000", 15, None))
    await claim(gql, company, advance_id, ("1000", 12, None))
    body = await gql.execute(
        "query($id: ID!) { advance(id: $id) { entries { id kind amount { amount } } } }",
        {"id": advance_id},
        token=company.token("accountant"),
    )
    [last] = [e for e in body["data"]["advance"]["entries"] if e["amount"]["amount"] == "-1000.00"]
    reversed_ = await call(
        gql,
        company.token("accountant"),
        "reverseLedgerEntry",
        {"entryId": last["id"], "reason": "Receipt belongs to another trip"},
    )
    assert reversed_["userErrors"] == [], reversed_

    today = (await features_of(company, TODAY, "claimant"))["claimant"]
    yesterday = (await features_of(company, TODAY - dt.timedelta(days=1), "claimant"))["claimant"]

    # Then today two receipts count, both late (handed in after the due date), one missing;
    # the reversed claim counts for nothing. Yesterday nothing of it had happened yet.
    assert (today.claim_lines_12m, today.missing_receipts_12m, today.late_receipts_12m) == (
        2,
        1,
        2,
    )
    assert (today.outstanding, today.max_overdue_days) == (Decimal("5000.00"), 10)
    assert (
        yesterday.claim_lines_12m,
        yesterday.missing_receipts_12m,
        yesterday.late_receipts_12m,
    ) == (0, 0, 0)
    assert (yesterday.advances_total, yesterday.outstanding) == (0, Decimal("0.00"))

    # And the points model counts them: 10 + 3.33 overdue + 2.5 outstanding + 4 late
    # receipts + 2 missing.
    with use_tenant(company.tenant.tenant):
        report = await rescore_employee(pk(company.ids["claimant"]), TODAY)
    assert report.model_version == "points-2"
    rows = await latest_rows(company, "claimant")
    assert rows["claimant"].score == Decimal("21.83")
    assert contributions(rows["claimant"]) == [
        ("late_receipts", "4.00"),
        ("advance_overdue", "3.33"),
        ("advance_outstanding", "2.50"),
        ("missing_receipts", "2.00"),
    ]
    score = await read_score(gql, company, "hr_en", "claimant")
    assert [f["description"] for f in score["factors"]][::3] == [
        "Receipts handed in after the settlement date in the last 12 months: 2.",
        "Expense lines claimed without a receipt in the last 12 months: 1.",
    ]


async def consume_events(company: Company, actor_name: str, key: str) -> int:
    """Hand the outbox messages of `actor_name` about employee `key` to their consumer,
    twice each (as a redelivery would); returns how many there were."""
    from workers import events  # noqa: F401  (records the actors)
    from workers.actors import spec

    async with raw_session(company) as session:
        messages = list(
            await session.execute(
                text(
                    "SELECT payload, idempotency_key FROM outbox WHERE actor_name = :actor"
                    " AND payload->>'employee_id' = :id ORDER BY id"
                ),
                {"actor": actor_name, "id": str(pk(company.ids[key]))},
            )
        )
    with use_tenant(company.tenant.tenant):
        for message in messages * 2:
            await spec(actor_name).fn(**message.payload, idempotency_key=message.idempotency_key)
    return len(messages)


async def score_count(company: Company, key: str) -> int:
    async with raw_session(company) as session:
        count: int = await session.scalar(
            text("SELECT count(*) FROM risk_scores WHERE employee_id = :id"),
            {"id": pk(company.ids[key])},
        )
        return count


async def test_a_payout_and_a_resignation_rescore_the_employee_through_their_events(
    company: Company, gql: GraphQLClient
) -> None:
    # Given a rep paid a 20,000 advance (a month's salary)
    await hire_rep(gql, company, "resigner", "S095")
    await approved_and_paid(gql, company, "resigner", "20000", "Exhibition")

    # When the disbursement's event is handled (twice, as a redelivery would)
    assert await consume_events(company, "advance.changed", "resigner") == 1

    # Then the rep is scored once, on the money out
    assert await score_count(company, "resigner") == 1
    rows = await latest_rows(company, "resigner")
    assert (rows["resigner"].score, contributions(rows["resigner"])) == (
        Decimal("20.00"),
        [("advance_outstanding", "10.00")],
    )

    # When HR records their resignation and its event is handled
    resigned = await call(
        gql,
        company.token("hr"),
        "submitResignation",
        {"employeeId": company.ids["resigner"], "lastWorkingDay": days_ago(-30)},
        select="case { id }",
    )
    assert resigned["userErrors"] == [], resigned
    assert await consume_events(company, "employee.offboarding", "resigner") == 1

    # Then the new score counts the leaving, and nothing else changed
    assert await score_count(company, "resigner") == 2
    rows = await latest_rows(company, "resigner")
    assert (rows["resigner"].score, contributions(rows["resigner"])) == (
        Decimal("35.00"),
        [("leaving", "15.00"), ("advance_outstanding", "10.00")],
    )
