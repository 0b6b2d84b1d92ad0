"""Resampling processes: ``resample_spatial``, ``resample_cube_spatial``, ``resample_cube_temporal``.

Spatial resampling is one lazy warp onto a target :class:`Grid`. The output is cut into blocks; for
each block the source window it needs is found by transforming the block's outline into the source
CRS (plus a margin for the resampling kernel), and one Dask task per block runs
``rasterio.warp.reproject`` from that window of the source to the block. Only the source chunks a
block touches are read, nothing is computed before the writer asks, and blocks line up seamlessly
because each is warped from a superset of the pixels it depends on.

``resample_cube_temporal`` picks, for every target timestamp, the nearest source timestamp (ties: the
earlier one) — or with ``valid_within``, per pixel the nearest valid value within that many days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pyproj
import rasterio.warp
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

from processes.core.errors import DimensionMismatch, DimensionNotAvailable, parameter_invalid, process_error
from processes.library.datacube import require_cube
from processes.model.geometry import apply_transform
from processes.model.raster_cube import TYPE_ATTR, dimension_type, dims_of_type, spatial_dims
from processes.model.values import is_number

_METHODS = {
    "near": Resampling.nearest, "bilinear": Resampling.bilinear, "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline, "lanczos": Resampling.lanczos, "average": Resampling.average,
    "mode": Resampling.mode, "max": Resampling.max, "min": Resampling.min, "med": Resampling.med,
    "q1": Resampling.q1, "q3": Resampling.q3, "sum": Resampling.sum, "rms": Resampling.rms,
}
# Source pixels a kernel reaches beyond the one under the target pixel's centre (before scaling).
_KERNEL_RADIUS = {"bilinear": 1, "cubic": 2, "cubicspline": 2, "lanczos": 3}
_ALIGNS = ("upper-left", "upper-right", "lower-left", "lower-right")
# A CRS for cubes without one (pixel grids only): warping between equal CRSs is a pure affine map.
_PLACEHOLDER_CRS = CRS.from_epsg(3857)
# Output block edges in pixels: without a hint from the source chunks, and the bounds.
_BLOCK, _MIN_BLOCK, _MAX_BLOCK = 1024, 128, 2048
# Largest source window edge one output block may need (memory of a task).
_MAX_SOURCE_WINDOW = 4096


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid."""

    crs: CRS
    """Reference system of the grid."""
    transform: Affine
    """Pixel (col, row) to CRS coordinates of the pixel's upper-left corner; ``e`` is negative."""
    width: int
    """Pixels along x."""
    height: int
    """Pixels along y."""

    @property
    def x(self) -> np.ndarray:
        return self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a

    @property
    def y(self) -> np.ndarray:
        return self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return left, top + self.height * self.transform.e, left + self.width * self.transform.a, top


# --- processes -----------------------------------------------------------------------------------------


def resample_spatial(
    data: Any, resolution: Any = 0, projection: Any = None, method: str = "near", align: str = "upper-left"
) -> xr.DataArray:
    cube = require_cube(data, "resample_spatial")
    resampling = _method(method, "resample_spatial")
    if align not in _ALIGNS:
        raise parameter_invalid("resample_spatial", "align", f"expected one of {', '.join(_ALIGNS)}, got {align!r}.")
    res = _resolution(resolution)
    source = grid_of(cube, "resample_spatial", "data")
    dst_crs = _projection(projection) if projection is not None else source.crs
    if cube.rio.crs is None and projection is not None:
        raise parameter_invalid(
            "resample_spatial", "data", "the cube has no reference system, so it can't be warped to a projection."
        )
    same_crs = dst_crs == source.crs
    if same_crs and (res is None or np.allclose(res, (source.transform.a, -source.transform.e))):
        return cube
    if same_crs:
        bounds = source.bounds
        res = res or (source.transform.a, -source.transform.e)
    else:
        bounds = rasterio.warp.transform_bounds(source.crs, dst_crs, *source.bounds, densify_pts=21)
        if res is None:
            default, _, _ = rasterio.warp.calculate_default_transform(
                source.crs, dst_crs, source.width, source.height, *source.bounds
            )
            res = (default.a, -default.e)
    return warp(cube, _aligned_grid(dst_crs, bounds, res, align), resampling)


