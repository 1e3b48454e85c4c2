"""The shortcut for attribute fields gives what graphql-core's own path gives, errors included.

The API runs every operation through `PlainFieldExecution`; the rest of the suite checks
its results on Renshi's schema. Here a small schema holds the cases Renshi's data rarely
produces (a null in a non-null field, a value of the wrong type, a missing attribute), and
each is run both ways.
"""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import PlainFieldExecution


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    colour: Colour
    age: int | None


@strawberry.type
class Owner:
    name: str
    nickname: str | None
    pet: Pet | None
    best_pet: Pet
    rival: Pet | None = None

    @strawberry.field
    def greeting(self) -> str:
        return f"Hello {self.name}"


def owners() -> list[Owner | None]:
    async def later() -> Pet:
        return Pet(name="Later", colour=Colour.BLUE, age=None)

    def pet(name: str, age: Any = 3) -> Pet:
        return Pet(name=name, colour=Colour.RED, age=age)

    nameless = object.__new__(Owner)
    nameless.nickname, nameless.pet, nameless.best_pet = None, None, pet("Ok")
    no_nickname = object.__new__(Owner)
    no_nickname.name, no_nickname.pet, no_nickname.best_pet = "Ha", None, pet("Ok")
    return [
        Owner(name="Ann", nickname="A", pet=pet("Rex"), best_pet=pet("Rex")),
        Owner(name="Bo", nickname=None, pet=None, best_pet=pet("Tom", age=None)),
        Owner(name="Cy", nickname=None, pet=None, best_pet=None),  # type: ignore[arg-type]
        Owner(name="Di", nickname=None, pet=owner_as_pet(), best_pet=pet("Ok")),
        nameless,
        Owner(name="Ed", nickname=None, pet=pet("Old", age="old"), best_pet=pet("Ok")),
        Owner(name="Fa", nickname=None, pet=later(), best_pet=pet("Ok")),  # type: ignore[arg-type]
        Owner(name=5, nickname=None, pet=None, best_pet=pet("Ok")),  # type: ignore[arg-type]
        Owner(name="Gu", nickname=None, pet=ValueError("no pet"), best_pet=pet("Ok")),  # type: ignore[arg-type]
        no_nickname,
        Owner(name="Hu", nickname=None, pet=later(), best_pet=pet("Ok"), rival=later()),  # type: ignore[arg-type]
        Owner(name="Io", nickname=None, pet=later(), best_pet=None),  # type: ignore[arg-type]
    ]


def owner_as_pet() -> Any:
    return Owner(name="Not a pet", nickname=None, pet=None, best_pet=None)  # type: ignore[arg-type]


@strawberry.type
class Query:
    @strawberry.field
    def owners(self) -> list[Owner | None]:
        return owners()


QUERY = """{ owners { __typename name nickname greeting alias: name
  pet { name colour age ... on Named { name } } bestPet { name age } rival { name } } }"""


async def run(context_class: type[StrawberryGraphQLCoreExecutionContext]) -> Any:
    schema = strawberry.Schema(query=Query, execution_context_class=context_class)
    result = await schema.execute(QUERY)
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or ())
    return result.data, errors


async def test_the_shortcut_gives_graphql_cores_data_and_errors() -> None:
    expected = await run(StrawberryGraphQLCoreExecutionContext)

    found = await run(PlainFieldExecution)

    assert found == expected


async def test_nulls_wrong_types_and_missing_attributes_are_located_errors() -> None:
    data, errors = await run(PlainFieldExecution)

    assert data["owners"][0] == {
        "__typename": "Owner",
        "name": "Ann",
        "nickname": "A",
        "greeting": "Hello Ann",
        "alias": "Ann",
        "pet": {"name": "Rex", "colour": "RED", "age": 3},
        "bestPet": {"name": "Rex", "age": 3},
        "rival": None,
    }
    assert data["owners"][1]["pet"] is None
    assert data["owners"][1]["bestPet"] == {"name": "Tom", "age": None}
    assert data["owners"][2] is None  # null in non-null bestPet nulls the owner
    assert data["owners"][3]["pet"] is None
    assert data["owners"][4] is None  # no name attribute at all
    assert data["owners"][5]["pet"] == {"name": "Old", "colour": "RED", "age": None}
    assert data["owners"][6]["pet"] == {"name": "Later", "colour": "BLUE", "age": None}
    assert data["owners"][7]["name"] == "5"
    assert data["owners"][8]["pet"] is None
    assert data["owners"][9]["nickname"] is None
    assert data["owners"][10]["pet"] == {"name": "Later", "colour": "BLUE", "age": None}
    assert data["owners"][10]["rival"] == {"name": "Later"}
    assert data["owners"][11] is None  # the awaited pet is settled, not reported
    assert errors == [
        ("'Owner' object has no attribute 'name'", ("owners", 4, "name")),
        ("'Owner' object has no attribute 'nickname'", ("owners", 9, "nickname")),
        ("Cannot return null for non-nullable field Owner.bestPet.", ("owners", 2, "bestPet")),
        ("Cannot return null for non-nullable field Owner.bestPet.", ("owners", 11, "bestPet")),
        ("Expected value of type 'Pet' but got: <Owner instance>.", ("owners", 3, "pet")),
        ("Int cannot represent non-integer value: 'old'", ("owners", 5, "pet", "age")),
        ("no pet", ("owners", 8, "pet")),
    ]
