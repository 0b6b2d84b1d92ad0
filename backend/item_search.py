"""Item search of one collection (``GET /collections/{id}/items``, ``…/items/{item_id}``, ``…/queryables``).

The query parameters are checked here (a bad ``bbox``, ``datetime``, ``limit`` or ``token`` is a 400
naming the problem). A static collection pages its items in memory; a STAC API collection pages
through the API, one upstream page per page. Either way the ``next`` link carries a *token*: the
offset, or the upstream page's own next link, signed with the back-end's secret, so a token cannot be
forged into a request to another server and a mangled one is refused.

Items are served as STAC items of this API: ``self``/``parent``/``collection``/``root`` links point here,
asset hrefs are absolute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from processes.core.errors import BadRequest, NotFound
from processes.data.stac_items import parse_time
from processes.data.stac_sources import StacApiCollection, StaticCollection

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
BBox = tuple[float, float, float, float]


# --- parameters ---------------------------------------------------------------------------------
def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit '{text}' is not an integer from 1 to {MAX_LIMIT}; e.g. limit=100.")
    return limit


def parse_bbox(text: str | None) -> BBox | None:
    if not text:
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 6:  # 3D box: the heights are ignored
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise BadRequest(f"bbox '{text}' is not four numbers west,south,east,north; e.g. bbox=11.2,46.4,11.4,46.6.")
    west, south, east, north = values
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadRequest(f"bbox '{text}' is not in WGS84 lon/lat order west,south,east,north with south <= north.")
    return west, south, east, north


def parse_datetime(text: str | None) -> tuple[datetime, datetime] | None:
    """A STAC API ``datetime``: an instant, or a closed interval ``start/end`` with ``..`` (or nothing)
    for an open end. As ``(start, end)`` in UTC."""
    if not text:
        return None
    ends = text.split("/")
    if len(ends) > 2 or all(e in ("", "..") for e in ends):
        raise BadRequest(f"datetime '{text}' is not an RFC 3339 instant or interval; "
                         "e.g. 2022-06-01T00:00:00Z or 2022-06-01T00:00:00Z/.. .")
    try:
        times = [None if e in ("", "..") else parse_time(e) for e in ends]
    except (ValueError, OverflowError):
        raise BadRequest(f"datetime '{text}' holds a time that is not RFC 3339, e.g. 2022-06-01T00:00:00Z.") from None
    start = times[0] or datetime.min.replace(tzinfo=UTC)
    end = times[-1] or datetime.max.replace(tzinfo=UTC)
    if start > end:
        raise BadRequest(f"datetime '{text}' ends before it starts.")
    return start, end


# --- tokens -------------------------------------------------------------------------------------
def make_token(state: Mapping[str, Any], secret: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{payload}.{_signature(payload, secret)}"


def read_token(token: str, secret: str) -> dict[str, Any]:
    payload, _, signature = token.partition(".")
    if not payload or not hmac.compare_digest(signature, _signature(payload, secret)):
        raise BadRequest("token is not one this back-end gave in a 'next' link; start again without a token.")
    state = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return state if isinstance(state, dict) else {}


def _signature(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


# --- pages ----------------------------------------------------------------------------------------
def items_page(handle: Any, root: str, query: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The FeatureCollection answer of ``GET /collections/{id}/items`` for the request's ``query``."""
    limit = parse_limit(query.get("limit"))
    bbox = parse_bbox(query.get("bbox"))
    interval = parse_datetime(query.get("datetime"))
    state = read_token(query["token"], secret) if query.get("token") else {}
    collection_url = f"{root}/collections/{handle.id}"
    matched: int | None
    following: dict[str, Any] | None = None
    if isinstance(handle, StacApiCollection):
        resume = state.get("upstream") if state else None
        features, upstream_next, matched = handle.item_page(bbox, query.get("datetime"), limit, resume)
        features = [served_item(f, collection_url, root) for f in features]
        if upstream_next is not None:
            following = {"upstream": upstream_next}
    elif isinstance(handle, StaticCollection):
        offset = state.get("offset", 0) if state else 0
        if not isinstance(offset, int) or offset < 0:
            raise BadRequest("token holds no valid offset; start again without a token.")
        items, matched = handle.item_page(bbox, interval, limit, offset)
        features = [served_item(i, collection_url, root) for i in items]
        if offset + limit < matched:
            following = {"offset": offset + limit}
    else:
        raise NotFound(f"Collection '{handle.id}' has no item search.")
    links = [
        {"rel": "self", "href": _url(collection_url + "/items", query), "type": "application/geo+json"},
        {"rel": "root", "href": f"{root}/", "type": "application/json"},
        {"rel": "collection", "href": collection_url, "type": "application/json"},
    ]
    if following is not None:
        next_query = {**{k: v for k, v in query.items() if k != "token"}, "limit": str(limit),
                      "token": make_token(following, secret)}
        links.append({"rel": "next", "href": _url(collection_url + "/items", next_query),
                      "type": "application/geo+json", "method": "GET"})
    document: dict[str, Any] = {"type": "FeatureCollection", "features": features, "links": links}
    if matched is not None:
        document["numberMatched"] = matched
    document["numberReturned"] = len(features)
    return document


