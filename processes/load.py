"""Loading data: ``load_collection`` from the back-end's STAC catalog.

The pipeline: check the arguments → search the collection's items (bbox in WGS84, left-closed time
interval, property filters) → stack them lazily with stackstac on the collection's native grid
(pixel-centre coordinates, float32 with NaN as nodata, digital numbers as stored: no rescaling) →
mosaic items of the same day → cut to the pixels whose centres lie in the extent → openEO
dimension names and types. Nothing is read from the rasters here; reading happens per chunk when a
result is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pyproj
import pystac
import stackstac
import xarray as xr

from processes.cube import new_cube, with_band_metadata
from processes.direct_read import direct_mosaic
from processes.env import CollectionHandle, ProcessEnv
from processes.errors import NoDataAvailable, ProcessGraphComplexity, parameter_invalid
from processes.geometry import (
    WGS84,
    BoundingBox,
    bbox_of,
    geojson_geometries,
    geometry_mask,
    is_geojson,
    parse_bbox,
    polygons_only,
    reproject_geometries,
)
from processes.readers import AlignedReader
from processes.stac import StacApiCollection, StaticCollection, item_for_stacking
from processes.temporal import parse_interval

CHUNK_SIZE = 1024


def load_collection(
    id: str,
    spatial_extent: Any = None,
    temporal_extent: Any = None,
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
        band_table = _bands_from_assets(collection.search(None, None))
    selected = _select_bands(id, bands, band_table, process)

    bbox, polygons = _spatial_filter(spatial_extent, process)
    interval = parse_interval(temporal_extent, process, "temporal_extent")
    conditions = _property_conditions(properties, process)

    search_bbox = bbox.to_crs(WGS84).bounds if bbox is not None else None
    items = collection.search(search_bbox, interval, conditions)
    if not items:
        raise NoDataAvailable(
            f"No data in collection '{id}' for the requested extent"
            f"{' ' + _describe_extent(bbox, interval)}. {hint}".rstrip()
        )
    if env.limits.max_items is not None and len(items) > env.limits.max_items:
        raise ProcessGraphComplexity(
            f"The request would stack {len(items)} items of '{id}' (limit {env.limits.max_items} for "
            "synchronous processing). Narrow the extents or use a batch job."
        )

    crs = _native_crs(metadata, items)
    assets = [band_table[b]["asset"] for b in selected]
    resolution = _resolution(items, assets, metadata)
    bounds = None
    native_geoms = reproject_geometries(polygons, WGS84, crs) if polygons is not None else None
    if bbox is not None:
        # for polygons, the bbox of the reprojected polygons is tighter than the reprojected bbox
        native = bbox_of(native_geoms, crs) if native_geoms is not None else bbox.to_crs(crs)
        bounds = _pixel_edges(native, resolution)

    stacking = [item_for_stacking(item) for item in items]
    chunks = _chunks(items, len(assets), _spatial_chunks(items, assets, resolution, bounds))
    options = dict(assets=assets, epsg=crs.to_epsg(), resolution=resolution, bounds=bounds,
                   snap_bounds=bounds is None, xy_coords="center", dtype="float32", fill_value=np.float32(np.nan),
                   rescale=False, properties=False, band_coords=False, reader=AlignedReader)
    try:
        stacked = stackstac.stack(stacking, chunksize=chunks, **options)
    except ValueError:
        # stackstac drops items whose assets miss the bounds, so the day blocks computed from the
        # search results may not add up: then one item per block (the mosaic copes with both)
        chunks = (1, *chunks[1:])
        stacked = stackstac.stack(stacking, chunksize=chunks, **options)
    direct = direct_mosaic(stacked, stacking, assets, crs.to_epsg(), resolution, chunks)
    stacked = direct if direct is not None else _mosaic_same_day(stacked)
    if bbox is not None:
        stacked = stacked.sel(x=slice(native.west, native.east), y=slice(native.north, native.south))
    if stacked.sizes["x"] == 0 or stacked.sizes["y"] == 0:
        raise NoDataAvailable(
            f"The spatial extent selects no pixel of collection '{id}': it is smaller than a pixel."
        )

    cube = new_cube(
        stacked.data,
        {
            "t": ("temporal", stacked["time"].values),
            "bands": ("bands", selected),
            "y": ("spatial", stacked["y"].values),
            "x": ("spatial", stacked["x"].values),
        },
        crs=crs,
        name=id,
    )
    cube = with_band_metadata(cube, {b: band_table[b]["meta"] for b in selected})
    if native_geoms is not None:
        mask = geometry_mask(native_geoms, cube["y"].values, cube["x"].values, cube.data.chunks[2:],
                             resolution=_pixel_size(cube))
        cube = cube.where(xr.DataArray(mask, dims=("y", "x")))
    _check_size(cube, env, id)
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
            return StaticCollection(_collection_of_assets(document, url), url)
        return StaticCollection(document, url)
    if isinstance(document, pystac.Item):
        items = [document]
    elif isinstance(document, pystac.Catalog):
        items = list(document.get_items(recursive=True))
    else:
        raise parameter_invalid("load_stac", "url", f"'{url}' is a STAC {type(document).__name__}, not loadable.")
    if not items:
        raise NoDataAvailable(f"The STAC resource '{url}' holds no items.")
    holder = pystac.Collection(
        id=items[0].collection_id or document.id,
        description=f"Items of {url}",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(items[0].bbox or [-180, -90, 180, 90])]),
            pystac.TemporalExtent([[None, None]]),
        ),
    )
    for item in items:
        clone = item.clone().make_asset_hrefs_absolute() if item.get_self_href() else item.clone()
        holder.add_item(clone)
    return StaticCollection(holder, url)


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


# --- collection metadata --------------------------------------------------------------------------
def collection_bands(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{band name: {"asset": asset key, "meta": {common_name, center_wavelength, …}}}`` in order.

    Bands come from ``summaries["eo:bands"]`` (or ``bands``) matched to ``item_assets``; assets
    holding one band are addressed by that band's name, others by their key.
    """
    item_assets = metadata.get("item_assets") or {}
    by_band: dict[str, str] = {}
    for key, asset in item_assets.items():
        asset_bands = asset.get("eo:bands") or asset.get("bands") or []
        if len(asset_bands) == 1 and "name" in asset_bands[0]:
            by_band[asset_bands[0]["name"]] = key
    summaries = metadata.get("summaries") or {}
    listed = summaries.get("eo:bands") or summaries.get("bands") or []
    table: dict[str, dict[str, Any]] = {}
    for band in listed:
        name = band.get("name")
        if not name:
            continue
        asset = by_band.get(name) or (name if name in item_assets or not item_assets else None)
        if asset is None:
            continue
        meta = {k: band[k] for k in ("common_name", "center_wavelength", "full_width_half_max") if k in band}
        table[name] = {"asset": asset, "meta": meta}
    if not table:
        dims = metadata.get("cube:dimensions") or {}
        for dim in dims.values():
            if dim.get("type") == "bands":
                for name in dim.get("values", []):
                    table[name] = {"asset": name, "meta": {}}
    return table


