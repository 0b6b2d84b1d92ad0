"""One map tile of a service: evaluate its graph for the tile's extent, warp, colour, encode.

The evaluation is the back-end's one builder (``backend.evaluation``) with the service owner's
context, the tile limits and the tile's ground pixel size as the view resolution; the graph is
rewritten for the tile first (:func:`tile_process`, the rule in ``backend.maps.xyz``). The result (a
raster cube of one date: 1, 3 or 4 bands) is computed on the cube's own grid, warped onto the
tile's 256 × 256 EPSG:3857 pixels with ``rasterio.warp.reproject`` (the service's resampling; NaN
stays NaN), coloured by ``processes.formats.colour.to_rgba`` (NaN and pixels outside the data
transparent) and encoded as PNG, JPEG or WebP (``processes.formats.image``). A tile where there is
no data (outside the graph's own extent, no items) is fully transparent.

**What a tile reads.** Loads stack the coarsest power-of-two multiple of the native pixel size that
is no coarser than the tile's pixels (``processes.data.plan.view_grid_resolution``), anchored on an
asset's corner, so a zoomed-out tile reads exactly one COG overview level, decimated by GDAL, and
never a full-resolution block; at z14 and closer over 10 m data the native pixels are read. Assets
on the cube's grid are read straight into the day's mosaic, without stackstac
(``processes.data.direct_mosaic``). A tile whose loads would still exceed :data:`TILE_MAX_VALUES`
values (a year of dates, say) is refused (400, naming the limit). Rendered tiles are kept by
``backend.maps.cache``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

import dask
import numpy as np
import pyproj
import xarray as xr
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from backend.evaluation import evaluate, process_env
from backend.maps.cache import CachedTile
from backend.maps.store import ServiceRecord
from backend.maps.tiles import TILE_SIZE, Tile, tile_of
from backend.maps.xyz import PROCESS_PARAMETERS, colouring
from backend.services import Services
from processes.core.env import Limits
from processes.core.errors import (
    BadRequest,
    NoDataAvailable,
    OpenEOError,
    ProcessGraphInvalid,
    ServiceConfigInvalid,
    unexpected_failure,
)
from processes.formats.colour import ColouringError, check_band_count, to_rgba
from processes.formats.frames import picture_problem
from processes.formats.image import encode_rgba
from processes.library.save_result import SaveResult
from processes.model.geometry import WGS84, crs_of, geojson_geometries, is_geojson, parse_crs, transformer
from processes.model.raster_cube import band_dim, is_raster_cube, spatial_dims, time_dim

TILE_MAX_VALUES = 64_000_000
"""Most values one load of a tile may give (a 256-pixel tile needs 65,536 per band and date)."""
LOADS = ("load_collection", "load_stac")
WEB_MERCATOR = pyproj.CRS.from_epsg(3857)
_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic}
_TILE_PARAMETERS = {p["name"] for p in PROCESS_PARAMETERS}
CHECK_ZOOM = 15
"""The zoom of the tile a service's graph is checked on when it is created or changed."""


def tile_limits(services: Services) -> Limits:
    most = min(services.settings.sync_max_pixels, TILE_MAX_VALUES)
    return Limits(max_pixels=most, scope=f"a map tile (at most {most:,} values per load)")


@functools.cache
def transparent_tile(encoding: str) -> bytes:
    """A tile with nothing on it (black for JPEG, which has no transparency)."""
    return encode_rgba(np.zeros((TILE_SIZE, TILE_SIZE, 4), dtype=np.uint8), encoding)


