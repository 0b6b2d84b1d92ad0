"""Item search of a collection (STAC API / OGC API Features): ``GET /collections/{collection_id}/items``,
``/collections/{collection_id}/items/{item_id}`` (its local files at ``…/assets/{key}/{file name}``) and
``/collections/{collection_id}/queryables``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, send_file

from backend import item_search
from backend.api import base_url
from backend.services import services

blueprint = Blueprint("items", __name__)

GEOJSON = "application/geo+json"


@blueprint.get("/collections/<collection_id>/items")
def list_items(collection_id: str):
    handle = services().catalog.get(collection_id)
    page = item_search.items_page(handle, base_url(), request.args.to_dict(), services().settings.token_secret())
    response = jsonify(page)
    response.mimetype = GEOJSON
    return response


@blueprint.get("/collections/<collection_id>/items/<item_id>")
def get_item(collection_id: str, item_id: str):
    response = jsonify(item_search.one_item(services().catalog.get(collection_id), item_id, base_url()))
    response.mimetype = GEOJSON
    return response


@blueprint.get("/collections/<collection_id>/items/<item_id>/assets/<key>/<name>")
def get_asset(collection_id: str, item_id: str, key: str, name: str):
    path = item_search.asset_file(services().catalog.get(collection_id), item_id, key, name)
    return send_file(path, conditional=True, download_name=path.name)  # conditional: ranges, ETag


@blueprint.get("/collections/<collection_id>/queryables")
def get_queryables(collection_id: str):
    response = jsonify(item_search.queryables(services().catalog.get(collection_id), base_url()))
    response.mimetype = "application/schema+json"
    return response
