"""netCDF: raster cubes as CF-1.8 netCDF-4, one variable per band.

Bands become data variables (``B04``, ``B08``, … over ``(t, y, x)``; labels that aren't valid
variable names are sanitised, the label itself stays in ``long_name``). Coordinates carry CF
attributes (projection or latitude/longitude coordinates, ``time`` with a CF ``units`` string);
the CRS is a CF grid mapping ``spatial_ref`` written by rioxarray with ``crs_wkt`` and GDAL's
``spatial_ref``, so xarray/rioxarray and GDAL (``NETCDF:"file.nc":B04``) both read it back.
``to_netcdf`` computes the Dask chunks and writes them one after the other into the file, so memory
stays bounded by the chunk size.

Vector cubes (a ``geometry`` dimension) are written as CF geometry containers by xvec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from processes.formats.output_format import OutputFormat, cube_name, empty_cube, unsuitable
from processes.formats.vector import is_vector_cube
from processes.model.raster_cube import (
    band_dim,
    describe_dimensions,
    dimension_type,
    is_raster_cube,
    spatial_dims,
    time_dim,
)

NAME = "netCDF"
PARAMETERS = {
    "compression": {
        "type": "boolean",
        "description": "Compress the variables (zlib, level 4).",
        "default": True,
    },
}
# netCDF chunks (file-internal tiles) of the spatial dimensions; one per date along t.
CHUNK_SIZE = 256
# CF names of common CRS axis units (pyproj's unit names otherwise).
_CF_UNITS = {"metre": "m", "meter": "m", "kilometre": "km", "foot": "ft", "US survey foot": "US_survey_foot"}


def _accepts(value: Any) -> str | None:
    if is_vector_cube(value):
        return None
    if not is_raster_cube(value) or spatial_dims(value) is None:
        what = f"a data cube with dimensions {describe_dimensions(value)}" if is_raster_cube(value) else (
            f"a {type(value).__name__}")
        return (f"netCDF output needs a raster data cube with spatial dimensions x and y, or a vector cube, and "
                f"this result is {what}. Use JSON for other values.")
    if value.size == 0:
        raise empty_cube(NAME)
    if value.dtype.kind not in "biuf":
        return f"netCDF output holds numbers and booleans, not values of type {value.dtype}; use JSON."
    return None


def variable_name(label: Any, taken: set[str]) -> str:
    """A netCDF variable name for a band label: letters, digits and underscores.

    Numbered labels (``0``, ``1``, … as apply_dimension gives them) stay numbers: netCDF-4 allows a
    leading digit, and readers that turn variables back into a bands dimension get the label itself.
    A leading underscore is reserved by netCDF, so such labels get a ``b`` in front.
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(label)) or "band"
    if name[0] == "_":
        name = f"b{name}"
    base, n = name, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _spatial_attrs(crs: pyproj.CRS | None) -> tuple[dict[str, str], dict[str, str]]:
    """CF attributes of the x and y coordinates."""
    if crs is None:
        return {"axis": "X"}, {"axis": "Y"}
    if crs.is_geographic:
        return (
            {"axis": "X", "standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"},
            {"axis": "Y", "standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"},
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    units = _CF_UNITS.get(unit, unit)
    return (
        {"axis": "X", "standard_name": "projection_x_coordinate", "long_name": "x coordinate of projection",
         "units": units},
        {"axis": "Y", "standard_name": "projection_y_coordinate", "long_name": "y coordinate of projection",
         "units": units},
    )


def to_dataset(cube: xr.DataArray) -> xr.Dataset:
    """The raster cube as a CF dataset (lazy: nothing is computed)."""
    spatial = spatial_dims(cube)
    if spatial is None:  # _accepts turns such cubes away first
        raise unsuitable(NAME, f"it needs spatial dimensions; the cube has {describe_dimensions(cube)}.")
    y, x = spatial
    t, b = time_dim(cube), band_dim(cube)
    crs = pyproj.CRS(cube.rio.crs) if cube.rio.crs is not None else None
    # Auxiliary coordinates (e.g. a stale spatial_ref) are dropped; the CRS is written afresh below.
    cube = cube.drop_vars([c for c in cube.coords if c not in cube.dims])
    if cube.dtype == np.float16:
        cube = cube.astype("float32")
    taken: set[str] = set()
    if b is None:
        label = cube_name(cube)
        variables = {variable_name(label, taken): (label, cube)}
    else:
        variables = {variable_name(label, taken): (str(label), cube.sel({b: label}, drop=True))
                     for label in cube[b].values}
    ds = xr.Dataset({name: var for name, (_, var) in variables.items()})
    for name, (label, _) in variables.items():
        ds[name].attrs = {"long_name": label}
    # period labels of aggregate_temporal_period ("2023-05", "2023-djf") are text, not CF time
    cf_time = t is not None and np.issubdtype(ds[t].dtype, np.datetime64)
    for dim in ds.dims:
        # the openEO type attributes are internal; dimensions other than t/y/x keep their type for readers
        ds[dim].attrs = {}
        if dim not in (x, y) and not (dim == t and cf_time):
            ds[dim].attrs["openeo_dimension_type"] = dimension_type(cube, dim)
    if cf_time:
        ds[t].attrs.update(standard_name="time", long_name="time", axis="T")
    x_attrs, y_attrs = _spatial_attrs(crs)
    ds[x].attrs.update(x_attrs)
    ds[y].attrs.update(y_attrs)
    if crs is not None:
        # How a file reads back decides whether it has a bands dimension. The official tests (and most
        # users) read it with open_dataarray, else open_dataset(decode_coords="all").to_dataarray(dim=
        # "bands"). With a bands dimension, the grid mapping is a variable of its own, as CF and GDAL
        # write it, so even a one-band file holds two variables and keeps the bands dimension. Without
        # one, it is listed as a coordinate, so the one variable opens as the 3-D cube it is.
        ds = ds.rio.write_crs(crs).rio.write_grid_mapping()
        if b is None:
            for name in variables:
                ds[name].encoding["coordinates"] = "spatial_ref"
    ds.attrs.update(Conventions="CF-1.8", source="Terracube openEO back-end")
    return ds


def _encoding(ds: xr.Dataset, cube: xr.DataArray, compress: bool) -> dict[str, dict[str, Any]]:
    spatial, t = spatial_dims(cube) or (), time_dim(cube)  # (to_dataset has required spatial dims)
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        if name == "spatial_ref":
            continue
        # file-internal chunks: spatial tiles, one label of every other dimension
        chunks = tuple(min(CHUNK_SIZE, n) if d in spatial else 1 for d, n in zip(var.dims, var.shape, strict=True))
        enc: dict[str, Any] = {"chunksizes": chunks}
        if "grid_mapping" in var.encoding:  # set by rioxarray; the encoding given to to_netcdf replaces it
            enc["grid_mapping"] = var.encoding["grid_mapping"]
        if compress:
            enc.update(zlib=True, complevel=4, shuffle=True)
        if var.dtype.kind == "f":
            enc["_FillValue"] = np.nan
        elif var.dtype.kind != "b":
            enc["_FillValue"] = None  # no made-up fill value for integers
        encoding[str(name)] = enc
    if t is not None and np.issubdtype(ds[t].dtype, np.datetime64):
        stamps = pd.DatetimeIndex(ds[t].values)
        whole_seconds = bool((stamps == stamps.floor("s")).all())
        encoding[t] = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "standard",
                       "dtype": "int64" if whole_seconds else "float64"}
    return encoding


