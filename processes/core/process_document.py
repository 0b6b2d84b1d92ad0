"""The shape of a process document, checked before a graph is parsed, evaluated or stored.

The openEO API describes a process (``POST /result``'s and ``POST /jobs``' ``process``, a stored
user-defined process) as an object with an optional ``id``, ``parameters`` (objects with a string
``name``), ``returns`` and a ``process_graph`` of nodes (``process_id``, ``namespace``,
``arguments``, ``result``). A document of another shape is refused here with the place and the
fix, before anything downstream can trip over it (a parameter named ``{}`` used to be stored and
then break every later use of the process).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from processes.core.errors import ProcessGraphInvalid

MAX_NODES = 10_000
"""Most process nodes one document may hold, child graphs included."""

_NAME = {"type": "string", "pattern": r"^\w+$"}
_TEXT = {"type": ["string", "null"]}
_PARAMETER = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "description": _TEXT,
        "optional": {"type": "boolean"},
        "deprecated": {"type": "boolean"},
        "experimental": {"type": "boolean"},
        "schema": {"type": ["object", "array"]},
    },
}
_PROCESS = {
    "type": "object",
    "properties": {
        "id": {"type": ["string", "null"]},
        "summary": _TEXT,
        "description": _TEXT,
        "categories": {"type": ["array", "null"], "items": {"type": "string"}},
        "parameters": {"type": ["array", "null"], "items": _PARAMETER},
        "returns": {"type": ["object", "null"]},
        "deprecated": {"type": ["boolean", "null"]},
        "experimental": {"type": ["boolean", "null"]},
        "exceptions": {"type": ["object", "null"]},
        "examples": {"type": ["array", "null"]},
        "links": {"type": ["array", "null"], "items": {"type": "object"}},
        "process_graph": {"type": "object"},
    },
}
_NODE = {
    "type": "object",
    "required": ["process_id"],
    "properties": {
        "process_id": _NAME,
        "namespace": {"type": ["string", "null"]},
        "arguments": {"type": "object"},
        "result": {"type": "boolean"},
        "description": _TEXT,
    },
}
_PROCESS_VALIDATOR = jsonschema.Draft7Validator(_PROCESS)
_NODE_VALIDATOR = jsonschema.Draft7Validator(_NODE)


def _problem(validator: jsonschema.Draft7Validator, value: Any, where: str) -> str | None:
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where}{path}: {error.message}"


def check_process(document: Mapping[str, Any]) -> None:
    """The process-level fields of a process document (``id``, ``parameters``, ``returns`` …)."""
    problem = _problem(_PROCESS_VALIDATOR, document, "process")
    if problem:
        raise ProcessGraphInvalid(f"Invalid process: {problem}. See the openEO API's process schema.")
    names = [p["name"] for p in document.get("parameters") or []]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ProcessGraphInvalid(f"Invalid process: parameter(s) {', '.join(doubled)} declared more than once.")


def check_node(node_id: str, node: Any, where: str) -> None:
    """One node's fields (``process_id``, ``namespace``, ``arguments``, ``result``)."""
    problem = _problem(_NODE_VALIDATOR, node, f"{where}, node '{node_id}'")
    if problem:
        raise ProcessGraphInvalid(f"Invalid process graph: {problem}.")
