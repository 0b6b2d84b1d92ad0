"""Capabilities: ``GET /``, ``/.well-known/openeo``, ``/conformance``, ``/file_formats``, ``/processing_parameters``.

The ``endpoints`` list is read off the Flask URL map, so it always says exactly what is implemented.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request

from backend import __version__
from backend.api import base_url
from backend.services import services
from backend.settings import API_PREFIX, API_VERSION
from processes.core.processing_parameters import parameters_document
from processes.data.vector_files import INPUT_FORMATS
from processes.formats import file_formats_document

blueprint = Blueprint("capabilities", __name__)
well_known = Blueprint("well_known", __name__)

STAC_VERSION = "1.0.0"
CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.openeo.org/extensions/processing-parameters/0.1.0",
]


def _endpoints() -> list[dict]:
    by_path: dict[str, set[str]] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX) or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(API_PREFIX):]) or "/"
        # werkzeug types methods Optional (a bare Rule), but Flask gives every route its methods
        methods = rule.methods or set()
        by_path.setdefault(path, set()).update(m for m in methods if m not in ("HEAD", "OPTIONS"))
    return [{"path": path, "methods": sorted(methods)} for path, methods in sorted(by_path.items())]


@blueprint.get("/")
def capabilities():
    settings = services().settings
    root = base_url()
    return jsonify(
        {
            "api_version": API_VERSION,
            "backend_version": __version__,
            "stac_version": STAC_VERSION,
            "type": "Catalog",
            "id": "terracube",
            "title": settings.title,
            "description": "Terracube: an openEO back-end over STAC catalogs, xarray and Dask. "
            "Log in with HTTP Basic at /credentials/basic.",
            "production": False,
            "endpoints": _endpoints(),
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": f"{root}/", "type": "application/json"},
                {"rel": "version-history", "href": f"{request.host_url}.well-known/openeo",
                 "type": "application/json"},
                {"rel": "data", "href": f"{root}/collections", "type": "application/json",
                 "title": "Collections"},
                {"rel": "conformance", "href": f"{root}/conformance", "type": "application/json"},
            ],
        }
    )


@blueprint.get("/conformance")
def conformance():
    return jsonify({"conformsTo": CONFORMANCE})


@blueprint.get("/file_formats")
def file_formats():
    return jsonify(file_formats_document(input_formats=INPUT_FORMATS))


@well_known.get("/.well-known/openeo")
def versions():
    return jsonify(
        {
            "versions": [
                {"url": f"{request.host_url.rstrip('/')}{API_PREFIX}/", "api_version": API_VERSION,
                 "production": False}
            ]
        }
    )


@blueprint.get("/udf_runtimes")
def udf_runtimes():
    from udf.code import runtimes_document

    return jsonify(runtimes_document())


@blueprint.get("/processing_parameters")
def processing_parameters():
    return jsonify(parameters_document())
