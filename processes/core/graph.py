"""Process graphs: parse, check and evaluate lazily.

Parsing uses ``openeo-pg-parser-networkx`` for the structure of a graph (one result node per
graph, ``from_node`` references that exist, no cycles, valid process ids, child graphs). It is given
a *skeleton* of the graph in which literal data (inline GeoJSON, long arrays) is replaced by
``None``: the parser walks every literal value, which would make a graph with 10,000 inline parcels
take seconds to parse although its structure is tiny.

Evaluation walks the original JSON from the result node, memoising each node's value. Arguments
are resolved recursively: ``{"from_node"}`` evaluates that node, ``{"from_parameter"}`` looks the
name up in the parameter scope (child graphs see their own parameters first, then their parents'),
and ``{"process_graph"}`` becomes a :class:`Callback` that the process calls with its parameters.
Processes return lazy values (Dask-backed cubes); computing happens in the output writers.
"""

from __future__ import annotations

import dataclasses
import json
import marshal
from collections import ChainMap
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

from processes.core.collector import collection_paused
from processes.core.env import ProcessEnv
from processes.core.errors import (
    OpenEOError,
    ProcessGraphComplexity,
    ProcessGraphInvalid,
    ProcessGraphMissing,
    ProcessParameterInvalid,
    ProcessParameterRequired,
    ProcessParameterUnsupported,
    ProcessUnsupported,
    unexpected_failure,
)
from processes.core.process_document import MAX_NODES, check_node, check_process
from processes.core.registry import Process, ProcessRegistry
from processes.core.schema import check_literal

_REFERENCE_KEYS = ("from_node", "from_parameter", "process_graph")


@dataclass(frozen=True)
class ProcessGraph:
    """A structurally valid flat process graph (the JSON object of nodes) and its result node."""

    nodes: Mapping[str, Mapping[str, Any]]
    result_node: str

    @property
    def process_ids(self) -> set[str]:
        """Ids of all processes used, in this graph and its child graphs."""
        found: set[str] = set()

        def walk(nodes: Mapping[str, Any]) -> None:
            for node in nodes.values():
                found.add(node["process_id"])
                for child in _child_graphs(node.get("arguments", {})):
                    walk(child)

        walk(self.nodes)
        return found


def _mentions(value: Any, keys: tuple[str, ...]) -> bool:
    """Whether any of ``keys`` may occur as a key in ``value`` (a cheap pre-check; False is certain).

    Literal data (10,000 inline parcels) would otherwise be walked value by value, several times per
    request. ``marshal`` serialises plain JSON values in C without formatting numbers (4 ms for
    2.8 MB of parcels, where ``json.dumps`` takes 55 ms), and every string it writes appears in its
    output as UTF-8 bytes, so a byte search answers "surely not". Nothing is cached: a cache would
    keep the literals of past requests alive.
    """
    if not isinstance(value, (dict, list)):
        return False
    try:
        data = marshal.dumps(value)
    except ValueError:  # not plain JSON (already evaluated values): walk it
        return True
    return any(key.encode() in data for key in keys)


def _child_graphs(value: Any):
    """Child process graphs in ``value`` (a node's arguments), not entering arguments without any."""
    parts = value.values() if isinstance(value, dict) else [value]
    for part in parts:
        if _mentions(part, ("process_graph",)):
            yield from _walk_child_graphs(part)


def _walk_child_graphs(value: Any):
    if isinstance(value, dict):
        if "process_graph" in value and isinstance(value["process_graph"], dict):
            yield value["process_graph"]
        else:
            for v in value.values():
                yield from _walk_child_graphs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_child_graphs(v)


def _has_reference(value: Any) -> bool:
    return _mentions(value, _REFERENCE_KEYS) and _walk_has_reference(value)


def _walk_has_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in value for k in _REFERENCE_KEYS) or any(_walk_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_walk_has_reference(v) for v in value)
    return False


def _skeleton(nodes: Mapping[str, Any]) -> dict[str, Any]:
    """The graph with literal argument values replaced by None (see module docstring)."""

    def strip(value: Any, nested: bool) -> Any:
        if isinstance(value, dict):
            if "process_graph" in value and isinstance(value["process_graph"], dict):
                return {"process_graph": _skeleton(value["process_graph"])}
            if "from_node" in value:
                return value
            if "from_parameter" in value:
                # inside an object (a bounding box's crs, say) the parser would type-check the reference
                # as the value itself; parameters are resolved by the evaluator, the parser needs no edge
                return None if nested else value
            return {k: strip(v, True) for k, v in value.items()} if _has_reference(value) else None
        if isinstance(value, list):
            return [strip(v, True) for v in value] if _has_reference(value) else None
        return value

    return {
        node_id: {**node, "arguments": {k: strip(v, False) for k, v in (node.get("arguments") or {}).items()}}
        for node_id, node in nodes.items()
    }


