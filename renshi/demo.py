"""The demo tenant that `make run` prepares, so a newcomer can sign in at once.

The first run creates it and fills it with Meridian Group (`renshi.demo_data`): 300 people
in four countries, with their history, and users linked to some of them, one per role, so
that what each role may see can be tried. Later runs find the tenant and leave it alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy import func, select

from domain.clock import local_today
from domain.identity.actions import create_user
from domain.identity.models import User
from domain.people.models import Employee
from renshi import demo_data
from renshi.operations import migrate_everything
from renshi.settings import Settings
from tenants.binding import tenant_session
from tenants.context import Tenant, use_tenant
from tenants.database import get_engine
from tenants.provisioning import TenantSpec, create_tenant, drop_tenant
from tenants.registry import find_tenant

log = logging.getLogger(__name__)

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.renshi.test"
# NOTE: a fixed, printed password is fine for a local demo and nowhere else; `make run`
# is a development command and the demo tenant is never created in production.
DEMO_PASSWORD = "renshi-demo-2026"  # noqa: S105


@dataclasses.dataclass(frozen=True)
class DemoUser:
    email: str
    roles: tuple[str, ...]
    who: str


@dataclasses.dataclass(frozen=True)
class DemoCredentials:
    tenant: str
    email: str
    password: str  # of every demo user
    users: tuple[DemoUser, ...] = ()


async def prepare(settings: Settings) -> DemoCredentials:
    """Migrate everything, then create and fill the demo tenant unless it exists."""
    if settings.is_production:
        raise RuntimeError("The demo tenant is for development only.")
    # NOTE: one tenant at a time, in this process. A development database holds a handful
    # of schemas, which migrate faster than worker processes start, and Ctrl-C then
    # reaches one process instead of a pool that each print their own traceback.
    await migrate_everything(concurrency=1, echo=False)
    tenant = await find_tenant(DEMO_SLUG)
    if tenant is None:
        tenant = await create_tenant(
            get_engine(),
            TenantSpec.parse(
                slug=DEMO_SLUG,
                name="Meridian Group (demo)",
                locale="en",
                currency="CNY",
                time_zone="Asia/Shanghai",
            ),
        )
        try:
            await populate(tenant, as_of=local_today(tenant.time_zone))
        except BaseException:
            # Every later run would skip a half-filled demo tenant; start from nothing.
            log.error("Filling the demo tenant failed; dropping it so the next run retries.")
            await drop_tenant(get_engine(), DEMO_SLUG)
            raise
    return await _credentials(tenant)


async def populate(tenant: Tenant, *, as_of: dt.date) -> demo_data.Plan:
    """Fill a new tenant with the demo organisation as of `as_of`, and its demo users."""
    plan = demo_data.build_plan(as_of)
    with use_tenant(tenant):
        admin = await create_user(
            tenant,
            email=DEMO_EMAIL,
            display_name="Demo Admin",
            password=DEMO_PASSWORD,
            roles=["admin"],
        )
        employee_ids = await demo_data.write_plan(plan, tenant, actor_id=admin.id)
        for user in plan.users:
            await create_user(
                tenant,
                email=user.email,
                display_name=user.display_name,
                password=DEMO_PASSWORD,
                roles=list(user.roles),
                employee_id=employee_ids[user.person],
            )
    log.info("Filled the demo tenant with %d people as of %s.", len(plan.people), as_of)
    return plan


async def _credentials(tenant: Tenant) -> DemoCredentials:
    """The demo users that exist in the tenant, in the order they were created."""
    described = {email: what for email, _roles, _seat, what in demo_data.DEMO_USERS}
    with use_tenant(tenant):
        async with tenant_session() as session:
            rows = list(
                await session.execute(
                    select(User.email, User.roles, User.display_name)
                    .where(func.lower(User.email).like("%@demo.renshi.test"))
                    .order_by(User.created_at, User.email)
                )
            )
            people = await session.scalar(select(func.count()).select_from(Employee))
    if not people:
        log.warning(
            "The demo tenant has no people: it predates the demo organisation. "
            "Run `renshi tenants drop %s --yes` and start again to get one.",
            DEMO_SLUG,
        )
    users = tuple(
        DemoUser(
            email=email,
            roles=tuple(roles),
            who=f"{name}, {described[email]}" if email in described else name,
        )
        for email, roles, name in rows
    )
    return DemoCredentials(tenant=DEMO_SLUG, email=DEMO_EMAIL, password=DEMO_PASSWORD, users=users)
