"""Checking literal arguments against the JSON schemas of the process specs.

Only values written literally in the graph are checked here (values from other nodes are checked
by the processes themselves). openEO's ``subtype`` keywords are not JSON Schema and are ignored;
``format`` is not enforced (dates are parsed by the processes that take them).

Range keywords (``minimum``, ``maximum``, …) on *number* schemas are not enforced either: the
official process tests expect mathematical processes to answer values outside their domain with
NaN or ±Infinity (``arccos(2)`` → NaN, ``ln(0)`` → -Infinity), as they do for the same values
arriving from data. Ranges of integers (indices, sizes) are still checked.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from processes.core.registry import Process

_validators: dict[tuple[int, str], jsonschema.protocols.Validator | None] = {}


def _validator(process: Process, name: str) -> jsonschema.protocols.Validator | None:
    key = (id(process.spec), name)
    if key not in _validators:
        param = next((p for p in process.spec.get("parameters", []) if p["name"] == name), None)
        schema = param.get("schema") if param else None
        if isinstance(schema, list):
            schema = {"anyOf": schema}
        if param is not None and param.get("optional") and param.get("default", "no default") is None:
            schema = {"anyOf": [schema, {"type": "null"}]} if schema else None
        _validators[key] = jsonschema.Draft7Validator(_without_number_ranges(schema)) if schema else None
    return _validators[key]


_RANGE_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _without_number_ranges(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_number_ranges(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    drop = "number" in kinds
    return {k: _without_number_ranges(v) for k, v in schema.items() if not (drop and k in _RANGE_KEYWORDS)}


def check_literal(process: Process, name: str, value: Any) -> str | None:
    """Why ``value`` does not fit the parameter's schema, or None if it fits."""
    validator = _validator(process, name)
    if validator is None:
        return None
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    expected = _expected_types(validator.schema)
    return f"{shown} does not match the expected {expected} ({error.message[:200]})."


def _expected_types(schema: dict) -> str:
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    names: list[Any] = []
    for option in options:
        kind = option.get("subtype") or option.get("type") or "value"
        names.extend(kind if isinstance(kind, list) else [kind])
    unique = list(dict.fromkeys(str(n) for n in names))
    return " or ".join(unique) if unique else "value"
