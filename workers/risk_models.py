"""Training a tenant's attrition models when HR asks (`retrainRiskModels`)."""

from __future__ import annotations

import logging
import uuid

from domain.analytics.attrition import RETRAIN_ACTOR, store_trained, train_attrition_model
from domain.errors import DomainError
from tenants.binding import tenant_session
from workers.actors import actor
from workers.idempotency import first_time

log = logging.getLogger(__name__)

QUEUE = "risk"


@actor(RETRAIN_ACTOR, queue_name=QUEUE)
async def retrain_models(
    job_id: str, horizons: list[int], requested_by: str, idempotency_key: str
) -> None:
    """Train and store one model per horizon, each once per job.

    Each horizon's model is stored in the transaction that records its key, so a
    redelivered message trains again but stores nothing twice. A horizon without enough
    history is a refusal, not a failure: it is logged and not retried.
    """
    for horizon in horizons:
        key = f"{idempotency_key}:{horizon}"
        try:
            trained = await train_attrition_model(horizon)
        except DomainError as refused:
            log.warning("Job %s: no %s-month attrition model: %s", job_id, horizon, refused)
            continue
        async with tenant_session() as session:
            if not await first_time(session, key, RETRAIN_ACTOR):
                log.debug("Skipping %s: already handled.", key)
                continue
            await store_trained(
                session,
                trained,
                actor_id=uuid.UUID(requested_by),
                job_id=uuid.UUID(job_id),
            )
