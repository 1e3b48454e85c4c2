"""Reminders at 09:00 on each branch's own calendar, once per local day, DST days included.

Instants are explicit: the scans a scheduler would run every hour are run one after the
other with the instant they would have, so nothing sleeps and no test waits for a clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import reminders
from domain.identity.models import User
from domain.notifications import Notification
from domain.outbox import OutboxMessage
from tenants.binding import tenant_session
from tenants.context import Tenant, use_tenant
from tenants.registry import list_tenants
from tests.advance_fixtures import (
    Company,
    add_user,
    approved_and_paid,
    build_company,
    own_client,
    pk,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient, server_url
from tests.people_fixtures import mutate
from tests.worker_support import eventually, installed_broker, running_worker
from workers import scheduler as schedulers
from workers.reminders import QUEUE as REMINDERS_QUEUE

UTC = dt.UTC
DST_DAYS = [
    ("America/Los_Angeles", dt.date(2027, 3, 14)),
    ("America/Los_Angeles", dt.date(2027, 11, 7)),
    ("Europe/Berlin", dt.date(2027, 3, 28)),
    ("Europe/Berlin", dt.date(2027, 10, 31)),
]


def hourly_instants(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The instants the scheduler's hourly trigger fires at in [start, end)."""
    fires, previous, now = [], None, start
    while (fire := schedulers.HOURLY.get_next_fire_time(previous, now)) < end:
        fires.append(fire)
        previous, now = fire, fire + dt.timedelta(seconds=1)
    return fires


def nine_local(zone: str, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9), ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_every_local_day_has_one_run_at_its_nine_oclock_around_a_clock_change(
    zone: str, day: dt.date
) -> None:
    start = dt.datetime.combine(day - dt.timedelta(days=2), dt.time(), UTC)
    instants = hourly_instants(start, start + dt.timedelta(days=5))

    first_seen: dict[dt.date, dt.datetime] = {}
    for instant in instants:
        first_seen.setdefault(reminders.run_date(zone, instant), instant)
    daily = CronTrigger(hour=9, timezone=ZoneInfo(zone))
    fires = [daily.get_next_fire_time(None, start)]
    while (nxt := daily.get_next_fire_time(fires[-1], fires[-1] + dt.timedelta(seconds=1))) < (
        instants[-1]
    ):
        fires.append(nxt)

    local_days = [day + dt.timedelta(days=n) for n in (-1, 0, 1, 2)]
    assert [first_seen[d] for d in local_days] == [nine_local(zone, d) for d in local_days]
    assert len(instants) == 5 * 24  # an hourly UTC trigger knows no DST
    assert [f.astimezone(ZoneInfo(zone)).date() for f in fires] == [
        day + dt.timedelta(days=n) for n in range(-2, 3)
    ]
    assert {f.astimezone(ZoneInfo(zone)).time() for f in fires} == {dt.time(9)}


def test_working_hours_count_weekdays_from_nine_to_six_only() -> None:
    friday_ten = dt.datetime(2027, 3, 12, 10, tzinfo=ZoneInfo("America/Los_Angeles"))
    monday_ten = friday_ten + dt.timedelta(days=3)  # across the spring-forward Sunday
    tuesday_ten = monday_ten + dt.timedelta(days=1)

    assert reminders.working_hours(friday_ten, monday_ten, "America/Los_Angeles") == 9
    assert reminders.working_hours(friday_ten, tuesday_ten, "America/Los_Angeles") == 18


# --- scans against a real tenant -------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        for n in range(1, 6):
            await add_user(gql, company, f"rep{n}", ["employee"])
        await add_user(gql, company, "controller", ["finance"], locale="en")
        return company


async def set_branch_zone(company: Company, zone: str) -> None:
    async with raw_session(company) as session:
        await session.execute(
            text("UPDATE branches SET time_zone = :zone WHERE id = :id"),
            {"zone": zone, "id": pk(company.ids["sh"])},
        )


async def scan(tenant: Tenant, at: dt.datetime) -> reminders.ScanReport:
    with use_tenant(tenant):
        return await reminders.send_reminders(at)


