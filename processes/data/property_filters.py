"""Property filters of ``load_collection``/``load_stac``: the openEO check, and what a STAC API can be told.

A filter on an item property is an openEO child process graph over ``value`` (``lte(value, 20)``).
:func:`property_filter` keeps that graph as the exact check (:meth:`PropertyFilter.__call__`, run on
every item here) and, where the graph is made of simple comparisons of ``value`` with literals, also
the same condition as plain :class:`Comparison` clauses. Those are what a STAC API is told, as CQL2-JSON
(Filter extension) or as the ``query`` extension's object, so that it sends only the matching items.

Translation only ever *widens*: a part of an ``and`` that cannot be said to the API is left out, and the
API's answer is filtered again here. So an API that compares differently (a string "10" against a
number) can at worst send items the exact check then drops, never hide one it keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from processes.core.graph import Callback

Literal = str | int | float | bool

_ORDERING = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>"}
_QUERY_OPS = {"=": "eq", "<>": "neq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


@dataclass(frozen=True)
class Comparison:
    """``property <op> value``: op is a CQL2 basic comparison (``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``)."""

    op: str
    value: Literal


@dataclass(frozen=True)
class AnyOf:
    """``property = v1 or property = v2 …`` (``array_contains`` of a literal list)."""

    values: tuple[Literal, ...]


Clause = Comparison | AnyOf


@dataclass(frozen=True)
class PropertyFilter:
    """A filter on one item property: callable like the plain condition ``check(value) -> bool``."""

    name: str
    """The item property (``eo:cloud_cover``)."""
    check: Callable[[Any], bool]
    """The exact openEO condition; False for a missing property."""
    clauses: tuple[Clause, ...] = ()
    """Conditions an API can evaluate, all of which the exact check implies; empty: none (filter here only)."""

    def __call__(self, value: Any) -> bool:
        return self.check(value)

    def cql2(self) -> list[dict[str, Any]]:
        """The clauses as CQL2-JSON expressions (basic CQL2 only: comparisons, ``and``, ``or``)."""
        prop = {"property": self.name}
        expressions: list[dict[str, Any]] = []
        for clause in self.clauses:
            if isinstance(clause, Comparison):
                expressions.append({"op": clause.op, "args": [prop, clause.value]})
            else:
                alternatives = [{"op": "=", "args": [prop, v]} for v in clause.values]
                expressions.append(alternatives[0] if len(alternatives) == 1 else {"op": "or", "args": alternatives})
        return expressions

    def query(self) -> dict[str, Literal | list[Literal]]:
        """The clauses as the ``query`` extension's operators of this property (one per operator)."""
        operators: dict[str, Literal | list[Literal]] = {}
        for clause in self.clauses:
            # a second clause with the same operator is left to the exact check (it only narrows)
            if isinstance(clause, Comparison):
                operators.setdefault(_QUERY_OPS[clause.op], clause.value)
            else:
                operators.setdefault("in", list(clause.values))
        return operators


def property_filter(name: str, callback: Any) -> PropertyFilter:
    """The filter of property ``name`` given by an openEO child process graph (a :class:`Callback`)."""

    def check(value: Any) -> bool:
        return value is not None and callback(value=value) is True

    clauses: tuple[Clause, ...] = ()
    if isinstance(callback, Callback):
        clauses = tuple(_clauses(callback.graph.nodes, callback.graph.result_node))
    return PropertyFilter(name, check, clauses)


def cql2_filter(filters: Mapping[str, Any]) -> dict[str, Any] | None:
    """One CQL2-JSON expression of all pushable clauses of ``{name: PropertyFilter or plain callable}``."""
    expressions = [e for f in filters.values() if isinstance(f, PropertyFilter) for e in f.cql2()]
    if not expressions:
        return None
    return expressions[0] if len(expressions) == 1 else {"op": "and", "args": expressions}


def query_filter(filters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``query`` extension object of all pushable clauses, or None when there are none."""
    query = {f.name: f.query() for f in filters.values() if isinstance(f, PropertyFilter) and f.clauses}
    return query or None


# --- graph → clauses ------------------------------------------------------------------------------
def _clauses(nodes: Mapping[str, Any], node_id: str) -> list[Clause]:
    """The clauses implied by node ``node_id`` being true; [] when nothing simple is implied."""
    node = nodes[node_id]
    process, args = node.get("process_id"), node.get("arguments") or {}
    if process == "and":
        return [c for key in ("x", "y") if _is_node(args.get(key)) for c in _clauses(nodes, args[key]["from_node"])]
    if process in _ORDERING:
        return _comparison(_ORDERING[process], args.get("x"), args.get("y"), numbers_only=True)
    if process in ("eq", "neq"):
        if args.get("delta") is not None or args.get("case_sensitive", True) is not True:
            return []
        return _comparison("=" if process == "eq" else "<>", args.get("x"), args.get("y"), numbers_only=False)
    if process == "between" and _is_value(args.get("x")):
        low, high = args.get("min"), args.get("max")
        if not (isinstance(low, int | float) and isinstance(high, int | float) and _is_number(low) and _is_number(high)):
            return []
        return [Comparison(">=", low), Comparison("<" if args.get("exclude_max") is True else "<=", high)]
    if process == "array_contains" and _is_value(args.get("value")):
        data = args.get("data")
        if isinstance(data, list) and data and all(_is_literal(v) for v in data):
            return [AnyOf(tuple(data))]
    if process == "or":
        return _alternatives(nodes, args)
    return []


def _alternatives(nodes: Mapping[str, Any], args: Mapping[str, Any]) -> list[Clause]:
    """``or`` of equalities (``value = a or value = b``) as one AnyOf; anything else is not pushed."""
    values: list[Literal] = []
    for key in ("x", "y"):
        if not _is_node(args.get(key)):
            return []
        found = _clauses(nodes, args[key]["from_node"])
        if len(found) != 1:
            return []
        (clause,) = found
        if isinstance(clause, AnyOf):
            values.extend(clause.values)
        elif clause.op == "=":
            values.append(clause.value)
        else:
            return []
    return [AnyOf(tuple(values))]


def _comparison(op: str, x: Any, y: Any, *, numbers_only: bool) -> list[Clause]:
    literal_ok = _is_number if numbers_only else _is_literal
    if _is_value(x) and literal_ok(y):
        return [Comparison(op, y)]
    if _is_value(y) and literal_ok(x):
        return [Comparison(_MIRRORED[op], x)]  # 20 > value ⇔ value < 20
    return []


def _is_value(arg: Any) -> bool:
    return isinstance(arg, dict) and arg == {"from_parameter": "value"}


def _is_node(arg: Any) -> bool:
    return isinstance(arg, dict) and set(arg) == {"from_node"}


def _is_number(arg: Any) -> bool:
    return isinstance(arg, int | float) and not isinstance(arg, bool)


def _is_literal(arg: Any) -> bool:
    return isinstance(arg, str | int | float | bool)
