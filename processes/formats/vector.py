"""Vector cube formats: CSV, GeoJSON, Parquet (GeoParquet), and the table form used by JSON/netCDF.

A vector cube (what ``aggregate_spatial`` returns) is a DataArray with a ``geometry`` dimension
indexed by xvec, optional ``t`` and ``bands`` dimensions, and the features' properties as
coordinates along the geometry dimension. The table form has one row per (geometry, date): the
feature's properties, ``date``, and one column per band — so every row of a parcel profile carries
the parcel's own attributes, as users of other openEO back-ends expect.

CSV, GeoJSON and Parquet are written in batches of geometries, so that a million parcels over a
year (73 million rows) never sit in memory as one table: the cube's values are computed once (8
bytes a value), and each batch makes the rows of its geometries — properties, dates, geometries.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import xarray as xr

from processes.formats.output_format import OutputFormat
from processes.model.raster_cube import band_dim, dims_of_type, time_dim

BATCH_ROWS = 500_000
"""Rows per batch written (about 100 MB of table for a parcel profile)."""


def is_vector_cube(value: Any) -> bool:
    return isinstance(value, xr.DataArray) and bool(dims_of_type(value, "geometry"))


def _accepts(value: Any) -> str | None:
    if is_vector_cube(value) or isinstance(value, gpd.GeoDataFrame):
        return None
    return "this format holds vector cubes (e.g. the result of aggregate_spatial) or vector data."


def _crs(cube: xr.DataArray, dim: str):
    return getattr(cube.xindexes.get(dim), "crs", None)


@dataclass(frozen=True)
class _Table:
    """The table form of a vector cube before any row is made."""

    values: np.ndarray
    """(geometries, dates, value columns)."""
    columns: list[str]
    """The value columns: one per band label (and label of any further dimension)."""
    properties: dict[str, np.ndarray]
    """The features' properties, one value per geometry."""
    dates: np.ndarray | None
    """The dates as ISO text, or None without a time dimension."""
    geometries: np.ndarray
    crs: Any

    def rows(self, start: int, stop: int) -> gpd.GeoDataFrame:
        """The rows of geometries ``start`` to ``stop`` (each with all its dates)."""
        n_t = len(self.dates) if self.dates is not None else 1
        count = stop - start
        columns: dict[str, Any] = {name: np.repeat(values[start:stop], n_t) for name, values in self.properties.items()}
        if self.dates is not None:
            columns["date"] = np.tile(self.dates, count)
        table = self.values[start:stop].reshape(count * n_t, len(self.columns))
        for i, name in enumerate(self.columns):
            columns[name] = table[:, i]
        geometry = np.repeat(self.geometries[start:stop], n_t)
        return gpd.GeoDataFrame(columns, geometry=gpd.array.from_shapely(geometry, crs=self.crs), crs=self.crs)

    def batches(self) -> Iterator[gpd.GeoDataFrame]:
        n_t = len(self.dates) if self.dates is not None else 1
        per_batch = max(1, BATCH_ROWS // max(n_t, 1))
        for start in range(0, max(len(self.geometries), 1), per_batch):  # an empty cube: one empty batch
            yield self.rows(start, min(start + per_batch, len(self.geometries)))


def _computed(data: Any) -> np.ndarray:
    """The values of ``data``, in one computation: the windows' memberships are shared by all blocks
    of the result, so computing block by block would rasterise the geometries again for every date."""
    return np.asarray(data.compute() if isinstance(data, da.Array) else data)


def _table(cube: xr.DataArray) -> _Table:
    dim = dims_of_type(cube, "geometry")[0]
    t, b = time_dim(cube), band_dim(cube)
    # one column per band label; other dimensions (e.g. aggregate_spatial's target_dimension) add
    # to the column names: "<band>_<label>"
    column_dims = ([b] if b else []) + [d for d in cube.dims if d not in (dim, t, b)]
    arranged = cube.transpose(dim, *([t] if t else []), *column_dims)
    if column_dims:
        labels = [[str(v) for v in cube[d].values] if d in cube.coords else [str(i) for i in range(cube.sizes[d])]
                  for d in column_dims]
        columns = ["_".join(combo) for combo in itertools.product(*labels)]
    else:
        columns = [str(cube.name or "value")]
    values = _computed(arranged.data)
    values = values.reshape(cube.sizes[dim], cube.sizes[t] if t else 1, len(columns))
    properties = {str(name): np.asarray(coord.values) for name, coord in cube.coords.items()
                  if name != dim and coord.dims == (dim,)}
    dates = np.asarray(pd.DatetimeIndex(cube[t].values).strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object) if t else None
    return _Table(values, columns, properties, dates, np.asarray(cube[dim].values, dtype=object), _crs(cube, dim))


def vector_cube_to_frame(cube: Any) -> gpd.GeoDataFrame:
    """The whole table form (see module docstring) in memory: for the formats that hold one document."""
    if isinstance(cube, gpd.GeoDataFrame):
        return cube
    table = _table(cube)
    return table.rows(0, len(table.geometries))


def _frames(value: Any) -> Iterator[gpd.GeoDataFrame]:
    """The table form in batches of geometries."""
    if isinstance(value, gpd.GeoDataFrame):
        yield value
    else:
        yield from _table(value).batches()


def write_csv(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    with open(target, "w", newline="") as handle:
        for k, frame in enumerate(_frames(value)):
            table = pd.DataFrame(frame.drop(columns="geometry"))
            if options.get("include_geometry"):
                table["geometry"] = frame.geometry.to_wkt()
            table.to_csv(handle, index=False, header=k == 0)


def write_geojson(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    with open(target, "w") as handle:
        handle.write('{"type": "FeatureCollection", "features": [')
        first = True
        for frame in _frames(value):
            if frame.crs is not None and frame.crs.to_epsg() != 4326:
                frame = frame.to_crs(4326)  # RFC 7946: GeoJSON is WGS84
            for feature in frame.to_geo_dict(na="null", drop_id=True)["features"]:
                handle.write(("" if first else ", ") + json.dumps(feature))
                first = False
        handle.write("]}")


_GEOMETRY_TYPES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                   "GeometryCollection")


def _geo_metadata(crs: Any, geometries: np.ndarray) -> bytes:
    """GeoParquet 1.1 file metadata for the WKB column ``geometry`` holding ``geometries``."""
    present = geometries[~shapely.is_missing(geometries)]
    types = np.unique(shapely.get_type_id(present)) if len(present) else np.zeros(0, int)
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": [_GEOMETRY_TYPES[t] for t in types if t >= 0]}
    if crs is not None:
        column["crs"] = crs.to_json_dict()
    if len(present) and not shapely.is_empty(present).all():
        column["bbox"] = [float(v) for v in shapely.total_bounds(present)]
    return json.dumps({"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}).encode()


def write_parquet(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    if isinstance(value, gpd.GeoDataFrame):
        value.to_parquet(target, index=False)
        return
    table = _table(value)
    geo = {b"geo": _geo_metadata(table.crs, table.geometries)}  # for the whole file, not the first batch
    writer = None
    try:
        for frame in table.batches():
            plain = pd.DataFrame(frame.drop(columns="geometry"))
            plain["geometry"] = shapely.to_wkb(frame.geometry.values)
            batch = pa.Table.from_pandas(plain, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(target, batch.schema.with_metadata(geo))
            writer.write_table(batch.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


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