async def reminder_rows(tenant: Tenant, kind: str, advance_id: str) -> list[tuple[str, str]]:
    """(recipient e-mail, key) of the reminders of `kind` about an advance."""
    async with tenant_session(tenant) as session:
        rows = await session.execute(
            select(User.email, Notification.idempotency_key)
            .join(User, User.id == Notification.recipient_id)
            .where(
                Notification.kind == kind,
                Notification.idempotency_key.like(f"reminder:{kind}:{pk(advance_id)}:%"),
            )
        )
        return sorted(((e, k) for e, k in rows), key=lambda row: (row[1].split(":")[3], row[0]))


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
async def test_a_due_soon_reminder_goes_out_once_at_nine_local_on_a_clock_change_day(
    company: Company, gql: GraphQLClient, zone: str, day: dt.date
) -> None:
    tenant = company.tenant.tenant
    who = f"rep{DST_DAYS.index((zone, day)) + 1}"
    advance_id = await approved_and_paid(
        gql, company, who, "600", f"Trip {day}", due=(day + dt.timedelta(days=3)).isoformat()
    )
    await set_branch_zone(company, zone)
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(), UTC)

    wrote_at = []
    for instant in hourly_instants(start, start + dt.timedelta(days=3)):
        before = len(await reminder_rows(tenant, "advance.due_soon", advance_id))
        await scan(tenant, instant)
        if len(await reminder_rows(tenant, "advance.due_soon", advance_id)) > before:
            wrote_at.append(instant)

    assert wrote_at == [nine_local(zone, day)]
    assert await reminder_rows(tenant, "advance.due_soon", advance_id) == [
        (
            f"{who}@sunrise.test",
            f"reminder:advance.due_soon:{pk(advance_id)}:{day.isoformat()}:"
            + str(await _user_id(tenant, f"{who}@sunrise.test")),
        )
    ]


async def test_overdue_reminders_escalate_to_the_manager_then_finance_and_tell_analytics(
    company: Company, gql: GraphQLClient
) -> None:
    tenant = company.tenant.tenant
    await set_branch_zone(company, "Asia/Shanghai")
    due = dt.date(2027, 1, 10)
    advance_id = await approved_and_paid(gql, company, "rep5", "900", "Expo", due=due.isoformat())

    for offset in range(0, 9):  # 10:00 Shanghai on Jan 10 to Jan 18, twice a day
        local = dt.datetime.combine(due + dt.timedelta(days=offset), dt.time(10))
        for hour in (0, 5):
            at = (local + dt.timedelta(hours=hour)).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
            await scan(tenant, at)

    overdue = await reminder_rows(tenant, "advance.overdue", advance_id)
    escalated = await reminder_rows(tenant, "advance.escalated", advance_id)
    assert [(email, key.split(":")[3]) for email, key in overdue] == [
        ("rep5@sunrise.test", "2027-01-11")
    ]
    assert [(email, key.split(":")[3]) for email, key in escalated] == [
        ("mgr1@sunrise.test", "2027-01-13"),
        ("accountant@sunrise.test", "2027-01-17"),
        ("controller@sunrise.test", "2027-01-17"),
        ("fin_mgr@sunrise.test", "2027-01-17"),
    ]
    async with tenant_session(tenant) as session:
        events = list(
            await session.scalars(
                select(OutboxMessage.payload).where(
                    OutboxMessage.idempotency_key == f"advance.overdue:{pk(advance_id)}"
                )
            )
        )
        english = await session.scalar(
            select(Notification.subject).where(
                Notification.idempotency_key.like(f"reminder:advance.escalated:{pk(advance_id)}:%"),
                Notification.recipient_id == await _user_id(tenant, "controller@sunrise.test"),
            )
        )
    assert [(e["change"], e["status"]) for e in events] == [("overdue", "disbursed")]
    assert english == "Rep5 Sun's advance is 7 days overdue"