def _check_nodes(nodes: Any, where: str, counted: list[int]) -> None:
    if not isinstance(nodes, dict) or not nodes:
        raise ProcessGraphInvalid(f"{where}: a process graph must be a non-empty JSON object of nodes.")
    counted[0] += len(nodes)
    if counted[0] > MAX_NODES:
        raise ProcessGraphComplexity(
            f"The process graph holds more than {MAX_NODES:,} nodes (child graphs included); split the "
            "work into several requests or store parts as user-defined processes."
        )
    for node_id, node in nodes.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise ProcessGraphInvalid(
                f"{where}: node '{node_id}' must be an object with a string 'process_id'."
            )
        args = node.get("arguments", {})
        if not isinstance(args, dict):
            raise ProcessGraphInvalid(f"{where}: 'arguments' of node '{node_id}' must be a JSON object.")
        check_node(node_id, node, where)
        for child in _child_graphs(args):
            _check_nodes(child, f"{where}, child graph of node '{node_id}'", counted)


def parse_process_graph(document: Any) -> ProcessGraph:
    """Parse a flat process graph, or an object holding it under ``process_graph``.

    Raises ``ProcessGraphMissing``/``ProcessGraphInvalid`` with the reason.
    """
    if isinstance(document, dict) and "process_graph" in document:
        check_process(document)
        nodes = document["process_graph"]
        # Some clients (the JS client given a Builder) nest a whole process one level deeper.
        while isinstance(nodes, dict) and set(nodes) <= {"process_graph", "id", "parameters", "returns"} \
                and isinstance(nodes.get("process_graph"), dict):
            nodes = nodes["process_graph"]
    elif isinstance(document, dict) and document and all(
        isinstance(n, dict) and "process_id" in n for n in document.values()
    ):
        nodes = document
    else:
        raise ProcessGraphMissing(
            "The request holds no process graph: send {\"process\": {\"process_graph\": {...}}}."
        )
    _check_nodes(nodes, "process graph", [0])
    for node in _iter_all_nodes(nodes):
        node.setdefault("arguments", {})
    result = _result_node(nodes)

    from openeo_pg_parser_networkx import OpenEOProcessGraph  # heavy import, only when parsing

    try:
        OpenEOProcessGraph({"process_graph": _skeleton(nodes)})
    except RecursionError:
        raise ProcessGraphComplexity(
            "The process graph's chains of nodes are too long to evaluate; shorten them (e.g. combine steps "
            "in one child process) or store parts as user-defined processes."
        ) from None
    except Exception as exc:  # the parser raises bare Exceptions and pydantic errors
        raise ProcessGraphInvalid(f"Invalid process graph: {_parser_message(exc)}") from None
    return ProcessGraph(nodes=nodes, result_node=result)


def parameter_defaults(document: Any) -> dict[str, Any]:
    """Defaults of the parameters a process (``{"process_graph", "parameters"}``) declares."""
    if not isinstance(document, dict):
        return {}
    return {
        p["name"]: p["default"]
        for p in document.get("parameters") or []
        if isinstance(p, dict) and "name" in p and "default" in p
    }


def _iter_all_nodes(nodes: Mapping[str, Any]):
    for node in nodes.values():
        yield node
        for child in _child_graphs(node.get("arguments", {})):
            yield from _iter_all_nodes(child)


def _result_node(nodes: Mapping[str, Any]) -> str:
    results = [node_id for node_id, node in nodes.items() if node.get("result") is True]
    if not results:
        # Lenient for clients that leave the flag out (the JS client's Builder): the one node no
        # other node uses is the result.
        used = {ref for node in nodes.values() for ref in _from_nodes(node.get("arguments", {}))}
        sinks = [node_id for node_id in nodes if node_id not in used]
        if len(sinks) == 1:
            nodes[sinks[0]]["result"] = True
            return sinks[0]
    if len(results) != 1:
        raise ProcessGraphInvalid(
            f"A process graph needs exactly one node with \"result\": true; found {len(results)}"
            + (f" ({', '.join(results)})" if results else "")
            + "."
        )
    return results[0]


def _from_nodes(value: Any):
    if isinstance(value, dict):
        if "from_node" in value and len(value) == 1:
            yield value["from_node"]
        elif "process_graph" not in value:
            for v in value.values():
                yield from _from_nodes(v)
    elif isinstance(value, list):
        for v in value:
            yield from _from_nodes(v)


def _parser_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "process_graph")
            parts.append(f"{loc}: {err.get('msg')}")
        return "; ".join(parts)
    return str(exc)


MAX_DEFINITION_BYTES = 5_000_000


