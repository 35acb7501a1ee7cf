"""Deterministic, schema-valid instances generated from JSON schemas.

Used by :meth:`Reply.auto` to answer structured-output requests, and public as
:func:`instance_from_schema` / :func:`valid_instance` so app tests can build fixtures.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter

from ._errors import LLMTestingError
from ._regex import string_matching

__all__ = ["SchemaGenerationError", "instance_from_schema", "valid_instance"]

T = TypeVar("T")

# Recursive schemas (a Node with children: list[Node]) stop growing past this depth: optional
# properties are left out, Optional picks null and lists get only their minItems.
_MAX_DEPTH = 4

_FORMATS: dict[str, str] = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00",
    "duration": "P1D",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri": "https://example.com/",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "ipvanyaddress": "192.0.2.1",
    "ipvanyinterface": "192.0.2.1/24",
    "ipvanynetwork": "192.0.2.0/24",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uuid1": "00000000-0000-1000-8000-000000000000",
    "uuid3": "00000000-0000-3000-8000-000000000000",
    "uuid4": "00000000-0000-4000-8000-000000000000",
    "uuid5": "00000000-0000-5000-8000-000000000000",
    "binary": "test",
    "base64": "dGVzdA==",
    "password": "test",
    "json-string": "{}",
}


class SchemaGenerationError(LLMTestingError):
    """No valid instance could be generated for a JSON schema (e.g. an unsatisfiable regex)."""


def instance_from_schema(schema: dict[str, Any]) -> Any:
    """Build a deterministic JSON value that validates against ``schema``.

    Understands what Pydantic emits: ``$defs``/``$ref``, ``anyOf``/``oneOf``/``allOf``
    (``Optional``, unions, discriminated unions), ``enum``/``const`` (``Literal``, enums),
    nested objects, ``additionalProperties`` (``dict[str, X]``), arrays with ``minItems``/
    ``maxItems``/``uniqueItems``/``prefixItems``, numeric bounds and ``multipleOf``, string
    lengths, ``pattern`` and common ``format`` values (date, date-time, uri, email, uuid...).

    Args:
        schema: A JSON schema, e.g. ``MyModel.model_json_schema()``.

    Returns:
        A JSON-compatible value (dicts, lists, strings, numbers, bools, ``None``).

    Raises:
        SchemaGenerationError: The schema cannot be satisfied by this generator.
    """
    return _Generator(schema).generate(schema, depth=0, variant=0)


def valid_instance(tp: type[T]) -> T:
    """Build a validated instance of a Pydantic model (or any type Pydantic can validate).

    Args:
        tp: A ``BaseModel`` subclass, dataclass, ``TypedDict``, ``list[Model]``...

    Returns:
        An instance produced from the type's JSON schema and validated in JSON mode, the way an
        LLM's output would be.

    Raises:
        SchemaGenerationError: The type's schema cannot be satisfied by this generator.
    """
    adapter: TypeAdapter[T] = TypeAdapter(tp)
    data = instance_from_schema(adapter.json_schema())
    return adapter.validate_json(json.dumps(data))


class _Generator:
    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root

    def generate(self, schema: Any, *, depth: int, variant: int) -> Any:
        if schema is True or not isinstance(schema, dict) or not schema:
            return "test"
        if "$ref" in schema:
            target = self._resolve(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            merged = {**target, **rest} if rest else target
            return self.generate(merged, depth=depth + 1, variant=variant)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = list(schema["enum"])
            if not options:
                raise SchemaGenerationError("empty enum")
            return options[variant % len(options)]
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self._resolve(part["$ref"]) if "$ref" in part else part
                merged = _merge(merged, part)
            return self.generate(merged, depth=depth, variant=variant)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._union(schema, schema[key], depth=depth, variant=variant)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            if depth > _MAX_DEPTH and "null" in kind:
                kinds = ["null"]
            kind = kinds[0]
        if kind is None:
            kind = _infer_type(schema)
        handler = getattr(self, f"_gen_{kind}", None)
        if handler is None:
            raise SchemaGenerationError(f"unsupported JSON schema type {kind!r}")
        return handler(schema, depth=depth, variant=variant)

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise SchemaGenerationError(f"only local $ref are supported, got {ref!r}")
        node: Any = self._root
        for part in ref.lstrip("#").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaGenerationError(f"unresolvable $ref {ref!r}")
            node = node[part]
        return cast(dict[str, Any], node)

    def _union(
        self, schema: dict[str, Any], options: list[Any], *, depth: int, variant: int
    ) -> Any:
        base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", "discriminator")}
        non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if depth > _MAX_DEPTH and len(non_null) < len(options):
            return None
        errors: list[str] = []
        for option in non_null or options:
            try:
                return self.generate(_merge(base, option), depth=depth, variant=variant)
            except SchemaGenerationError as exc:  # try the next branch
                errors.append(str(exc))
        raise SchemaGenerationError("; ".join(errors) or "no satisfiable anyOf branch")

    def _gen_null(self, schema: dict[str, Any], *, depth: int, variant: int) -> None:
        return None

    def _gen_boolean(self, schema: dict[str, Any], *, depth: int, variant: int) -> bool:
        return variant % 2 == 0

    def _gen_integer(self, schema: dict[str, Any], *, depth: int, variant: int) -> int:
        lo, hi = _bounds(schema, integer=True)
        step = schema.get("multipleOf", 1)
        if not isinstance(step, int) or step <= 0:
            step = 1
        start = lo if lo is not None else (min(1, hi) if hi is not None else 1)
        value = math.ceil(start / step) * step + variant * step
        if hi is not None and value > hi:
            value = math.ceil(start / step) * step
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise SchemaGenerationError(f"no integer satisfies {schema}")
        return int(value)

    def _gen_number(self, schema: dict[str, Any], *, depth: int, variant: int) -> float | int:
        lo, hi = _bounds(schema, integer=False)
        step = schema.get("multipleOf")
        candidates: list[float] = []
        if isinstance(step, (int, float)) and step > 0:
            if lo is not None:
                base = math.ceil(lo / step)
            elif hi is not None:
                base = min(math.floor(hi / step), math.ceil(1 / step))
            else:
                base = math.ceil(1 / step)
            for offset in (variant, 0, 1, 2):
                candidates.append((base + offset) * step)
        else:
            candidates.append(1.0 + variant)
            if lo is not None:
                candidates += [math.floor(lo) + 1 + variant, lo]
            if hi is not None:
                candidates += [math.ceil(hi) - 1 - variant, hi]
            if lo is not None and hi is not None:
                candidates.append((lo + hi) / 2)
        for value in candidates:
            if _within(schema, value):
                return int(value) if float(value).is_integer() else value
        raise SchemaGenerationError(f"no number satisfies {schema}")

    def _gen_string(self, schema: dict[str, Any], *, depth: int, variant: int) -> str:
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        fmt = schema.get("format")
        pattern = schema.get("pattern")
        if pattern is not None:
            text = string_matching(pattern, lo, hi)
            if text is None:
                raise SchemaGenerationError(f"could not generate a string matching {pattern!r}")
            return text
        if fmt in _FORMATS and variant == 0:
            return _FORMATS[fmt]
        if fmt == "date":
            return f"2026-01-{1 + variant % 28:02d}"
        if fmt == "date-time":
            return f"2026-01-{1 + variant % 28:02d}T00:00:00Z"
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        text = "test" if variant == 0 else f"test{variant}"
        if len(text) < lo:
            text += "x" * (lo - len(text))
        if hi is not None and len(text) > hi:
            text = text[-int(hi) :] if variant else text[: int(hi)]
        return text

    def _gen_array(self, schema: dict[str, Any], *, depth: int, variant: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        wanted = max(lo, len(prefix), 0 if depth > _MAX_DEPTH else 1)
        if items is False:
            wanted = len(prefix)
        if hi is not None:
            wanted = min(wanted, int(hi))
        unique = bool(schema.get("uniqueItems"))
        result: list[Any] = []
        for index in range(wanted):
            item_schema = prefix[index] if index < len(prefix) else items
            # Distinct items for sets / uniqueItems; a different variant per slot is enough.
            item_variant = variant + index if unique else variant
            result.append(self.generate(item_schema, depth=depth + 1, variant=item_variant))
        if unique and len({json.dumps(x, sort_keys=True) for x in result}) != len(result):
            raise SchemaGenerationError("could not make array items unique")
        return result

    def _gen_object(self, schema: dict[str, Any], *, depth: int, variant: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        result: dict[str, Any] = {}
        for name, prop in properties.items():
            if name in required or depth <= _MAX_DEPTH:
                result[name] = self.generate(prop, depth=depth + 1, variant=variant)
        extra = schema.get("additionalProperties")
        lo = int(schema.get("minProperties", 0))
        wanted = max(lo - len(result), 0)
        if isinstance(extra, dict) and not properties and depth <= _MAX_DEPTH:
            wanted = max(wanted, 1)
        if wanted:
            value_schema = extra if isinstance(extra, dict) else {}
            names = schema.get("propertyNames", {"type": "string"})
            for index in range(wanted):
                key = self.generate({"type": "string", **names}, depth=depth + 1, variant=index)
                key = key if index == 0 or key not in result else f"{key}{index}"
                result[str(key)] = self.generate(value_schema, depth=depth + 1, variant=index)
        return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def _infer_type(schema: dict[str, Any]) -> str:
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    emin = schema.get("exclusiveMinimum")
    emax = schema.get("exclusiveMaximum")
    if integer:
        if emin is not None:
            candidate = math.floor(emin) + 1
            lo = candidate if lo is None else max(lo, candidate)
        if emax is not None:
            candidate = math.ceil(emax) - 1
            hi = candidate if hi is None else min(hi, candidate)
        lo = math.ceil(lo) if lo is not None else None
        hi = math.floor(hi) if hi is not None else None
        return lo, hi
    if emin is not None:
        lo = emin if lo is None else max(lo, emin)
    if emax is not None:
        hi = emax if hi is None else min(hi, emax)
    return lo, hi


def _within(schema: dict[str, Any], value: float) -> bool:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    elo, ehi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    return (
        (lo is None or value >= lo)
        and (hi is None or value <= hi)
        and (elo is None or value > elo)
        and (ehi is None or value < ehi)
    )