async def test_reminders_of_a_day_no_scan_reached_go_out_at_the_next_scan_once(
    company: Company, gql: GraphQLClient
) -> None:
    tenant = company.tenant.tenant
    await set_branch_zone(company, "America/Los_Angeles")
    la = ZoneInfo("America/Los_Angeles")
    due = dt.date(2027, 5, 1)
    advance_id = await approved_and_paid(gql, company, "rep3", "400", "Summit", due=due.isoformat())
    # Every worker is down from 08:00 on 4 May to 10:00 on 5 May, Los Angeles time: no
    # scan at 09:00 on 4 May, the manager's day (three days overdue).
    down = (dt.datetime(2027, 5, 4, 8, tzinfo=la), dt.datetime(2027, 5, 5, 10, tzinfo=la))
    start = dt.datetime(2027, 4, 30, tzinfo=UTC)

    first_heard: dict[tuple[str, str, str], dt.datetime] = {}
    for instant in hourly_instants(start, start + dt.timedelta(days=12)):
        if down[0] <= instant <= down[1]:
            continue
        await scan(tenant, instant)
        for kind in ("advance.due_soon", "advance.overdue", "advance.escalated"):
            for email, key in await reminder_rows(tenant, kind, advance_id):
                first_heard.setdefault((kind, email, key.split(":")[3]), instant)

    def nine(day: int) -> dt.datetime:
        return dt.datetime(2027, 5, day, 9, tzinfo=la).astimezone(UTC)

    assert first_heard == {
        # Before the gap: the overdue reminder on 2 May (due soon on 28 April: no scan
        # ran before the 30th, and it was caught up at the first).
        ("advance.due_soon", "rep3@sunrise.test", "2027-04-28"): start,
        ("advance.overdue", "rep3@sunrise.test", "2027-05-02"): nine(2),
        # The manager's, due on 4 May, at the first scan after the gap (11:00 on 5 May),
        # under the key of the day it was due; and finance's on time on 8 May.
        ("advance.escalated", "mgr1@sunrise.test", "2027-05-04"): dt.datetime(
            2027, 5, 5, 11, tzinfo=la
        ).astimezone(UTC),
        ("advance.escalated", "accountant@sunrise.test", "2027-05-08"): nine(8),
        ("advance.escalated", "fin_mgr@sunrise.test", "2027-05-08"): nine(8),
        # The controller has no branch: 09:00 on the tenant's (Shanghai) calendar.
        ("advance.escalated", "controller@sunrise.test", "2027-05-08"): dt.datetime(
            2027, 5, 8, 9, tzinfo=ZoneInfo("Asia/Shanghai")
        ),
    }


async def test_each_recipient_hears_at_nine_in_their_own_branchs_zone(
    company: Company, gql: GraphQLClient
) -> None:
    # A Berlin sales rep whose position reports to the Head of Sales in Shanghai.
    tenant = company.tenant.tenant
    await set_branch_zone(company, "Asia/Shanghai")
    admin = company.token("admin")
    berlin = await mutate(
        gql,
        admin,
        "createBranch",
        {
            "code": "BER",
            "name": "Berlin",
            "country": "DE",
            "currency": "EUR",
            "timeZone": "Europe/Berlin",
            "locale": "de_DE",
        },
        "branch { id }",
    )
    unit = await mutate(
        gql,
        admin,
        "createOrgUnit",
        {
            "name": "Sales Germany",
            "kind": "team",
            "branchId": berlin["branch"]["id"],
            "effectiveDate": "2022-01-01",
            "parentId": company.ids["sales"],
        },
        "orgUnit { id }",
    )
    position = await mutate(
        gql,
        admin,
        "createPosition",
        {
            "title": "Sales Rep Germany",
            "orgUnitId": unit["orgUnit"]["id"],
            "openedOn": "2022-01-01",
            "jobLevelId": company.ids["L3"],
            "reportsToId": company.ids["sales_head_pos"],
        },
        "position { id }",
    )
    hired = await mutate(
        gql,
        admin,
        "hireEmployee",
        {
            "employeeNumber": "B001",
            "givenName": "Lena",
            "familyName": "Berg",
            "hireDate": "2023-01-01",
            "branchId": berlin["branch"]["id"],
            "positionId": position["position"]["id"],
            "salary": {"amount": {"amount": "5000"}},
        },
        "employee { id }",
    )
    company.ids["lena"] = hired["employee"]["id"]
    await add_user(gql, company, "lena", ["employee"], locale="de")
    due = dt.date(2027, 2, 10)
    advance_id = await approved_and_paid(
        gql, company, "lena", "800", "Messe", currency="CNY", due=due.isoformat()
    )

    first_heard: dict[tuple[str, str], dt.datetime] = {}
    start = dt.datetime(2027, 2, 10, tzinfo=UTC)
    for instant in hourly_instants(start, start + dt.timedelta(days=4)):
        await scan(tenant, instant)
        for kind in ("advance.overdue", "advance.escalated"):
            for email, _ in await reminder_rows(tenant, kind, advance_id):
                first_heard.setdefault((kind, email), instant)

    assert first_heard == {
        # 09:00 on 11 February in Berlin (UTC+1): one day overdue there.
        ("advance.overdue", "lena@sunrise.test"): dt.datetime(2027, 2, 11, 8, tzinfo=UTC),
        # 09:00 on 13 February in Shanghai (UTC+8): three days overdue.
        ("advance.escalated", "sales_head@sunrise.test"): dt.datetime(2027, 2, 13, 1, tzinfo=UTC),
    }
    assert [
        key.split(":")[3] for _, key in await reminder_rows(tenant, "advance.escalated", advance_id)
    ] == ["2027-02-13"]


