"""STAC items as the loaders see them: plain STAC item dicts (the JSON), their time interval, footprint,
asset fields and properties, and the source errors.

Items travel through the loading pipeline as the dicts their JSON parses to, never as pystac objects:
building a pystac Item (and turning it back into a dict for stackstac) costs more than everything else
a search does, and a year of hourly items (thousands) must plan in well under a second. Shared by the
static collections (:mod:`processes.data.stac_sources`), the STAC API collections
(:mod:`processes.data.stac_api`) and the loader (:mod:`processes.data.load`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, overload

import pystac
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from processes.core.errors import OpenEOError

Item = dict[str, Any]
"""A STAC item: the dict its JSON parses to."""

KEPT_PROPERTIES = ("datetime", "start_datetime", "end_datetime")
"""Properties every slimmed item keeps (besides all ``proj:`` fields): what the loader reads."""


class StacSourceError(OpenEOError):
    """A configured or requested STAC source cannot be read."""

    code = "StacSourceInvalid"
    status = 400


class StacApiError(OpenEOError):
    """A STAC API failed to answer a search (an error status, a time-out, an unreachable host)."""

    code = "StacApiUnavailable"
    status = 502


BBox = tuple[float, float, float, float]
Interval = tuple[str | None, str | None]


class ItemSource:
    """What both kinds of collection share: :meth:`search` is :meth:`iter_items` as a list."""

    def iter_items(self, bbox: BBox | None, interval: Interval | None,
                   properties: Mapping[str, Any] | None = None) -> Iterator[Item]:
        """The items intersecting ``bbox`` (WGS84) whose interval meets ``[start, end)`` and that pass the
        ``{name: condition}`` property filters, as plain dicts with absolute asset hrefs."""
        raise NotImplementedError

    def search(self, bbox: BBox | None, interval: Interval | None,
               properties: Mapping[str, Any] | None = None) -> list[Item]:
        return list(self.iter_items(bbox, interval, properties))


def read_json_object(path: str) -> dict[str, Any]:
    """The JSON object in the file at ``path``; a ``StacSourceError`` saying what is wrong otherwise."""
    try:
        with open(path, "rb") as file:
            document = json.loads(file.read())
    except FileNotFoundError:
        raise StacSourceError(f"STAC file '{path}' does not exist.") from None
    except (OSError, ValueError) as exc:
        raise StacSourceError(f"Cannot read STAC file '{path}': {exc}") from None
    if not isinstance(document, dict):
        raise StacSourceError(f"STAC file '{path}' does not hold a JSON object.")
    return document


def utc(moment: datetime) -> datetime:
    # A time without zone ("2022-06-01") is UTC, as everywhere in openEO; comparing it with the
    # zoned datetimes of items would otherwise raise TypeError.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# A time string always parses (or raises): only None gives None.
@overload
def parse_time(value: str) -> datetime: ...
@overload
def parse_time(value: str | None) -> datetime | None: ...
def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))  # RFC 3339 as STAC writes it, ten times faster than pystac's
    except ValueError:
        return utc(pystac.utils.str_to_datetime(value))


def item_id(item: Mapping[str, Any]) -> str:
    return str(item.get("id", ""))


def item_datetime(item: Mapping[str, Any]) -> datetime | None:
    """The item's ``datetime``, or None (an item of a validity range, or without time)."""
    value = (item.get("properties") or {}).get("datetime")
    return parse_time(value) if value else None


