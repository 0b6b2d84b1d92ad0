"""STAC sources: static catalogs on disk and STAC API collections.

Both kinds are :class:`processes.core.env.CollectionHandle` objects: they give the collection's STAC
document and search its items by bounding box, time interval and properties. Static collections
read their items once and search them in memory; STAC API collections search through the API's
``/search`` endpoint with pystac-client.

pystac migrates documents to the newest extension versions when it reads them (``proj:epsg``
becomes ``proj:code``); stackstac still reads ``proj:epsg``. :func:`item_for_stacking` puts the old
field back and makes asset hrefs absolute, so the loader never has to open a file to learn its grid.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import pystac
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from processes.core.errors import CollectionNotFound, OpenEOError


class StacSourceError(OpenEOError):
    """A configured or requested STAC source cannot be read."""

    code = "StacSourceInvalid"
    status = 400


def _utc(moment: datetime) -> datetime:
    # A time without zone ("2022-06-01") is UTC, as everywhere in openEO; comparing it with the
    # zoned datetimes of items would otherwise raise TypeError.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# A time string always parses (or raises): only None gives None.
@overload
def _parse_time(value: str) -> datetime: ...
@overload
def _parse_time(value: str | None) -> datetime | None: ...
def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return _utc(pystac.utils.str_to_datetime(value))


def _item_interval(item: pystac.Item) -> tuple[datetime, datetime]:
    if item.datetime is not None:
        return _utc(item.datetime), _utc(item.datetime)
    start = _parse_time(item.properties.get("start_datetime"))
    end = _parse_time(item.properties.get("end_datetime"))
    if start is None or end is None:
        raise StacSourceError(f"STAC item '{item.id}' has neither 'datetime' nor start/end datetimes.")
    return start, end


def _footprint(item: pystac.Item) -> BaseGeometry:
    if item.geometry:
        return shape(item.geometry)
    # An item without a geometry may lack a bbox as well (STAC requires one only with a geometry).
    if item.bbox is None:
        raise StacSourceError(f"STAC item '{item.id}' has neither a geometry nor a bbox.")
    return box(*item.bbox)


def _matches_properties(item: pystac.Item, properties: Mapping[str, Any] | None) -> bool:
    if not properties:
        return True
    for name, condition in properties.items():
        if not condition(item.properties.get(name)):
            return False
    return True


class StaticCollection:
    """A collection of a static STAC catalog (``catalog.json`` or ``collection.json`` on disk)."""

    def __init__(self, collection: pystac.Collection, source: str):
        self.id = collection.id
        self.source = source
        self._collection = collection
        self._items: list[pystac.Item] | None = None
        self._lock = threading.Lock()

    def stac_collection(self) -> dict[str, Any]:
        return self._collection.to_dict(include_self_link=False, transform_hrefs=False)

    def items(self) -> list[pystac.Item]:
        with self._lock:
            if self._items is None:
                items = [item.clone() for item in self._collection.get_items(recursive=True)]
                for item in items:
                    item.make_asset_hrefs_absolute()
                self._items = sorted(items, key=lambda i: _item_interval(i)[0])
            return self._items

    def search(
        self,
        bbox: tuple[float, float, float, float] | None,
        interval: tuple[str | None, str | None] | None,
        properties: Mapping[str, Any] | None = None,
    ) -> list[pystac.Item]:
        area = box(*bbox) if bbox is not None else None
        start = _parse_time(interval[0]) if interval else None
        end = _parse_time(interval[1]) if interval else None
        found = []
        for item in self.items():
            item_start, item_end = _item_interval(item)
            if start is not None and item_end < start:
                continue
            if end is not None and item_start >= end:  # openEO intervals are left-closed
                continue
            if area is not None and not _footprint(item).intersects(area):
                continue
            if _matches_properties(item, properties):
                found.append(item)
        return found


class StacApiCollection:
    """A collection of a STAC API, given by its URL ``…/collections/{id}``."""

    def __init__(self, url: str):
        from pystac_client import Client

        self.source = url
        root_url, sep, collection_id = url.rstrip("/").rpartition("/collections/")
        if not sep or not collection_id:
            raise StacSourceError(
                f"'{url}' is not a STAC API collection URL; expected https://…/collections/<id>."
            )
        try:
            self._client = Client.open(root_url)
            collection = self._client.get_collection(collection_id)
        except Exception as exc:
            raise StacSourceError(f"Cannot open STAC API collection '{url}': {exc}") from exc
        # pystac-client answers None for a 404, and (without the collections conformance class)
        # the last collection it saw when none has the id
        if collection is None or collection.id != collection_id:
            raise StacSourceError(
                f"Cannot open STAC API collection '{url}': the API has no collection '{collection_id}'; "
                f"see {root_url}/collections for those it has."
            )
        self._collection = collection
        self.id = collection.id

    def stac_collection(self) -> dict[str, Any]:
        return self._collection.to_dict(include_self_link=False, transform_hrefs=False)

    def search(
        self,
        bbox: tuple[float, float, float, float] | None,
        interval: tuple[str | None, str | None] | None,
        properties: Mapping[str, Any] | None = None,
    ) -> list[pystac.Item]:
        datetime_arg = None
        if interval:
            datetime_arg = f"{interval[0] or '..'}/{interval[1] or '..'}"
        search = self._client.search(collections=[self.id], bbox=bbox, datetime=datetime_arg, max_items=10_000)
        items = []
        for item in search.items():
            if interval and interval[1] and _item_interval(item)[0] >= _parse_time(interval[1]):
                continue  # STAC API intervals are closed; openEO's are left-closed
            if _matches_properties(item, properties):
                items.append(item)
        return items


def open_static(path: str | Path) -> list[StaticCollection]:
    """The collections of a static ``catalog.json`` (all children) or one ``collection.json``."""
    path = Path(path)
    if not path.is_file():
        raise StacSourceError(f"STAC file '{path}' does not exist.")
    try:
        stac_object = pystac.read_file(str(path.resolve()))
    except Exception as exc:
        raise StacSourceError(f"Cannot read STAC file '{path}': {exc}") from exc
    if isinstance(stac_object, pystac.Collection):
        return [StaticCollection(stac_object, str(path))]
    if isinstance(stac_object, pystac.Catalog):
        collections = [StaticCollection(c, str(path)) for c in stac_object.get_all_collections()]
        if not collections:
            raise StacSourceError(f"STAC catalog '{path}' holds no collection.")
        return collections
    raise StacSourceError(f"'{path}' is a STAC {type(stac_object).__name__}, not a catalog or collection.")


def open_source(spec: str) -> Sequence[StaticCollection | StacApiCollection]:
    """Open one ``TERRACUBE_STAC`` entry: a file path, or a STAC API collection URL."""
    if spec.startswith(("http://", "https://")):
        if spec.endswith(".json") and "/collections/" not in spec:
            raise StacSourceError(f"Remote static catalogs are not supported yet: '{spec}'.")
        return [StacApiCollection(spec)]
    return open_static(spec)


class CollectionCatalog:
    """Collections by id, from several sources; an id offered twice is an error naming both."""

    def __init__(self, collections: Iterable[StaticCollection | StacApiCollection]):
        self._collections: dict[str, StaticCollection | StacApiCollection] = {}
        for collection in collections:
            existing = self._collections.get(collection.id)
            if existing is not None:
                raise StacSourceError(
                    f"Collection id '{collection.id}' is offered by two STAC sources: "
                    f"'{existing.source}' and '{collection.source}'. Remove one of them from TERRACUBE_STAC."
                )
            self._collections[collection.id] = collection

    def ids(self) -> list[str]:
        return sorted(self._collections)

    def get(self, collection_id: str) -> StaticCollection | StacApiCollection:
        try:
            return self._collections[collection_id]
        except KeyError:
            raise CollectionNotFound(
                f"Collection '{collection_id}' does not exist. Available collections: "
                f"{', '.join(self.ids()) or 'none'}."
            ) from None


def item_for_stacking(item: pystac.Item) -> dict[str, Any]:
    """The item as a dict stackstac can stack without opening files (see module docstring)."""
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    props = data["properties"]
    for holder in [props, *data.get("assets", {}).values()]:
        code = holder.get("proj:code")
        if code and "proj:epsg" not in holder and str(code).upper().startswith("EPSG:"):
            holder["proj:epsg"] = int(str(code).split(":")[1])
    for asset in data.get("assets", {}).values():
        asset["href"] = _absolute(asset["href"], item)
    return data


def _absolute(href: str, item: pystac.Item) -> str:
    if "://" in href or href.startswith("/"):
        return href
    return pystac.utils.make_absolute_href(href, item.get_self_href())