def _select_bands(collection_id: str, bands: Any, table: dict[str, dict[str, Any]], process: str) -> list[str]:
    if bands is None:
        if not table:
            raise parameter_invalid(process, "bands", f"collection '{collection_id}' declares no bands in its metadata.")
        return list(table)
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise parameter_invalid(process, "bands", "expected a non-empty list of band names or null.")
    by_common = {}
    for name, info in table.items():
        common = info["meta"].get("common_name")
        if common:
            by_common.setdefault(common, name)
    selected = []
    for band in bands:
        if band in table:
            selected.append(band)
        elif band in by_common:
            selected.append(by_common[band])
        else:
            raise parameter_invalid(
                process, "bands", f"band '{band}' is not in collection '{collection_id}'; it has {', '.join(table)}."
            )
    return selected


def _bands_from_assets(items: list) -> dict[str, dict[str, Any]]:
    """Bands of sources without band metadata: each data asset (a raster) is a band named by its key."""
    table: dict[str, dict[str, Any]] = {}
    for item in items[:20]:
        for key, asset in item.assets.items():
            roles = asset.roles or ["data"]
            is_raster = "tiff" in (asset.media_type or "image/tiff") or str(asset.href).lower().endswith((".tif", ".tiff"))
            if "data" in roles and is_raster and key not in table:
                eo = asset.extra_fields.get("eo:bands") or [{}]
                meta = {k: eo[0][k] for k in ("common_name", "center_wavelength") if k in eo[0]}
                table[key] = {"asset": key, "meta": meta}
    return table