def resample_cube_spatial(data: Any, target: Any, method: str = "near") -> xr.DataArray:
    cube = require_cube(data, "resample_cube_spatial")
    target_cube = require_cube(target, "resample_cube_spatial", "target")
    resampling = _method(method, "resample_cube_spatial")
    if (cube.rio.crs is None) != (target_cube.rio.crs is None):
        raise parameter_invalid(
            "resample_cube_spatial", "target" if target_cube.rio.crs is None else "data",
            "one cube has a reference system and the other has none; both need one to be aligned.",
        )
    goal = grid_of(target_cube, "resample_cube_spatial", "target")
    t_y, t_x = spatial_dims(target_cube)  # type: ignore[misc]  # grid_of checked them
    y, x = spatial_dims(cube)  # type: ignore[misc]
    if grid_of(cube, "resample_cube_spatial", "data") == goal:
        result = cube
    else:
        result = warp(cube, goal, resampling)
    # the target's labels exactly (and its y order), so the cubes merge without float mismatches
    if len(target_cube[t_y]) > 1 and target_cube[t_y].values[1] > target_cube[t_y].values[0]:
        result = result.isel({y: slice(None, None, -1)})
    labels = {y: target_cube[t_y].values, x: target_cube[t_x].values}
    return result.assign_coords({d: xr.Variable((d,), v, attrs=cube[d].attrs) for d, v in labels.items()})


def resample_cube_temporal(data: Any, target: Any, dimension: Any = None, valid_within: Any = None) -> xr.DataArray:
    cube = require_cube(data, "resample_cube_temporal")
    target_cube = require_cube(target, "resample_cube_temporal", "target")
    if valid_within is not None and (not is_number(valid_within) or valid_within < 0):
        raise parameter_invalid(
            "resample_cube_temporal", "valid_within", f"expected a number of days ≥ 0 or null, got {valid_within!r}."
        )
    if dimension is not None:
        if dimension not in cube.dims or dimension not in target_cube.dims:
            where = "data" if dimension not in cube.dims else "target"
            raise DimensionNotAvailable(
                f"resample_cube_temporal: dimension '{dimension}' does not exist in the cube given as '{where}'."
            )
        if dimension_type(cube, dimension) != "temporal" or dimension_type(target_cube, dimension) != "temporal":
            raise DimensionMismatch(
                f"resample_cube_temporal: dimension '{dimension}' must be temporal in both cubes."
            )
        dims = [dimension]
    else:
        dims = [d for d in dims_of_type(cube, "temporal") if dimension_type(target_cube, d) == "temporal"
                and d in target_cube.dims]
        if not dims:
            raise DimensionMismatch(
                "The temporal dimensions for resampling don't match: no temporal dimension has the same name in "
                f"data ({', '.join(dims_of_type(cube, 'temporal')) or 'none'}) and target "
                f"({', '.join(dims_of_type(target_cube, 'temporal')) or 'none'}). Rename one with rename_dimension."
            )
    for dim in dims:
        cube = _nearest_in_time(cube, dim, target_cube[dim], valid_within)
    return cube


# --- spatial grids and the lazy warp --------------------------------------------------------------------


def grid_of(cube: xr.DataArray, process: str, parameter: str) -> Grid:
    """The grid of a cube's pixel-centre labels (north-up, whatever the order of its y labels)."""
    names = spatial_dims(cube)
    if names is None:
        raise process_error("DimensionMissing", f"{process}: the cube given as '{parameter}' has no x and y dimensions.")
    y, x = names
    x_res, left = _axis(cube, x, process, parameter)
    y_res, first_y = _axis(cube, y, process, parameter)
    y_step = abs(y_res)
    top = max(first_y, first_y + y_res * (cube.sizes[y] - 1)) + y_step / 2
    crs = cube.rio.crs
    return Grid(
        CRS.from_user_input(crs) if crs is not None else _PLACEHOLDER_CRS,
        Affine(x_res, 0.0, left - x_res / 2, 0.0, -y_step, top),
        cube.sizes[x],
        cube.sizes[y],
    )


