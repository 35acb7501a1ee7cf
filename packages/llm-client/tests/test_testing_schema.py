"""Schema-valid instances: every generated value validates against the type it came from."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from llm_client.testing import SchemaGenerationError, instance_from_schema, valid_instance
from pydantic import (
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Money(BaseModel):
    amount: Decimal = Field(ge=Decimal("0.01"), le=Decimal("1000"))
    currency: Literal["USD", "EUR"]


class LineItem(BaseModel):
    sku: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}-\d{4}$")]
    quantity: int = Field(gt=0, le=10, multiple_of=2)
    price: Money


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    placed_at: dt.datetime
    delivered_on: dt.date | None
    color: Color
    priority: Priority
    items: list[LineItem] = Field(min_length=3, max_length=5)
    tags: set[str] = Field(min_length=2)
    stock: dict[str, int]
    notes: str = Field(min_length=10, max_length=12)
    ratio: float = Field(gt=0, lt=1)
    homepage: HttpUrl
    callback: AnyUrl | None = None
    flag: bool = False


class TreeNode(BaseModel):
    label: str
    children: list[TreeNode] = []
    parent: TreeNode | None = None


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=1, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pet(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")
    pair: tuple[int, str]
    when: AwareDatetime


def test_nested_constrained_model_is_valid() -> None:
    order = valid_instance(Order)
    assert isinstance(order, Order)
    assert 3 <= len(order.items) <= 5
    assert len(order.tags) >= 2
    assert all(item.quantity % 2 == 0 and 0 < item.quantity <= 10 for item in order.items)
    assert all(Decimal("0.01") <= item.price.amount <= 1000 for item in order.items)
    assert 10 <= len(order.notes) <= 12
    assert 0 < order.ratio < 1
    assert order.delivered_on is not None  # Optional fields are filled in, not just None


def test_generation_is_deterministic() -> None:
    schema = Order.model_json_schema()
    assert instance_from_schema(schema) == instance_from_schema(schema)


def test_recursive_model_terminates() -> None:
    node = valid_instance(TreeNode)
    depth = 0
    while node.children:
        node = node.children[0]
        depth += 1
    assert 1 <= depth < 10


def test_discriminated_union_tuple_and_aware_datetime() -> None:
    pet = valid_instance(Pet)
    assert pet.pet.kind in ("cat", "dog")
    assert isinstance(pet.pair[0], int)
    assert isinstance(pet.pair[1], str)
    assert pet.when.tzinfo is not None


@pytest.mark.parametrize(
    "tp",
    [
        list[Money],
        dict[str, int],
        dict[Literal["a", "b"], float],
        Decimal,
        dt.datetime,
        dt.date,
        dt.time,
        dt.timedelta,
        uuid.UUID,
        Literal[1, 2, 3],
        Color,
        int | None,
        Annotated[int, Field(ge=-5, lt=-2)],
        Annotated[float, Field(ge=0.5, le=0.75)],
        Annotated[float, Field(multiple_of=0.25, gt=1)],
        Annotated[str, StringConstraints(min_length=3, max_length=3)],
        Annotated[list[int], Field(min_length=4)],
        frozenset[int],
        bytes,
        Any,
    ],
    ids=repr,
)
def test_assorted_types_validate(tp: Any) -> None:
    value = valid_instance(tp)
    TypeAdapter(tp).validate_python(value)


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "string", "format": "email"}, lambda v: "@" in v),
        ({"type": "string", "format": "uri"}, lambda v: v.startswith("https://")),
        ({"type": "string", "pattern": r"^\w+@\w+\.org$"}, lambda v: v.endswith(".org")),
        ({"type": "integer", "exclusiveMaximum": 0}, lambda v: v < 0),
        ({"type": ["string", "null"]}, lambda v: isinstance(v, str)),
        ({"const": 42}, lambda v: v == 42),
        ({"enum": ["x"]}, lambda v: v == "x"),
        ({"allOf": [{"properties": {"a": {"type": "integer"}}}]}, lambda v: v == {"a": 1}),
        ({"minProperties": 2, "additionalProperties": {"type": "boolean"}}, lambda v: len(v) == 2),
    ],
)  # fmt: skip
def test_raw_schemas(schema: dict[str, Any], check: Any) -> None:
    assert check(instance_from_schema(schema))


def test_unsatisfiable_schemas_raise_a_typed_error() -> None:
    with pytest.raises(SchemaGenerationError):
        instance_from_schema({"type": "integer", "minimum": 5, "maximum": 3})
    with pytest.raises(SchemaGenerationError):
        instance_from_schema({"$ref": "#/$defs/Missing"})
    with pytest.raises(SchemaGenerationError):
        instance_from_schema({"type": "string", "pattern": "^a$", "minLength": 3})
