"""Request bodies and process documents of the wrong shape or size are refused before evaluation."""

from __future__ import annotations

import json

import pytest

from backend.api.body import MAX_DEPTH, MAX_VALUES, check_shape
from processes.core.errors import OpenEOError, ProcessGraphComplexity
from processes.core.graph import parse_process_graph

ADD = {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}


def test_nesting_up_to_the_limit_passes_and_beyond_it_is_refused():
    check_shape(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode())
    with pytest.raises(ProcessGraphComplexity, match="nested deeper"):
        check_shape(("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode())


@pytest.mark.parametrize("text", ['{"a": "' + "[" * 500 + '"}', '{"a": "\\"' + "{" * 500 + '"}', '{"a": "\\\\", "b": 1}'])
def test_brackets_inside_strings_are_text(text):
    json.loads(text)
    check_shape(text.encode())


def test_an_escaped_backslash_does_not_hide_what_follows():
    text = '{"a": "x\\\\", "b": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    json.loads(text)
    with pytest.raises(ProcessGraphComplexity):
        check_shape(text.encode())


def test_millions_of_literal_values_are_refused_with_the_way_out():
    with pytest.raises(ProcessGraphComplexity, match="load_url"):
        check_shape(json.dumps({"data": list(range(MAX_VALUES + 2))}).encode())


@pytest.mark.parametrize("parameters", [
    [{"name": {}, "default": None}],
    [{"name": "has space"}],
    [{"description": "no name"}],
    [{"name": "x"}, {"name": "x"}],
    "not a list",
])
def test_process_parameters_must_be_named_objects(parameters):
    with pytest.raises(OpenEOError) as err:
        parse_process_graph({"process_graph": ADD, "parameters": parameters})
    assert err.value.code == "ProcessGraphInvalid"


@pytest.mark.parametrize("node", [
    {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": "yes"},
    {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True, "namespace": 5},
    {"process_id": "add two", "arguments": {"x": 1, "y": 2}, "result": True},
])
def test_nodes_must_have_the_api_shape(node):
    with pytest.raises(OpenEOError) as err:
        parse_process_graph({"process_graph": {"a": node}})
    assert err.value.code == "ProcessGraphInvalid"


def test_a_very_long_chain_of_nodes_is_a_complexity_error_not_a_crash():
    nodes = {"n0": {"process_id": "add", "arguments": {"x": 1, "y": 1}}}
    for i in range(1, 3000):
        nodes[f"n{i}"] = {"process_id": "add", "arguments": {"x": {"from_node": f"n{i - 1}"}, "y": 1}}
    nodes["n2999"]["result"] = True
    with pytest.raises(ProcessGraphComplexity):
        parse_process_graph({"process_graph": nodes})
