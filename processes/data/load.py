"""Loading data: ``load_collection`` from the back-end's STAC catalog.

The pipeline: check the arguments → search the collection's items (bbox in WGS84, left-closed time
interval, property filters) → stack them lazily with stackstac on the collection's native grid
(pixel-centre coordinates, float32 with NaN as nodata, digital numbers as stored: no rescaling) →
mosaic items of the same day → cut to the pixels whose centres lie in the extent → openEO
dimension names and types. Nothing is read from the rasters here; reading happens per chunk when a
result is written.

Collections without a time dimension (elevation models: items with a validity range but no
``datetime``; see :mod:`processes.data.collection_metadata`) go the same way with every item on one
nominal date: their tiles become one mosaic, a cube of ``(bands, y, x)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import pystac
import stackstac
import xarray as xr

from processes.core.env import CollectionHandle, ProcessEnv
from processes.core.errors import NoDataAvailable, ProcessGraphComplexity, parameter_invalid
from processes.data.cog_reader import AlignedReader
from processes.data.collection_metadata import (
    bands_from_assets,
    collection_bands,
    has_time_dimension,
    select_bands,
)
from processes.data.direct_mosaic import direct_mosaic, direct_stack
from processes.data.plan import plan_load, view_grid_resolution
from processes.data.property_filters import property_filter
from processes.data.stac_items import Item, asset_field, crs_code, for_stacking
from processes.data.stac_sources import StacApiCollection, StaticCollection
from processes.data.stack_blocks import block_chunks, mosaic_same_day, pixel_edges, spatial_chunks
from processes.model.geometry import (
    WGS84,
    BoundingBox,
    bbox_of,
    crs_of,
    epsg_of,
    geojson_geometries,
    geometry_mask,
    is_geojson,
    parse_bbox,
    polygons_only,
    reproject_geometries,
)
from processes.model.intervals import parse_interval
from processes.model.raster_cube import BANDS_ATTR, DimType, new_cube

TIMELESS_STACKING_DATE = "2000-01-01T00:00:00Z"
"""The date all items of a collection without time dimension are stacked on (then dropped)."""


def load_collection(
    id: str,
    spatial_extent: Any,
    temporal_extent: Any,
    bands: list[str] | None = None,
    properties: Mapping[str, Any] | None = None,
    *,
    env: ProcessEnv,
) -> xr.DataArray:
    collection = env.collections.get(id)
    return stack_collection(
        collection, "load_collection", spatial_extent, temporal_extent, bands, properties, env=env,
        hint=f"Check the extents against GET /collections/{id}.",
    )


def _pixel_size(cube: xr.DataArray) -> tuple[float, float] | None:
    try:
        return cube.rio.resolution()
    except Exception:  # rioxarray can't tell from a single pixel without a stored transform
        return None


def stack_collection(
    collection: CollectionHandle,
    process: str,
    spatial_extent: Any,
    temporal_extent: Any,
    bands: list[str] | None,
    properties: Mapping[str, Any] | None,
    *,
    env: ProcessEnv,
    hint: str = "",
) -> xr.DataArray:
    """The lazy cube of a collection's items within the extents (the pipeline of the module docstring)."""
    id = collection.id
    metadata = collection.stac_collection()
    band_table = collection_bands(metadata)
    if not band_table:
        band_table = bands_from_assets(collection.sample(20))
    selected = select_bands(id, bands, band_table, process)
    assets = [band_table[b]["asset"] for b in selected]

    bbox, polygons = _spatial_filter(spatial_extent, process)
    interval = parse_interval(temporal_extent, process, "temporal_extent")
    conditions = _property_conditions(properties, process)

    search_bbox = bbox.to_crs(WGS84).bounds if bbox is not None else None
    items: list[Item] = []
    shared: dict[Any, Any] = {}
    for item in collection.iter_items(search_bbox, interval, conditions):
        items.append(for_stacking(item, assets, shared))  # slimmed: whole, a year of items takes hundreds of MB
        if env.limits.max_items is not None and len(items) > env.limits.max_items:
            raise ProcessGraphComplexity(
                f"The request would stack more than {env.limits.max_items} items of '{id}', which "
                f"{env.limits.scope} allows at most. Narrow the extents."
            )
    if not items:
        raise NoDataAvailable(
            f"No data in collection '{id}' for the requested extent"
            f"{' ' + _describe_extent(bbox, interval)}. {hint}".rstrip()
        )

    crs = _native_crs(metadata, items)
    native_resolution = _resolution(items, assets, metadata)
    resolution = view_grid_resolution(native_resolution, crs, env.view_resolution)
    # the assets' own grid, also at native resolution: a DEM tile's corner is rarely a multiple of its pixel size
    anchor = _grid_corner(items, assets, native_resolution)
    bounds = None
    native_geoms = reproject_geometries(polygons, WGS84, crs) if polygons is not None else None
    if bbox is not None:
        # for polygons, the bbox of the reprojected polygons is tighter than the reprojected bbox
        native = bbox_of(native_geoms, crs) if native_geoms is not None else bbox.to_crs(crs)
        bounds = pixel_edges(native, resolution, anchor)
    temporal = has_time_dimension(metadata, items)
    plan = plan_load(id, items, assets, crs, resolution, bounds, env.limits.max_pixels, env.limits.scope,
                     env.limits.way_out, temporal=temporal)
    items = plan.items

    stacking = items
    if not temporal:
        # One surface (an elevation model): every item on the same nominal date, so that the same-day
        # mosaic joins the tiles, the earliest item winning where they overlap; the date is dropped below.
        stacking = [{**item, "properties": {**item["properties"], "datetime": TIMELESS_STACKING_DATE}}
                    for item in items]
    chunks = block_chunks(items, len(assets), spatial_chunks(items, assets, resolution, bounds), temporal=temporal)
    epsg = epsg_of(crs)
    options = dict(assets=assets, epsg=epsg, resolution=resolution, bounds=bounds,
                   snap_bounds=bounds is None, xy_coords="center", dtype="float32", fill_value=np.float32(np.nan),
                   rescale=False, properties=False, band_coords=False, reader=AlignedReader)
    direct = direct_stack(stacking, assets, epsg, resolution, bounds, chunks) if bounds else None
    if direct is not None:
        stacked = direct
    else:
        try:
            stacked = stackstac.stack(stacking, chunksize=chunks, **options)
        except ValueError:
            # stackstac drops items whose assets miss the bounds, so the day blocks computed from the
            # search results may not add up: then one item per block (the mosaic copes with both)
            chunks = (1, *chunks[1:])
            stacked = stackstac.stack(stacking, chunksize=chunks, **options)
        direct = direct_mosaic(stacked, stacking, assets, epsg, resolution, chunks)
        stacked = direct if direct is not None else mosaic_same_day(stacked)
    if bbox is not None and not _centres_inside(stacked, native):
        stacked = stacked.sel(x=slice(native.west, native.east), y=slice(native.north, native.south))
    if stacked.sizes["x"] == 0 or stacked.sizes["y"] == 0:
        raise NoDataAvailable(
            f"The spatial extent selects no pixel of collection '{id}': it is smaller than a pixel."
        )

    dims: dict[str, tuple[DimType, Any]] = {
        "t": ("temporal", stacked["time"].values),
        "bands": ("bands", selected),
        "y": ("spatial", stacked["y"].values),
        "x": ("spatial", stacked["x"].values),
    }
    if not temporal:
        del dims["t"]
        stacked = stacked.isel(time=0)
    cube = new_cube(
        stacked.data,
        dims,
        crs=crs,
        name=None,  # values are named by what computes them (ndvi), else "data": never after the collection
        coord_attrs={"bands": {BANDS_ATTR: {b: dict(band_table[b]["meta"]) for b in selected}}},
    )
    if native_geoms is not None:
        mask = geometry_mask(native_geoms, cube["y"].values, cube["x"].values, cube.data.chunks[-2:],
                             resolution=_pixel_size(cube))
        cube = cube.where(xr.DataArray(mask, dims=("y", "x")))
    env.loads.append({"collection": id, "items": len(items), "values": int(cube.size), "shape": dict(cube.sizes)})
    return cube


