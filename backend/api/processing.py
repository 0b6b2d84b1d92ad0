"""Data processing: ``POST /result`` (synchronous) and ``POST /validation``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api import json_body
from backend.services import services
from backend.sync_processing import run_sync, validate
from processes.core.collector import collection_paused

blueprint = Blueprint("processing", __name__)

_CHUNK = 1 << 20


@blueprint.post("/result")
def result():
    svc = services()
    user = svc.auth.user_from_request(request)
    outcome = run_sync(svc, json_body(), user.user_id)
    path = outcome.path  # a local, so that the nested generator sees it narrowed to a Path
    if path is None:
        return jsonify(outcome.value)

    def stream():
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    response = Response(stream(), mimetype=outcome.media_type)
    response.headers["Content-Length"] = str(path.stat().st_size)
    response.headers["Content-Disposition"] = f'attachment; filename="{outcome.filename}"'
    response.call_on_close(outcome.cleanup)
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
    return validate(svc, json_body(), user.user_id if user else None)
