"""Raster data cube conventions: openEO dimensions on an ``xarray.DataArray``.

A raster cube is a (usually Dask-backed) ``DataArray`` whose dimensions carry openEO types. The type
of a dimension is stored in one place, the ``openeo:type`` attribute of its coordinate variable, so
it survives xarray arithmetic and selection and is never guessed from a dimension's name. Spatial
coordinates are pixel centres; the CRS is carried with rioxarray (``cube.rio.crs``); nodata is NaN
in float cubes.

Conventional names (used by ``load_collection``): ``t`` (temporal), ``bands`` (band labels),
``y``/``x`` (spatial).

``ARRAY_DIM`` is the name under which a callback of ``reduce_dimension``/``apply_dimension`` sees the
dimension it works along: array processes (``mean``, ``array_element``, …) given a ``DataArray``
work along ``ARRAY_DIM``; the labels stay on it as coordinate.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor on DataArrays)
import xarray as xr

DimType = Literal["spatial", "temporal", "bands", "other", "geometry"]
DIM_TYPES: tuple[DimType, ...] = ("spatial", "temporal", "bands", "other", "geometry")
TYPE_ATTR = "openeo:type"
AXIS_ATTR = "openeo:axis"  # "x" or "y" on spatial dimensions
ARRAY_DIM = "__array__"
EMPTY_CUBE_ATTR = "openeo:empty_cube"
PROCESS_ATTR = "openeo:process"  # on the ARRAY_DIM coordinate: the process whose callback sees it
DIMENSION_ATTR = "openeo:dimension"  # on the ARRAY_DIM coordinate: the dimension's own name  # on the 0-d array of create_data_cube: a cube, not a number


def is_raster_cube(value: object) -> bool:
    return isinstance(value, xr.DataArray) and any(TYPE_ATTR in coordinate_attrs(value, d) for d in value.dims)


def coordinate_attrs(cube: xr.DataArray | xr.Dataset, dim: Hashable) -> Mapping[str, Any]:
    """The attributes of ``dim``'s coordinate (empty without one), read off the coordinate variable:
    ``cube[dim]`` would build a DataArray (with its indexes) for each look-up, and the dimension
    helpers below run dozens of look-ups per process — a tenth of a map tile's time."""
    variable = cube.coords.variables.get(dim)
    return variable.attrs if variable is not None else {}


def dimension_type(cube: xr.DataArray | xr.Dataset, dim: Hashable) -> DimType:
    """The openEO type of ``dim`` (of a cube, or of a vector cube's Dataset); dimensions made without
    a type count as ``other``."""
    return coordinate_attrs(cube, dim).get(TYPE_ATTR, "other")


def with_dimension_type(cube: xr.DataArray, dim: str, dim_type: DimType, axis: str | None = None) -> xr.DataArray:
    """Return ``cube`` with ``dim`` typed (creating an integer index coordinate if it has none).

    The attribute is set on a shallow copy, so the dimension's index (e.g. xvec's GeometryIndex)
    is kept.
    """
    if dim_type not in DIM_TYPES:
        raise ValueError(f"unknown dimension type {dim_type!r}; expected one of {DIM_TYPES}")
    if dim not in cube.coords:
        cube = cube.assign_coords({dim: np.arange(cube.sizes[dim])})
    cube = cube.copy(deep=False)
    cube[dim].attrs[TYPE_ATTR] = dim_type
    if axis is not None:
        cube[dim].attrs[AXIS_ATTR] = axis
    return cube


def dims_of_type(cube: xr.DataArray, dim_type: DimType) -> list[str]:
    return [str(d) for d in cube.dims if dimension_type(cube, d) == dim_type]


def spatial_dims(cube: xr.DataArray) -> tuple[str, str] | None:
    """``(y, x)`` names of the spatial dimensions, or None if the cube has none."""
    spatial = dims_of_type(cube, "spatial")
    if not spatial:
        return None
    x = next((d for d in spatial if coordinate_attrs(cube, d).get(AXIS_ATTR) == "x"), None)
    y = next((d for d in spatial if coordinate_attrs(cube, d).get(AXIS_ATTR) == "y"), None)
    if x is None or y is None:
        if len(spatial) != 2:
            return None
        y, x = spatial
    return y, x


def band_dim(cube: xr.DataArray) -> str | None:
    bands = dims_of_type(cube, "bands")
    return bands[0] if bands else None


def time_dim(cube: xr.DataArray) -> str | None:
    temporal = dims_of_type(cube, "temporal")
    return temporal[0] if temporal else None


def typed_coord(values: Iterable, dim: str, dim_type: DimType, axis: str | None = None) -> xr.DataArray:
    """A coordinate variable for a new dimension, already typed."""
    attrs: dict[str, str] = {TYPE_ATTR: dim_type}
    if axis is not None:
        attrs[AXIS_ATTR] = axis
    return xr.DataArray(np.asarray(list(values)), dims=(dim,), attrs=attrs)


