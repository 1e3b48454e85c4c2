"""Training a tenant's risk models when HR asks (`retrainRiskModels`) or the night finds
its advance-risk model due (`domain.analytics.advance_model.queue_training_if_due`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable

from domain.analytics import advance_model
from domain.analytics.attrition import KIND as ATTRITION
from domain.analytics.attrition import (
    RETRAIN_ACTOR,
    TrainedModel,
    store_trained,
    train_attrition_model,
)
from domain.errors import DomainError
from tenants.binding import tenant_session
from workers.actors import actor
from workers.idempotency import first_time

log = logging.getLogger(__name__)

QUEUE = "risk"


@actor(RETRAIN_ACTOR, queue_name=QUEUE)
async def retrain_models(
    job_id: str,
    horizons: list[int],
    requested_by: str | None,
    idempotency_key: str,
    kinds: list[str] | None = None,
) -> None:
    """Train and store the models the job names, each once per job.

    `kinds` defaults to attrition alone (messages queued before there were kinds); an
    attrition model is trained per horizon. Each model is stored in the transaction that
    records its key, so a redelivered message trains again but stores nothing twice. Too
    little history is a refusal, not a failure: it is logged and not retried.
    """
    wanted = kinds if kinds is not None else [ATTRITION]
    actor_id = uuid.UUID(requested_by) if requested_by else None
    if advance_model.KIND in wanted:
        await _train_and_store(
            f"{idempotency_key}:{advance_model.KIND}",
            job_id,
            actor_id,
            advance_model.KIND,
            advance_model.train_advance_model(),
        )
    if ATTRITION in wanted:
        for horizon in horizons:
            await _train_and_store(
                f"{idempotency_key}:{horizon}",
                job_id,
                actor_id,
                f"{horizon}-month attrition",
                train_attrition_model(horizon),
            )


async def _train_and_store(
    key: str,
    job_id: str,
    actor_id: uuid.UUID | None,
    what: str,
    training: Awaitable[TrainedModel],
) -> None:
    try:
        trained = await training
    except DomainError as refused:
        log.warning("Job %s: no %s model: %s", job_id, what, refused)
        return
    async with tenant_session() as session:
        if not await first_time(session, key, RETRAIN_ACTOR):
            log.debug("Skipping %s: already handled.", key)
            return
        await store_trained(session, trained, actor_id=actor_id, job_id=uuid.UUID(job_id))