async def test_an_approver_is_reminded_after_the_policys_working_hours_once_a_day(
    company: Company, gql: GraphQLClient
) -> None:
    tenant = company.tenant.tenant
    await set_branch_zone(company, "America/Los_Angeles")
    zone = ZoneInfo("America/Los_Angeles")
    advance_id = await submitted(gql, company, "rep0", "700", "Fair booth")
    friday_ten = dt.datetime(2027, 3, 12, 10, tzinfo=zone)
    async with raw_session(company) as session:
        await session.execute(
            text("UPDATE advances SET submitted_at = :at WHERE id = :id"),
            {"at": friday_ten, "id": pk(advance_id)},
        )

    monday = await _waiting_after(tenant, advance_id, friday_ten + dt.timedelta(days=3))
    tuesday = await _waiting_after(tenant, advance_id, friday_ten + dt.timedelta(days=4))
    tuesday_later = await _waiting_after(
        tenant, advance_id, friday_ten + dt.timedelta(days=4, hours=3)
    )

    assert monday == 0  # 9 working hours: within the policy's 16
    assert tuesday == 1  # 18 working hours
    assert tuesday_later == 1  # the same local day: not again


async def _waiting_after(tenant: Tenant, advance_id: str, at: dt.datetime) -> int:
    await scan(tenant, at)
    async with tenant_session(tenant) as session:
        keys = await session.scalars(
            select(Notification.idempotency_key).where(Notification.kind == "approval.waiting")
        )
        steps = await session.scalars(
            text("SELECT id FROM approval_steps WHERE advance_id = :id"), {"id": pk(advance_id)}
        )
        step_ids = {str(s) for s in steps}
        return sum(1 for key in keys if key.split(":")[2] in step_ids)


async def _user_id(tenant: Tenant, email: str) -> Any:
    async with tenant_session(tenant) as session:
        return await session.scalar(select(User.id).where(User.email == email))


# --- the policy through GraphQL ---------------------------------------------------------------

POLICY = (
    "{ reminderPolicy { dueSoonDays escalateManagerDays escalateFinanceDays approvalWaitHours } }"
)
SET_POLICY = """mutation($input: ReminderPolicyInput!) {
  setReminderPolicy(input: $input) {
    policy { dueSoonDays escalateManagerDays escalateFinanceDays approvalWaitHours }
    userErrors { field code message }
  }
}"""


