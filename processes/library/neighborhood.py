"""Neighborhood processes: ``apply_kernel`` (2D convolution) and ``apply_neighborhood`` (focal callbacks).

``apply_kernel`` correlates every spatial plane with the kernel in one lazy pass: Dask's
``map_overlap`` hands each chunk to ``scipy.ndimage.correlate`` with a margin of half the kernel
from its neighbours, so chunk edges are seamless. At the cube's outer edges no margin is added
(``boundary="none"``) and scipy's own border mode extends the data as the spec's ``border`` says;
``wrap`` needs the opposite edge instead, which Dask's ``periodic`` boundary supplies.

``apply_neighborhood`` cuts the cube into windows of ``size`` (plus ``overlap`` on each side, padded
with no-data at the cube's edges) and calls the child process once per window, at evaluation time,
on a lazy single-chunk cube with the cube's dimensions and labels. The window results are trimmed
of their overlap and put back together into one Dask array. Building the graph per window keeps the
callback out of the Dask tasks: nothing but arrays travels to the workers, and processes such as
``run_udf`` can build their own tasks over each window. When every dimension but one has windows of
one pixel without overlap, the neighborhoods are labeled arrays along that dimension: the callback
then runs once over all pixels, vectorised, as in ``apply_dimension``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pyproj
import scipy.ndimage
import xarray as xr

from processes.core.errors import parameter_invalid, process_error
from processes.library.datacube import require_cube, require_dimension
from processes.model.raster_cube import (
    ARRAY_DIM,
    along_dimension,
    copy_dimension_types,
    dimension_type,
    spatial_dims,
)
from processes.model.values import is_number

# --- apply_kernel ------------------------------------------------------------------------------------

# The spec's border modes as scipy.ndimage modes (see scipy's docs for the diagrams).
_SCIPY_MODES = {"replicate": "nearest", "reflect": "reflect", "reflect_pixel": "mirror", "wrap": "wrap"}


def apply_kernel(
    data: Any, kernel: Any, factor: Any = 1, border: Any = 0, replace_invalid: Any = 0
) -> xr.DataArray:
    cube = require_cube(data, "apply_kernel")
    names = spatial_dims(cube)
    if names is None:
        raise process_error(
            "DimensionMissing", "apply_kernel needs a cube with the spatial dimensions x and y."
        )
    y, x = names
    weights = _kernel_weights(kernel)
    if len(cube[y]) > 1 and cube[y].values[1] > cube[y].values[0]:
        weights = weights[::-1]  # the kernel's first row is the northern one, also in south-up cubes
    mode, cval = _border_mode(border)
    if not is_number(factor):
        raise parameter_invalid("apply_kernel", "factor", f"expected a number, got {factor!r}.")
    if not is_number(replace_invalid):
        raise parameter_invalid("apply_kernel", "replace_invalid", f"expected a number, got {replace_invalid!r}.")

    values = _valid_numbers(cube, float(replace_invalid))
    array = values.data if isinstance(values.data, da.Array) else da.from_array(values.data, chunks=-1)
    axes = (cube.dims.index(y), cube.dims.index(x))
    shape = [1] * cube.ndim
    shape[axes[0]], shape[axes[1]] = weights.shape
    nd_weights = weights.reshape(shape)
    halves = (weights.shape[0] // 2, weights.shape[1] // 2)
    for axis, half in zip(axes, halves, strict=True):
        if half >= array.shape[axis]:  # a kernel wider than the cube: one chunk along that axis
            array = array.rechunk({axis: -1})
    # A margin only where there are neighbouring chunks; a single chunk handles its borders alone.
    depth = {
        axis: (half if len(array.chunks[axis]) > 1 else 0)
        for axis, half in zip(axes, halves, strict=True)
    }
    boundary = {axis: ("periodic" if mode == "wrap" else "none") for axis in axes}
    result = array.map_overlap(
        _correlate,
        depth=depth,
        boundary=boundary,
        dtype=array.dtype,
        weights=nd_weights.astype(array.dtype),
        mode=mode,
        cval=cval,
        factor=float(factor),
    )
    out = cube.copy(data=result)
    out.attrs.pop("_FillValue", None)
    return out


def _correlate(block: np.ndarray, *, weights: np.ndarray, mode: str, cval: float, factor: float) -> np.ndarray:
    result = scipy.ndimage.correlate(block, weights, mode=mode, cval=cval)
    return result * factor if factor != 1 else result


def _kernel_weights(kernel: Any) -> np.ndarray:
    rows = kernel if isinstance(kernel, (list, tuple)) else None
    if not rows or not all(isinstance(r, (list, tuple)) and r for r in rows):
        raise parameter_invalid("apply_kernel", "kernel", "expected a non-empty two-dimensional array of numbers.")
    if len({len(r) for r in rows}) != 1:
        raise parameter_invalid("apply_kernel", "kernel", "all rows of the kernel must have the same length.")
    if not all(is_number(v) for r in rows for v in r):
        raise parameter_invalid("apply_kernel", "kernel", "the kernel's weights must all be numbers.")
    weights = np.array(rows, dtype=float)
    if weights.shape[0] % 2 == 0 or weights.shape[1] % 2 == 0:
        raise process_error(
            "KernelDimensionsUneven",
            f"Each dimension of the kernel must have an uneven number of elements; this kernel has "
            f"{weights.shape[0]} rows of {weights.shape[1]} weights. Pad it with zeros to an odd size.",
        )
    return weights


def _border_mode(border: Any) -> tuple[str, float]:
    if is_number(border):
        return "constant", float(border)
    if isinstance(border, str) and border in _SCIPY_MODES:
        return _SCIPY_MODES[border], 0.0
    raise parameter_invalid(
        "apply_kernel", "border", f"expected a number or one of {', '.join(_SCIPY_MODES)}, got {border!r}."
    )


def _valid_numbers(cube: xr.DataArray, replacement: float) -> xr.DataArray:
    """The cube as floats; NaN, infinite and non-numerical values replaced (booleans become 0/1)."""
    kind = cube.dtype.kind
    if kind == "f":
        return cube.where(np.isfinite(cube), replacement)
    if kind in "biu":
        return cube.astype(np.float64)
    if kind == "O":
        converted = xr.apply_ufunc(
            np.vectorize(_object_to_float, otypes=[np.float64]), cube, dask="parallelized",
            output_dtypes=[np.float64],
        )
        return converted.where(np.isfinite(converted), replacement)
    return xr.full_like(cube, replacement, dtype=np.float64)


def _object_to_float(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    return float(value) if is_number(value) else np.nan


# --- apply_neighborhood ------------------------------------------------------------------------------

# Windows per evaluation: beyond this the graph gets too big to build; larger windows fix it.
MAX_WINDOWS = 25_000

_DURATION = re.compile(r"^P(?=\d|T\d)")


@dataclass(frozen=True)
class _Window:
    """One neighborhood along one dimension, in index positions of the cube."""

    start: int
    """First position of the window with its overlap, clipped to the cube."""
    stop: int
    """End (exclusive) of the window with its overlap, clipped to the cube."""
    pad_before: int
    """No-data positions added before ``start`` (the overlap missing at the cube's first edge)."""
    pad_after: int
    """No-data positions added after ``stop``."""
    keep: slice
    """Positions of the window's core (without overlap) in the padded window."""


def apply_neighborhood(
    data: Any, process: Any, size: Any, overlap: Any = None, context: Any = None
) -> xr.DataArray:
    cube = require_cube(data, "apply_neighborhood")
    sizes = _extents(cube, size, "size")
    overlaps = _extents(cube, overlap, "overlap") if overlap is not None else {}
    windows = {dim: _windows(cube, dim, sizes.get(dim), overlaps.get(dim)) for dim in map(str, cube.dims)}
    long_dims = [d for d, ws in windows.items() if any(w.stop - w.start + w.pad_before + w.pad_after > 1 for w in ws)]
    if len(long_dims) == 1 and all(len(ws) == cube.sizes[d] for d, ws in windows.items() if d != long_dims[0]):
        return _along_one_dimension(cube, long_dims[0], windows[long_dims[0]], process, context)
    count = int(np.prod([len(ws) for ws in windows.values()]))
    if count > MAX_WINDOWS:
        raise parameter_invalid(
            "apply_neighborhood", "size",
            f"the sizes give {count} neighborhoods, more than the {MAX_WINDOWS} supported; use larger sizes "
            "(spatial windows of 64 to 512 pixels are common).",
        )
    return _per_window(cube, windows, process, context)


def _extents(cube: xr.DataArray, items: Any, parameter: str) -> dict[str, int | pd.DateOffset | None]:
    """``size``/``overlap`` as ``{dim: pixels, a duration, or None for all}``."""
    if not isinstance(items, list):
        raise parameter_invalid("apply_neighborhood", parameter, "expected a list of {dimension, value, unit}.")
    extents: dict[str, int | pd.DateOffset | None] = {}
    for item in items:
        if not isinstance(item, dict) or "dimension" not in item:
            raise parameter_invalid(
                "apply_neighborhood", parameter, f"each entry must be an object with dimension and value, got {item!r}."
            )
        dim = require_dimension(cube, item["dimension"], "apply_neighborhood")
        if dim in extents:
            raise parameter_invalid("apply_neighborhood", parameter, f"dimension '{dim}' is given twice.")
        extents[dim] = _extent(cube, dim, item.get("value"), item.get("unit"), parameter)
    return extents


def _extent(cube: xr.DataArray, dim: str, value: Any, unit: Any, parameter: str) -> int | pd.DateOffset | None:
    if value is None:
        return None if parameter == "size" else 0
    if isinstance(value, str):
        if dimension_type(cube, dim) != "temporal" or not _DURATION.match(value):
            raise parameter_invalid(
                "apply_neighborhood", parameter,
                f"'{value}' for dimension '{dim}': durations (ISO 8601, e.g. P10D) are only for temporal dimensions.",
            )
        return _duration(value, parameter)
    if not is_number(value) or value < 0:
        raise parameter_invalid("apply_neighborhood", parameter, f"expected a number ≥ 0 for '{dim}', got {value!r}.")
    if unit not in (None, "px", "m"):
        raise parameter_invalid("apply_neighborhood", parameter, f"unit must be 'px', 'm' or null, got {unit!r}.")
    pixels = value
    if dimension_type(cube, dim) == "spatial" and unit != "px":
        pixels = value / _pixel_size(cube, dim, unit, parameter)
    elif unit == "m":
        raise parameter_invalid("apply_neighborhood", parameter, f"unit 'm' is only for spatial dimensions, not '{dim}'.")
    pixels = int(round(pixels))
    if parameter == "size" and pixels < 1:
        raise parameter_invalid(
            "apply_neighborhood", parameter, f"the size for '{dim}' is less than one pixel; give at least 1 px."
        )
    return pixels


def _pixel_size(cube: xr.DataArray, dim: str, unit: str | None, parameter: str) -> float:
    """The size of one pixel of a spatial dimension in ``unit`` (metres, or the CRS's unit if None)."""
    labels = np.asarray(cube[dim].values, dtype=float)
    if len(labels) < 2:
        raise parameter_invalid(
            "apply_neighborhood", parameter, f"the pixel size along '{dim}' is unknown (one label); give the value in px."
        )
    step = abs(float(labels[1] - labels[0]))
    if unit is None:
        return step
    crs = cube.rio.crs
    axis = pyproj.CRS(crs).axis_info[0] if crs is not None else None
    if axis is None or axis.unit_name not in ("metre", "meter", "US survey foot", "foot"):
        raise parameter_invalid(
            "apply_neighborhood", parameter,
            f"'{dim}' is not in a projected reference system with linear units; give the value in px.",
        )
    return step * axis.unit_conversion_factor


def _duration(value: str, parameter: str) -> pd.DateOffset:
    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", value)
    if not match or not any(match.groups()):
        raise parameter_invalid("apply_neighborhood", parameter, f"'{value}' is not an ISO 8601 duration like P1M.")
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return pd.DateOffset(years=years, months=months, weeks=weeks, days=days, hours=hours, minutes=minutes,
                         seconds=seconds)


def _windows(cube: xr.DataArray, dim: str, size: Any, overlap: Any) -> list[_Window]:
    n = cube.sizes[dim]
    if isinstance(size, pd.DateOffset) or isinstance(overlap, pd.DateOffset):
        return _time_windows(pd.DatetimeIndex(cube[dim].values), size, overlap)
    step = n if size is None else size
    margin = overlap or 0
    windows = []
    for start in range(0, max(n, 1), max(step, 1)):
        stop = min(start + step, n)
        lo, hi = start - margin, stop + margin
        windows.append(
            _Window(max(lo, 0), min(hi, n), max(-lo, 0), max(hi - n, 0), slice(margin, margin + stop - start))
        )
    return windows


def _time_windows(labels: pd.DatetimeIndex, size: Any, overlap: Any) -> list[_Window]:
    """Windows of calendar periods from the first label; the overlap is whatever labels lie within it."""
    if not isinstance(size, pd.DateOffset) or (overlap not in (None, 0) and not isinstance(overlap, pd.DateOffset)):
        raise parameter_invalid(
            "apply_neighborhood", "overlap",
            "on a temporal dimension give both size and overlap as durations (e.g. P1M), or both in labels.",
        )
    windows = []
    start_time = labels[0]
    while start_time <= labels[-1]:
        end_time = start_time + size
        start, stop = labels.searchsorted(start_time), labels.searchsorted(end_time)
        if isinstance(overlap, pd.DateOffset):
            lo, hi = labels.searchsorted(start_time - overlap), labels.searchsorted(end_time + overlap)
        else:
            lo, hi = start, stop
        if stop > start:
            windows.append(_Window(int(lo), int(hi), 0, 0, slice(int(start - lo), int(stop - lo))))
        start_time = end_time
    return windows


def _per_window(cube: xr.DataArray, windows: dict[str, list[_Window]], process: Any, context: Any) -> xr.DataArray:
    if any(w.pad_before or w.pad_after for ws in windows.values() for w in ws) and cube.dtype.kind not in "fc":
        cube = cube.astype(np.float64)  # room for the no-data of the missing overlap
    source = cube.data if isinstance(cube.data, da.Array) else da.from_array(cube.data, chunks=-1)
    dims = [str(d) for d in cube.dims]
    grid = [len(windows[d]) for d in dims]
    pieces = np.empty(grid, dtype=object)
    for index in itertools.product(*(range(n) for n in grid)):
        parts = [windows[d][i] for d, i in zip(dims, index, strict=True)]
        block = source[tuple(slice(w.start, w.stop) for w in parts)]
        padding = [(w.pad_before, w.pad_after) for w in parts]
        if any(p != (0, 0) for p in padding):
            block = da.pad(block, padding, mode="constant", constant_values=np.nan)
        window = xr.DataArray(
            block.rechunk(-1), dims=cube.dims, coords=_window_coords(cube, dict(zip(dims, parts, strict=True))),
            attrs=cube.attrs, name=cube.name,
        )
        result = _call(process, window, context)
        pieces[index] = result.data[tuple(w.keep for w in parts)]
    data = da.block(pieces.tolist())
    return xr.DataArray(data, dims=cube.dims, coords=cube.coords, attrs=cube.attrs, name=cube.name)


def _call(process: Any, window: xr.DataArray, context: Any) -> xr.DataArray:
    """The child process on one neighborhood, checked to keep the neighborhood's dimensions and shape."""
    result = process(data=window, context=context)
    if not isinstance(result, xr.DataArray) or set(result.dims) != set(window.dims):
        got = f"dimensions {', '.join(map(str, result.dims))}" if isinstance(result, xr.DataArray) else type(result).__name__
        raise process_error(
            "DataCubePropertiesImmutable",
            f"The child process of apply_neighborhood must return the neighborhood with its dimensions "
            f"{', '.join(map(str, window.dims))} unchanged, but it returned {got}.",
        )
    result = result.transpose(*window.dims)
    if result.shape != window.shape:
        raise process_error(
            "DataCubePropertiesImmutable",
            f"The child process of apply_neighborhood changed the shape of a neighborhood from {window.shape} to "
            f"{result.shape}; it must return a value for every pixel, overlap included.",
        )
    if not isinstance(result.data, da.Array):
        result = result.copy(data=da.from_array(result.data, chunks=-1))
    return result


def _window_coords(cube: xr.DataArray, parts: dict[str, _Window]) -> dict[Hashable, Any]:
    """Coordinates of a window: the cube's labels, extended past its edges where padded."""
    coords: dict[Hashable, Any] = {}
    for name, coord in cube.coords.items():
        if name in parts:
            w = parts[str(name)]
            labels = coord.values[w.start:w.stop]
            if w.pad_before or w.pad_after:
                labels = _extended(coord.values, w, str(name))
            coords[name] = xr.Variable((name,), labels, attrs=coord.attrs)
        elif not set(coord.dims) & set(parts):
            coords[name] = coord
    return coords


def _extended(labels: np.ndarray, w: _Window, dim: str) -> np.ndarray:
    if len(labels) < 2 or labels.dtype.kind not in "iufM":
        raise parameter_invalid(
            "apply_neighborhood", "overlap",
            f"the overlap along '{dim}' reaches past the cube's edge, which needs evenly spaced numeric or temporal "
            f"labels to extend; '{dim}' has {len(labels)} label(s) of type {labels.dtype}. Drop the overlap there.",
        )
    first_step, last_step = labels[1] - labels[0], labels[-1] - labels[-2]
    before = labels[0] - first_step * np.arange(w.pad_before, 0, -1)
    after = labels[-1] + last_step * np.arange(1, w.pad_after + 1)
    return np.concatenate([before, labels[w.start:w.stop], after])


def _along_one_dimension(cube: xr.DataArray, dim: str, windows: list[_Window], process: Any,
                         context: Any) -> xr.DataArray:
    """Neighborhoods that are labeled arrays along ``dim``: each window of ``dim`` for all pixels at once."""
    pieces = []
    for w in windows:
        part = cube.isel({dim: slice(w.start, w.stop)})
        if w.pad_before or w.pad_after:
            part = _padded(part, cube, dim, w)
        part = part.chunk({dim: -1}) if part.chunks is not None else part
        # as apply_dimension would pass it, so that run_udf knows the dimension
        array = along_dimension(part, dim, "apply_dimension")
        result = process(data=array, context=context)
        if not isinstance(result, xr.DataArray) or set(result.dims) != set(array.dims) \
                or result.sizes[ARRAY_DIM] != array.sizes[ARRAY_DIM]:
            raise process_error(
                "DataCubePropertiesImmutable",
                f"The child process of apply_neighborhood gets labeled arrays along '{dim}' and must return arrays "
                f"of the same length ({array.sizes[ARRAY_DIM]}), one per pixel.",
            )
        result = result.drop_vars(ARRAY_DIM, errors="ignore").rename({ARRAY_DIM: dim})
        pieces.append(result.transpose(*cube.dims).isel({dim: w.keep}))
    out = pieces[0] if len(pieces) == 1 else xr.concat(pieces, dim=dim, coords="minimal", compat="override")
    out = copy_dimension_types(cube, out.assign_coords({dim: cube[dim]}))
    return out.rio.write_crs(cube.rio.crs) if cube.rio.crs is not None else out


def _padded(part: xr.DataArray, cube: xr.DataArray, dim: str, w: _Window) -> xr.DataArray:
    if part.dtype.kind not in "fc":
        part = part.astype(np.float64)
    padded = part.pad({dim: (w.pad_before, w.pad_after)}, mode="constant", constant_values=np.nan)
    labels = _extended(cube[dim].values, w, dim)
    return padded.assign_coords({dim: xr.Variable((dim,), labels, attrs=cube[dim].attrs)})


PROCESSES = {
    "apply_kernel": apply_kernel,
    "apply_neighborhood": apply_neighborhood,
}