def load_stac(
    url: str,
    spatial_extent: Any = None,
    temporal_extent: Any = None,
    bands: list[str] | None = None,
    properties: Mapping[str, Any] | None = None,
    *,
    env: ProcessEnv,
) -> xr.DataArray:
    """Load from any STAC resource over HTTP(S): a static catalog, collection or item, or a STAC API collection.

    Local paths are refused: they would let a user read files of the server.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise parameter_invalid(
            "load_stac", "url", f"'{url}' is not an http(s) URL; load_stac reads STAC documents over HTTP(S)."
        )
    collection = open_stac_url(url)
    return stack_collection(collection, "load_stac", spatial_extent, temporal_extent, bands, properties, env=env)


def open_stac_url(url: str) -> CollectionHandle:
    """The STAC resource at ``url`` as one collection handle."""
    if "/collections/" in url and not url.endswith(".json") and "/items/" not in url:
        return StacApiCollection(url)
    try:
        document = pystac.read_file(url)
    except Exception as exc:
        raise parameter_invalid("load_stac", "url", f"cannot read a STAC document at '{url}': {exc}") from None
    if isinstance(document, pystac.Collection):
        if next(iter(document.get_items()), None) is None and document.assets:
            return StaticCollection.of_pystac(_collection_of_assets(document, url), url)
        return StaticCollection.of_pystac(document, url)
    if isinstance(document, pystac.Item):
        items = [document]
    elif isinstance(document, pystac.Catalog):
        items = list(document.get_items(recursive=True))
    else:
        raise parameter_invalid("load_stac", "url", f"'{url}' is a STAC {type(document).__name__}, not loadable.")
    if not items:
        raise NoDataAvailable(f"The STAC resource '{url}' holds no items.")
    open_interval: list[list[datetime | None]] = [[None, None]]
    holder = pystac.Collection(
        id=items[0].collection_id or document.id,
        description=f"Items of {url}",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(items[0].bbox or [-180, -90, 180, 90])]),
            pystac.TemporalExtent(open_interval),
        ),
    )
    for item in items:
        clone = item.clone()
        if item.get_self_href():
            clone.make_asset_hrefs_absolute()  # in place (pystac types its result as Assets, not Item)
        holder.add_item(clone)
    return StaticCollection.of_pystac(holder, url)


def _collection_of_assets(document: pystac.Collection, url: str) -> pystac.Collection:
    """openEO batch results: a Collection whose assets are the files. One item per (single-band) asset."""
    holder = pystac.Collection(id=document.id, description=document.description, extent=document.extent)
    fallback_time = document.extent.temporal.intervals[0][0]
    band_names = set()
    for key, asset in document.assets.items():
        fields = asset.extra_fields
        bands = fields.get("eo:bands") or [{}]
        if len(bands) != 1 or not fields.get("proj:transform"):
            raise parameter_invalid(
                "load_stac", "url",
                f"asset '{key}' of '{url}' holds {len(bands)} bands or no proj:transform; only single-band "
                "assets with projection metadata can be loaded from collection-level assets.",
            )
        name = bands[0].get("name") or "result"
        band_names.add(name)
        when = fields.get("datetime")
        stamp = pystac.utils.str_to_datetime(when) if when else fallback_time
        west, south, east, north = fields["proj:bbox"]
        item = pystac.Item(
            id=key,
            geometry=None,
            bbox=list(document.extent.spatial.bboxes[0]),
            datetime=stamp,
            properties={"proj:epsg": fields.get("proj:epsg"), "proj:shape": fields.get("proj:shape"),
                        "proj:transform": fields.get("proj:transform"), "proj:bbox": [west, south, east, north]},
        )
        item.add_asset(name, pystac.Asset(href=pystac.utils.make_absolute_href(asset.href, url),
                                          media_type=asset.media_type, roles=["data"],
                                          extra_fields={"eo:bands": bands}))
        holder.add_item(item)
    holder.summaries = pystac.Summaries({"eo:bands": [{"name": n} for n in sorted(band_names)]})
    holder.extra_fields["item_assets"] = {n: {"eo:bands": [{"name": n}]} for n in band_names}
    return holder


def _native_crs(metadata: Mapping[str, Any], items: list[Item]) -> pyproj.CRS:
    dims = metadata.get("cube:dimensions") or {}
    for dim in dims.values():
        if dim.get("type") == "spatial" and dim.get("reference_system") is not None:
            ref = dim["reference_system"]
            if not isinstance(ref, dict):
                return crs_of(ref)
    codes = [code for code in map(crs_code, items) if code]
    if not codes:
        return WGS84
    most_common = pd.Series(codes).value_counts().index[0]
    return crs_of(most_common)


def _resolution(items: list[Item], assets: list[str], metadata: Mapping[str, Any]) -> float:
    """The finest pixel size among the requested assets (all bands are stacked on that grid)."""
    sizes = []
    for item in items[:50]:
        for key in assets:
            transform = asset_field(item, key, "proj:transform")
            if transform:
                sizes.append(abs(float(transform[0])))
    if sizes:
        return min(sizes)
    dims = metadata.get("cube:dimensions") or {}
    steps = [d.get("step") for d in dims.values() if d.get("type") == "spatial" and d.get("step")]
    if steps:
        return float(min(steps))
    raise parameter_invalid(
        "load_collection", "id", "the collection's items carry no proj:transform and no cube:dimensions step."
    )


def _centres_inside(stacked: xr.DataArray, box: BoundingBox) -> bool:
    """Whether every pixel centre lies in ``box`` already (then the cut is a no-op, and costs more than a
    map tile's read)."""
    x, y = stacked["x"].values, stacked["y"].values
    return bool(x.size and y.size and box.west <= x.min() and x.max() <= box.east
                and box.south <= y.min() and y.max() <= box.north)


def _grid_corner(items: list[Item], assets: list[str], resolution: float) -> tuple[float, float]:
    """The corner of the first asset on the native grid (a coarser grid anchored there lines up with its
    overviews), else the origin."""
    for item in items[:50]:
        for key in assets:
            transform = asset_field(item, key, "proj:transform")
            if transform and np.isclose(abs(float(transform[0])), resolution):
                return float(transform[2]), float(transform[5])
    return 0.0, 0.0


# --- arguments -----------------------------------------------------------------------------------
def _spatial_filter(extent: Any, process: str) -> tuple[BoundingBox | None, list | None]:
    if extent is None:
        return None, None
    if is_geojson(extent):
        geoms = polygons_only(geojson_geometries(extent, process, "spatial_extent"), process, "spatial_extent")
        return bbox_of(geoms, WGS84), geoms
    return parse_bbox(extent, process, "spatial_extent"), None


def _property_conditions(properties: Any, process: str) -> dict[str, Any] | None:
    if not properties:
        return None
    if not isinstance(properties, Mapping):
        raise parameter_invalid(process, "properties", "expected an object of property filters.")
    conditions = {}
    for name, callback in properties.items():
        if not callable(callback):
            raise parameter_invalid(process, "properties", f"the filter for '{name}' must be a process graph.")
        conditions[name] = property_filter(name, callback)
    return conditions


def _describe_extent(bbox: BoundingBox | None, interval: tuple[str | None, str | None] | None) -> str:
    parts = []
    if bbox is not None:
        parts.append(f"bbox {list(bbox.bounds)} (EPSG:{bbox.crs.to_epsg()})")
    if interval is not None:
        parts.append(f"time [{interval[0]}, {interval[1]})")
    return " and ".join(parts)




PROCESSES = {"load_collection": load_collection, "load_stac": load_stac}