async def test_an_admin_edits_the_reminder_policy_and_others_may_not(
    company: Company, gql: GraphQLClient
) -> None:
    admin = company.token("admin")
    before = await gql.execute(POLICY, token=admin)
    wanted = {
        "dueSoonDays": 5,
        "escalateManagerDays": 4,
        "escalateFinanceDays": 10,
        "approvalWaitHours": 24,
    }

    changed = await gql.execute(SET_POLICY, {"input": wanted}, token=admin)
    refused = await gql.execute(
        SET_POLICY, {"input": wanted | {"escalateFinanceDays": 3}}, token=admin
    )
    all_wrong = await gql.execute(
        SET_POLICY,
        {
            "input": {
                "dueSoonDays": 0,
                "escalateManagerDays": 4,
                "escalateFinanceDays": 400,
                "approvalWaitHours": 721,
            }
        },
        token=admin,
        headers={"Accept-Language": "en"},
    )
    forbidden = await gql.execute(SET_POLICY, {"input": wanted}, token=company.token("rep0"))
    after = await gql.execute(POLICY, token=admin)
    restored = await gql.execute(
        SET_POLICY, {"input": before["data"]["reminderPolicy"]}, token=admin
    )

    assert before["data"]["reminderPolicy"] == {
        "dueSoonDays": 3,
        "escalateManagerDays": 3,
        "escalateFinanceDays": 7,
        "approvalWaitHours": 16,
    }
    assert changed["data"]["setReminderPolicy"] == {"policy": wanted, "userErrors": []}
    assert refused["data"]["setReminderPolicy"]["userErrors"] == [
        {
            "field": "escalateFinanceDays",
            "code": "INVALID",
            "message": "财务部门收到逾期通知的时间须晚于经理。",  # the tenant reads Chinese
        }
    ]
    # Every bad field is named at once, so a form can mark them all.
    assert all_wrong["data"]["setReminderPolicy"] == {
        "policy": None,
        "userErrors": [
            {"field": "dueSoonDays", "code": "INVALID", "message": "Choose 1 to 60 days."},
            {
                "field": "escalateFinanceDays",
                "code": "INVALID",
                "message": "Choose 2 to 365 days.",
            },
            {
                "field": "approvalWaitHours",
                "code": "INVALID",
                "message": "Choose 1 to 720 working hours.",
            },
        ],
    }
    assert forbidden["data"]["setReminderPolicy"]["userErrors"][0]["code"] == "FORBIDDEN"
    assert after["data"]["reminderPolicy"] == wanted
    assert restored["data"]["setReminderPolicy"]["userErrors"] == []


# --- the scheduler ---------------------------------------------------------------------------


@pytest.fixture
async def reminders_broker(database_url: str) -> AsyncIterator[Any]:
    async with installed_broker(database_url, [REMINDERS_QUEUE]) as broker:
        yield broker


async def test_the_scheduler_fans_a_scan_out_to_every_active_tenant(
    company: Company, reminders_broker: Any
) -> None:
    sent = await schedulers.fan_out_reminders(dt.datetime(2027, 6, 1, 1, tzinfo=UTC))

    async with running_worker(reminders_broker, [REMINDERS_QUEUE], threads=2):
        await eventually(lambda: _queue_empty(reminders_broker), timeout=60)

    assert sent == len([t for t in await list_tenants() if t.is_active])


async def end_the_active_scheduler(engine: AsyncEngine) -> None:
    """Close the connection that holds the leader lock, as if its scheduler died. Only this
    database's holder: schedulers of other databases on the server hold their own."""
    async with engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND ((classid::bigint << 32) | objid::bigint) = :key"
                " AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())"
            ),
            {"key": schedulers.LEADER_LOCK_KEY},
        )
        await conn.commit()


def _queue_empty(broker: Any) -> bool:
    with broker.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name LIKE %s AND state <> 'rejected'",
            (f"{REMINDERS_QUEUE}%",),
        ).fetchone()
    return int(row[0]) == 0


async def test_one_scheduler_is_active_and_another_takes_over_when_it_dies(
    engine: AsyncEngine,
) -> None:
    first, second = schedulers.Leadership(), schedulers.Leadership()
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    running = [
        asyncio.create_task(schedulers.run_scheduler(stop_first, first, poll=0.1, schedules={})),
    ]
    await asyncio.wait_for(first.leading.wait(), 10)
    running.append(
        asyncio.create_task(schedulers.run_scheduler(stop_second, second, poll=0.1, schedules={}))
    )
    try:
        await asyncio.sleep(0.5)  # five polls of the second: the lock stays taken
        second_led_early = second.leading.is_set()

        # The active one dies: its connection, and with it the lock, goes away.
        await end_the_active_scheduler(engine)
        await asyncio.wait_for(second.leading.wait(), 10)
        await eventually(lambda: not first.leading.is_set() or first.terms > 1, timeout=10)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(*running)

    assert second_led_early is False
    assert second.terms == 1


