"""netCDF: raster cubes as CF-1.8 netCDF-4, one variable per band.

Bands become data variables (``B04``, ``B08``, …) over ``(t, y, x)``; the CRS is written as a CF
grid mapping (``spatial_ref`` with ``crs_wkt``) by rioxarray, so xarray/rioxarray and GDAL both
read it back. ``to_netcdf`` computes the Dask chunks one after the other into the file, so memory
stays bounded by the chunk size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import xarray as xr

from processes.cube import band_dim, dimension_type, is_raster_cube, spatial_dims, time_dim

from . import OutputFormat
from .vector import is_vector_cube

PARAMETERS = {
    "compression": {"type": "boolean", "description": "zlib-compress the variables (level 4).", "default": True},
}


def _accepts(value: Any) -> str | None:
    if is_vector_cube(value):
        return None
    if not is_raster_cube(value) or spatial_dims(value) is None:
        return "netCDF output needs a raster data cube with spatial dimensions x and y, or a vector cube."
    return None


def _variable_name(label: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", label) or "band"
    if not name[0].isalpha():
        name = f"b_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def to_dataset(cube: xr.DataArray) -> xr.Dataset:
    y, x = spatial_dims(cube)
    b = band_dim(cube)
    crs = cube.rio.crs
    cube = cube.drop_vars([c for c in cube.coords if c not in cube.dims])
    if b is None:
        variables = {_variable_name(str(cube.name or "data"), set()): cube}
    else:
        taken: set[str] = set()
        variables = {_variable_name(str(label), taken): cube.sel({b: label}, drop=True) for label in cube[b].values}
    ds = xr.Dataset({name: var.astype(np.float32 if var.dtype == bool else var.dtype) for name, var in variables.items()})
    for dim in ds.dims:
        ds[dim].attrs = {}  # the openEO type attributes are internal
    t = time_dim(cube)
    if t is not None:
        ds[t].attrs.update(standard_name="time", axis="T")
    if crs is not None:
        geographic = pyproj.CRS(crs).is_geographic
        ds[x].attrs.update(axis="X", standard_name="longitude" if geographic else "projection_x_coordinate",
                           units="degrees_east" if geographic else "m")
        ds[y].attrs.update(axis="Y", standard_name="latitude" if geographic else "projection_y_coordinate",
                           units="degrees_north" if geographic else "m")
        ds = ds.rio.write_crs(crs).rio.write_grid_mapping()
        for name in variables:
            ds[name].attrs["grid_mapping"] = "spatial_ref"
    for dim in cube.dims:
        if dim not in (x, y, t, b):
            ds[dim].attrs["openeo_dimension_type"] = dimension_type(cube, dim)
    ds.attrs.update(Conventions="CF-1.8", source="Terracube openEO back-end")
    return ds


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
    encoding = {}
    for name, var in ds.data_vars.items():
        if name == "spatial_ref":
            continue
        enc: dict[str, Any] = {}
        if options.get("compression", True):
            enc.update(zlib=True, complevel=4)
        if var.dtype.kind == "f":
            enc["_FillValue"] = np.nan
        encoding[name] = enc
    t = time_dim(cube)
    if t is not None:
        encoding[t] = {"units": "seconds since 1970-01-01 00:00:00", "calendar": "standard", "dtype": "float64"}
    ds.to_netcdf(target, engine="netcdf4", format="NETCDF4", encoding=encoding)


FORMAT = OutputFormat(
    name="netCDF",
    title="Network Common Data Form",
    description="CF-1.8 netCDF-4: one variable per band over (t, y, x), CRS as CF grid mapping 'spatial_ref'.",
    gis_data_types=("raster",),
    media_type="application/x-netcdf",
    extension="nc",
    writer=write_netcdf,
    accepts=_accepts,
    parameters=PARAMETERS,
)
