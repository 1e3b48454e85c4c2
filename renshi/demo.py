"""The demo tenant that `make run` prepares, so a newcomer can sign in at once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from domain.identity.actions import create_user
from domain.identity.models import User
from renshi.operations import migrate_everything
from renshi.settings import Settings
from tenants.binding import tenant_session
from tenants.context import use_tenant
from tenants.database import get_engine
from tenants.provisioning import TenantSpec, create_tenant
from tenants.registry import find_tenant

DEMO_SLUG = "demo"
DEMO_EMAIL = "admin@demo.renshi.test"
# NOTE: a fixed, printed password is fine for a local demo and nowhere else; `make run`
# is a development command and the demo tenant is never created in production.
DEMO_PASSWORD = "renshi-demo-2026"  # noqa: S105


@dataclasses.dataclass(frozen=True)
class DemoCredentials:
    tenant: str
    email: str
    password: str


async def prepare(settings: Settings) -> DemoCredentials:
    """Migrate everything, then create the demo tenant and its admin if missing."""
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
                name="Renshi Demo Group",
                locale="en",
                currency="CNY",
                time_zone="Asia/Shanghai",
            ),
        )
    with use_tenant(tenant):
        async with tenant_session() as session:
            exists = await session.scalar(
                select(User.id).where(func.lower(User.email) == DEMO_EMAIL)
            )
        if exists is None:
            await create_user(
                tenant,
                email=DEMO_EMAIL,
                display_name="Demo Admin",
                password=DEMO_PASSWORD,
                roles=["admin"],
            )
    return DemoCredentials(tenant=DEMO_SLUG, email=DEMO_EMAIL, password=DEMO_PASSWORD)
