"""Signed access tokens (JWT, HS256, built with joserfc) and opaque refresh tokens."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from domain.errors import AuthenticationFailed
from i18n import N_

ISSUER = "renshi"
ALGORITHM = "HS256"


@dataclasses.dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    tenant: str
    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]
    expires_at: dt.datetime


def _key(secret: str) -> OctKey:
    return OctKey.import_key(secret.encode())


def issue_access_token(
    secret: str,
    *,
    tenant: str,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    roles: list[str],
    lifetime: dt.timedelta,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """Sign a short-lived access token; returns it with its expiry."""
    issued = now or dt.datetime.now(dt.UTC)
    expires = issued + lifetime
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "tid": tenant,
        "sid": str(session_id),
        "roles": sorted(roles),
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode({"alg": ALGORITHM}, claims, _key(secret)), expires


def verify_access_token(secret: str, token: str) -> AccessClaims:
    """Check signature, issuer and expiry; raise `AuthenticationFailed` on any doubt."""
    try:
        decoded = jwt.decode(token, _key(secret), algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            exp={"essential": True},
            sub={"essential": True},
            tid={"essential": True},
            sid={"essential": True},
        ).validate(decoded.claims)
        claims = decoded.claims
        return AccessClaims(
            tenant=str(claims["tid"]),
            user_id=uuid.UUID(str(claims["sub"])),
            session_id=uuid.UUID(str(claims["sid"])),
            roles=tuple(str(role) for role in claims.get("roles", ())),
            expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC),
        )
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise AuthenticationFailed(N_("The access token is invalid or has expired.")) from exc


def new_refresh_token(session_id: uuid.UUID) -> str:
    """An opaque refresh token: the session id and a random secret."""
    return f"{session_id}.{secrets.token_urlsafe(32)}"


def split_refresh_token(token: str) -> uuid.UUID:
    session_part, _, secret_part = token.partition(".")
    try:
        if not secret_part:
            raise ValueError(token)
        return uuid.UUID(session_part)
    except ValueError as exc:
        raise AuthenticationFailed(N_("The refresh token is invalid or has expired.")) from exc


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