def write_vector_netcdf(cube: xr.DataArray, target: Path) -> None:
    """A vector cube as CF netCDF: geometries encoded by xvec (CF geometry container), bands as variables."""
    b = band_dim(cube)
    ds = cube.to_dataset(dim=b) if b else cube.to_dataset(name=str(cube.name or "value"))
    for dim in ds.dims:
        if dim in ds.coords:
            ds[dim].attrs = {k: v for k, v in ds[dim].attrs.items() if not k.startswith("openeo:")}
    encoded = ds.xvec.encode_cf()
    encoded.attrs.update(Conventions="CF-1.8", source="Terracube openEO back-end")
    encoded.to_netcdf(target, engine="netcdf4", format="NETCDF4")


def write_netcdf(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    if is_vector_cube(cube):
        write_vector_netcdf(cube, target)
        return
    ds = to_dataset(cube)
    encoding = _encoding(ds, cube, bool(options["compression"]))
    try:
        ds.to_netcdf(target, engine="netcdf4", format="NETCDF4", encoding=encoding)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


FORMAT = OutputFormat(
    name=NAME,
    title="Network Common Data Form",
    description=(
        "CF-1.8 netCDF-4 of a raster data cube: one variable per band (named after its label, made a valid "
        "variable name; the label is its `long_name`) over (t, y, x) and any other dimension, the CRS as CF grid "
        "mapping `spatial_ref` (with `crs_wkt`), NaN as fill value of floats, zlib compression. Vector cubes "
        "are written as CF geometry containers."
    ),
    gis_data_types=("raster", "vector"),
    media_type="application/x-netcdf",
    extension="nc",
    writer=write_netcdf,
    accepts=_accepts,
    parameters=PARAMETERS,
)
