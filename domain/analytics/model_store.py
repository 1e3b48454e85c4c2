"""Trained models in the tenant's own `risk_models` table, versioned and hash-checked.

A model line is a kind ('attrition', 'advance_risk') and a horizon in months (None for
advance risk). Each training adds the line's next version and makes it the only active
one. The fitted estimator is stored as pickle bytes with their hash: an HMAC-SHA256 keyed
by a key derived (HKDF) from the process secret and the tenant's id, kept in the
`artifact_sha256` column. Loading recomputes it and refuses bytes that do not match before
unpickling anything, so neither a damaged artifact, nor one written by someone who can
write the database but does not hold the secret, nor a row copied from another tenant's
schema is ever unpickled (unpickling can run code).

Models live in the tenant's schema and are read through the tenant's session, so one
tenant's model can never be loaded for another.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import logging
import pickle
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics.models import RiskModel
from domain.errors import DomainError
from i18n import N_
from renshi.settings import get_settings
from tenants.context import current_tenant

log = logging.getLogger(__name__)

# Unpickled estimators kept per process, oldest dropped first. Bytes are still read and
# hash-checked on every load; only the unpickling is saved.
LOADED_MODELS = 32
_loaded: dict[tuple[uuid.UUID, uuid.UUID, str], Any] = {}


class ModelIntegrityError(DomainError):
    """Raised when a stored model's bytes do not match the hash recorded with them."""

    code = "MODEL_INTEGRITY"


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """What is stored about one trained model besides its bytes."""

    kind: str
    horizon_months: int | None
    trained_from: dt.date
    trained_to: dt.date
    features: list[str]
    metrics: dict[str, Any]
    fairness: dict[str, Any]


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str, tenant_id: uuid.UUID) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=tenant_id.bytes,
        info=b"renshi risk model signature v1",
    ).derive(secret.encode())


def signature(artifact: bytes, tenant_id: uuid.UUID | None = None) -> str:
    """The artifact's HMAC-SHA256 under the tenant's key (default: the current tenant's),
    in hex."""
    key = _signing_key(
        get_settings().secret_key.get_secret_value(), tenant_id or current_tenant().id
    )
    return hmac.new(key, artifact, hashlib.sha256).hexdigest()


def dump(estimator: Any) -> tuple[bytes, str]:
    """The estimator as pickle bytes and their signature under the current tenant's key."""
    artifact = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    return artifact, signature(artifact)


def load(model: RiskModel) -> Any:
    """The fitted estimator of a stored model, once its bytes match their signature."""
    found = signature(model.artifact)
    if not hmac.compare_digest(found, model.artifact_sha256):
        log.error(
            "Refused to load risk model %s (%s v%s): its bytes sign to %s, not %s.",
            model.id,
            model.kind,
            model.version,
            found,
            model.artifact_sha256,
        )
        raise ModelIntegrityError(
            N_("The stored model {version} is damaged and was not loaded; retrain it."),
            version=model.version,
        )
    # The tenant is part of the key, although model ids are already unique.
    key = (current_tenant().id, model.id, found)
    estimator = _loaded.get(key)
    if estimator is None:
        # Unpickling can run code: only bytes that match their recorded hash get here.
        estimator = pickle.loads(model.artifact)  # noqa: S301
        if len(_loaded) >= LOADED_MODELS:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = estimator
    return estimator


async def store(session: AsyncSession, record: ModelRecord, estimator: Any) -> RiskModel:
    """Add the line's next version, active, and deactivate the one it replaces."""
    # The unique (kind, horizon, version) constraint turns a concurrent training of the
    # same line into an error for one of them rather than two models of one version.
    line = _same_line(record.kind, record.horizon_months)
    latest = await session.scalar(select(func.max(RiskModel.version)).where(*line))
    await session.execute(update(RiskModel).where(*line, RiskModel.active).values(active=False))
    artifact, sha256 = dump(estimator)
    model = RiskModel(
        id=uuid.uuid4(),
        kind=record.kind,
        horizon_months=record.horizon_months,
        version=(latest or 0) + 1,
        trained_from=record.trained_from,
        trained_to=record.trained_to,
        features=record.features,
        metrics=record.metrics,
        fairness=record.fairness,
        artifact=artifact,
        artifact_sha256=sha256,
        active=True,
    )
    session.add(model)
    await session.flush()
    return model


async def active_model(
    session: AsyncSession, kind: str, horizon_months: int | None
) -> RiskModel | None:
    """The line's serving model, if it has one."""
    found = await session.scalars(
        select(RiskModel).where(*_same_line(kind, horizon_months), RiskModel.active)
    )
    return found.one_or_none()


async def list_models(session: AsyncSession) -> list[RiskModel]:
    """Every stored model of the tenant, newest first within each line."""
    found = await session.scalars(
        select(RiskModel).order_by(
            RiskModel.kind, RiskModel.horizon_months, RiskModel.version.desc()
        )
    )
    return list(found)


def _same_line(kind: str, horizon_months: int | None) -> list[Any]:
    horizon = (
        RiskModel.horizon_months.is_(None)
        if horizon_months is None
        else RiskModel.horizon_months == horizon_months
    )
    return [RiskModel.kind == kind, horizon]