def _axis(cube: xr.DataArray, dim: str, process: str, parameter: str) -> tuple[float, float]:
    """(step, first label) of an evenly spaced spatial dimension."""
    labels = np.asarray(cube[dim].values, dtype=float)
    if len(labels) >= 2:
        steps = np.diff(labels)
        if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
            raise parameter_invalid(process, parameter, f"the labels of '{dim}' are not evenly spaced.")
        return float(steps[0]), float(labels[0])
    try:
        x_res, y_res = cube.rio.resolution()
    except Exception:  # rioxarray raises several types when it can't tell
        raise parameter_invalid(
            process, parameter, f"the pixel size along '{dim}' is unknown: it has {len(labels)} label(s)."
        ) from None
    step = x_res if cube[dim].attrs.get("openeo:axis", dim) == "x" else -abs(y_res)
    return float(step), float(labels[0])


def _aligned_grid(crs: CRS, bounds: tuple[float, float, float, float], res: tuple[float, float],
                  align: str) -> Grid:
    """The grid of pixels ``res`` covering ``bounds``, flush with the ``align`` corner."""
    left, bottom, right, top = bounds
    x_res, y_res = res
    width = max(1, math.ceil((right - left) / x_res - 1e-6))
    height = max(1, math.ceil((top - bottom) / y_res - 1e-6))
    x0 = left if align.endswith("left") else right - width * x_res
    y0 = top if align.startswith("upper") else bottom + height * y_res
    return Grid(crs, Affine(x_res, 0.0, x0, 0.0, -y_res, y0), width, height)


def warp(cube: xr.DataArray, goal: Grid, resampling: Resampling) -> xr.DataArray:
    """``cube`` warped onto ``goal``, lazily, one task per output block; no-data is NaN."""
    y, x = spatial_dims(cube)  # type: ignore[misc]
    source = grid_of(cube, "warp", "data")
    if len(cube[y]) > 1 and cube[y].values[1] > cube[y].values[0]:
        cube = cube.isel({y: slice(None, None, -1)})  # the source grid is north-up
    others = [d for d in cube.dims if d not in (y, x)]
    ordered = cube.transpose(*others, y, x)
    values = ordered if ordered.dtype.kind == "f" else ordered.astype(np.float64)
    array = values.data if isinstance(values.data, da.Array) else da.from_array(values.data, chunks=-1)

    lead_chunks = array.chunks[:-2]
    to_source = pyproj.Transformer.from_crs(goal.crs, source.crs, always_xy=True)
    scale_x, scale_y = _scale(source, goal, to_source)
    block_h = _block_size(array.chunks[-2], scale_y, goal.height)
    block_w = _block_size(array.chunks[-1], scale_x, goal.width)
    scale = max(scale_x, scale_y)
    margin = (_KERNEL_RADIUS.get(resampling.name, 1) + 1) * max(1, math.ceil(scale)) + 1
    rows = []
    for r0 in range(0, goal.height, block_h):
        row = []
        for c0 in range(0, goal.width, block_w):
            h, w = min(block_h, goal.height - r0), min(block_w, goal.width - c0)
            block_transform = goal.transform @ Affine.translation(c0, r0)
            window = _source_window(source, block_transform, w, h, to_source, margin)
            if window is None:
                row.append(da.full(array.shape[:-2] + (h, w), np.nan, dtype=array.dtype,
                                   chunks=lead_chunks + ((h,), (w,))))
                continue
            (sr0, sr1), (sc0, sc1) = window
            piece = array[..., sr0:sr1, sc0:sc1].rechunk({array.ndim - 2: -1, array.ndim - 1: -1})
            row.append(piece.map_blocks(
                _warp_block, chunks=lead_chunks + ((h,), (w,)), dtype=array.dtype,
                src_transform=source.transform @ Affine.translation(sc0, sr0), src_crs=source.crs,
                dst_transform=block_transform, dst_crs=goal.crs, dst_shape=(h, w), resampling=resampling,
                scales=(1 / scale_x, 1 / scale_y),
            ))
        rows.append(row)
    data = da.block(rows)

    coords = {name: c for name, c in ordered.coords.items() if not set(c.dims) & {y, x} and name != "spatial_ref"}
    coords[y] = xr.Variable((y,), goal.y, attrs=cube[y].attrs)
    coords[x] = xr.Variable((x,), goal.x, attrs=cube[x].attrs)
    attrs = {k: v for k, v in cube.attrs.items() if k not in ("_FillValue", "nodata")}
    result = xr.DataArray(data, dims=ordered.dims, coords=coords, attrs=attrs, name=cube.name)
    if cube.rio.crs is not None:
        result = result.rio.write_crs(goal.crs).rio.write_transform(goal.transform)
    return result.transpose(*cube.dims)


