"""GraphQL for signing in and for the viewer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from domain.errors import DomainError
from domain.identity import actions, queries
from domain.identity.models import User as UserRow
from i18n import N_, translate
from schema.context import RequestContext
from schema.errors import UserError, UserErrorCode, user_error
from schema.node import Node, register_node, to_global_id

Ctx = Info[RequestContext, None]


@strawberry.type(description="A person who can sign in to this tenant.")
class User(Node):
    email: str = strawberry.field(description="Sign-in e-mail address.")
    display_name: str = strawberry.field(description="Name shown in the interface.")
    roles: list[str] = strawberry.field(description="Roles that decide what the user may do.")
    locale: str | None = strawberry.field(description="Preferred language, if set.")

    @classmethod
    def from_row(cls, row: UserRow, tenant_id: uuid.UUID) -> User:
        return cls(
            id=to_global_id("User", tenant_id, row.id),
            email=row.email,
            display_name=row.display_name,
            roles=list(row.roles),
            locale=row.locale,
        )


@strawberry.type(description="The tenant the request is served for.")
class TenantSummary:
    slug: str = strawberry.field(description="Short unique name of the tenant.")
    name: str = strawberry.field(description="Display name.")
    locale: str = strawberry.field(description="Default locale.")
    currency: str = strawberry.field(description="Default ISO 4217 currency.")
    time_zone: str = strawberry.field(description="Default IANA time zone.")


@strawberry.type(description="Who is asking, in which tenant and language.")
class Viewer:
    user: User = strawberry.field(description="The signed-in user.")
    roles: list[str] = strawberry.field(description="The user's roles.")
    tenant: TenantSummary = strawberry.field(description="The tenant of this session.")
    locale: str = strawberry.field(description="Locale chosen for this request.")


async def fetch_user(context: RequestContext, pk: uuid.UUID) -> User | None:
    viewer = context.viewer
    tenant = context.tenant
    if viewer is None or tenant is None:
        return None

    async def load(ids: list[uuid.UUID]) -> list[UserRow | None]:
        return await queries.users_by_id(viewer, ids)

    row = await context.loader("users", load).load(pk)
    return User.from_row(row, tenant.id) if row else None


register_node("User", fetch_user)


def resolve_viewer(info: Ctx) -> Viewer | None:
    context = info.context
    if context.viewer is None or context.tenant is None:
        return None
    viewer, tenant = context.viewer, context.tenant
    user = User(
        id=to_global_id("User", tenant.id, viewer.id),
        email=viewer.email,
        display_name=viewer.display_name,
        roles=list(viewer.roles),
        locale=viewer.locale,
    )
    return Viewer(
        user=user,
        roles=list(viewer.roles),
        tenant=TenantSummary(
            slug=tenant.slug,
            name=tenant.name,
            locale=tenant.locale,
            currency=tenant.currency,
            time_zone=tenant.time_zone,
        ),
        locale=context.locale,
    )


@strawberry.type(description="Tokens for a signed-in session.")
class AuthPayload:
    access_token: str | None = strawberry.field(
        default=None, description="Bearer token for the Authorization header (short-lived)."
    )
    access_token_expires_at: dt.datetime | None = strawberry.field(
        default=None, description="When the access token stops working."
    )
    refresh_token: str | None = strawberry.field(
        default=None, description="Single-use token for `refreshToken`; keep it secret."
    )
    refresh_token_expires_at: dt.datetime | None = strawberry.field(
        default=None, description="When the session ends unless the user signs in again."
    )
    user: User | None = strawberry.field(default=None, description="The signed-in user.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why signing in failed, if it did."
    )


@strawberry.type(description="Result of `logout`.")
class LogoutPayload:
    ok: bool = strawberry.field(description="True when the session has ended.")
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why signing out failed, if it did."
    )


def _tenant_required(locale: str) -> list[UserError]:
    message = N_("Name the tenant with the X-Tenant header or the tenant's hostname.")
    return [
        UserError(
            field=None, code=UserErrorCode.TENANT_REQUIRED, message=translate(message, locale)
        )
    ]


def _signed_in(
    viewer: actions.Viewer, pair: actions.TokenPair, tenant_id: uuid.UUID
) -> AuthPayload:
    return AuthPayload(
        access_token=pair.access_token,
        access_token_expires_at=pair.access_expires_at,
        refresh_token=pair.refresh_token,
        refresh_token_expires_at=pair.refresh_expires_at,
        user=User(
            id=to_global_id("User", tenant_id, viewer.id),
            email=viewer.email,
            display_name=viewer.display_name,
            roles=list(viewer.roles),
            locale=viewer.locale,
        ),
    )


@strawberry.type
class IdentityMutations:
    @strawberry.mutation(description="Sign in with e-mail and password to the named tenant.")
    async def login(
        self,
        info: Ctx,
        email: Annotated[str, strawberry.argument(description="Sign-in e-mail address.")],
        password: Annotated[str, strawberry.argument(description="The user's password.")],
    ) -> AuthPayload:
        context = info.context
        if context.tenant is None:
            return AuthPayload(user_errors=_tenant_required(context.locale))
        try:
            viewer, pair = await actions.login(context.tenant, email=email, password=password)
        except DomainError as error:
            return AuthPayload(user_errors=[user_error(error, context.locale)])
        return _signed_in(viewer, pair, context.tenant.id)

    @strawberry.mutation(description="Exchange a refresh token for new tokens (rotation).")
    async def refresh_token(
        self,
        info: Ctx,
        refresh_token: Annotated[
            str, strawberry.argument(description="The refresh token from `login`.")
        ],
    ) -> AuthPayload:
        context = info.context
        if context.tenant is None:
            return AuthPayload(user_errors=_tenant_required(context.locale))
        try:
            viewer, pair = await actions.refresh(context.tenant, refresh_token=refresh_token)
        except DomainError as error:
            return AuthPayload(user_errors=[user_error(error, context.locale)])
        return _signed_in(viewer, pair, context.tenant.id)

    @strawberry.mutation(description="End the current session; its tokens stop working.")
    async def logout(self, info: Ctx) -> LogoutPayload:
        context = info.context
        viewer = context.require_viewer()
        await actions.logout(context.require_tenant(), session_id=viewer.session_id)
        return LogoutPayload(ok=True)
