"""Execution of GraphQL operations, with a shortcut for fields that read an attribute.

graphql-core resolves every field the same way: build a resolve-info object, call the
resolver, then walk the return type (non-null, list, leaf, abstract, object) to complete
the value. A page of 100 employees has some 1,300 fields, 700 leaves and 600 objects that
only read an attribute (`displayName`, `code`, a prefetched `branch`), and for those the
walk costs more than the read. Here such a field reads the attribute and either coerces
it with its scalar or enum type, as `complete_leaf_value` does, or executes the object's
selection, as `complete_object_value` does. Anything else (a resolver, arguments, a
missing non-null value, an awaitable, a value of the wrong type, middleware) takes
graphql-core's own path, so results, errors and their paths stay the same.
"""

from __future__ import annotations

import enum
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    get_nullable_type,
    is_leaf_type,
)
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

_PLAN = "_renshi_plain_field"
# What `_read` returns when the field must take graphql-core's path.
_LONG_WAY: Any = object()


class _Kind(enum.Enum):
    LEAF = 1
    OBJECT = 2


# How to read a field directly: its kind, the attribute, the named type, and whether
# null is allowed; None when the field needs graphql-core's path.
_Plan = tuple[_Kind, str, Any, bool] | None


def _plan(field: GraphQLField) -> _Plan:
    """How to read `field` directly, or None when it needs graphql-core's path."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if definition.default_resolver is not getattr:
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    named = get_nullable_type(field.type)
    if is_leaf_type(named):
        return _Kind.LEAF, definition.python_name, named, nullable
    if isinstance(named, GraphQLObjectType) and _is_type_of_needs_no_info(named):
        return _Kind.OBJECT, definition.python_name, named, nullable
    return None


def _cached_plan(field: GraphQLField) -> _Plan:
    # NOTE: the plan is kept on graphql-core's field object, which lives as long as the
    # schema, so each field is looked at once.
    found: Any = getattr(field, _PLAN, _LONG_WAY)
    if found is _LONG_WAY:
        found = _plan(field)
        setattr(field, _PLAN, found)
    return cast(_Plan, found)


def _is_type_of_needs_no_info(object_type: GraphQLObjectType) -> bool:
    """True when the type has no `is_type_of` or strawberry's own, which ignores `info`."""
    if object_type.is_type_of is None:
        return True
    definition = object_type.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return isinstance(definition, StrawberryObjectDefinition) and definition.is_type_of is None


class PlainFieldExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, reading attribute fields without the walk."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        field = parent_type.fields.get(field_details_list[0].node.name.value)
        middleware = self.middleware_manager
        if field is not None and (middleware is None or not middleware.middlewares):
            result = self._read(field, source, field_details_list, path, position_context)
            if result is not _LONG_WAY:
                return result
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _read(
        self,
        field: GraphQLField,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        """The field's completed value read from `source`, or `_LONG_WAY`."""
        plan = _cached_plan(field)
        if plan is None:
            return _LONG_WAY
        kind, name, named, nullable = plan
        try:
            value = getattr(source, name)
        except Exception:  # graphql-core's path raises it again, located
            return _LONG_WAY
        if value is None:
            return None if nullable else _LONG_WAY
        if isinstance(value, Exception) or self.is_awaitable(value):
            return _LONG_WAY
        if kind is _Kind.LEAF:
            return _coerce(named, value)
        if named.is_type_of is not None and not named.is_type_of(value, None):
            return _LONG_WAY
        return self._complete_object(
            field.type, named, field_details_list, path, value, position_context
        )

    def _complete_object(
        self,
        return_type: GraphQLOutputType,
        object_type: GraphQLObjectType,
        field_details_list: Any,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> Any:
        """Execute `object_type`'s selection on `value`; errors as `execute_field` has them."""
        try:
            completed = self.collect_and_execute_subfields(
                object_type, field_details_list, path, value, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def await_completed() -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, return_type, field_details_list, path)
                return None

        return await_completed()


def _coerce(leaf: GraphQLLeafType, value: Any) -> Any:
    """The value as the leaf type outputs it; `_LONG_WAY` when graphql-core should judge."""
    try:
        coerced = leaf.coerce_output_value(value)
    except Exception:  # graphql-core's path raises it again, located
        return _LONG_WAY
    return _LONG_WAY if coerced is None or coerced is Undefined else coerced
