"""Request middleware: find the tenant and the viewer, then run the request inside them.

Refusals (bad token, tenant mismatch, inactive tenant) are answered here, before any
tenant data is read, as GraphQL-shaped JSON errors with an `extensions.code`.
"""

from __future__ import annotations

import dataclasses
import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import AuthenticationFailed
from domain.identity.actions import Viewer, load_viewer
from domain.identity.tokens import AccessClaims, verify_access_token
from i18n import N_, negotiate, translate
from renshi.settings import Settings
from tenants.context import Tenant, use_tenant
from tenants.errors import TenantInactive, TenantMismatch, TenantNotFound
from tenants.resolution import resolve_tenant

log = logging.getLogger(__name__)

STATE_KEY = "renshi"


@dataclasses.dataclass(frozen=True)
class RequestState:
    tenant: Tenant | None
    viewer: Viewer | None
    locale: str


class TenantMiddleware:
    """Pure ASGI middleware, so the tenant context reaches the app's own task."""

    def __init__(self, app: ASGIApp, settings: Settings, paths: tuple[str, ...]) -> None:
        self.app = app
        self.settings = settings
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        accept_language = headers.get("accept-language")
        try:
            claims = self._claims(headers)
            tenant = await resolve_tenant(
                token_tenant=claims.tenant if claims else None,
                host=headers.get("host"),
                header=headers.get("x-tenant"),
                base_domain=self.settings.base_domain,
            )
            if claims is not None and tenant is None:
                raise TenantMismatch("The token names no tenant.")
            viewer = None
            if claims is not None and tenant is not None:
                with use_tenant(tenant):
                    viewer = await load_viewer(tenant, claims)
        except (AuthenticationFailed, TenantMismatch):
            await self._refuse(
                scope,
                receive,
                send,
                401,
                "UNAUTHENTICATED",
                N_("The access token is invalid or has expired."),
                accept_language,
            )
            return
        except TenantNotFound:
            await self._refuse(
                scope, receive, send, 404, "NOT_FOUND", N_("No such tenant."), accept_language
            )
            return
        except TenantInactive as exc:
            message = (
                N_("This tenant is suspended.")
                if exc.status == "suspended"
                else N_("This tenant is archived.")
            )
            await self._refuse(scope, receive, send, 403, exc.code, message, accept_language)
            return

        locale = negotiate(
            viewer.locale if viewer else None,
            accept_language,
            tenant.locale if tenant else self.settings.default_locale,
        )
        scope.setdefault("state", {})[STATE_KEY] = RequestState(tenant, viewer, locale)
        if tenant is None:
            await self.app(scope, receive, send)
            return
        with use_tenant(tenant):
            await self.app(scope, receive, send)

    def _claims(self, headers: Headers) -> AccessClaims | None:
        authorization = headers.get("authorization")
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed(N_("The access token is invalid or has expired."))
        return verify_access_token(self.settings.secret_key.get_secret_value(), token.strip())

    @staticmethod
    async def _refuse(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        accept_language: str | None,
    ) -> None:
        locale = negotiate(None, accept_language, None)
        body = {
            "data": None,
            "errors": [{"message": translate(message, locale), "extensions": {"code": code}}],
        }
        await JSONResponse(body, status_code=status)(scope, receive, send)
