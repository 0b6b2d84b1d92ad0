"""The process graph parser and evaluator, with a small registry of test processes."""

from __future__ import annotations

import pytest

from processes.core.env import ProcessEnv
from processes.core.errors import (
    Internal,
    ProcessGraphInvalid,
    ProcessGraphMissing,
    ProcessParameterRequired,
    ProcessParameterUnsupported,
    ProcessUnsupported,
)
from processes.core.graph import Callback, Evaluator, parse_process_graph
from processes.core.registry import ProcessRegistry


def _spec(pid: str, *params: str, optional: tuple[str, ...] = ()) -> dict:
    return {
        "id": pid,
        "parameters": [{"name": p, "schema": {}} for p in params]
        + [{"name": p, "schema": {}, "optional": True, "default": None} for p in optional],
        "returns": {"schema": {}},
    }


CALLS: list[str] = []


def _add(x, y):
    CALLS.append("add")
    return x + y


def _apply_to_list(data, process, context=None):
    return [process(x=v, context=context) for v in data]


def _fail(x):
    raise ZeroDivisionError("boom")


@pytest.fixture
def evaluator() -> Evaluator:
    registry = ProcessRegistry()
    registry.add("add", _add, _spec("add", "x", "y"))
    registry.add("apply_list", _apply_to_list, _spec("apply_list", "data", "process", optional=("context",)))
    registry.add("fail", _fail, _spec("fail", "x"))
    CALLS.clear()
    return Evaluator(registry, ProcessEnv(collections=None))


def run(evaluator: Evaluator, nodes: dict, **params):
    return evaluator.evaluate(parse_process_graph({"process_graph": nodes}), params)


def test_evaluates_a_single_node(evaluator):
    assert run(evaluator, {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}) == 3


def test_from_node_results_are_computed_once(evaluator):
    nodes = {
        "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
        "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": {"from_node": "a"}}, "result": True},
    }
    assert run(evaluator, nodes) == 6
    assert CALLS == ["add", "add"]


def test_references_inside_lists_and_objects_are_resolved(evaluator):
    nodes = {
        "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
        "b": {"process_id": "add", "arguments": {"x": [{"from_node": "a"}], "y": [4]}, "result": True},
    }
    assert run(evaluator, nodes) == [3, 4]


def test_callbacks_see_their_own_and_their_parents_parameters(evaluator):
    nodes = {
        "m": {
            "process_id": "apply_list",
            "arguments": {
                "data": [1, 2],
                "process": {"process_graph": {"p": {
                    "process_id": "add",
                    "arguments": {"x": {"from_parameter": "x"}, "y": {"from_parameter": "offset"}},
                    "result": True,
                }}},
            },
            "result": True,
        }
    }
    assert run(evaluator, nodes, offset=10) == [11, 12]


def test_callback_reports_a_single_process(evaluator):
    graph = parse_process_graph({"process_graph": {"m": {
        "process_id": "apply_list",
        "arguments": {"data": [1], "process": {"process_graph": {
            "p": {"process_id": "add", "arguments": {"x": 1, "y": 1}, "result": True}}}},
        "result": True,
    }}})
    captured = {}

    def capture(data, process, context=None):
        captured["cb"] = process
        return None

    evaluator.registry._processes["apply_list"] = evaluator.registry["apply_list"].__class__(
        "apply_list", capture, evaluator.registry["apply_list"].spec
    )
    evaluator.evaluate(graph)
    assert isinstance(captured["cb"], Callback)
    assert captured["cb"].single_process == "add"


def test_unknown_process_is_process_unsupported_with_node(evaluator):
    with pytest.raises(ProcessUnsupported) as err:
        run(evaluator, {"n1": {"process_id": "nope", "arguments": {}, "result": True}})
    assert err.value.node_id == "n1"
    assert "GET /processes" in err.value.message


def test_unknown_argument_is_rejected(evaluator):
    with pytest.raises(ProcessParameterUnsupported, match="'z'"):
        run(evaluator, {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2, "z": 3}, "result": True}})


def test_missing_required_argument_is_rejected(evaluator):
    with pytest.raises(ProcessParameterRequired, match="'y'"):
        run(evaluator, {"a": {"process_id": "add", "arguments": {"x": 1}, "result": True}})


def test_undefined_parameter_is_reported(evaluator):
    with pytest.raises(ProcessParameterRequired, match="'nope'"):
        run(evaluator, {"a": {"process_id": "add", "arguments": {"x": {"from_parameter": "nope"}, "y": 1},
                              "result": True}})