def _native_crs(metadata: Mapping[str, Any], items: list) -> pyproj.CRS:
    dims = metadata.get("cube:dimensions") or {}
    for dim in dims.values():
        if dim.get("type") == "spatial" and dim.get("reference_system") is not None:
            ref = dim["reference_system"]
            if not isinstance(ref, dict):
                return pyproj.CRS.from_user_input(ref)
    codes = []
    for item in items:
        props = item.properties
        code = props.get("proj:code") or (f"EPSG:{props['proj:epsg']}" if props.get("proj:epsg") else None)
        if code:
            codes.append(code)
    if not codes:
        return WGS84
    most_common = pd.Series(codes).value_counts().index[0]
    return pyproj.CRS.from_user_input(most_common)


def _resolution(items: list, assets: list[str], metadata: Mapping[str, Any]) -> float:
    """The finest pixel size among the requested assets (all bands are stacked on that grid)."""
    sizes = []
    for item in items[:50]:
        for key in assets:
            asset = item.assets.get(key)
            transform = (asset.extra_fields.get("proj:transform") if asset else None) or item.properties.get(
                "proj:transform"
            )
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

        def condition(value: Any, _callback=callback) -> bool:
            return value is not None and _callback(value=value) is True

        conditions[name] = condition
    return conditions


def _describe_extent(bbox: BoundingBox | None, interval: tuple[str | None, str | None] | None) -> str:
    parts = []
    if bbox is not None:
        parts.append(f"bbox {list(bbox.bounds)} (EPSG:{bbox.crs.to_epsg()})")
    if interval is not None:
        parts.append(f"time [{interval[0]}, {interval[1]})")
    return " and ".join(parts)


# --- stacking ------------------------------------------------------------------------------------
def _mosaic_same_day(stacked: xr.DataArray) -> xr.DataArray:
    """One time step per day: items of one day (neighbouring tiles) are mosaicked, first valid wins."""
    times = pd.DatetimeIndex(stacked["time"].values)
    days = times.normalize()
    if not days.has_duplicates:
        return stacked.drop_vars([c for c in stacked.coords if c not in ("time", "band", "y", "x")])
    per_block = _mosaic_per_block(stacked, times, days)
    if per_block is not None:
        return per_block
    labels = []
    layers = []
    for day in days.unique():
        positions = np.flatnonzero(days == day)
        contiguous = positions[-1] - positions[0] == len(positions) - 1
        # a slice keeps whole chunks; an index array would copy every block through ``take``
        group = stacked.isel(time=slice(positions[0], positions[-1] + 1) if contiguous else positions)
        labels.append(times[positions].min())
        layers.append(_first_valid(group))
    mosaic = xr.concat(layers, dim="time", coords="minimal", compat="override", join="override")
    mosaic = mosaic.assign_coords(time=pd.DatetimeIndex(labels))
    return mosaic.drop_vars([c for c in mosaic.coords if c not in ("time", "band", "y", "x")])


MAX_ASSETS_PER_CHUNK = 8
"""Most assets (items × bands) one Dask block reads: 8 × 1024² float32 values are 32 MB."""


