"""Data cube processes: apply, reduce, filter, band math on raster cubes.

Child processes (callbacks) run once over the whole lazy cube, not once per pixel: ``apply``
passes the cube as ``x``; ``reduce_dimension`` passes it with the reduced dimension renamed to
:data:`processes.model.raster_cube.ARRAY_DIM`, along which the array processes (``mean``, ``array_element``, …)
work. The result is therefore one vectorised Dask graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import DimensionNotAvailable, parameter_invalid, process_error
from processes.model.geometry import parse_bbox
from processes.model.intervals import parse_interval
from processes.model.raster_cube import (
    ARRAY_DIM,
    along_dimension,
    band_dim,
    band_metadata,
    copy_dimension_types,
    describe_dimensions,
    dimension_type,
    dims_of_type,
    is_raster_cube,
    nodata_as_nan,
    spatial_dims,
    with_band_metadata,
)


def require_cube(value: Any, process: str, parameter: str = "data") -> xr.DataArray:
    if not is_raster_cube(value):
        raise parameter_invalid(process, parameter, f"expected a raster data cube, got {type(value).__name__}.")
    return value


def require_dimension(cube: xr.DataArray, dimension: Any, process: str) -> str:
    if not isinstance(dimension, str) or dimension not in cube.dims:
        raise DimensionNotAvailable(
            f"A dimension with the specified name '{dimension}' does not exist in the data cube of '{process}'. "
            f"Its dimensions are: {describe_dimensions(cube)}."
        )
    return dimension


def _as_cube_like(result: Any, template: xr.DataArray, process: str) -> xr.DataArray:
    """A callback result as a cube shaped like ``template`` (constants are broadcast)."""
    if isinstance(result, xr.DataArray):
        return copy_dimension_types(template, result)
    if result is None or isinstance(result, (bool, int, float, np.number)):
        fill = np.nan if result is None else result
        return xr.full_like(template, fill, dtype=np.asarray(fill).dtype if result is not None else "float32")
    raise parameter_invalid(process, "process", f"the child process returned {type(result).__name__}, not a value.")


def apply(data: Any, process: Any, context: Any = None) -> xr.DataArray:
    cube = nodata_as_nan(require_cube(data, "apply"))
    result = _as_cube_like(process(x=cube, context=context), cube, "apply")
    if set(result.dims) != set(cube.dims):
        raise parameter_invalid("apply", "process", "the child process must return one value per pixel.")
    return result.transpose(*cube.dims).rio.write_crs(cube.rio.crs) if cube.rio.crs else result.transpose(*cube.dims)


def reduce_dimension(data: Any, reducer: Any, dimension: Any, context: Any = None) -> xr.DataArray:
    cube = nodata_as_nan(require_cube(data, "reduce_dimension"))
    dim = require_dimension(cube, dimension, "reduce_dimension")
    array = along_dimension(cube, dim, "reduce_dimension")
    result = reducer(data=array, context=context)
    template = cube.isel({dim: 0}, drop=True)
    result = _as_cube_like(result, template, "reduce_dimension")
    if ARRAY_DIM in result.dims:
        if result.sizes[ARRAY_DIM] != 1:
            raise parameter_invalid(
                "reduce_dimension",
                "reducer",
                f"the reducer must return a single value per '{dim}' array (use a reducer such as mean, max, "
                "array_element), but it returned an array.",
            )
        result = result.isel({ARRAY_DIM: 0}, drop=True)
    if ARRAY_DIM in result.coords:
        result = result.drop_vars(ARRAY_DIM)
    result = result.transpose(*template.dims)
    if cube.rio.crs is not None:
        result = result.rio.write_crs(cube.rio.crs)
    return result


def reduce_spatial(data: Any, reducer: Any, context: Any = None) -> xr.DataArray:
    """Reduce x and y together: the reducer sees all pixels of a slice as one array (``ARRAY_DIM``)."""
    cube = require_cube(data, "reduce_spatial")
    names = spatial_dims(cube)
    if names is None:
        raise process_error(
            "DimensionMissing", f"reduce_spatial needs spatial dimensions x and y; the cube has {describe_dimensions(cube)}."
        )
    y, x = names
    flat = cube.drop_vars([c for c in (x, y, "spatial_ref") if c in cube.coords])
    flat = flat.stack({ARRAY_DIM: (y, x)}, create_index=False)
    result = reducer(data=flat, context=context)
    template = cube.isel({x: 0, y: 0}, drop=True)
    result = _as_cube_like(result, template, "reduce_spatial")
    if ARRAY_DIM in result.dims:
        if result.sizes[ARRAY_DIM] != 1:
            raise parameter_invalid(
                "reduce_spatial", "reducer", "the reducer must return a single value per slice (e.g. mean, max)."
            )
        result = result.isel({ARRAY_DIM: 0}, drop=True)
    if ARRAY_DIM in result.coords:
        result = result.drop_vars(ARRAY_DIM)
    return result.transpose(*template.dims)


def filter_bbox(data: Any, extent: Any) -> xr.DataArray:
    cube = require_cube(data, "filter_bbox")
    names = spatial_dims(cube)
    if names is None:
        raise process_error("DimensionMissing", "filter_bbox needs a cube with spatial dimensions x and y.")
    y, x = names
    bbox = parse_bbox(extent, "filter_bbox", "extent")
    if cube.rio.crs is not None:
        bbox = bbox.to_crs(cube.rio.crs)
    # pixel centres inside the box, regardless of the direction of the y axis
    keep_x = (cube[x] >= bbox.west) & (cube[x] <= bbox.east)
    keep_y = (cube[y] >= bbox.south) & (cube[y] <= bbox.north)
    return cube.isel({x: np.flatnonzero(keep_x.values), y: np.flatnonzero(keep_y.values)})


def filter_temporal(data: Any, extent: Any, dimension: Any = None) -> xr.DataArray:
    cube = require_cube(data, "filter_temporal")
    if dimension is None:
        temporal = dims_of_type(cube, "temporal")
        if not temporal:
            raise DimensionNotAvailable(
                f"filter_temporal needs a temporal dimension; the cube has {describe_dimensions(cube)}."
            )
        dims = temporal
    else:
        dims = [require_dimension(cube, dimension, "filter_temporal")]
        if dimension_type(cube, dims[0]) != "temporal":
            raise process_error("DimensionNotAvailable", f"Dimension '{dimension}' is not temporal.")
    interval = parse_interval(extent, "filter_temporal", "extent")
    if interval is None:  # null is "no filter" for load_collection, but filter_temporal requires an extent
        raise parameter_invalid("filter_temporal", "extent", "expected two dates [start, end], not null.")
    for dim in dims:
        labels = pd.DatetimeIndex(cube[dim].values)
        keep = np.ones(len(labels), dtype=bool)
        if interval[0] is not None:
            keep &= labels >= pd.Timestamp(interval[0]).tz_localize(None)
        if interval[1] is not None:
            keep &= labels < pd.Timestamp(interval[1]).tz_localize(None)
        cube = cube.isel({dim: np.flatnonzero(keep)})
    return cube


def filter_bands(data: Any, bands: Any = None, wavelengths: Any = None) -> xr.DataArray:
    cube = require_cube(data, "filter_bands")
    dim = band_dim(cube)
    if dim is None:
        raise process_error("DimensionMissing", f"filter_bands needs a bands dimension; the cube has {describe_dimensions(cube)}.")
    if not bands and not wavelengths:
        raise process_error(
            "BandFilterParameterMissing",
            "filter_bands needs `bands` or `wavelengths`: give the band names or wavelength ranges to keep.",
        )
    meta = band_metadata(cube)
    labels = [str(label) for label in cube[dim].values]
    keep: list[str] = []
    for band in bands or []:
        if band in labels:
            match = [band]
        else:
            match = [label for label in labels if meta[label].get("common_name") == band]
        if not match:
            raise parameter_invalid(
                "filter_bands", "bands", f"band '{band}' is not in the data cube; it has {', '.join(labels)}."
            )
        keep.extend(m for m in match if m not in keep)
    for pair in wavelengths or []:
        if not isinstance(pair, list) or len(pair) != 2:
            raise parameter_invalid("filter_bands", "wavelengths", "each range must be [min, max] in micrometres.")
        low, high = pair
        for label in labels:
            wl = meta[label].get("center_wavelength")
            if wl is not None and low <= wl <= high and label not in keep:
                keep.append(label)
    return cube.sel({dim: keep})


def _resolve_band(cube: xr.DataArray, dim: str, name: str, which: str) -> str:
    labels = [str(label) for label in cube[dim].values]
    if name in labels:
        return name
    meta = band_metadata(cube)
    by_common = [label for label in labels if meta[label].get("common_name") == name]
    if len(by_common) == 1:
        return by_common[0]
    code = "NirBandAmbiguous" if which == "nir" else "RedBandAmbiguous"
    raise process_error(
        code,
        f"The {which.upper() if which == 'nir' else which} band can't be resolved: no band is named or has the "
        f"common name '{name}' (bands: {', '.join(labels)}). Specify it with the parameter '{which}'.",
    )


def ndvi(data: Any, nir: str = "nir", red: str = "red", target_band: str | None = None) -> xr.DataArray:
    cube = require_cube(data, "ndvi")
    dim = band_dim(cube)
    if dim is None:
        raise process_error(
            "DimensionAmbiguous", f"ndvi needs a cube with a bands dimension; it has {describe_dimensions(cube)}."
        )
    nir_band = _resolve_band(cube, dim, nir, "nir")
    red_band = _resolve_band(cube, dim, red, "red")
    # integer bands (uint16 digital numbers) would wrap around in nir - red
    float_type = np.result_type(cube.dtype, np.float32)
    nir_values = cube.sel({dim: nir_band}, drop=True).astype(float_type)
    red_values = cube.sel({dim: red_band}, drop=True).astype(float_type)
    result = (nir_values - red_values) / (nir_values + red_values)
    if target_band is None:
        return result.rename("ndvi")  # the name tables give the value column (e.g. parcel profiles as CSV)
    if target_band in [str(label) for label in cube[dim].values]:
        raise process_error("BandExists", f"A band named '{target_band}' exists already; choose another target_band.")
    new_band = result.expand_dims({dim: [target_band]}).transpose(*cube.dims)
    new_band = copy_dimension_types(cube, new_band)
    merged = xr.concat([cube, new_band.astype(cube.dtype)], dim=dim, coords="minimal", compat="override")
    merged = copy_dimension_types(cube, merged)
    return with_band_metadata(merged, {**band_metadata(cube), target_band: {}})


PROCESSES = {
    "apply": apply,
    "reduce_dimension": reduce_dimension,
    "reduce_spatial": reduce_spatial,
    "filter_bbox": filter_bbox,
    "filter_temporal": filter_temporal,
    "filter_bands": filter_bands,
    "ndvi": ndvi,
}
