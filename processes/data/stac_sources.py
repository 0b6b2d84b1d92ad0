"""STAC sources: static catalogs on disk and STAC API collections.

Both kinds are :class:`processes.core.env.CollectionHandle` objects: they give the collection's STAC
document and search its items by bounding box, time interval and properties, as plain STAC item
dicts (:mod:`processes.data.stac_items`). Static collections search an index of their items
(:mod:`processes.data.item_index`) and read only the files of the items found; STAC API collections
(:mod:`processes.data.stac_api`) search through the API's ``/search`` endpoint, telling it the property
filters it understands (:mod:`processes.data.property_filters`).

A static catalog on disk is walked here, following its ``child`` and ``item`` links as JSON, not with
pystac: pystac resolves every link of a collection against all the others (six and a half minutes
for the item links of a collection of 100,000 items). Items of another origin (``load_stac`` of a
remote catalog or a single item) are held in memory, read by pystac.

stackstac reads ``proj:epsg``, which newer items replace by ``proj:code``: :func:`item_for_stacking`
puts the old field back, so the loader never has to open a file to learn its grid.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box

from processes.core.errors import CollectionNotFound
from processes.data.item_index import ItemIndex, index_file_for, microseconds
from processes.data.stac_api import StacApiCollection
from processes.data.stac_items import (
    BBox,
    Interval,
    Item,
    ItemSource,
    StacApiError,
    StacSourceError,
    for_stacking,
    matches_properties,
    parse_time,
    read_json_object,
)

__all__ = ["CollectionCatalog", "StacApiCollection", "StacApiError", "StacSourceError", "StaticCollection",
           "item_for_stacking", "open_source", "open_static"]

ITEM_LINK_RELS = ("item", "items")


class StaticCollection(ItemSource):
    """A collection whose items are all known here: a static catalog on disk, or items held in memory."""

    def __init__(self, document: Mapping[str, Any], index: ItemIndex, source: str):
        self.id = str(document["id"])
        self.source = source
        self._document = dict(document)
        self._index = index

    @classmethod
    def of_pystac(cls, collection: pystac.Collection, source: str) -> StaticCollection:
        """A collection built in memory with pystac (``load_stac`` of a remote catalog, an item, results)."""
        items = []
        for item in collection.get_items(recursive=True):
            data = item.to_dict(include_self_link=False, transform_hrefs=False)
            if not data.get("bbox") and item.bbox:
                data["bbox"] = list(item.bbox)  # pystac writes no bbox for an item without geometry
            for key, asset in item.assets.items():
                data["assets"][key]["href"] = asset.get_absolute_href() or asset.href
            items.append(data)
        document = collection.to_dict(include_self_link=False, transform_hrefs=False)
        document["links"] = [link for link in document.get("links", []) if link.get("rel") not in ITEM_LINK_RELS]
        return cls(document, ItemIndex.of_items(items), source)

    def __len__(self) -> int:
        return len(self._index)

    def stac_collection(self) -> Mapping[str, Any]:
        return self._document

    def sample(self, count: int) -> list[Item]:
        """The first ``count`` items in time order (for metadata the collection does not declare)."""
        return list(self._index.items(range(min(count, len(self._index)))))

    def iter_items(
        self,
        bbox: BBox | None,
        interval: Interval | None,
        properties: Mapping[str, Any] | None = None,
    ) -> Iterator[Item]:
        """The items intersecting ``bbox`` (WGS84) whose interval meets ``[start, end)`` and that pass the
        property filters, in time order; only their files are read."""
        area = box(*bbox) if bbox is not None else None
        start = microseconds(parse_time(interval[0])) if interval and interval[0] else None
        end = microseconds(parse_time(interval[1])) if interval and interval[1] else None
        for item in self._index.items(self._index.matching(area, start, end)):
            if matches_properties(item, properties):
                yield item

    def item_page(
        self,
        bbox: BBox | None,
        datetime: tuple[datetime, datetime] | None,
        limit: int,
        offset: int = 0,
    ) -> tuple[list[Item], int]:
        """Items ``offset`` to ``offset + limit`` of those intersecting ``bbox`` whose time interval
        meets the closed interval ``datetime`` (STAC API semantics), and how many match in all."""
        area = box(*bbox) if bbox is not None else None
        start, end = (microseconds(datetime[0]), microseconds(datetime[1])) if datetime is not None else (None, None)
        positions = self._index.matching(area, start, end, closed=True)
        return list(self._index.items(positions[offset: offset + limit])), int(positions.size)

    def item(self, item_id: str) -> Item | None:
        position = self._index.position(item_id)
        return None if position is None else self._index.item(position)


# --- static catalogs on disk ---------------------------------------------------------------------------
def open_static(path: str | Path, index_dir: Path | None = None) -> list[StaticCollection]:
    """The collections of a static ``catalog.json`` (all children) or one ``collection.json``.

    ``index_dir`` keeps the item index of each collection between runs (see :mod:`processes.data.item_index`).
    """
    path = Path(path)
    if not path.is_file():
        raise StacSourceError(f"STAC file '{path}' does not exist.")
    root = str(path.resolve())
    document = read_json_object(root)
    kind = document.get("type")
    if kind == "Collection":
        found = [(root, document)]
    elif kind == "Catalog":
        found = list(_collections_below(root, document, seen={root}))
        if not found:
            raise StacSourceError(f"STAC catalog '{path}' holds no collection.")
    else:
        what = {"Feature": "Item", None: "document without type"}.get(kind, kind)
        raise StacSourceError(f"'{path}' is a STAC {what}, not a catalog or collection.")
    collections = []
    for collection_path, collection in found:
        index_file = index_file_for(Path(collection_path), index_dir) if index_dir is not None else None
        index = ItemIndex.of_files(list(_item_files(collection_path, collection, seen={collection_path})), index_file)
        metadata = dict(collection)
        metadata["links"] = [link for link in collection.get("links", []) if link.get("rel") not in ITEM_LINK_RELS]
        collections.append(StaticCollection(metadata, index, str(path)))
    return collections


def _linked(base: str, document: Mapping[str, Any], rels: Sequence[str]) -> Iterator[str]:
    """Paths of the links of ``document`` (a file at ``base``) with one of ``rels``."""
    for link in document.get("links") or []:
        if not isinstance(link, Mapping) or link.get("rel") not in rels or not isinstance(link.get("href"), str):
            continue
        href = link["href"].removeprefix("file://")
        if "://" in href:
            raise StacSourceError(
                f"'{base}' links '{href}': a static catalog on disk must link its children and items as files."
            )
        yield href if href.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(base), href))


def _collections_below(path: str, catalog: Mapping[str, Any], seen: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The collections a catalog links as children, at any depth, and those nested in collections."""
    for child_path in _linked(path, catalog, ("child",)):
        if child_path in seen:
            continue
        seen.add(child_path)
        child = read_json_object(child_path)
        if child.get("type") == "Collection":
            yield child_path, child
        yield from _collections_below(child_path, child, seen)


def _item_files(path: str, document: Mapping[str, Any], seen: set[str]) -> Iterator[str]:
    """The item files of a collection: its item links and those of its child catalogs (not collections)."""
    yield from _linked(path, document, ITEM_LINK_RELS)
    for child_path in _linked(path, document, ("child",)):
        if child_path in seen:
            continue
        seen.add(child_path)
        child = read_json_object(child_path)
        if child.get("type") != "Collection":
            yield from _item_files(child_path, child, seen)


def open_source(spec: str, index_dir: Path | None = None) -> Sequence[StaticCollection | StacApiCollection]:
    """Open one ``TERRACUBE_STAC`` entry: a file path (item indexes kept in ``index_dir``), or a STAC API
    collection URL."""
    if spec.startswith(("http://", "https://")):
        if spec.endswith(".json") and "/collections/" not in spec:
            raise StacSourceError(f"Remote static catalogs are not supported yet: '{spec}'.")
        return [StacApiCollection(spec)]
    return open_static(spec, index_dir)


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


def item_for_stacking(item: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the item that stackstac can stack without opening files (see module docstring)."""
    return for_stacking(item)