async def test_the_scheduler_lock_of_another_database_does_not_hold_this_one_back(
    engine: AsyncEngine,
) -> None:
    # The server's other database (the one the test database was created from) has an
    # active scheduler: this test holds its lock there, unless someone else already does.
    other = await asyncpg.connect(
        make_url(server_url()).set(drivername="postgresql").render_as_string(False)
    )
    leadership, stop = schedulers.Leadership(), asyncio.Event()
    try:
        await other.fetchval("SELECT pg_try_advisory_lock($1)", schedulers.LEADER_LOCK_KEY)
        held_there = await other.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND ((classid::bigint << 32) | objid::bigint) = $1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            schedulers.LEADER_LOCK_KEY,
        )
        running = asyncio.create_task(
            schedulers.run_scheduler(stop, leadership, poll=0.1, schedules={})
        )
        await asyncio.wait_for(leadership.leading.wait(), 10)
        stop.set()
        await running
    finally:
        stop.set()
        await other.close()

    assert held_there == 1
    assert leadership.terms == 1


def every_run(fired: list[dt.datetime]) -> Any:
    """A fan-out that notes the fire time it was given."""

    async def fan_out(at: dt.datetime) -> int:
        fired.append(at)
        return 1

    return fan_out


async def test_a_standby_that_takes_over_runs_the_slot_the_dead_leader_missed_once(
    engine: AsyncEngine,
) -> None:
    fired: list[dt.datetime] = []
    job = f"test.hourly.{uuid.uuid4().hex[:8]}"
    schedules = {
        job: schedulers.Schedule(schedulers.HOURLY, every_run(fired), dt.timedelta(hours=1))
    }

    def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
        return dt.datetime(2027, 5, 4, hour, minute, second, tzinfo=UTC)

    async with engine.connect() as old, engine.connect() as new:
        dead = schedulers.Leader(old)
        standby = schedulers.Leader(new)
        # The old leader ran 07:00 and was killed at 07:59:57; its 08:00 run never came.
        ran_by_dead = await dead.catch_up(schedules, at(7, 0, 1))
        # The standby becomes the active one at 08:00:02, and checks again a little later.
        took_over = await standby.catch_up(schedules, at(8, 0, 2))
        checked_again = await standby.catch_up(schedules, at(8, 0, 7))
        # Nobody was active from 08:10 to 10:30: only the latest run is caught up.
        after_a_gap = await standby.catch_up(schedules, at(10, 30))

    assert ran_by_dead == [(job, at(7))]
    assert took_over == [(job, at(8))]
    assert checked_again == []
    assert after_a_gap == [(job, at(10))]
    assert fired == [at(7), at(8), at(10)]
    async with engine.connect() as conn:
        slots = await conn.execute(
            text(
                "SELECT fire_time, tenants FROM shared.schedule_slots WHERE job = :job"
                " ORDER BY fire_time"
            ),
            {"job": job},
        )
        assert slots.all() == [(at(7), 1), (at(8), 1), (at(10), 1)]


async def test_a_leader_that_lost_its_lock_runs_no_slot_and_no_slot_is_skipped(
    engine: AsyncEngine,
) -> None:
    fired: list[dt.datetime] = []
    job = f"test.each_second.{uuid.uuid4().hex[:8]}"
    each_second = {
        job: schedulers.Schedule(
            CronTrigger(second="*", timezone=UTC), every_run(fired), dt.timedelta(seconds=1)
        )
    }
    first, second = schedulers.Leadership(), schedulers.Leadership()
    stop = asyncio.Event()
    # The first checks its lock only every 3 s: it goes on scheduling that long unaware.
    running = [
        asyncio.create_task(schedulers.run_scheduler(stop, first, poll=3, schedules=each_second))
    ]
    try:
        await asyncio.wait_for(first.leading.wait(), 10)
        running.append(
            asyncio.create_task(
                schedulers.run_scheduler(stop, second, poll=0.1, schedules=each_second)
            )
        )
        await asyncio.sleep(1.5)
        await end_the_active_scheduler(engine)
        await asyncio.wait_for(second.leading.wait(), 10)
        both_believed_they_led = first.leading.is_set()
        await asyncio.sleep(2.5)
    finally:
        stop.set()
        await asyncio.gather(*running)

    assert both_believed_they_led
    assert len(fired) == len(set(fired)) >= 4  # no second fanned out twice
    seconds = [fired[0] + dt.timedelta(seconds=n) for n in range(len(fired))]
    assert sorted(fired) == seconds  # and none skipped across the takeover