def _warp_block(block: np.ndarray, *, src_transform: Affine, src_crs: CRS, dst_transform: Affine, dst_crs: CRS,
                dst_shape: tuple[int, int], resampling: Resampling, scales: tuple[float, float]) -> np.ndarray:
    planes = block.reshape((-1,) + block.shape[-2:])
    destination = np.full((planes.shape[0],) + tuple(dst_shape), np.nan, dtype=block.dtype)
    if planes.shape[1] and planes.shape[2]:
        # one plane at a time: GDAL warping several bands at once shares no-data between them
        for source, target in zip(planes, destination, strict=True):
            rasterio.warp.reproject(
                np.ascontiguousarray(source), target, src_transform=src_transform, src_crs=src_crs,
                src_nodata=np.nan, dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=np.nan,
                resampling=resampling,
                # GDAL derives the kernel's scale from the window sizes, which differ per block: one scale for all
                XSCALE=str(scales[0]), YSCALE=str(scales[1]),
            )
    return destination.reshape(block.shape[:-2] + tuple(dst_shape))


def _block_size(chunks: tuple[int, ...], scale: float, total: int) -> int:
    """Output block edge: about the area of one source chunk, within sensible task sizes, and small enough
    that the source window it needs stays bounded when downsampling a lot."""
    scale = max(scale, 1e-9)
    hint = max(chunks) / scale if chunks else _BLOCK
    size = max(_MIN_BLOCK, min(round(hint), _MAX_BLOCK))
    return max(1, min(total, size, math.floor(_MAX_SOURCE_WINDOW / scale)))


def _scale(source: Grid, goal: Grid, to_source: pyproj.Transformer) -> tuple[float, float]:
    """How many source pixels one target pixel spans along x and y (at the centre of the target)."""
    if source.crs == goal.crs:
        return goal.transform.a / source.transform.a, goal.transform.e / source.transform.e
    cols = np.array([0.5, 1.5, 0.5]) + goal.width // 2
    rows = np.array([0.5, 0.5, 1.5]) + goal.height // 2
    xs, ys = apply_transform(goal.transform, cols, rows)
    src_cols, src_rows = apply_transform(~source.transform, *to_source.transform(xs, ys))
    if not (np.all(np.isfinite(src_cols)) and np.all(np.isfinite(src_rows))):
        return 1.0, 1.0
    along_x = math.hypot(src_cols[1] - src_cols[0], src_rows[1] - src_rows[0])
    along_y = math.hypot(src_cols[2] - src_cols[0], src_rows[2] - src_rows[0])
    return (along_x or 1.0), (along_y or 1.0)