def fetch_process_definition(url: str, process_id: str, node_id: str) -> dict[str, Any]:
    """Download a process definition (``{"id", "parameters", "process_graph"}``) from an http(s) URL."""
    import requests

    try:
        response = requests.get(url, timeout=20, stream=True)
        response.raise_for_status()
        body = response.raw.read(MAX_DEFINITION_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise ProcessUnsupported(
            f"Process '{process_id}' (node '{node_id}'): cannot fetch its definition from {url}: {exc}",
            node_id=node_id,
        ) from None
    if len(body) > MAX_DEFINITION_BYTES:
        raise ProcessGraphInvalid(f"The process definition at {url} is larger than {MAX_DEFINITION_BYTES} bytes.")
    try:
        definition = json.loads(body)
    except ValueError:
        raise ProcessGraphInvalid(f"The process definition at {url} is not JSON.") from None
    if isinstance(definition, dict) and "processes" in definition:  # a list of processes
        definition = next((p for p in definition["processes"] if p.get("id") == process_id), None)
    if not isinstance(definition, dict) or not isinstance(definition.get("process_graph"), dict):
        raise ProcessUnsupported(
            f"{url} holds no definition of process '{process_id}' with a process graph.", node_id=node_id
        )
    if definition.get("id", process_id) != process_id:
        raise ProcessUnsupported(
            f"{url} defines process '{definition.get('id')}', not '{process_id}'.", node_id=node_id
        )
    return definition


class Callback:
    """A child process graph, callable with its parameters as keyword arguments."""

    def __init__(self, graph: ProcessGraph, evaluator: Evaluator, scope: Mapping[str, Any]):
        self.graph = graph
        self._evaluator = evaluator
        self._scope = scope

    def __call__(self, **parameters: Any) -> Any:
        # A ChainMap only writes to its first map (the fresh ``parameters``), but typeshed types every
        # map as mutable: the read-only scope is cast rather than copied on every call.
        scope = cast("MutableMapping[str, Any]", self._scope)
        return self._evaluator.evaluate(self.graph, ChainMap(parameters, scope))

    @property
    def single_process(self) -> str | None:
        """The process id if the child graph is one node, else None (for fast paths)."""
        if len(self.graph.nodes) == 1:
            return next(iter(self.graph.nodes.values()))["process_id"]
        return None

    def __repr__(self) -> str:
        return f"Callback({sorted(self.graph.process_ids)})"


class Evaluator:
    """Evaluates process graphs with one registry and one environment."""

    def __init__(self, registry: ProcessRegistry, env: ProcessEnv,
                 defined: dict[tuple[str, str], Process] | None = None):
        self.registry = registry
        self.env = env
        self._remote: dict[tuple[str, str], Process] = {} if defined is None else defined

    def evaluate(self, graph: ProcessGraph, parameters: Mapping[str, Any] | None = None) -> Any:
        cache: dict[str, Any] = {}
        return self._node(graph, graph.result_node, ChainMap(dict(parameters or {})), cache)

    def _node(self, graph: ProcessGraph, node_id: str, scope: ChainMap, cache: dict) -> Any:
        if node_id in cache:
            return cache[node_id]
        node = graph.nodes[node_id]
        process = self._process(node, node_id)
        raw_arguments = node.get("arguments", {})
        self._check_arguments(process, raw_arguments, node_id)
        arguments = {name: self._resolve(value, graph, scope, cache) if _has_reference(value) else value
                     for name, value in raw_arguments.items()}
        kwargs = dict(arguments)
        if process.needs_env:
            kwargs["env"] = dataclasses.replace(self.env, node_id=node_id)
        try:
            result = process.implementation(**kwargs)
        except OpenEOError as err:
            raise err.with_node(node_id) from None
        except RecursionError:
            raise ProcessGraphComplexity(
                f"The process graph is nested too deeply to evaluate (at node '{node_id}'); flatten its chains "
                "of nodes or child processes.", node_id=node_id) from None
        except Exception as exc:  # a library error inside a process: logged with its traceback, not shown
            raise unexpected_failure(exc, f"Process '{process.id}' (node '{node_id}') failed unexpectedly",
                                     node_id=node_id) from exc
        cache[node_id] = result
        return result

    def _process(self, node: Mapping[str, Any], node_id: str) -> Process:
        process_id = node["process_id"]
        namespace = node.get("namespace")
        if isinstance(namespace, str) and namespace.startswith(("http://", "https://")):
            return self._remote_process(process_id, namespace, node_id)
        if namespace == "user" or (namespace is None and process_id not in self.registry):
            stored = self.env.user_processes(process_id) if self.env.user_processes else None
            if stored is not None:
                return self._defined_process(process_id, f"user:{process_id}", stored)
            if namespace == "user":
                raise ProcessUnsupported(
                    f"User-defined process '{process_id}' (node '{node_id}') does not exist; "
                    "GET /process_graphs lists yours.", node_id=node_id,
                )
        if namespace not in (None, "backend", "predefined"):
            raise ProcessUnsupported(
                f"Process '{process_id}' in namespace '{namespace}' (node '{node_id}') is not available: "
                "use the back-end's predefined processes (namespace null) or a URL to a process definition.",
                node_id=node_id,
            )
        try:
            return self.registry[process_id]
        except ProcessUnsupported as err:
            raise err.with_node(node_id) from None

    def _remote_process(self, process_id: str, url: str, node_id: str) -> Process:
        """A user-defined process published as JSON at ``url`` (openEO's namespace-as-URL)."""
        if (process_id, url) not in self._remote:
            return self._defined_process(process_id, url, fetch_process_definition(url, process_id, node_id))
        return self._remote[(process_id, url)]

    def _defined_process(self, process_id: str, source: str, definition: Mapping[str, Any]) -> Process:
        """A process defined by a process graph (stored or fetched), callable like a predefined one."""
        key = (process_id, source)
        if key not in self._remote:
            nodes = definition["process_graph"]
            check_process(definition)
            _check_nodes(nodes, f"process '{process_id}' ({source})", [0])
            graph = ProcessGraph(nodes, _result_node(nodes))
            defaults = parameter_defaults(definition)
            evaluator = self.within(definition)

            def run(**arguments: Any) -> Any:
                return evaluator.evaluate(graph, {**defaults, **arguments})

            spec: dict[str, Any] = {
                "id": process_id, "parameters": definition.get("parameters") or [], "returns": {"schema": {}},
            }
            self._remote[key] = Process(process_id, run, spec)
        return self._remote[key]

    def evaluate_process(self, document: Any, graph: ProcessGraph | None = None) -> Any:
        """Parse and evaluate a request's process (``{"process_graph", "parameters", …}``) lazily, with
        its parameter defaults and processing parameter defaults; the collector is paused meanwhile
        (nothing is computed here, see :mod:`processes.core.collector`). ``graph``: the document's
        graph as :func:`parse_process_graph` gave it, where the caller parsed it already."""
        with collection_paused():
            if graph is None:
                graph = parse_process_graph(document)
            evaluator = self.within(document) if isinstance(document, Mapping) else self
            return evaluator.evaluate(graph, parameter_defaults(document))

    def within(self, definition: Mapping[str, Any]) -> Evaluator:
        """The evaluator for the graph of a user-defined process: its processing parameter defaults apply."""
        options = self.env.options.within(definition)
        if options is self.env.options:
            return self
        return Evaluator(self.registry, dataclasses.replace(self.env, options=options), self._remote)

    @staticmethod
    def _check_arguments(process: Process, arguments: Mapping[str, Any], node_id: str) -> None:
        """Names against the spec, and literal values (no references inside) against their schema."""
        known = process.parameter_names
        for name, value in arguments.items():
            if name not in known:
                raise ProcessParameterUnsupported(
                    f"Process '{process.id}' does not support parameter '{name}' (node '{node_id}'); "
                    f"its parameters are: {', '.join(known) or 'none'}.",
                    node_id=node_id,
                )
            if not _has_reference(value):
                problem = check_literal(process, name, value)
                if problem:
                    raise ProcessParameterInvalid(
                        f"The value passed for parameter '{name}' in process '{process.id}' (node '{node_id}') "
                        f"is invalid: {problem}",
                        node_id=node_id,
                    )
        for name in process.required_parameters:
            if name not in arguments:
                raise ProcessParameterRequired(
                    f"Process '{process.id}' parameter '{name}' is required (node '{node_id}').",
                    node_id=node_id,
                )

    def _resolve(self, value: Any, graph: ProcessGraph, scope: ChainMap, cache: dict) -> Any:
        if isinstance(value, dict):
            if "from_node" in value and len(value) == 1:
                return self._node(graph, value["from_node"], scope, cache)
            if "from_parameter" in value and len(value) == 1:
                name = value["from_parameter"]
                if name not in scope:
                    raise ProcessParameterRequired(
                        f"The process graph refers to parameter '{name}', which has no value here. "
                        f"Parameters available: {', '.join(sorted(scope)) or 'none'}."
                    )
                return scope[name]
            if "process_graph" in value and isinstance(value["process_graph"], dict):
                nodes = value["process_graph"]
                return Callback(ProcessGraph(nodes, _result_node(nodes)), self, scope)
            return {k: self._resolve(v, graph, scope, cache) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, graph, scope, cache) for v in value]
        return value