def one_item(handle: Any, item_id: str, root: str) -> dict[str, Any]:
    """The answer of ``GET /collections/{id}/items/{item_id}``."""
    collection_url = f"{root}/collections/{handle.id}"
    if isinstance(handle, (StaticCollection, StacApiCollection)):
        found = handle.item(item_id)
        if found is not None:
            return served_item(found, collection_url, root)
    raise NotFound(f"Collection '{handle.id}' has no item '{item_id}'; GET {collection_url}/items lists them.")


def served_item(item: Mapping[str, Any], collection_url: str, root: str) -> dict[str, Any]:
    """An item with this API's links. Asset hrefs stay as given where they are URLs; the files of a
    static catalog on the server's disk are linked through ``…/items/{item_id}/assets/{key}/{file name}``,
    which anybody who can read the collection can download (with HTTP range requests, so GDAL reads a
    COG over it window by window; the file name keeps its extension, which GDAL's
    ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS`` checks)."""
    served = dict(item)
    served["assets"] = {
        key: {**asset, "href": f"{collection_url}/items/{item['id']}/assets/{key}/{_file_name(asset['href'])}"}
        if _is_file(asset.get("href")) else asset
        for key, asset in (item.get("assets") or {}).items()
    }
    served["collection"] = collection_url.rsplit("/", 1)[1]
    served["links"] = [
        {"rel": "self", "href": f"{collection_url}/items/{item['id']}", "type": "application/geo+json"},
        {"rel": "parent", "href": collection_url, "type": "application/json"},
        {"rel": "collection", "href": collection_url, "type": "application/json"},
        {"rel": "root", "href": f"{root}/", "type": "application/json"},
    ]
    return served


def _file_name(href: str) -> str:
    return quote(Path(href.removeprefix("file://")).name)


def _is_file(href: Any) -> bool:
    return isinstance(href, str) and (href.startswith("/") or href.startswith("file://"))


def asset_file(handle: Any, item_id: str, key: str, name: str) -> Path:
    """The local file of an asset of a static collection's item (``NotFound`` for anything else)."""
    if isinstance(handle, StaticCollection):
        item = handle.item(item_id)
        href = ((item or {}).get("assets") or {}).get(key, {}).get("href")
        if _is_file(href):
            path = Path(str(href).removeprefix("file://"))
            if path.is_file() and path.name == name:
                return path
    raise NotFound(f"Collection '{handle.id}' has no file for asset '{key}' of item '{item_id}' on this server; "
                   f"GET /collections/{handle.id}/items/{item_id} lists the item's assets and their links.")


def _url(base: str, query: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return f"{base}?{urlencode(dict(query))}" if query else base


# --- queryables -----------------------------------------------------------------------------------
_KNOWN: dict[str, dict[str, Any]] = {
    "datetime": {"title": "Acquisition time", "type": "string", "format": "date-time"},
    "eo:cloud_cover": {"title": "Cloud cover (%)", "type": "number", "minimum": 0, "maximum": 100},
    "platform": {"title": "Platform", "type": "string"},
    "constellation": {"title": "Constellation", "type": "string"},
    "instruments": {"title": "Instruments", "type": "array", "items": {"type": "string"}},
    "gsd": {"title": "Ground sample distance (m)", "type": "number"},
}


def queryables(handle: Any, root: str) -> dict[str, Any]:
    """A JSON Schema of the item properties one can filter on: those the items (or summaries) have."""
    metadata = handle.stac_collection()
    present = set((metadata.get("summaries") or {}).keys())
    for item in handle.sample(100 if isinstance(handle, StaticCollection) else 10):
        present.update(item.get("properties") or {})
    properties: dict[str, Any] = {"datetime": dict(_KNOWN["datetime"])}
    summaries = metadata.get("summaries") or {}
    for name in sorted(present):
        if name in _KNOWN and name != "datetime":
            schema = dict(_KNOWN[name])
            if isinstance(summaries.get(name), list) and schema["type"] == "string":
                schema["enum"] = summaries[name]
            properties[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": f"{root}/collections/{handle.id}/queryables",
        "type": "object",
        "title": f"Queryables of {handle.id}",
        "properties": properties,
        "additionalProperties": True,
    }
