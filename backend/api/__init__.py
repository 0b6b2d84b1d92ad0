"""HTTP API of the back-end: one blueprint per endpoint group (thin views over the services).
May import the services (``backend.services`` and the modules it holds) and ``processes``; never ``backend.app``."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from processes.core.collector import collection_paused
from processes.core.errors import BadRequest


def json_body() -> Any:
    """The request body as JSON; malformed JSON is a 400 openEO error saying where it broke."""
    raw = request.get_data(cache=True)
    if not raw:
        raise BadRequest("The request body is empty; send a JSON document (Content-Type: application/json).")
    try:
        with collection_paused():  # a body of 10,000 inline parcels decodes 3x faster
            return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None


def base_url() -> str:
    """The API root as the client sees it, e.g. ``http://127.0.0.1:8080/openeo/1.2``."""
    from backend.settings import API_PREFIX

    return request.host_url.rstrip("/") + API_PREFIX