# --- the graph for one tile ----------------------------------------------------------------------
def _margin(services: Services, nodes: Mapping[str, Any], tile: Tile) -> float:
    """EPSG:3857 metres added around the tile: 3 pixels of the coarsest loaded collection (where its
    pixel size is known), at least 8 tile pixels."""
    margin = 8 * tile.pixel_size
    _, south, _, north = tile.bounds_4326()
    stretch = 1 / max(math.cos(math.radians((south + north) / 2)), 0.01)  # ground metres → 3857 metres
    for node in nodes.values():
        collection_id = node.get("arguments", {}).get("id")
        if node.get("process_id") != "load_collection" or not isinstance(collection_id, str):
            continue
        try:
            document = services.catalog.get(collection_id).stac_collection()
            x = document["cube:dimensions"]["x"]
            step = float(x["step"])
            if crs_of(x.get("reference_system", 4326)).is_geographic:
                step *= 111_320.0
        except (OpenEOError, KeyError, TypeError, ValueError, pyproj.exceptions.CRSError):
            continue
        margin = max(margin, 3 * step * stretch)
    return margin


def literal_bounds(extent: Any) -> tuple[tuple[float, float, float, float], pyproj.CRS] | None:
    """``(west, south, east, north), crs`` of a literal extent (bbox or GeoJSON), or None."""
    if is_geojson(extent):
        geoms = geojson_geometries(extent, "load_collection", "spatial_extent")
        if not geoms:
            return None
        bounds = np.array([g.bounds for g in geoms])
        return (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()), WGS84
    if isinstance(extent, Mapping) and all(k in extent for k in ("west", "south", "east", "north")):
        values = [extent[k] for k in ("west", "south", "east", "north")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            crs = parse_crs(extent.get("crs"), "load_collection", "spatial_extent")
            return (float(values[0]), float(values[1]), float(values[2]), float(values[3])), crs
    return None


def _has_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return "from_parameter" in value or "from_node" in value or any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def tile_process(services: Services, process: Mapping[str, Any], tile: Tile) -> dict[str, Any] | None:
    """The service's process rewritten for ``tile`` (the rule in ``backend.maps.xyz``): the tile's
    parameters declared with the tile's bounds (plus a margin) as defaults, and the top-level loads'
    spatial extents set to the tile, or to the tile intersected with their literal extent. None when
    the tile lies outside a load's literal extent (nothing to draw)."""
    document = copy.deepcopy(dict(process))
    nodes = document.get("process_graph")
    if not isinstance(nodes, dict):
        return document  # the evaluation reports it
    margin = _margin(services, nodes, tile)
    west, south, east, north = tile.bounds_3857()
    padded = (west - margin, south - margin, east + margin, north + margin)
    for node in nodes.values():
        if not isinstance(node, dict) or node.get("process_id") not in LOADS:
            continue
        arguments = node.setdefault("arguments", {})
        extent = arguments.get("spatial_extent")
        if extent is None:
            arguments["spatial_extent"] = _bbox(padded, 3857)
            continue
        if _has_reference(extent):
            continue  # the tile's parameters fill it
        literal = literal_bounds(extent)
        if literal is None:
            continue  # the load reports what is wrong with it
        (lw, ls, le, ln), crs = literal
        tw, ts, te, tn = transformer(WEB_MERCATOR, crs).transform_bounds(
            *padded, densify_pts=21)
        box = (max(lw, tw), max(ls, ts), min(le, te), min(ln, tn))
        if not (box[0] < box[2] and box[1] < box[3]):
            return None
        epsg = crs.to_epsg()
        arguments["spatial_extent"] = _bbox(box, epsg if epsg is not None else crs.to_wkt())
    lonlat = transformer(WEB_MERCATOR, WGS84).transform_bounds(*padded)
    values: dict[str, Any] = {f"spatial_extent_{side}": v for side, v in zip(("west", "south", "east", "north"),
                                                                              lonlat, strict=True)}
    values["spatial_extent_crs"] = 4326
    values["spatial_extent"] = _bbox(lonlat, 4326)
    declared = [p for p in document.get("parameters") or []
                if not (isinstance(p, dict) and p.get("name") in _TILE_PARAMETERS)]
    document["parameters"] = declared + [{**p, "optional": True, "default": values[p["name"]]}
                                         for p in PROCESS_PARAMETERS]
    return document


def _bbox(bounds: tuple[float, float, float, float], crs: Any) -> dict[str, Any]:
    return {"west": bounds[0], "south": bounds[1], "east": bounds[2], "north": bounds[3], "crs": crs}


# --- evaluating and drawing -----------------------------------------------------------------------
def _drawable(result: Any) -> xr.DataArray:
    """The raster cube of a tile's result (the data of a ``save_result``), or a 400 saying why not."""
    if isinstance(result, SaveResult):
        result = result.data
    if not is_raster_cube(result):
        what = ("a vector cube" if isinstance(result, xr.DataArray | xr.Dataset) or hasattr(result, "geometry")
                else f"a {type(result).__name__} ({str(result)[:60]})")
        raise ProcessGraphInvalid(f"An XYZ service draws a raster data cube, and this process gives {what}. "
                                  "End the process with a raster cube of one date (1 band, or 3–4 for colour).")
    problem = picture_problem(result, "An XYZ tile", animated=False)
    if problem is not None:
        raise ProcessGraphInvalid(f"An XYZ service can't draw this process's result: {problem}")
    return result


def evaluate_tile(services: Services, user_id: str, process: Mapping[str, Any], tile: Tile, *,
                  validate_only: bool = False) -> xr.DataArray | None:
    """The lazy raster cube of ``tile`` for the service's owner (None where there is nothing to draw)."""
    document = tile_process(services, process, tile)
    if document is None:
        return None
    env = dataclasses.replace(process_env(services, user_id, limits=tile_limits(services), validate_only=validate_only),
                              view_resolution=tile.ground_pixel_size)
    try:
        result = evaluate(services, document, env, "synchronous", parameters={})
    except NoDataAvailable:
        return None
    return _drawable(result)


def check_service(services: Services, user_id: str, process: Mapping[str, Any],
                  configuration: Mapping[str, Any]) -> None:
    """Refuse a service whose graph can't give map tiles, evaluating it (without computing) for one
    small tile inside its extent: unknown collections and processes, results that are not raster
    cubes of one date, a colour map for three bands."""
    cube = evaluate_tile(services, user_id, process, _check_tile(services, process), validate_only=True)
    if cube is None:
        return  # no data at the place checked: tiles will tell
    b = band_dim(cube)
    try:
        check_band_count(cube.sizes[b] if b is not None else 1, colouring(configuration))
    except ColouringError as err:
        raise ServiceConfigInvalid(f"The value passed for the service parameter 'colormap' is invalid: {err}") from None


def _check_tile(services: Services, process: Mapping[str, Any]) -> Tile:
    nodes = process.get("process_graph")
    lon, lat = 0.0, 0.0
    for node in (nodes.values() if isinstance(nodes, dict) else []):
        if not isinstance(node, dict) or node.get("process_id") not in LOADS:
            continue
        arguments = node.get("arguments") or {}
        literal = literal_bounds(arguments.get("spatial_extent")) if not _has_reference(
            arguments.get("spatial_extent")) else None
        if literal is not None:
            (w, s, e, n), crs = literal
            lon, lat = transformer(crs, WGS84).transform((w + e) / 2, (s + n) / 2)
            break
        if node.get("process_id") == "load_collection" and isinstance(arguments.get("id"), str):
            try:
                bbox = services.catalog.get(arguments["id"]).stac_collection()["extent"]["spatial"]["bbox"][0]
                lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
                break
            except (OpenEOError, KeyError, IndexError, TypeError):
                continue
    return tile_of(lon, lat, CHECK_ZOOM)


def render_tile(services: Services, service: ServiceRecord, tile: Tile, encoding: str = "png") -> bytes:
    """``tile`` encoded as ``encoding`` (:data:`ENCODINGS`); an openEO error (also written to the service's
    log) when the graph fails."""
    try:
        cube = evaluate_tile(services, service.user_id, service.process, tile)
        if cube is None:
            return transparent_tile(encoding)
        with dask.config.set(scheduler="threads"):
            rgba = _draw(cube, tile, service.configuration)
    except OpenEOError as err:
        services.maps.log(service.id, "error", f"Tile {tile.z}/{tile.x}/{tile.y}: {err.message}",
                          {"tile": [tile.z, tile.x, tile.y]}, code=err.code)
        raise
    except Exception as exc:
        failure = unexpected_failure(exc, f"Rendering tile {tile.z}/{tile.x}/{tile.y} failed")
        services.maps.log(service.id, "error", failure.message, {"tile": [tile.z, tile.x, tile.y]},
                          code=failure.code)
        raise failure from None
    if not rgba[..., 3].any():
        return transparent_tile(encoding)
    return encode_rgba(rgba, encoding)


def _draw(cube: xr.DataArray, tile: Tile, configuration: Mapping[str, Any]) -> np.ndarray:
    t = time_dim(cube)
    if t is not None:
        cube = cube.isel({t: 0})
    b = band_dim(cube)
    spatial = spatial_dims(cube)
    assert spatial is not None  # _drawable checked it
    y_dim, x_dim = spatial
    if b is None:
        cube = cube.expand_dims("__bands__")
        b = "__bands__"
    cube = cube.transpose(b, y_dim, x_dim)
    xs, ys = cube[x_dim].values.astype(float), cube[y_dim].values.astype(float)
    crs = cube.rio.crs
    if crs is None:
        raise BadRequest("The result has no coordinate reference system, so it can't be placed on a map.")
    dx, dy = _step(cube, xs, x_dim, 0), _step(cube, ys, y_dim, 1)
    values = np.asarray(cube.values)
    if values.dtype.kind == "b":
        values = values.astype(np.float32) * (1.0 if configuration.get("value_range") else 255.0)
    values = values.astype(np.float32, copy=False)
    if dx < 0:
        values, xs, dx = values[:, :, ::-1], xs[::-1], -dx
    if dy > 0:  # rows from the south: flip to north up
        values, ys = values[:, ::-1, :], ys[::-1]
    dy = abs(dy)
    source = Affine(dx, 0.0, xs[0] - dx / 2, 0.0, -dy, ys[0] + dy / 2)
    warped = np.full((values.shape[0], TILE_SIZE, TILE_SIZE), np.nan, dtype=np.float32)
    reproject(np.ascontiguousarray(values), warped, src_transform=source, src_crs=CRS.from_user_input(crs),
              src_nodata=np.nan, dst_transform=tile.transform(), dst_crs=CRS.from_epsg(3857), dst_nodata=np.nan,
              resampling=_RESAMPLING[configuration.get("resampling", "nearest")])
    try:
        return to_rgba(warped, colouring(configuration))
    except ColouringError as err:
        raise BadRequest(f"The tile's values can't be drawn: {err} (For a service, value_range is a setting of "
                         "its configuration.)") from None


def _step(cube: xr.DataArray, coords: np.ndarray, dim: str, axis: int) -> float:
    if coords.size > 1:
        return float(coords[1] - coords[0])
    try:
        resolution = cube.rio.resolution()
        return float(resolution[axis])
    except Exception:  # one pixel without a stored transform
        raise BadRequest(f"The result has a single pixel along {dim} and no known pixel size.") from None


# --- the cache ------------------------------------------------------------------------------------
def cached_tile(services: Services, service: ServiceRecord, tile: Tile,
                encoding: str = "png") -> tuple[CachedTile, bool]:
    """The tile from the tile cache, else rendered and cached; and whether it came from the cache."""
    key = (service.id, service.revision, tile.z, tile.x, tile.y, encoding)
    found = services.tiles.get(key)
    if found is not None:
        return found, True
    return services.tiles.put(key, render_tile(services, service, tile, encoding)), False