def new_cube(
    data,
    dims: dict[str, tuple[DimType, Iterable]],
    crs=None,
    name: str | None = None,
    coord_attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> xr.DataArray:
    """Build a raster cube from an array and ``{name: (type, labels)}`` in axis order.

    Spatial dimensions named ``x``/``y`` get the matching axis; ``crs`` (anything pyproj accepts)
    is written as rioxarray writes it when the cube has spatial dimensions; ``coord_attrs`` adds
    attributes to coordinates (e.g. band metadata).
    """
    coords: dict[str, xr.Variable] = {}
    for dim, (dim_type, labels) in dims.items():
        axis = dim if dim_type == "spatial" and dim in ("x", "y") else None
        values = labels
        if dim_type == "temporal":
            values = _naive_utc(labels)
        attrs: dict[str, Any] = {TYPE_ATTR: dim_type}
        if axis is not None:
            attrs[AXIS_ATTR] = axis
        if coord_attrs and dim in coord_attrs:
            attrs.update(coord_attrs[dim])
        coords[dim] = xr.Variable((dim,), np.asarray(values if isinstance(values, np.ndarray | pd.Index)
                                                     else list(values)), attrs)
    spatial = [dim for dim, (dim_type, _) in dims.items() if dim_type == "spatial"]
    georeferenced = crs is not None and ({"x", "y"} <= set(spatial) or len(spatial) == 2)
    if georeferenced:  # as rio.write_crs writes it, built once per CRS
        coords[GRID_MAPPING] = _grid_mapping(_crs_key(crs)).variable.copy()
    cube = xr.DataArray(data, dims=tuple(dims), coords=coords, name=name)
    if georeferenced:
        cube.encoding["grid_mapping"] = GRID_MAPPING
    return cube


def _naive_utc(labels: Iterable) -> pd.DatetimeIndex:
    """Date-time labels as naive UTC, as temporal coordinates hold them; ``datetime64`` labels already
    are (a load's dates), and are taken as they are rather than parsed one by one."""
    if isinstance(labels, np.ndarray) and labels.dtype.kind == "M":
        return pd.DatetimeIndex(labels.astype("datetime64[ns]", copy=False))
    return pd.DatetimeIndex(pd.to_datetime(list(labels), utc=True)).tz_localize(None)


GRID_MAPPING = "spatial_ref"
"""rioxarray's coordinate holding the CRS (CF grid mapping attributes and its WKT)."""


def _crs_key(crs: Any) -> Any:
    if isinstance(crs, pyproj.CRS):
        return crs.srs  # the text it was made from: no WKT to write
    return crs.to_wkt() if hasattr(crs, "to_wkt") else crs


@functools.lru_cache(maxsize=64)
def _grid_mapping(crs: Any) -> xr.DataArray:
    """The ``spatial_ref`` coordinate of ``crs`` exactly as ``rio.write_crs`` makes it, made once per CRS:
    building its CF attributes costs PROJ more than the rest of a map tile's cube."""
    template = xr.DataArray(np.zeros((1, 1), dtype=np.uint8), dims=("y", "x"), coords={"y": [0.0], "x": [0.0]})
    return template.rio.write_crs(crs).coords[GRID_MAPPING].copy(deep=True)


def copy_dimension_types(source: xr.DataArray, target: xr.DataArray) -> xr.DataArray:
    """Re-apply the dimension types of ``source`` to same-named dimensions of ``target``.

    For results of library calls that rebuild coordinates and lose their attributes.
    """
    for dim in target.dims:
        if TYPE_ATTR in coordinate_attrs(source, dim):
            if dimension_type(target, dim) != dimension_type(source, dim):
                target = with_dimension_type(
                    target, str(dim), dimension_type(source, dim), coordinate_attrs(source, dim).get(AXIS_ATTR)
                )
    return target


def describe_dimensions(cube: xr.DataArray) -> str:
    """``"t (temporal), bands (bands), y (spatial), x (spatial)"`` for error messages."""
    return ", ".join(f"{d} ({dimension_type(cube, d)})" for d in cube.dims)


BANDS_ATTR = "openeo:bands"  # on the bands coordinate: {label: {"common_name": …, "center_wavelength": …}}


def band_metadata(cube: xr.DataArray) -> dict[str, dict]:
    """Per-band metadata (common names, wavelengths) of the cube's bands dimension, by label."""
    dim = band_dim(cube)
    if dim is None:
        return {}
    known = coordinate_attrs(cube, dim).get(BANDS_ATTR, {})
    return {str(label): dict(known.get(str(label), {})) for label in cube[dim].values}


def with_band_metadata(cube: xr.DataArray, metadata: dict[str, dict]) -> xr.DataArray:
    dim = band_dim(cube)
    if dim is None:
        return cube
    coord = cube[dim].copy()
    coord.attrs = {**coord.attrs, BANDS_ATTR: {str(k): dict(v) for k, v in metadata.items()}}
    return cube.assign_coords({dim: coord})


def nodata_as_nan(cube: xr.DataArray) -> xr.DataArray:
    """An integer cube with a nodata value (``_FillValue``) as float cube with NaN, as callbacks expect."""
    fill = cube.attrs.get("_FillValue")
    if fill is None or cube.dtype.kind not in "iu":
        return cube
    result = cube.where(cube != fill)
    result.attrs = {k: v for k, v in cube.attrs.items() if k != "_FillValue"}
    return result


def along_dimension(cube: xr.DataArray, dim: str, process: str) -> xr.DataArray:
    """``cube`` with ``dim`` renamed to :data:`ARRAY_DIM`, as a callback of ``process`` sees it.

    The ARRAY_DIM coordinate records the calling process and the dimension's own name, so that a
    callback such as ``run_udf`` can present the data to user code under the dimension's name.
    """
    array = cube.rename({dim: ARRAY_DIM})
    if ARRAY_DIM not in array.coords:
        array = array.assign_coords({ARRAY_DIM: np.arange(array.sizes[ARRAY_DIM])})
    array = array.copy(deep=False)
    array[ARRAY_DIM].attrs.update({PROCESS_ATTR: process, DIMENSION_ATTR: str(dim)})
    return array
