"""Raster cubes ↔ the "datacube" JSON form of the openEO process tests.

``{"type": "datacube", "order": [dims…], "dimensions": {name: {"type", "axis"?, "values",
"reference_system"?}}, "nodata": …, "data": nested lists}`` — used for JSON output of small cubes
and to read the data cubes of the official process test cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.cube import AXIS_ATTR, dimension_type, new_cube


def cube_to_json(cube: xr.DataArray) -> dict[str, Any]:
    """The cube (computed) in datacube JSON form; NaN stays float NaN (the JSON writer makes it null)."""
    dims: dict[str, Any] = {}
    crs = cube.rio.crs if "spatial_ref" in cube.coords or cube.rio.crs is not None else None
    for dim in cube.dims:
        dim_type = dimension_type(cube, dim)
        labels = cube[dim].values if dim in cube.coords else np.arange(cube.sizes[dim])
        if dim_type == "temporal":
            values = [pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%SZ") for v in labels]
        else:
            values = [v.item() if isinstance(v, np.generic) else v for v in labels]
        entry: dict[str, Any] = {"type": dim_type}
        if dim_type == "spatial":
            axis = cube[dim].attrs.get(AXIS_ATTR)
            if axis:
                entry["axis"] = axis
            if crs is not None:
                epsg = crs.to_epsg()
                entry["reference_system"] = f"EPSG:{epsg}" if epsg else crs.to_wkt()
        entry["values"] = values
        dims[str(dim)] = entry
    values = np.asarray(cube.values)
    if values.dtype.kind == "M":
        data = pd.DatetimeIndex(values.ravel()).strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy().reshape(values.shape)
        values = data
    return {
        "type": "datacube",
        "order": [str(d) for d in cube.dims],
        "dimensions": dims,
        "nodata": float("nan") if values.dtype.kind == "f" else None,
        "data": values.tolist(),
    }


def cube_from_json(obj: Mapping[str, Any]) -> xr.DataArray:
    """A raster cube from datacube JSON (dimension types, labels, CRS, nodata → NaN)."""
    order = obj.get("order") or list(obj["dimensions"])
    dims: dict[str, tuple[str, list]] = {}
    crs = None
    for name in order:
        spec = obj["dimensions"][name]
        dims[name] = (spec.get("type", "other"), list(spec.get("values", [])))
        if spec.get("type") == "spatial" and spec.get("reference_system") is not None and crs is None:
            crs = spec["reference_system"]
    data = np.array(obj["data"], dtype=object)
    nodata = obj.get("nodata")
    has_null = any(v is None for v in data.ravel())
    numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in data.ravel())
    if numeric:
        data = np.array([np.nan if v is None else v for v in data.ravel()], dtype=float).reshape(data.shape)
        if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
            data[data == nodata] = np.nan
        if not has_null and all(float(v).is_integer() for v in data.ravel() if not np.isnan(v)) and \
                all(isinstance(v, int) for v in np.array(obj["data"], dtype=object).ravel()):
            data = data.astype(np.int64)
    cube = new_cube(data, dims, crs=crs)
    for name, spec in obj["dimensions"].items():
        if spec.get("axis"):
            cube[name].attrs[AXIS_ATTR] = spec["axis"]
    return cube
