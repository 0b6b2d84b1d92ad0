"""Capabilities: ``GET /``, ``/.well-known/openeo``, ``/conformance``, ``/file_formats``, ``/processing_parameters``.

The ``endpoints`` list is read off the Flask URL map, so it always says exactly what is implemented;
the ``billing`` section is there only when a price list is configured (``backend.accounting.billing``).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, request

from backend import __version__
from backend.accounting.billing import billing_document
from backend.api import base_url
from backend.api.versions import API_VERSIONS, current_version
from backend.services import services
from processes.core.processing_parameters import parameters_document
from processes.data.vector_files import INPUT_FORMATS
from processes.formats import file_formats_document

blueprint = Blueprint("capabilities", __name__)
well_known = Blueprint("well_known", __name__)

STAC_VERSION = "1.0.0"
EXTENSIONS = [
    "https://api.openeo.org/extensions/processing-parameters/0.1.0",
]
"""The openEO API extensions implemented in full, in every version."""
# Not claimed, although the endpoints exist: STAC API Core/Collections/Features and OGC API Features
# Core/GeoJSON. Their landing page must link the API definition (``service-desc``), and no OpenAPI
# document of this back-end is served; the item search (backend/api/items.py) works all the same.
WEB_EDITOR = "https://editor.openeo.org/"
"""The openEO Web Editor: 1.3's ``web-editor`` link opens it connected to this back-end (it runs in the
user's browser, which talks to the API directly; CORS allows it)."""


def conformance_classes() -> list[str]:
    """What the request's API version truly conforms to: that version of the openEO API and the extensions."""
    return [f"https://api.openeo.org/{current_version().number}", *EXTENSIONS]


def _endpoints() -> list[dict]:
    prefix = current_version().prefix
    by_path: dict[str, set[str]] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith(prefix + "/") or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len(prefix):]) or "/"
        # werkzeug types methods Optional (a bare Rule), but Flask gives every route its methods
        methods = rule.methods or set()
        by_path.setdefault(path, set()).update(m for m in methods if m not in ("HEAD", "OPTIONS"))
    return [{"path": path, "methods": sorted(methods)} for path, methods in sorted(by_path.items())]


@blueprint.get("/")
def capabilities():
    settings = services().settings
    root = base_url()
    version = current_version()
    billing = billing_document(settings.prices)
    return jsonify(
        {
            **({"billing": billing} if billing else {}),
            "api_version": version.number,
            "backend_version": __version__,
            "stac_version": STAC_VERSION,
            "type": "Catalog",
            "id": "terracube",
            "title": settings.title,
            "description": "Terracube: an openEO back-end over STAC catalogs, xarray and Dask. "
            "Log in with HTTP Basic at /credentials/basic.",
            "production": False,
            "endpoints": _endpoints(),
            "conformsTo": conformance_classes(),
            "links": [
                {"rel": "self", "href": f"{root}/", "type": "application/json"},
                {"rel": "version-history", "href": f"{request.host_url}.well-known/openeo",
                 "type": "application/json"},
                {"rel": "data", "href": f"{root}/collections", "type": "application/json",
                 "title": "Collections"},
                {"rel": "conformance", "href": f"{root}/conformance", "type": "application/json"},
                *([{"rel": "web-editor", "href": f"{WEB_EDITOR}?{urlencode({'server': root, 'discover': 1})}",
                    "type": "text/html", "title": "openEO Web Editor"}] if version.since("1.3") else []),
            ],
        }
    )


@blueprint.get("/conformance")
def conformance():
    return jsonify({"conformsTo": conformance_classes()})


@blueprint.get("/file_formats")
def file_formats():
    return jsonify(file_formats_document(input_formats=INPUT_FORMATS))


@well_known.get("/.well-known/openeo")
def versions():
    # production: false for every version, as before: the flag is a claim about this implementation
    # (ready for production use), which serving a newer API version does not change
    host = request.host_url.rstrip("/")
    return jsonify({"versions": [{"url": f"{host}{v.prefix}/", "api_version": v.number, "production": False}
                                 for v in API_VERSIONS]})


@blueprint.get("/udf_runtimes")
def udf_runtimes():
    from udf.code import runtimes_document

    return jsonify(runtimes_document())


@blueprint.get("/processing_parameters")
def processing_parameters():
    return jsonify(parameters_document())