def _spatial_chunks(items: list[pystac.Item], assets: list[str], resolution: float,
                    bounds: tuple[float, float, float, float] | None) -> tuple[Any, Any]:
    """Chunks along y and x whose edges fall on multiples of CHUNK_SIZE pixels of an asset's grid.

    COGs are stored in internal tiles (typically 256 or 512 px) counted from the asset's origin.
    Blocks cut at the same places read whole tiles; blocks offset from them decompress the tiles
    along their edges twice (once for each neighbouring block) — up to twice the work.
    """
    if bounds is None:
        return CHUNK_SIZE, CHUNK_SIZE
    origin = None
    for item in items:
        asset = item.assets.get(assets[0])
        transform = (asset.extra_fields.get("proj:transform") if asset else None) or item.properties.get(
            "proj:transform")
        if transform and np.isclose(abs(float(transform[0])), resolution):
            origin = float(transform[2]), float(transform[5])
            break
    if origin is None:
        return CHUNK_SIZE, CHUNK_SIZE
    west, south, east, north = bounds
    width, height = round((east - west) / resolution), round((north - south) / resolution)

    def split(offset: float, length: int) -> tuple[int, ...]:
        first = (CHUNK_SIZE - round(offset / resolution) % CHUNK_SIZE) or CHUNK_SIZE
        if first >= length:
            return (length,)
        rest = length - first
        return (first,) + (CHUNK_SIZE,) * (rest // CHUNK_SIZE) + ((rest % CHUNK_SIZE,) if rest % CHUNK_SIZE else ())

    return split(origin[1] - north, height), split(west - origin[0], width)


def _chunks(items: list[pystac.Item], n_assets: int, spatial: tuple[Any, Any] = (CHUNK_SIZE, CHUNK_SIZE),
            ) -> tuple[Any, ...]:
    """Dask chunks (time, band, y, x) of the stack: one block reads a whole day's items and bands.

    Items of one day (neighbouring tiles) are mosaicked together, so reading them in the same block
    makes the mosaic a cheap block-local operation; reading several bands per block divides the
    number of tasks (and their overhead) further. Blocks stay under :data:`MAX_ASSETS_PER_CHUNK`.
    """
    if any(item.datetime is None for item in items):
        return (1, 1, *spatial)
    days = pd.DatetimeIndex(sorted(pd.Timestamp(item.datetime) for item in items)).normalize()
    sizes = pd.Series(1, index=days).groupby(level=0, sort=False).size().tolist()
    per_day = min(max(sizes), MAX_ASSETS_PER_CHUNK)
    time_chunks = [min(per_day, size - start) for size in sizes for start in range(0, size, per_day)]
    band_chunk = max(1, min(n_assets, MAX_ASSETS_PER_CHUNK // per_day))
    return (tuple(time_chunks), band_chunk, *spatial)


def _mosaic_per_block(stacked: xr.DataArray, times: pd.DatetimeIndex, days: pd.DatetimeIndex) -> xr.DataArray | None:
    """The same-day mosaic as one block-local operation, when every time block holds exactly one day.

    That is how :func:`_chunks` cuts the stack; each block of k items becomes one time step (first
    valid value wins, in place), with no per-day slicing, ``where`` and concatenation tasks.
    """
    if not isinstance(stacked.data, da.Array):
        return None
    edges = np.cumsum((0,) + stacked.data.chunks[0])
    starts, ends = edges[:-1], edges[1:]
    day_starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    if len(day_starts) != len(starts) or not np.array_equal(day_starts, starts):
        return None
    data = stacked.data.map_blocks(
        _first_valid_block, chunks=((1,) * len(starts),) + stacked.data.chunks[1:], dtype=stacked.dtype,
    )
    labels = pd.DatetimeIndex([times[a:b].min() for a, b in zip(starts, ends, strict=True)])
    coords = {"time": labels, "band": stacked["band"].values, "y": stacked["y"], "x": stacked["x"]}
    mosaic = xr.DataArray(data, dims=stacked.dims, coords=coords, attrs=stacked.attrs, name=stacked.name)
    return mosaic.drop_vars([c for c in mosaic.coords if c not in ("time", "band", "y", "x")])


def _first_valid_block(block: np.ndarray) -> np.ndarray:
    out = np.array(block[0], copy=True)
    for layer in block[1:]:
        np.copyto(out, layer, where=np.isnan(out))
    return out[np.newaxis]


def _first_valid(group: xr.DataArray) -> xr.DataArray:
    """Mosaic along ``time``: the first item's valid pixels win (one ``where`` per further item)."""
    result = group.isel(time=0)
    for i in range(1, group.sizes["time"]):
        result = result.fillna(group.isel(time=i))
    return result


def _pixel_edges(box: BoundingBox, resolution: float) -> tuple[float, float, float, float]:
    """Edges of the pixels (of a grid aligned to multiples of ``resolution``) whose centres lie in ``box``.

    Stacking exactly these keeps Dask chunks aligned with the window; the cut by pixel centre that
    follows is then a no-op instead of splitting chunks into slivers.
    """
    half = resolution / 2
    west = np.ceil((box.west - half) / resolution) * resolution
    east = np.floor((box.east - half) / resolution) * resolution + resolution
    south = np.ceil((box.south - half) / resolution) * resolution
    north = np.floor((box.north - half) / resolution) * resolution + resolution
    if east <= west or north <= south:  # smaller than a pixel: stack the pixel around its centre
        return (west - resolution, south - resolution, west, south)
    return (float(west), float(south), float(east), float(north))


def _check_size(cube: xr.DataArray, env: ProcessEnv, collection_id: str) -> None:
    limit = env.limits.max_pixels
    if limit is not None and cube.size > limit:
        raise ProcessGraphComplexity(
            f"Loading '{collection_id}' with these extents gives {cube.size:,} values "
            f"({' × '.join(f'{d} {n}' for d, n in cube.sizes.items())}); synchronous requests are limited to "
            f"{limit:,}. Narrow the spatial/temporal extent or the bands, or run it as a batch job."
        )


PROCESSES = {"load_collection": load_collection, "load_stac": load_stac}
