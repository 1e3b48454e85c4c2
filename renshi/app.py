"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult

from renshi.middleware import STATE_KEY, RequestState, TenantMiddleware
from renshi.settings import Settings, get_settings
from schema.api import build_schema
from schema.context import RequestContext
from schema.errors import coded_error
from tenants import database
from tenants.provisioning import refill_spares

log = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"


class RenshiGraphQL(GraphQL[RequestContext, None]):
    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        # Errors raised before the operation ran (e.g. some parse failures) bypass the
        # schema extension; code them here so every error carries `extensions.code`.
        if result.errors:
            state: RequestState | None = request.scope.get("state", {}).get(STATE_KEY)
            locale = state.locale if state else None
            result.errors = [coded_error(error, locale) for error in result.errors]
        return await super().process_result(request, result)

    async def get_context(self, request: Request, response: Any) -> RequestContext:  # type: ignore[override]
        state: RequestState | None = request.scope.get("state", {}).get(STATE_KEY)
        if state is None:
            return RequestContext(request=request, tenant=None, viewer=None, locale="en")
        return RequestContext(
            request=request, tenant=state.tenant, viewer=state.viewer, locale=state.locale
        )


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(_: Request) -> Response:
    try:
        async with database.get_engine().connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        log.warning("Readiness check failed: the database is unreachable.", exc_info=True)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def _keep_spares(settings: Settings) -> None:
    """Top up the pool of spare tenant schemas now and then, in the background."""
    while True:
        try:
            await refill_spares(database.get_engine(), settings.spare_schemas)
        except Exception:
            log.warning("Refilling spare schemas failed; will retry.", exc_info=True)
        await asyncio.sleep(30)


def create_app(settings: Settings | None = None, *, keep_spares: bool = True) -> Starlette:
    """Build the API. The database engine must be configured before the first request."""
    settings = settings or get_settings()
    schema = build_schema(settings)
    graphql = RenshiGraphQL(
        schema,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=False,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        keeper = None
        if keep_spares and settings.spare_schemas > 0:
            keeper = asyncio.create_task(_keep_spares(settings))
        # What is loaded by now (schema, mappers, scikit-learn) lives as long as the
        # process: moved out of the collector's reach, it is no longer walked by the
        # collections a request's garbage sets off (about 3 ms of a page of employees).
        gc.freeze()
        try:
            yield
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    app = Starlette(
        routes=[
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(TenantMiddleware, settings=settings, paths=(GRAPHQL_PATH,))
    return app
