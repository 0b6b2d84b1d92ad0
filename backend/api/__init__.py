"""HTTP API of the back-end: one blueprint per endpoint group (thin views over the services).
May import the services (``backend.services`` and the modules it holds) and ``processes``; never ``backend.app``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from flask import Response, jsonify, request

from backend.api.body import json_body
from backend.jobs.store import LogEntry


def base_url() -> str:
    """The API root as the client sees it, in the version the request speaks, e.g.
    ``http://127.0.0.1:8080/openeo/1.2`` (``/openeo/1.3`` for a request under that prefix)."""
    from backend.api.versions import current_version

    return request.host_url.rstrip("/") + current_version().prefix


def iso(value: dt.datetime | None) -> str | None:
    """A stored UTC time as the API writes it (``2023-05-01T10:30:00Z``)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def created(path: str, identifier: str) -> Response:
    """The 201 answer of a created resource: ``Location`` and ``OpenEO-Identifier``."""
    response = Response(status=201)
    response.headers["Location"] = f"{base_url()}{path}"
    response.headers["OpenEO-Identifier"] = identifier
    return response


def logs_document(entries: Sequence[LogEntry], level: str, limit: int | None,
                  next_url: Callable[[str], str]) -> Response:
    """A ``/logs`` answer (jobs, services): the entries, and a ``next`` link when a page is full;
    ``next_url(offset)`` makes that link."""
    logs = []
    for entry in entries:
        item: dict[str, Any] = {"id": entry.id, "level": entry.level, "message": entry.message,
                                "time": iso(entry.time)}
        if entry.code:
            item["code"] = entry.code
        if entry.data is not None:
            item["data"] = entry.data
        logs.append(item)
    links = [{"rel": "next", "href": next_url(entries[-1].id)}] if limit and len(entries) == limit else []
    return jsonify({"level": level, "logs": logs, "links": links})


__all__ = ["base_url", "created", "iso", "json_body", "logs_document"]
