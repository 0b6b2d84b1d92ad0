"""User-defined processes: ``GET /process_graphs``, ``GET/PUT/DELETE /process_graphs/{process_graph_id}``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api import json_body
from backend.services import services

blueprint = Blueprint("process_graphs", __name__)


def _user_id() -> str:
    return services().auth.user_from_request(request).user_id


@blueprint.get("/process_graphs")
def list_udps():
    processes = services().udps.list(_user_id())
    summaries = [{k: v for k, v in p.items() if k != "process_graph"} for p in processes]
    return jsonify({"processes": summaries, "links": []})


@blueprint.get("/process_graphs/<process_graph_id>")
def describe_udp(process_graph_id: str):
    return jsonify(services().udps.get(_user_id(), process_graph_id))


@blueprint.put("/process_graphs/<process_graph_id>")
def store_udp(process_graph_id: str):
    user_id = _user_id()
    svc = services()
    svc.udps.put(user_id, process_graph_id, json_body(), set(svc.registry))
    return Response(status=200)


@blueprint.delete("/process_graphs/<process_graph_id>")
def delete_udp(process_graph_id: str):
    services().udps.delete(_user_id(), process_graph_id)
    return Response(status=204)
