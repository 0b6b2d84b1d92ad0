"""Secondary web services: ``/service_types``, ``/services``, ``/services/{id}``, ``/services/{id}/logs``,
and the public URLs of the services themselves:

- XYZ: ``/services/xyz/{id}/{key}/tiles/{z}/{x}/{y}.png`` (``.jpg``/``.jpeg``, ``.webp``);
- WMTS: ``/services/wmts/{id}/{key}/1.0.0/WMTSCapabilities.xml`` (the service's ``url``), the KVP
  requests at ``/services/wmts/{id}/{key}?SERVICE=WMTS&REQUEST=…`` and the tiles at
  ``/services/wmts/{id}/{key}/tiles/{TileMatrix}/{TileCol}/{TileRow}.png`` (``.jpg``, ``.webp``).
  These answer OGC exception reports instead of openEO errors (why: ``backend.maps.wmts``).

Services belong to their creator (anyone else gets ``ServiceNotFound``). The public URLs need no
credentials: the key, stored with the service, is the authority; deleting or disabling the service
revokes it at once (404). Tiles carry an ETag and ``Cache-Control``, and ``If-None-Match`` gives a
304. The service store, types, tile arithmetic, rendering and WMTS documents live in ``backend/maps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from backend.api import base_url, created, iso, json_body, logs_document
from backend.maps import wmts
from backend.maps.render import cached_tile, check_service
from backend.maps.service_types import check_configuration, check_type, service_types_document
from backend.maps.store import ServiceRecord
from backend.maps.tiles import Tile
from backend.maps.xyz import image_format_of
from backend.services import services
from processes.core.errors import BadRequest, NotFound, OpenEOError, ProcessGraphMissing
from processes.core.graph import parse_process_graph
from processes.formats.image import ENCODINGS

blueprint = Blueprint("secondary_services", __name__)

TILE_MAX_AGE_SECONDS = 60
"""How long browsers may reuse a tile without asking (then ``If-None-Match`` revalidates it)."""


def _user():
    return services().auth.user_from_request(request)


def _root(service: ServiceRecord) -> str:
    """Where a service's public URLs start: ``…/services/{xyz|wmts}/{id}/{key}``."""
    return f"{base_url()}/services/{service.type.lower()}/{service.id}/{service.key}"


def service_url(service: ServiceRecord) -> str:
    """The ``url`` of a service: the tile template of an XYZ service, the capabilities of a WMTS."""
    if service.type == "WMTS":
        return f"{_root(service)}/{wmts.VERSION}/WMTSCapabilities.xml"
    return f"{_root(service)}/tiles/{{z}}/{{x}}/{{y}}.png"


def _attributes(service: ServiceRecord) -> dict[str, Any]:
    # the openEO Web Editor shows the WMTS layers named here
    return {"layers": [service.id]} if service.type == "WMTS" else {}


def _summary(service: ServiceRecord) -> dict[str, Any]:
    return {
        "id": service.id,
        "title": service.title,
        "description": service.description,
        "url": service_url(service),
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
    configuration = check_configuration(service_type, body.get("configuration"))
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
                    "attributes": _attributes(service)})


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
        changes["configuration"] = check_configuration(current.type, changes["configuration"])
    if "process" in changes:
        changes["process"] = _process_of(changes)
    if "process" in changes or "configuration" in changes:
        check_service(services(), user.user_id, changes.get("process", current.process),
                      changes.get("configuration", current.configuration))
    store.update(user.user_id, service_id, changes)
    services().tiles.forget(service_id)  # its tiles have new keys now: free the old ones
    return Response(status=204)


@blueprint.delete("/services/<service_id>")
def delete_service(service_id: str):
    services().maps.delete(_user().user_id, service_id)
    services().tiles.forget(service_id)
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
        ".service_logs", service_id=service_id, offset=offset, level=level, limit=limit,
        _external=True))


# --- the public URLs of the services ----------------------------------------------------------
def _public_service(service_type: str, service_id: str, key: str) -> ServiceRecord:
    service = services().maps.for_tiles(service_id, key)
    if service is None or service.type != service_type:
        raise NotFound(f"No {service_type} service at this URL: the service does not exist, was deleted or is "
                       "disabled, or the URL's key is not its key. GET /services/{id} gives the service's URL.")
    return service


def _tile(service: ServiceRecord, tile: Tile, image_format: str) -> Response:
    cached, _ = cached_tile(services(), service, tile, image_format)
    headers = {"ETag": cached.etag, "Cache-Control": f"private, max-age={TILE_MAX_AGE_SECONDS}"}
    if cached.etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    return Response(cached.data, mimetype=cached.media_type, headers=headers)


@blueprint.get("/services/xyz/<service_id>/<key>/tiles/<z>/<x>/<file_name>")
def xyz_tile(service_id: str, key: str, z: str, x: str, file_name: str):
    service = _public_service("XYZ", service_id, key)
    y, image_format = image_format_of(file_name)
    return _tile(service, Tile.parse(z, x, y), image_format)


def _wmts(service_id: str, key: str, answer: Callable[[ServiceRecord], Response]) -> Response:
    """``answer`` for the WMTS service, with any error as an OGC exception report."""
    try:
        return answer(_public_service("WMTS", service_id, key))
    except wmts.OwsException as err:
        failure = err
    except OpenEOError as err:
        failure = wmts.OwsException.from_openeo(err)
    return Response(failure.report(), status=failure.status, mimetype=wmts.MEDIA_TYPE)


def _capabilities(service: ServiceRecord) -> Response:
    root = _root(service)
    layer = wmts.Layer(
        identifier=service.id, title=service.title or f"openEO service {service.id}",
        abstract=service.description or "Computed on request by the openEO process of the service.",
        bounds=wmts.layer_bounds(services(), service.process))
    endpoints = wmts.Endpoints(capabilities=service_url(service), kvp=root, tiles=f"{root}/tiles")
    return Response(wmts.capabilities(layer, endpoints, ENCODINGS), mimetype=wmts.MEDIA_TYPE)


def _kvp(service: ServiceRecord) -> Response:
    get_tile = wmts.parse_kvp(request.args, service.id, ENCODINGS)
    if get_tile is None:
        return _capabilities(service)
    return _tile(service, get_tile.tile, get_tile.image_format)


@blueprint.get("/services/wmts/<service_id>/<key>")
def wmts_kvp(service_id: str, key: str):
    return _wmts(service_id, key, _kvp)


@blueprint.get(f"/services/wmts/<service_id>/<key>/{wmts.VERSION}/WMTSCapabilities.xml")
def wmts_capabilities(service_id: str, key: str):
    return _wmts(service_id, key, _capabilities)


@blueprint.get("/services/wmts/<service_id>/<key>/tiles/<matrix>/<col>/<file_name>")
def wmts_tile(service_id: str, key: str, matrix: str, col: str, file_name: str):
    def answer(service: ServiceRecord) -> Response:
        get_tile = wmts.rest_tile(matrix, col, file_name)
        return _tile(service, get_tile.tile, get_tile.image_format)

    return _wmts(service_id, key, answer)
