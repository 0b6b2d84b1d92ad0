"""STAC sources: static catalogs on disk and STAC API collections.

Both kinds are :class:`processes.core.env.CollectionHandle` objects: they give the collection's STAC
document and search its items by bounding box, time interval and properties. Static collections
read their items once and search them in memory; STAC API collections (:mod:`processes.data.stac_api`)
search through the API's ``/search`` endpoint, telling it the property filters it understands
(:mod:`processes.data.property_filters`).

pystac migrates documents to the newest extension versions when it reads them (``proj:epsg``
becomes ``proj:code``); stackstac still reads ``proj:epsg``. :func:`item_for_stacking` puts the old
field back and makes asset hrefs absolute, so the loader never has to open a file to learn its grid.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box

from processes.core.errors import CollectionNotFound
from processes.data.stac_api import StacApiCollection
from processes.data.stac_items import (
    StacApiError,
    StacSourceError,
    footprint,
    item_interval,
    matches_properties,
    parse_time,
)

__all__ = ["CollectionCatalog", "StacApiCollection", "StacApiError", "StacSourceError", "StaticCollection",
           "item_for_stacking", "open_source", "open_static"]


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
                self._items = sorted(items, key=lambda i: item_interval(i)[0])
            return self._items

    def search(
        self,
        bbox: tuple[float, float, float, float] | None,
        interval: tuple[str | None, str | None] | None,
        properties: Mapping[str, Any] | None = None,
    ) -> list[pystac.Item]:
        area = box(*bbox) if bbox is not None else None
        start = parse_time(interval[0]) if interval else None
        end = parse_time(interval[1]) if interval else None
        found = []
        for item in self.items():
            item_start, item_end = item_interval(item)
            if start is not None and item_end < start:
                continue
            if end is not None and item_start >= end:  # openEO intervals are left-closed
                continue
            if area is not None and not footprint(item).intersects(area):
                continue
            if matches_properties(item, properties):
                found.append(item)
        return found

    def item_page(
        self,
        bbox: tuple[float, float, float, float] | None,
        datetime: tuple[datetime, datetime] | None,
        limit: int,
        offset: int = 0,
    ) -> tuple[list[pystac.Item], int]:
        """Items ``offset`` to ``offset + limit`` of those intersecting ``bbox`` whose time interval
        meets the closed interval ``datetime`` (STAC API semantics), and how many match in all."""
        area = box(*bbox) if bbox is not None else None
        matched = []
        for item in self.items():
            item_start, item_end = item_interval(item)
            if datetime is not None and (item_end < datetime[0] or item_start > datetime[1]):
                continue
            if area is not None and not footprint(item).intersects(area):
                continue
            matched.append(item)
        return matched[offset : offset + limit], len(matched)


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
