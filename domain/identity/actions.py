"""The only writers of users and sessions. Each runs in one tenant transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import AuthenticationFailed, DomainError
from domain.identity import passwords, tokens
from domain.identity.models import ROLES, AuthSession, User
from i18n import N_
from renshi.settings import get_settings
from tenants.binding import tenant_session
from tenants.context import Tenant

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclasses.dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request, as loaded from the tenant's own tables."""

    id: uuid.UUID
    email: str
    display_name: str
    roles: tuple[str, ...]
    locale: str | None
    session_id: uuid.UUID
    employee_id: uuid.UUID | None = None

    def has_any_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


@dataclasses.dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_at: dt.datetime
    refresh_token: str
    refresh_expires_at: dt.datetime


def validate_user_input(email: str, display_name: str, password: str, roles: list[str]) -> None:
    """Raise `DomainError` for the first unacceptable field; runs no SQL."""
    if not EMAIL_PATTERN.fullmatch(email.strip()) or len(email) > 254:
        raise DomainError(N_("Enter a valid e-mail address."), field="email")
    if not display_name.strip() or len(display_name) > 200:
        raise DomainError(N_("A name has 1 to 200 characters."), field="displayName")
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise DomainError(
            N_("A password has at least {count} characters."),
            field="password",
            count=passwords.MIN_PASSWORD_LENGTH,
        )
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise DomainError(
            N_("Roles must be among: {roles}."), field="roles", roles=", ".join(ROLES)
        )


async def create_user(
    tenant: Tenant,
    *,
    email: str,
    display_name: str,
    password: str,
    roles: list[str],
    locale: str | None = None,
    user_id: uuid.UUID | None = None,
    employee_id: uuid.UUID | None = None,
) -> User:
    """Create a user of `tenant`; the e-mail is unique per tenant, case-insensitively.

    `employee_id` links the user to their employee record: it makes "self" and the
    manager's reporting line work for permissions.
    """
    validate_user_input(email, display_name, password, roles)
    async with tenant_session(tenant) as session:
        taken = await session.scalar(
            select(User.id).where(func.lower(User.email) == email.strip().lower())
        )
        if taken is not None:
            raise DomainError(N_("This e-mail address is already in use."), field="email")
        if employee_id is not None:
            await _check_employee_link(session, employee_id)
        user = User(
            id=user_id or uuid.uuid4(),
            email=email.strip(),
            display_name=display_name.strip(),
            password_hash=await asyncio.to_thread(passwords.hash_password, password),
            roles=sorted(set(roles)),
            locale=locale,
            employee_id=employee_id,
        )
        session.add(user)
    return user


async def _check_employee_link(session: AsyncSession, employee_id: uuid.UUID) -> None:
    from domain.people.models import Employee

    if await session.get(Employee, employee_id) is None:
        raise DomainError(N_("The employee does not exist."), field="employeeId")
    linked = await session.scalar(select(User.id).where(User.employee_id == employee_id))
    if linked is not None:
        raise DomainError(N_("The employee already has a user."), field="employeeId")


async def login(tenant: Tenant, *, email: str, password: str) -> tuple[Viewer, TokenPair]:
    """Check credentials and open a session; the same error for any wrong part."""
    async with tenant_session(tenant) as session:
        user = await session.scalar(
            select(User).where(func.lower(User.email) == email.strip().lower())
        )
        # Argon2 takes tens of milliseconds of CPU on purpose; in a thread (argon2-cffi
        # releases the GIL) it does not stall every other request of this process.
        valid = await asyncio.to_thread(
            passwords.verify_password, user.password_hash if user else None, password
        )
        if user is None or not valid or not user.is_active:
            raise AuthenticationFailed(N_("The e-mail address or password is wrong."))
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = await asyncio.to_thread(passwords.hash_password, password)
        auth_session, refresh = _open_session(user.id)
        session.add(auth_session)
        await session.flush()
        viewer = _viewer(user, auth_session.id)
    return viewer, _tokens(tenant, viewer, refresh, auth_session.expires_at)


async def refresh(tenant: Tenant, *, refresh_token: str) -> tuple[Viewer, TokenPair]:
    """Rotate a refresh token. Replaying an already rotated one revokes the session."""
    session_id = tokens.split_refresh_token(refresh_token)
    presented = tokens.hash_token(refresh_token)
    now = dt.datetime.now(dt.UTC)
    async with tenant_session(tenant) as session:
        auth_session = await session.get(AuthSession, session_id, with_for_update=True)
        if auth_session is None or auth_session.revoked_at is not None:
            raise AuthenticationFailed(N_("The refresh token is invalid or has expired."))
        if presented == auth_session.previous_refresh_hash:
            # A stolen token is being replayed after its owner rotated it: end the session.
            auth_session.revoked_at = now
            replayed = True
        else:
            replayed = False
        valid = presented == auth_session.refresh_hash and auth_session.expires_at > now
        user = await session.get(User, auth_session.user_id)
        if replayed or not valid or user is None or not user.is_active:
            failure = AuthenticationFailed(N_("The refresh token is invalid or has expired."))
        else:
            failure = None
            new_token = tokens.new_refresh_token(auth_session.id)
            auth_session.previous_refresh_hash = auth_session.refresh_hash
            auth_session.refresh_hash = tokens.hash_token(new_token)
            auth_session.refreshed_at = now
            viewer = _viewer(user, auth_session.id)
    # Raised after commit so that a replay's revocation is kept.
    if failure is not None:
        raise failure
    return viewer, _tokens(tenant, viewer, new_token, auth_session.expires_at)


async def logout(tenant: Tenant, *, session_id: uuid.UUID) -> None:
    """End a sign-in session: its refresh token and access tokens stop working."""
    async with tenant_session(tenant) as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )


async def load_viewer(tenant: Tenant, claims: tokens.AccessClaims) -> Viewer:
    """The live user behind verified claims; fails if the session or user has ended."""
    async with tenant_session(tenant) as session:
        row = (
            await session.execute(
                select(User)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(
                    AuthSession.id == claims.session_id,
                    AuthSession.revoked_at.is_(None),
                    User.id == claims.user_id,
                    User.is_active.is_(True),
                )
            )
        ).scalar_one_or_none()
    if row is None:
        raise AuthenticationFailed(N_("The access token is invalid or has expired."))
    return _viewer(row, claims.session_id)


def _open_session(user_id: uuid.UUID) -> tuple[AuthSession, str]:
    session_id = uuid.uuid4()
    refresh_token = tokens.new_refresh_token(session_id)
    lifetime = dt.timedelta(days=get_settings().refresh_token_days)
    return (
        AuthSession(
            id=session_id,
            user_id=user_id,
            refresh_hash=tokens.hash_token(refresh_token),
            expires_at=dt.datetime.now(dt.UTC) + lifetime,
        ),
        refresh_token,
    )


def _viewer(user: User, session_id: uuid.UUID) -> Viewer:
    return Viewer(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        roles=tuple(user.roles),
        locale=user.locale,
        session_id=session_id,
        employee_id=user.employee_id,
    )


def _tokens(
    tenant: Tenant, viewer: Viewer, refresh_token: str, refresh_expires: dt.datetime
) -> TokenPair:
    settings = get_settings()
    access, access_expires = tokens.issue_access_token(
        settings.secret_key.get_secret_value(),
        tenant=tenant.slug,
        user_id=viewer.id,
        session_id=viewer.session_id,
        roles=list(viewer.roles),
        lifetime=dt.timedelta(minutes=settings.access_token_minutes),
    )
    return TokenPair(access, access_expires, refresh_token, refresh_expires)
