"""Secondary web services: ``/service_types``, ``/services``, ``/services/{id}``, ``/services/{id}/logs``
and the public tiles of an XYZ service (``/services/xyz/{id}/{key}/tiles/{z}/{x}/{y}.png``).

Services belong to their creator (anyone else gets ``ServiceNotFound``). The tile URL needs no
credentials: its key, stored with the service, is the authority; deleting or disabling the service
revokes it at once (404). The service store, tile arithmetic and rendering live in ``backend/maps``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from backend.api import base_url, created, iso, json_body, logs_document
from backend.maps.render import cached_tile, check_service
from backend.maps.store import ServiceRecord
from backend.maps.tiles import Tile
from backend.maps.xyz import check_configuration, check_type, service_types_document
from backend.services import services
from processes.core.errors import BadRequest, NotFound, ProcessGraphMissing
from processes.core.graph import parse_process_graph

blueprint = Blueprint("secondary_services", __name__)

TILE_MAX_AGE_SECONDS = 60
"""How long browsers may reuse a tile without asking (then ``If-None-Match`` revalidates it)."""


def _user():
    return services().auth.user_from_request(request)


def tile_url(service: ServiceRecord) -> str:
    return f"{base_url()}/services/xyz/{service.id}/{service.key}/tiles/{{z}}/{{x}}/{{y}}.png"


def _summary(service: ServiceRecord) -> dict[str, Any]:
    return {
        "id": service.id,
        "title": service.title,
        "description": service.description,
        "url": tile_url(service),
        "type": service.type,
        "enabled": service.enabled,
        "created": iso(service.created),
        "plan": service.plan,
        "budget": service.budget,
        "costs": 0,
    }


def _process_of(body: dict) -> dict:
    process = body.get("process")
    if not isinstance(process, dict) or "process_graph" not in process:
        raise ProcessGraphMissing("The request needs a 'process' object holding a 'process_graph'.")
    parse_process_graph(process)
    return process


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string.")
    return value


def _enabled(body: dict) -> bool:
    value = body.get("enabled", True)
    if not isinstance(value, bool):
        raise BadRequest("'enabled' must be true or false.")
    return value


@blueprint.get("/service_types")
def service_types():
    return jsonify(service_types_document())


@blueprint.post("/services")
def create_service():
    user = _user()
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("Send the service as a JSON object: {\"type\": \"XYZ\", \"process\": {…}}.")
    service_type = check_type(body.get("type"))
    configuration = check_configuration(body.get("configuration"))
    process = _process_of(body)
    budget = body.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
        raise BadRequest("'budget' must be a number.")
    check_service(services(), user.user_id, process, configuration)
    service = services().maps.create(
        user.user_id, service_type, process, configuration, title=_text(body, "title"),
        description=_text(body, "description"), enabled=_enabled(body), plan=_text(body, "plan"), budget=budget,
    )
    return created(f"/services/{service.id}", service.id)


@blueprint.get("/services")
def list_services():
    user = _user()
    limit = request.args.get("limit", type=int)
    return jsonify({"services": [_summary(s) for s in services().maps.list(user.user_id, limit)], "links": []})


@blueprint.get("/services/<service_id>")
def describe_service(service_id: str):
    service = services().maps.get(_user().user_id, service_id)
    return jsonify({**_summary(service), "process": service.process, "configuration": service.configuration,
                    "attributes": {}})


@blueprint.patch("/services/<service_id>")
def update_service(service_id: str):
    user = _user()
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("Send the properties to change as a JSON object, e.g. {\"title\": \"…\"}.")
    store = services().maps
    current = store.get(user.user_id, service_id)
    changes = dict(body)
    if "type" in changes:
        if check_type(changes.pop("type")) != current.type:
            raise BadRequest("The type of a service can't be changed; create a new service.")
    for name in ("title", "description", "plan"):
        if name in changes:
            _text(changes, name)
    if "enabled" in changes:
        _enabled(changes)
    if "configuration" in changes:
        changes["configuration"] = check_configuration(changes["configuration"])
    if "process" in changes:
        changes["process"] = _process_of(changes)
    if "process" in changes or "configuration" in changes:
        check_service(services(), user.user_id, changes.get("process", current.process),
                      changes.get("configuration", current.configuration))
    store.update(user.user_id, service_id, changes)
    return Response(status=204)


@blueprint.delete("/services/<service_id>")
def delete_service(service_id: str):
    services().maps.delete(_user().user_id, service_id)
    return Response(status=204)


@blueprint.get("/services/<service_id>/logs")
def service_logs(service_id: str):
    user = _user()
    store = services().maps
    store.get(user.user_id, service_id)
    level = request.args.get("level", "debug")
    limit = request.args.get("limit", type=int)
    entries = store.logs(service_id, request.args.get("offset"), level, limit)
    return logs_document(entries, level, limit, lambda offset: url_for(
        "secondary_services.service_logs", service_id=service_id, offset=offset, level=level, limit=limit,
        _external=True))


@blueprint.get("/services/xyz/<service_id>/<key>/tiles/<z>/<x>/<y>.png")
def xyz_tile(service_id: str, key: str, z: str, x: str, y: str):
    svc = services()
    service = svc.maps.for_tiles(service_id, key)
    if service is None:
        raise NotFound("No map tiles at this URL: the service does not exist, was deleted or is disabled.")
    tile = Tile.parse(z, x, y)
    cached, _ = cached_tile(svc, service, tile)
    headers = {"ETag": cached.etag, "Cache-Control": f"private, max-age={TILE_MAX_AGE_SECONDS}"}
    if cached.etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(cached.png, mimetype="image/png", headers=headers)