def _source_window(source: Grid, block: Affine, width: int, height: int, to_source: pyproj.Transformer,
                   margin: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Rows and columns of the source a target block needs, or None if it lies outside the source."""
    steps = np.linspace(0, 1, 21)
    cols = np.concatenate([steps * width, np.full(21, width), steps * width, np.zeros(21)])
    rows = np.concatenate([np.zeros(21), steps * height, np.full(21, height), steps * height])
    xs, ys = apply_transform(block, cols, rows)
    sx, sy = to_source.transform(xs, ys)
    ok = np.isfinite(sx) & np.isfinite(sy)
    if not ok.any():
        return None
    src_cols, src_rows = apply_transform(~source.transform, np.asarray(sx)[ok], np.asarray(sy)[ok])
    c0 = max(0, math.floor(np.min(src_cols)) - margin)
    c1 = min(source.width, math.ceil(np.max(src_cols)) + margin)
    r0 = max(0, math.floor(np.min(src_rows)) - margin)
    r1 = min(source.height, math.ceil(np.max(src_rows)) + margin)
    if c0 >= c1 or r0 >= r1:
        return None
    return (r0, r1), (c0, c1)


# --- arguments ----------------------------------------------------------------------------------------------


def _method(method: Any, process: str) -> Resampling:
    if method not in _METHODS:
        raise parameter_invalid(process, "method", f"expected one of {', '.join(_METHODS)}, got {method!r}.")
    return _METHODS[method]


def _resolution(resolution: Any) -> tuple[float, float] | None:
    """(x, y) resolution, or None for 'unchanged' (0)."""
    values = resolution if isinstance(resolution, (list, tuple)) else [resolution, resolution]
    if len(values) != 2 or not all(is_number(v) and v >= 0 for v in values):
        raise parameter_invalid(
            "resample_spatial", "resolution", f"expected a number ≥ 0 or [x, y] of two, got {resolution!r}."
        )
    if values[0] == 0 and values[1] == 0:
        return None
    if values[0] == 0 or values[1] == 0:
        raise parameter_invalid(
            "resample_spatial", "resolution", "give both x and y resolutions, or 0 for both to keep them."
        )
    return float(values[0]), float(values[1])


def _projection(projection: Any) -> CRS:
    if isinstance(projection, bool) or not isinstance(projection, (int, str)):
        raise parameter_invalid(
            "resample_spatial", "projection", f"expected an EPSG code or a WKT2 string, got {projection!r}."
        )
    try:
        return CRS.from_epsg(projection) if isinstance(projection, int) else CRS.from_user_input(projection)
    except Exception as err:  # rasterio raises CRSError (and GDAL errors) for unknown systems
        raise parameter_invalid("resample_spatial", "projection", f"unknown reference system {projection!r}: {err}.") \
            from None


# --- temporal ----------------------------------------------------------------------------------------------


def _nearest_in_time(cube: xr.DataArray, dim: str, target: xr.DataArray, valid_within: Any) -> xr.DataArray:
    source_times = _times(cube[dim], "data")
    target_times = _times(target, "target")
    if len(source_times) == 0:
        raise parameter_invalid("resample_cube_temporal", "data", f"the temporal dimension '{dim}' has no labels.")
    window = None if valid_within is None else np.timedelta64(int(round(valid_within * 86_400)), "s")
    nearest_first = [np.lexsort((source_times, np.abs(source_times - when))) for when in target_times]  # ties: earlier
    if window is None:
        result = cube.isel({dim: [int(order[0]) for order in nearest_first]})
    else:
        pieces = []
        for when, order in zip(target_times, nearest_first, strict=True):
            candidates = [int(i) for i in order if abs(source_times[i] - when) <= window]
            pieces.append(_first_valid(cube, dim, candidates))
        result = xr.concat(pieces, dim=dim, coords="minimal", compat="override") if pieces else cube.isel({dim: []})
    labels = xr.Variable((dim,), target.values, attrs={**cube[dim].attrs, TYPE_ATTR: "temporal"})
    result = result.assign_coords({dim: labels}).transpose(*cube.dims)
    return result.rio.write_crs(cube.rio.crs) if cube.rio.crs is not None else result


def _first_valid(cube: xr.DataArray, dim: str, candidates: list[int]) -> xr.DataArray:
    """Per pixel the value of the first candidate label that is valid (finite), else NaN."""
    values = cube if cube.dtype.kind in "fc" else cube.astype(np.float64)
    if not candidates:
        return xr.full_like(values.isel({dim: 0}, drop=True), np.nan)
    result = values.isel({dim: candidates[0]}, drop=True)
    for index in candidates[1:]:
        result = result.where(np.isfinite(result), values.isel({dim: index}, drop=True))
    return result.where(np.isfinite(result))


def _times(labels: xr.DataArray, parameter: str) -> np.ndarray:
    try:
        index = pd.DatetimeIndex(pd.to_datetime(labels.values, utc=True, format="mixed") if labels.dtype.kind != "M"
                                 else labels.values)
    except (ValueError, TypeError):
        raise parameter_invalid(
            "resample_cube_temporal", parameter,
            f"the labels of temporal dimension '{labels.name}' are not all dates or date-times.",
        ) from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.values.astype("datetime64[ns]")


PROCESSES = {
    "resample_spatial": resample_spatial,
    "resample_cube_spatial": resample_cube_spatial,
    "resample_cube_temporal": resample_cube_temporal,
}