def item_interval(item: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """``(start, end)`` of an item: its datetime twice, or its start/end datetimes."""
    props = item.get("properties") or {}
    if props.get("datetime"):
        moment = parse_time(props["datetime"])
        return moment, moment
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if not start or not end:
        raise StacSourceError(f"STAC item '{item_id(item)}' has neither 'datetime' nor start/end datetimes.")
    return parse_time(start), parse_time(end)


def footprint(item: Mapping[str, Any]) -> BaseGeometry:
    if item.get("geometry"):
        return shape(item["geometry"])
    # An item without a geometry may lack a bbox as well (STAC requires one only with a geometry).
    if not item.get("bbox"):
        raise StacSourceError(f"STAC item '{item_id(item)}' has neither a geometry nor a bbox.")
    bbox = item["bbox"]
    return box(*bbox) if len(bbox) == 4 else box(bbox[0], bbox[1], bbox[3], bbox[4])


def asset_field(item: Mapping[str, Any], key: str, name: str) -> Any:
    """A field of the item's asset ``key``, else the item's property of that name (STAC allows both)."""
    asset = (item.get("assets") or {}).get(key) or {}
    value = asset.get(name)
    return value if value is not None else (item.get("properties") or {}).get(name)


def crs_code(item: Mapping[str, Any]) -> str | None:
    """The item's CRS as ``proj:code`` (or from the older ``proj:epsg``), or None."""
    props = item.get("properties") or {}
    return props.get("proj:code") or (f"EPSG:{props['proj:epsg']}" if props.get("proj:epsg") else None)


def matches_properties(item: Mapping[str, Any], properties: Mapping[str, Any] | None) -> bool:
    """Whether the item passes every ``{name: condition(value) -> bool}``."""
    if not properties:
        return True
    props = item.get("properties") or {}
    return all(condition(props.get(name)) for name, condition in properties.items())


def absolute_hrefs(item: Item, base: str) -> Item:
    """The item with its asset hrefs made absolute against ``base`` (the item file's path or URL), in place."""
    for asset in (item.get("assets") or {}).values():
        href = asset.get("href")
        if isinstance(href, str) and "://" not in href and not href.startswith("/"):
            if "://" in base:
                asset["href"] = pystac.utils.make_absolute_href(href, base)
            else:
                asset["href"] = posixpath.normpath(posixpath.join(posixpath.dirname(base), href))
    return item


def for_stacking(item: Mapping[str, Any], assets: Iterable[str] | None = None,
                 shared: dict[Any, Any] | None = None) -> Item:
    """A copy of the item that stackstac (and the direct reader) can stack without opening a file.

    stackstac reads ``proj:epsg``, which newer items replace by ``proj:code``: the old field is put back
    on the item and its assets. With ``assets``, the copy is slimmed to what the loader needs: id, bbox,
    time, ``proj:`` fields and those assets — a year of whole items (every asset, every property, the
    geometry) takes hundreds of megabytes, slimmed a few kilobytes each. Values equal across items (the
    grid of a tile: ``proj:shape``, ``proj:transform``; media types, roles) are then held once, in
    ``shared`` (one dict for all items of a load): they are read, never changed.
    """
    props = item.get("properties") or {}
    all_assets = item.get("assets") or {}
    if assets is None:
        copied: Item = {**item, "properties": dict(props),
                        "assets": {key: dict(asset) for key, asset in all_assets.items()}}
    else:
        held = shared if shared is not None else {}
        copied = {
            "type": "Feature",
            "id": item.get("id"),
            "bbox": _held(item.get("bbox"), held),
            "properties": {k: _held(v, held) for k, v in props.items()
                           if k in KEPT_PROPERTIES or k.startswith("proj:")},
            "assets": {key: {k: _held(v, held) for k, v in all_assets[key].items()}
                       for key in assets if key in all_assets},
        }
    for holder in [copied["properties"], *copied["assets"].values()]:
        code = holder.get("proj:code")
        if code and "proj:epsg" not in holder and str(code).upper().startswith("EPSG:"):
            holder["proj:epsg"] = int(str(code).split(":")[1])
    return copied


def _held(value: Any, held: dict[Any, Any]) -> Any:
    """``value``, or the equal value seen before (lists of numbers and strings; see :func:`for_stacking`)."""
    if isinstance(value, list) and len(value) <= 16 and all(type(v) in (int, float, str) for v in value):
        return held.setdefault((list, *value), value)
    if isinstance(value, str) and len(value) <= 64:
        return held.setdefault(value, value)
    return value
