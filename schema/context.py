"""The per-request GraphQL context: tenant, viewer, locale and the request's DataLoaders."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from domain.identity.actions import Viewer
from i18n import N_, formatting_locale
from schema.errors import ApiError, ErrorCode
from tenants.context import Tenant


@dataclasses.dataclass
class RequestContext:
    """Built once per request; nothing here outlives it, DataLoaders included."""

    request: Request | None
    tenant: Tenant | None
    viewer: Viewer | None
    locale: str
    _loaders: dict[Hashable, DataLoader[Any, Any]] = dataclasses.field(default_factory=dict)

    @property
    def format_locale(self) -> str:
        """The locale amounts are formatted in: the viewer's own, even one that messages
        are not translated into (ja_JP gives ￥30,000), else the messages' locale."""
        return formatting_locale(self.viewer.locale if self.viewer else None, self.locale)

    def require_tenant(self) -> Tenant:
        if self.tenant is None:
            raise ApiError(
                ErrorCode.BAD_USER_INPUT,
                N_("Name the tenant with the X-Tenant header or the tenant's hostname."),
            )
        return self.tenant

    def require_viewer(self) -> Viewer:
        if self.viewer is None:
            raise ApiError(ErrorCode.UNAUTHENTICATED, N_("Sign in to continue."))
        return self.viewer

    def require_role(self, *roles: str) -> Viewer:
        viewer = self.require_viewer()
        if not viewer.has_any_role(*roles):
            raise ApiError(ErrorCode.FORBIDDEN, N_("You are not allowed to do this."))
        return viewer

    def loader(
        self,
        key: Hashable,
        load: Callable[[Sequence[Any]], Awaitable[Sequence[Any]]],
    ) -> DataLoader[Any, Any]:
        """The request's DataLoader for `key`, created on first use."""
        found = self._loaders.get(key)
        if found is None:
            found = self._loaders[key] = DataLoader(load_fn=load)
        return found
