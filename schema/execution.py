"""Execution of GraphQL operations, with a shortcut for fields that read an attribute.

graphql-core resolves every field the same way: build a path and a resolve-info object,
call the resolver, then walk the return type (non-null, list, leaf, abstract, object) to
complete the value. A page of 100 employees has some 1,300 fields, 700 leaves and 600
objects that only read an attribute (`displayName`, `code`, a prefetched `branch`), and
for those the walk costs more than the read. Here the fields of an object are executed
from a plan made once per selection and operation: such a field reads the attribute and
either coerces it with its scalar or enum type, as `complete_leaf_value` does, or
executes the object's selection, as `complete_object_value` does. Anything else (a
resolver, arguments, a missing non-null value, an awaitable, a value of the wrong type,
middleware) takes graphql-core's own path, so results, errors and their paths stay the
same.
"""

from __future__ import annotations

import enum
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    get_nullable_type,
    is_leaf_type,
)
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

_PLAN = "_renshi_plain_field"
# What a read gives when the field must take graphql-core's path.
_LONG_WAY: Any = object()


class _Kind(enum.Enum):
    LEAF = 1
    OBJECT = 2


# How to read a field directly: its kind, the attribute, the named type, and whether
# null is allowed; None when the field needs graphql-core's path.
_Plan = tuple[_Kind, str, Any, bool] | None
# One field of a selection: its response name, its field details and its plan.
_Step = tuple[str, Any, _Plan]
# Values that are neither awaitable nor an exception, checked by type alone.
_PLAIN_VALUES = frozenset({str, int, float, bool})
# Completed values that are settled, checked by type alone: a coerced leaf, or an
# object's fields when none of them is still to be awaited.
_SETTLED = _PLAIN_VALUES | {dict}


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Steps by parent type and the identity of a grouped field set, which
        # graphql-core memoizes per operation; the set is kept too, so its id stays its own.
        self._steps: dict[tuple[GraphQLObjectType, int], tuple[Any, list[_Step]]] = {}
        # The same for an object field's selection, by the identity of its field details.
        self._subselections: dict[
            tuple[GraphQLObjectType, int], tuple[Any, list[_Step] | None]
        ] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """Execute the fields of one object, plain ones read in place.

        Follows graphql-core's `execute_fields`: results in selection order, fields
        that are not in the type left out, awaitables gathered at the end and settled
        in the background when an error bubbles up.
        """
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        steps = self._steps_of(parent_type, grouped_field_set)
        return self._execute_steps(parent_type, source_value, path, steps, position_context)

    def _execute_steps(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        steps: list[_Step],
        position_context: Any,
    ) -> Any:
        """`execute_fields` over the planned steps of a grouped field set."""
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan in steps:
                if plan is not None:
                    kind, attribute, named, nullable = plan
                    try:
                        value = getattr(source_value, attribute)
                    except Exception:  # graphql-core's path raises it again, located
                        value = _LONG_WAY
                    if value is None:
                        if nullable:
                            results[response_name] = None
                            continue
                    elif value is not _LONG_WAY and (
                        type(value) in _PLAIN_VALUES
                        or not (isinstance(value, Exception) or is_awaitable(value))
                    ):
                        if kind is _Kind.LEAF:
                            result = _coerce(named, value)
                        else:
                            result = self._complete_object(
                                parent_type,
                                named,
                                response_name,
                                field_details_list,
                                path,
                                value,
                                position_context,
                            )
                        if result is not _LONG_WAY:
                            results[response_name] = result
                            if type(result) not in _SETTLED and is_awaitable(result):
                                awaitable_fields.append(response_name)
                            continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:  # one needs no gathering
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[n] for n in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _steps_of(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step]:
        """The fields of a selection with their plans, made once per operation."""
        key = (parent_type, id(grouped_field_set))
        found = self._steps.get(key)
        if found is not None:
            return found[1]
        steps: list[_Step] = []
        for response_name, field_details_list in grouped_field_set.items():
            field = parent_type.fields.get(field_details_list[0].node.name.value)
            plan = _cached_plan(field) if field is not None else None
            steps.append((response_name, field_details_list, plan))
        self._steps[key] = (grouped_field_set, steps)
        return steps

    def _subselection_of(
        self, object_type: GraphQLObjectType, field_details_list: Any
    ) -> list[_Step] | None:
        """The steps of an object field's selection; None when it defers some of it.

        Collected by graphql-core (memoized per operation, as `collect_subfields` says)
        and planned here once, so the hundred rows of a page only look them up.
        """
        key = (object_type, id(field_details_list))
        found = self._subselections.get(key)
        if found is not None:
            return found[1]
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            object_type, field_details_list
        )
        steps = None if new_defer_usages else self._steps_of(object_type, grouped_field_set)
        self._subselections[key] = (field_details_list, steps)
        return steps

    def _complete_object(
        self,
        parent_type: GraphQLObjectType,
        object_type: GraphQLObjectType,
        response_name: str,
        field_details_list: Any,
        parent_path: Path | None,
        value: Any,
        position_context: Any,
    ) -> Any:
        """Execute `object_type`'s selection on `value`, or `_LONG_WAY` for a value of
        another type; errors as graphql-core's `execute_field` has them."""
        if object_type.is_type_of is not None and not object_type.is_type_of(value, None):
            return _LONG_WAY
        path = Path(parent_path, response_name, parent_type.name)
        try:
            steps = self._subselection_of(object_type, field_details_list)
            if steps is not None and position_context is None:
                completed = self._execute_steps(object_type, value, path, steps, None)
            else:
                completed = self.collect_and_execute_subfields(
                    object_type, field_details_list, path, value, position_context
                )
        except Exception as raw_error:
            return_type = parent_type.fields[field_details_list[0].node.name.value].type
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if type(completed) is dict or not self.is_awaitable(completed):
            return completed

        async def await_completed() -> Any:
            try:
                return await completed
            except Exception as raw_error:
                return_type = parent_type.fields[field_details_list[0].node.name.value].type
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
