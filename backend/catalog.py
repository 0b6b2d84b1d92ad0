"""The back-end's collection catalog and its openEO collection metadata.

Builds the :class:`processes.data.stac_sources.CollectionCatalog` from the settings (the demo catalog plus every
``TERRACUBE_STAC`` source) and turns each collection's STAC document into the openEO/STAC form that
``/collections`` serves: ``cube:dimensions`` (with ``axis`` on spatial dimensions), ``summaries``
with ``eo:bands``, extents and links. Metadata a source lacks is derived from its items.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pyproj

from backend.settings import Settings
from processes.data.collection_metadata import bands_from_assets, collection_bands, has_time_dimension
from processes.data.stac_items import crs_code
from processes.data.stac_sources import (
    CollectionCatalog,
    StacApiCollection,
    StacSourceError,
    StaticCollection,
    open_source,
    open_static,
)

log = logging.getLogger(__name__)

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"


def build_catalog(settings: Settings) -> CollectionCatalog:
    """All collections the back-end serves; raises ``StacSourceError`` naming a bad or clashing source."""
    collections: list[StaticCollection | StacApiCollection] = []
    if settings.demo and settings.demo_catalog.is_file():
        collections.extend(open_static(settings.demo_catalog, settings.stac_index_dir))
    elif settings.demo:
        log.warning("demo data not found at %s; run `terracube demo` to generate it", settings.demo_catalog)
    for source in settings.stac:
        try:
            collections.extend(open_source(source, settings.stac_index_dir))
        except StacSourceError as exc:
            raise StacSourceError(f"TERRACUBE_STAC entry '{source}': {exc.message}") from None
    return CollectionCatalog(collections)


def openeo_collection(handle: Any, base_url: str, host: str = "Terracube") -> dict[str, Any]:
    """The full openEO collection document (STAC collection + datacube extension).

    Every collection names its ``providers`` (the source's own, then this back-end as ``host``, under
    the back-end's title ``host``) and says ``deprecated: false`` unless its source says otherwise:
    a federation's aggregator merges both across back-ends that offer the same collection.
    """
    doc = copy.deepcopy(handle.stac_collection())
    doc["stac_version"] = doc.get("stac_version", "1.0.0")
    doc["type"] = "Collection"
    doc.setdefault("description", doc.get("title") or handle.id)
    doc.setdefault("license", "proprietary")
    doc.setdefault("deprecated", False)
    providers = list(doc.get("providers") or [])
    if not any("host" in (p.get("roles") or []) for p in providers):
        providers.append({"name": host, "roles": ["host"], "url": f"{base_url}/",
                          "description": "The openEO back-end that serves this collection."})
    doc["providers"] = providers
    extensions = list(doc.get("stac_extensions") or [])
    if not any("datacube" in e for e in extensions):
        extensions.append(DATACUBE_EXTENSION)
    doc["stac_extensions"] = extensions
    doc["cube:dimensions"] = _cube_dimensions(handle, doc)
    summaries = doc.setdefault("summaries", {})
    if "eo:bands" not in summaries:
        bands = collection_bands(doc)
        if bands:
            summaries["eo:bands"] = [{"name": name, **info["meta"]} for name, info in bands.items()]
    doc["links"] = _links(doc.get("links") or [], handle.id, base_url)
    return doc


def _cube_dimensions(handle: Any, doc: dict[str, Any]) -> dict[str, Any]:
    dims = copy.deepcopy(doc.get("cube:dimensions") or {})
    if not dims:
        dims = _derive_dimensions(handle, doc)
    for name, dim in dims.items():
        if dim.get("type") == "spatial" and "axis" not in dim:
            dim["axis"] = name if name in ("x", "y") else ("x" if name.lower() in ("lon", "longitude") else "y")
    return dims


def _derive_dimensions(handle: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """``cube:dimensions`` from the extents and the items, for sources that lack it.

    A static collection's items give the CRS and pixel size (when they share one), its bands when the
    collection declares none, and whether it has a time dimension at all (items without ``datetime``:
    none, see :mod:`processes.data.collection_metadata`).
    """
    bbox = (doc.get("extent", {}).get("spatial", {}).get("bbox") or [[-180, -90, 180, 90]])[0]
    interval = (doc.get("extent", {}).get("temporal", {}).get("interval") or [[None, None]])[0]
    items = handle.sample(200) if isinstance(handle, StaticCollection) else []
    epsg = 4326
    if items:
        code = crs_code(items[0])
        if code:
            epsg = pyproj.CRS.from_user_input(code).to_epsg() or 4326
    x_extent, y_extent = [bbox[0], bbox[2]], [bbox[1], bbox[3]]
    if epsg != 4326:
        transformer = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
        west, south, east, north = transformer.transform_bounds(*bbox[:4])
        x_extent, y_extent = [west, east], [south, north]
    dims: dict[str, Any] = {
        "x": {"type": "spatial", "axis": "x", "extent": x_extent, "reference_system": epsg},
        "y": {"type": "spatial", "axis": "y", "extent": y_extent, "reference_system": epsg},
    }
    step = _common_pixel_size(items)
    if step is not None:
        dims["x"]["step"] = dims["y"]["step"] = step
    if not items or has_time_dimension(doc, items):
        dims["t"] = {"type": "temporal", "extent": interval, "step": None}
    bands = collection_bands(doc) or bands_from_assets(items)
    if bands:
        dims["bands"] = {"type": "bands", "values": list(bands)}
    return dims


def _common_pixel_size(items: list) -> float | None:
    """The pixel size all items' grids share (``proj:transform``), or None when they differ or lack it."""
    sizes: set[float] = set()
    for item in items[:200]:
        transforms = [(item.get("properties") or {}).get("proj:transform")]
        transforms += [asset.get("proj:transform") for asset in (item.get("assets") or {}).values()]
        sizes.update(round(abs(float(t[0])), 12) for t in transforms if t)
    if len(sizes) != 1:
        return None
    return sizes.pop()


def _links(links: list[dict[str, Any]], collection_id: str, base_url: str) -> list[dict[str, Any]]:
    keep = [
        link
        for link in links
        if link.get("rel") not in ("self", "root", "parent", "item", "items", "child")
        and str(link.get("href", "")).startswith(("http://", "https://"))
    ]
    return [
        {"rel": "self", "href": f"{base_url}/collections/{collection_id}", "type": "application/json"},
        {"rel": "root", "href": f"{base_url}/", "type": "application/json"},
        {"rel": "parent", "href": f"{base_url}/collections", "type": "application/json"},
        *keep,
    ]
