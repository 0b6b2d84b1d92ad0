"""Vector cube formats: CSV, GeoJSON, Parquet (GeoParquet), and the table form used by JSON/netCDF.

A vector cube (what ``aggregate_spatial`` returns) is a DataArray with a ``geometry`` dimension
indexed by xvec, optional ``t`` and ``bands`` dimensions, and the features' properties as
coordinates along the geometry dimension. The table form has one row per (geometry, date): the
feature's properties, ``date``, and one column per band — so every row of a parcel profile carries
the parcel's own attributes, as users of other openEO back-ends expect.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from processes.cube import band_dim, dims_of_type, time_dim

from . import OutputFormat


def is_vector_cube(value: Any) -> bool:
    return isinstance(value, xr.DataArray) and bool(dims_of_type(value, "geometry"))


def _accepts(value: Any) -> str | None:
    if is_vector_cube(value) or isinstance(value, gpd.GeoDataFrame):
        return None
    return "this format holds vector cubes (e.g. the result of aggregate_spatial) or vector data."


def _crs(cube: xr.DataArray, dim: str):
    return getattr(cube.xindexes.get(dim), "crs", None)


def vector_cube_to_frame(cube: Any) -> gpd.GeoDataFrame:
    """The table form (see module docstring); computes the (small) cube."""
    if isinstance(cube, gpd.GeoDataFrame):
        return cube
    dim = dims_of_type(cube, "geometry")[0]
    t, b = time_dim(cube), band_dim(cube)
    # one column per band label; other dimensions (e.g. aggregate_spatial's target_dimension) add
    # to the column names: "<band>_<label>"
    column_dims = ([b] if b else []) + [d for d in cube.dims if d not in (dim, t, b)]
    order = [dim] + ([t] if t else []) + column_dims
    values = np.asarray(cube.transpose(*order).values)
    n_geom = cube.sizes[dim]
    n_t = cube.sizes[t] if t else 1
    if column_dims:
        labels = [[str(v) for v in cube[d].values] if d in cube.coords else [str(i) for i in range(cube.sizes[d])]
                  for d in column_dims]
        bands = ["_".join(combo) for combo in itertools.product(*labels)]
    else:
        bands = [str(cube.name or "value")]
    table = values.reshape(n_geom * n_t, len(bands))
    columns: dict[str, Any] = {}
    for name, coord in cube.coords.items():
        if name != dim and coord.dims == (dim,):
            columns[str(name)] = np.repeat(np.asarray(coord.values), n_t)
    if t:
        dates = pd.DatetimeIndex(cube[t].values).strftime("%Y-%m-%dT%H:%M:%SZ")
        columns["date"] = np.tile(np.asarray(dates), n_geom)
    for i, band in enumerate(bands):
        columns[band] = table[:, i]
    geometry = np.repeat(np.asarray(cube[dim].values, dtype=object), n_t)
    return gpd.GeoDataFrame(columns, geometry=list(geometry), crs=_crs(cube, dim))


def write_csv(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    frame = vector_cube_to_frame(value)
    table = pd.DataFrame(frame.drop(columns="geometry"))
    if options.get("include_geometry"):
        table["geometry"] = frame.geometry.to_wkt()
    table.to_csv(target, index=False)


def write_geojson(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    frame = vector_cube_to_frame(value)
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)  # RFC 7946: GeoJSON is WGS84
    target.write_text(frame.to_json(na="null", drop_id=True))


def write_parquet(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    vector_cube_to_frame(value).to_parquet(target, index=False)


_INCLUDE_GEOMETRY = {
    "include_geometry": {"type": "boolean", "description": "Add the geometry as WKT column.", "default": False},
}

CSV = OutputFormat(
    name="CSV",
    title="Comma Separated Values",
    description="Vector cubes as a table: one row per geometry and date, with the features' properties, "
    "'date' and one column per band.",
    gis_data_types=("vector", "table"),
    media_type="text/csv",
    extension="csv",
    writer=write_csv,
    accepts=_accepts,
    parameters=_INCLUDE_GEOMETRY,
)
GEOJSON = OutputFormat(
    name="GeoJSON",
    title="GeoJSON",
    description="Vector cubes as GeoJSON (WGS84): one feature per geometry and date, with the features' "
    "properties, 'date' and one property per band.",
    gis_data_types=("vector",),
    media_type="application/geo+json",
    extension="geojson",
    writer=write_geojson,
    accepts=_accepts,
)
PARQUET = OutputFormat(
    name="Parquet",
    title="GeoParquet",
    description="Vector cubes as GeoParquet: one row per geometry and date, with the features' properties, "
    "'date' and one column per band.",
    gis_data_types=("vector", "table"),
    media_type="application/vnd.apache.parquet",
    extension="parquet",
    writer=write_parquet,
    accepts=_accepts,
)
