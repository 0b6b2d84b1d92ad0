"""Evaluating small process graphs in tests: one registry, no collections, cubes as graph parameters."""

from __future__ import annotations

from typing import Any

import geopandas as gpd

from processes.core.env import ProcessEnv
from processes.core.graph import Evaluator, parse_process_graph
from processes.process_table import build_registry

REGISTRY = build_registry()


def evaluate(nodes: dict, **parameters: Any) -> Any:
    """The value of the flat graph ``nodes``, with ``parameters`` for its ``from_parameter`` references."""
    graph = parse_process_graph({"process_graph": nodes})
    return Evaluator(REGISTRY, ProcessEnv(collections=None)).evaluate(graph, parameters)


def run_node(process_id: str, **arguments: Any) -> Any:
    """One node of ``process_id``; cubes and vector data (not JSON) go in as graph parameters."""
    parameters, graph_arguments = {}, {}
    for name, value in arguments.items():
        if hasattr(value, "dims") or isinstance(value, gpd.GeoDataFrame):
            parameters[name] = value
            graph_arguments[name] = {"from_parameter": name}
        else:
            graph_arguments[name] = value
    return evaluate({"n": {"process_id": process_id, "arguments": graph_arguments, "result": True}}, **parameters)
