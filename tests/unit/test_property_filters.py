"""Property filters: openEO callbacks over ``value`` as the exact check, and as CQL2 / ``query`` for STAC APIs."""

from __future__ import annotations

import pytest

from processes.core.env import ProcessEnv
from processes.core.graph import Callback, Evaluator, ProcessGraph
from processes.data.property_filters import (
    AnyOf,
    Comparison,
    cql2_filter,
    property_filter,
    query_filter,
)
from processes.data.stac_sources import CollectionCatalog
from processes.process_table import build_registry

VALUE = {"from_parameter": "value"}


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(build_registry(), ProcessEnv(collections=CollectionCatalog([])))


def callback(evaluator: Evaluator, nodes: dict) -> Callback:
    result = next(k for k, n in nodes.items() if n.get("result"))
    return Callback(ProcessGraph(nodes, result), evaluator, {})


def one(process: str, **arguments) -> dict:
    return {"c": {"process_id": process, "arguments": arguments, "result": True}}


@pytest.mark.parametrize(
    ("nodes", "clauses"),
    [
        (one("lt", x=VALUE, y=1), (Comparison("<", 1),)),
        (one("lte", x=VALUE, y=20.5), (Comparison("<=", 20.5),)),
        (one("gt", x=10, y=VALUE), (Comparison("<", 10),)),  # 10 > value ⇔ value < 10
        (one("eq", x=VALUE, y="sentinel-2a"), (Comparison("=", "sentinel-2a"),)),
        (one("neq", x=VALUE, y="sentinel-2b"), (Comparison("<>", "sentinel-2b"),)),
        (one("between", x=VALUE, min=0, max=30), (Comparison(">=", 0), Comparison("<=", 30))),
        (one("between", x=VALUE, min=0, max=30, exclude_max=True), (Comparison(">=", 0), Comparison("<", 30))),
        (one("array_contains", data=["sentinel-2a", "sentinel-2b"], value=VALUE),
         (AnyOf(("sentinel-2a", "sentinel-2b")),)),
    ],
)
def test_simple_comparisons_become_clauses(evaluator, nodes, clauses):
    assert property_filter("p", callback(evaluator, nodes)).clauses == clauses


def test_and_keeps_the_clauses_it_can_say_and_drops_the_rest(evaluator):
    nodes = {
        "low": {"process_id": "gte", "arguments": {"x": VALUE, "y": 5}},
        "odd": {"process_id": "eq", "arguments": {"x": {"from_node": "mod"}, "y": 1}},
        "mod": {"process_id": "mod", "arguments": {"x": VALUE, "y": 2}},
        "both": {"process_id": "and", "arguments": {"x": {"from_node": "low"}, "y": {"from_node": "odd"}},
                 "result": True},
    }
    condition = property_filter("n", callback(evaluator, nodes))
    assert condition.clauses == (Comparison(">=", 5),)
    assert condition(7) and not condition(8) and not condition(3)


def test_or_of_equalities_is_one_any_of(evaluator):
    nodes = {
        "a": {"process_id": "eq", "arguments": {"x": VALUE, "y": "A"}},
        "b": {"process_id": "eq", "arguments": {"x": VALUE, "y": "B"}},
        "either": {"process_id": "or", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "b"}},
                   "result": True},
    }
    assert property_filter("p", callback(evaluator, nodes)).clauses == (AnyOf(("A", "B")),)


@pytest.mark.parametrize(
    "nodes",
    [
        one("lt", x=VALUE, y={"from_parameter": "threshold"}),  # a parameter of an outer graph
        one("lt", x=VALUE, y="10"),  # ordering of strings: not pushed
        one("eq", x=VALUE, y="a", case_sensitive=False),
        one("eq", x=VALUE, y=3, delta=0.5),
        one("not", x=VALUE),
    ],
)
def test_what_cannot_be_said_exactly_is_left_to_the_check_here(evaluator, nodes):
    assert property_filter("p", callback(evaluator, nodes)).clauses == ()


def test_the_check_is_the_openeo_condition_and_refuses_a_missing_property(evaluator):
    condition = property_filter("eo:cloud_cover", callback(evaluator, one("lt", x=VALUE, y=1)))
    assert condition(0.5) and not condition(1) and not condition(None)


def test_cql2_joins_the_filters_of_several_properties_with_and(evaluator):
    filters = {
        "eo:cloud_cover": property_filter("eo:cloud_cover", callback(evaluator, one("lt", x=VALUE, y=1))),
        "platform": property_filter("platform", callback(evaluator, one(
            "array_contains", data=["sentinel-2a", "sentinel-2b"], value=VALUE))),
        "plain": lambda value: True,  # a plain condition: checked here only
    }
    assert cql2_filter(filters) == {"op": "and", "args": [
        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 1]},
        {"op": "or", "args": [{"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},
                              {"op": "=", "args": [{"property": "platform"}, "sentinel-2b"]}]},
    ]}
    assert query_filter(filters) == {"eo:cloud_cover": {"lt": 1}, "platform": {"in": ["sentinel-2a", "sentinel-2b"]}}


def test_nothing_to_push_gives_no_filter():
    assert cql2_filter({"p": lambda value: True}) is None
    assert query_filter({}) is None