def test_library_errors_become_internal_errors_naming_the_node_not_the_exception(evaluator, caplog):
    with caplog.at_level("ERROR"), pytest.raises(Internal, match="node 'f'") as err:
        run(evaluator, {"f": {"process_id": "fail", "arguments": {"x": 1}, "result": True}})
    assert "boom" not in err.value.message and err.value.reference in err.value.message
    logged = [r for r in caplog.records if err.value.reference in r.getMessage()]
    assert logged and "boom" in str(logged[0].exc_info[1])


@pytest.mark.parametrize(
    "document, error",
    [
        ({}, ProcessGraphMissing),
        ({"process_graph": {}}, ProcessGraphInvalid),
        ({"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
                            "b": {"process_id": "add", "arguments": {"x": 1, "y": 2}}}}, ProcessGraphInvalid),
        ({"process_graph": {"a": {"process_id": "add", "arguments": {"x": {"from_node": "zz"}, "y": 2},
                                  "result": True}}}, ProcessGraphInvalid),
        ({"process_graph": {"a": {"process_id": 5, "arguments": {}, "result": True}}}, ProcessGraphInvalid),
        ({"process_graph": {"a": {"process_id": "add", "arguments": [], "result": True}}}, ProcessGraphInvalid),
        ({"process_graph": {
            "a": {"process_id": "add", "arguments": {"x": {"from_node": "b"}, "y": 1}, "result": True},
            "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": 1}}}}, ProcessGraphInvalid),
    ],
    ids=["no-graph", "empty", "no-result", "dangling-reference", "bad-process-id", "arguments-not-object", "cycle"],
)
def test_structurally_invalid_graphs_are_rejected(document, error):
    with pytest.raises(error):
        parse_process_graph(document)


def test_without_result_flag_the_only_unused_node_is_the_result(evaluator):
    nodes = {
        "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}},
        "b": {"process_id": "add", "arguments": {"x": {"from_node": "a"}, "y": 10}},
    }
    assert run(evaluator, nodes) == 13


def test_a_process_nested_one_level_too_deep_is_accepted(evaluator):
    graph = parse_process_graph({"process_graph": {"process_graph": {
        "a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}})
    assert evaluator.evaluate(graph) == 3


def test_the_parser_sees_a_skeleton_without_literal_data():
    from processes.core.graph import _skeleton

    features = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}] * 1000}
    nodes = {"a": {"process_id": "add", "arguments": {
        "x": features, "y": [{"from_node": "b"}, 2]}, "result": True},
        "b": {"process_id": "add", "arguments": {"x": 1, "y": 2}}}
    skeleton = _skeleton(nodes)
    assert skeleton["a"]["arguments"] == {"x": None, "y": [{"from_node": "b"}, 2]}
    assert parse_process_graph({"process_graph": nodes}).nodes["a"]["arguments"]["x"] is features


def test_a_user_defined_process_is_fetched_from_its_namespace_url(evaluator):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    definition = {
        "id": "add_offset",
        "parameters": [{"name": "x", "schema": {}}, {"name": "offset", "schema": {}, "default": 100}],
        "process_graph": {"a": {"process_id": "add", "arguments": {
            "x": {"from_parameter": "x"}, "y": {"from_parameter": "offset"}}, "result": True}},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(definition).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/add_offset.json"
        nodes = {"u": {"process_id": "add_offset", "namespace": url, "arguments": {"x": 1}, "result": True}}
        assert run(evaluator, nodes) == 101
        nodes["u"]["arguments"]["offset"] = 2
        assert run(evaluator, nodes) == 3
    finally:
        server.shutdown()


def test_parameter_defaults_of_the_request_process():
    from processes.core.graph import parameter_defaults

    document = {"process_graph": {}, "parameters": [{"name": "a", "default": 1}, {"name": "b"}]}
    assert parameter_defaults(document) == {"a": 1}


def test_a_bounding_box_may_take_every_field_from_parameters():
    # as the openEO Sentinel Hub driver's XYZ graphs write it: the parser must not type-check the references
    reference = {side: {"from_parameter": f"spatial_extent_{side}"} for side in ("west", "south", "east", "north", "crs")}
    graph = parse_process_graph({"process_graph": {"load": {"process_id": "load_collection", "arguments": {
        "id": "S2", "spatial_extent": reference, "temporal_extent": None}, "result": True}}})
    assert graph.nodes["load"]["arguments"]["spatial_extent"]["crs"] == {"from_parameter": "spatial_extent_crs"}
