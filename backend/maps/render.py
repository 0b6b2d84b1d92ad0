"""One map tile of a service: evaluate its graph for the tile's extent, warp, colour, encode.

The evaluation is the back-end's one builder (``backend.evaluation``) with the service owner's
context, the tile limits and the tile's ground pixel size as the view resolution; the graph,
parsed once per service revision, is cut to the tile first (``backend.maps.tile_graph``, the rule in
``backend.maps.xyz``). The result (a raster cube of one date: 1, 3 or 4 bands) is computed on the
cube's own grid (a small Dask graph in the request's thread, see :data:`SYNC_MAX_TASKS`), warped onto the
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

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject

from backend.evaluation import evaluate, process_env
from backend.maps.cache import CachedTile
from backend.maps.store import ServiceRecord
from backend.maps.tile_graph import (
    LOADS,
    TileGraph,
    collection_bounds,
    has_reference,
    literal_bounds,
    service_graph,
)
from backend.maps.tiles import TILE_SIZE, Tile, tile_of
from backend.maps.xyz import colouring
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
from processes.model.geometry import WGS84, transformer
from processes.model.raster_cube import band_dim, is_raster_cube, spatial_dims, time_dim

TILE_MAX_VALUES = 64_000_000
"""Most values one load of a tile may give (a 256-pixel tile needs 65,536 per band and date)."""
_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic}
CHECK_ZOOM = 15
"""The zoom of the tile a service's graph is checked on when it is created or changed."""


def tile_limits(services: Services) -> Limits:
    most = min(services.settings.sync_max_pixels, TILE_MAX_VALUES)
    return Limits(max_pixels=most, scope=f"a map tile (at most {most:,} values per load)")


@functools.cache
def transparent_tile(encoding: str) -> bytes:
    """A tile with nothing on it (black for JPEG, which has no transparency)."""
    return encode_rgba(np.zeros((TILE_SIZE, TILE_SIZE, 4), dtype=np.uint8), encoding)


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


def evaluate_tile(services: Services, user_id: str, prepared: TileGraph, tile: Tile, *,
                  validate_only: bool = False) -> xr.DataArray | None:
    """The lazy raster cube of ``tile`` for the service's owner (None where there is nothing to draw)."""
    cut = prepared.for_tile(tile)
    if cut is None:
        return None
    document, graph = cut
    env = dataclasses.replace(process_env(services, user_id, limits=tile_limits(services), validate_only=validate_only),
                              view_resolution=tile.ground_pixel_size)
    try:
        result = evaluate(services, document, env, "synchronous", parameters={}, graph=graph)
    except NoDataAvailable:
        return None
    return _drawable(result)


def check_service(services: Services, user_id: str, process: Mapping[str, Any],
                  configuration: Mapping[str, Any]) -> None:
    """Refuse a service whose graph can't give map tiles, evaluating it (without computing) for one
    small tile inside its extent: unknown collections and processes, results that are not raster
    cubes of one date, a colour map for three bands."""
    cube = evaluate_tile(services, user_id, TileGraph.of(services, process), _check_tile(services, process), validate_only=True)
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
        literal = literal_bounds(arguments.get("spatial_extent")) if not has_reference(
            arguments.get("spatial_extent")) else None
        if literal is not None:
            (w, s, e, n), crs = literal
            lon, lat = transformer(crs, WGS84).transform((w + e) / 2, (s + n) / 2)
            break
        bounds = collection_bounds(services, arguments.get("id")) if node.get("process_id") == "load_collection" \
            else None
        if bounds is not None:
            lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
            break
    return tile_of(lon, lat, CHECK_ZOOM)


def render_tile(services: Services, service: ServiceRecord, tile: Tile, encoding: str = "png") -> bytes:
    """``tile`` encoded as ``encoding`` (:data:`ENCODINGS`); an openEO error (also written to the service's
    log) when the graph fails."""
    try:
        cube = evaluate_tile(services, service.user_id, service_graph(services, service), tile)
        if cube is None:
            return transparent_tile(encoding)
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
    spatial = spatial_dims(cube)
    assert spatial is not None  # _drawable checked it
    y_dim, x_dim = spatial
    crs = cube.rio.crs
    if crs is None:
        raise BadRequest("The result has no coordinate reference system, so it can't be placed on a map.")
    xs, ys = cube[x_dim].values.astype(float), cube[y_dim].values.astype(float)
    dx, dy = _step(cube, xs, x_dim, 0), _step(cube, ys, y_dim, 1)
    # (band, y, x) by numpy axes, after computing: xarray's isel/transpose/expand_dims cost more than
    # the warp's set-up. The cube has no dimensions besides these and a time of one date (_drawable).
    t, b = time_dim(cube), band_dim(cube)
    values = np.transpose(_computed(cube.data), [cube.dims.index(d) for d in (t, b, y_dim, x_dim) if d is not None])
    if t is not None:
        values = values[0]
    if b is None:
        values = values[np.newaxis]
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
    resampling = _RESAMPLING[configuration.get("resampling", "nearest")]
    # nearest copies a NaN as it is: no no-data test per pixel (the tile starts all NaN); bilinear and
    # cubic must leave NaN out of their kernels
    nodata = None if resampling == Resampling.nearest else np.nan
    reproject(np.ascontiguousarray(values), warped, src_transform=source, src_crs=CRS.from_user_input(crs),
              src_nodata=nodata, dst_transform=tile.transform(), dst_crs=CRS.from_epsg(3857), dst_nodata=nodata,
              init_dest_nodata=False, resampling=resampling)
    try:
        return to_rgba(warped, colouring(configuration))
    except ColouringError as err:
        raise BadRequest(f"The tile's values can't be drawn: {err} (For a service, value_range is a setting of "
                         "its configuration.)") from None


SYNC_MAX_TASKS = 8
"""Dask graphs of at most this many tasks (one date's block or two) are computed in the request's thread:
the threaded scheduler's fixed cost (about 0.7 ms a tile) is more than running so few side by side wins.
Larger graphs (the 24 reads of a 12-date NDVI) use the threaded scheduler."""


def _computed(data: Any) -> np.ndarray:
    if not isinstance(data, da.Array):
        return np.asarray(data)
    scheduler = "sync" if len(data.__dask_graph__()) <= SYNC_MAX_TASKS else "threads"
    return np.asarray(data.compute(scheduler=scheduler))


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
