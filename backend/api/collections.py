"""Collections: ``GET /collections`` and ``GET /collections/{collection_id}``."""

from __future__ import annotations

from flask import Blueprint, jsonify

from backend.api import base_url
from backend.catalog import openeo_collection
from backend.services import services

blueprint = Blueprint("collections", __name__)


@blueprint.get("/collections")
def list_collections():
    catalog = services().catalog
    root = base_url()
    host = services().settings.title
    return jsonify(
        {
            "collections": [openeo_collection(catalog.get(cid), root, host) for cid in catalog.ids()],
            "links": [{"rel": "self", "href": f"{root}/collections", "type": "application/json"}],
        }
    )


@blueprint.get("/collections/<collection_id>")
def describe_collection(collection_id: str):
    svc = services()
    return jsonify(openeo_collection(svc.catalog.get(collection_id), base_url(), svc.settings.title))
