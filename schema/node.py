"""Opaque global IDs and the `node(id:)` field.

A global ID encodes the type, the tenant and the primary key. An ID minted for one
tenant resolves to null in every other, even where primary keys coincide.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from schema.context import RequestContext

NodeFetcher = Callable[[RequestContext, uuid.UUID], Awaitable[Any]]
_fetchers: dict[str, NodeFetcher] = {}


@strawberry.interface(description="An object with a globally unique, opaque ID.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global ID; pass it to `node`.")


def register_node(type_name: str, fetch: NodeFetcher) -> None:
    """Let `node(id:)` resolve IDs of `type_name` with `fetch` (which checks permissions)."""
    _fetchers[type_name] = fetch


def to_global_id(type_name: str, tenant_id: uuid.UUID, pk: uuid.UUID) -> strawberry.ID:
    raw = f"{type_name}:{tenant_id.hex}:{pk.hex}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).decode().rstrip("="))


def from_global_id(global_id: str) -> tuple[str, uuid.UUID, uuid.UUID] | None:
    """Decode an ID; None when it is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, tenant_hex, pk_hex = (
            base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        )
        return type_name, uuid.UUID(tenant_hex), uuid.UUID(pk_hex)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


async def resolve_node(context: RequestContext, global_id: str) -> Any:
    decoded = from_global_id(global_id)
    if decoded is None or context.tenant is None:
        return None
    type_name, tenant_id, pk = decoded
    fetch = _fetchers.get(type_name)
    if fetch is None or tenant_id != context.tenant.id:
        return None
    return await fetch(context, pk)
