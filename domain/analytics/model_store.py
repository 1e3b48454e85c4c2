"""Trained models in the tenant's own `risk_models` table, versioned and hash-checked.

A model line is a kind ('attrition', 'advance_risk') and a horizon in months (None for
advance risk). Each training adds the line's next version and makes it the only active
one. The fitted estimator is stored as pickle bytes with their SHA-256; loading recomputes
the hash and refuses bytes that do not match before unpickling anything.

Models live in the tenant's schema and are read through the tenant's session, so one
tenant's model can never be loaded for another.

TODO(#6): the hash catches corruption and a changed artifact, not someone who can write
both columns; an HMAC keyed by the tenant's derived key (as in domain/crypto.py) would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import pickle
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics.models import RiskModel
from domain.errors import DomainError
from i18n import N_
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


def dump(estimator: Any) -> tuple[bytes, str]:
    """The estimator as pickle bytes and their SHA-256 in hex."""
    artifact = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    return artifact, hashlib.sha256(artifact).hexdigest()


def load(model: RiskModel) -> Any:
    """The fitted estimator of a stored model, once its bytes match their hash."""
    found = hashlib.sha256(model.artifact).hexdigest()
    if found != model.artifact_sha256:
        log.error(
            "Refused to load risk model %s (%s v%s): its bytes hash to %s, not %s.",
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
