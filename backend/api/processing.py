"""Data processing: ``POST /result`` (synchronous) and ``POST /validation``.

Under API 1.3 a ``/result`` answer names its request in ``OpenEO-Identifier``: the request id the
server log records it under (also in ``X-Request-Id``), so an operator finds a user's run by it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.access_log import request_id
from backend.accounting.limits import user_limits
from backend.api import json_body
from backend.api.versions import current_version
from backend.services import services
from backend.sync_processing import run_sync, validate
from processes.core.collector import collection_paused

blueprint = Blueprint("processing", __name__)

_CHUNK = 1 << 20


@blueprint.post("/result")
def result():
    svc = services()
    user = svc.auth.user_from_request(request)
    outcome = run_sync(svc, json_body(), user.user_id, user_limits(svc.settings, user).sync_pixels)
    path = outcome.path  # a local, so that the nested generator sees it narrowed to a Path
    if path is None:
        return _identified(jsonify(outcome.value))

    def stream():
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    response = Response(stream(), mimetype=outcome.media_type)
    response.headers["Content-Length"] = str(path.stat().st_size)
    response.headers["Content-Disposition"] = f'attachment; filename="{outcome.filename}"'
    response.call_on_close(outcome.cleanup)
    return _identified(response)


def _identified(response: Response) -> Response:
    rid = request_id()
    if rid and current_version().since("1.3"):
        response.headers["OpenEO-Identifier"] = rid
    return response


@blueprint.post("/validation")
def validation():
    # The collector stays paused until the request's graph is freed again (by reference counting),
    # so that resuming it does not walk the 10,000 parcels of a big graph (processes/core/collector.py).
    with collection_paused():
        errors = _validation_errors()
    return jsonify({"errors": errors})


def _validation_errors() -> list[dict[str, str]]:
    svc = services()
    user = svc.auth.user_from_request(request, required=False)
    if user is None:
        return validate(svc, json_body(), None)
    return validate(svc, json_body(), user.user_id, user_limits(svc.settings, user).sync_pixels)
