"""openEO processes on vector data cubes: geometry processes and zonal statistics.

The ``vector_*`` processes change a vector cube's geometries, ``aggregate_spatial`` makes one from
a raster cube (the engine is :mod:`processes.zonal.engine`), ``vector_to_raster`` paints one onto a
raster grid. The cube itself is described in :mod:`processes.model.vector_cube`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pyproj
import rasterio.features
import shapely
import xarray as xr
import xvec  # noqa: F401  (registers the .xvec accessor)

from processes.core.env import ProcessEnv
from processes.core.errors import DimensionNotAvailable, parameter_invalid, process_error
from processes.model.geometry import is_geojson, parse_crs, reproject_geometries
from processes.model.raster_cube import (
    ARRAY_DIM,
    DimType,
    dimension_type,
    dims_of_type,
    is_raster_cube,
    spatial_dims,
    with_dimension_type,
)
from processes.model.vector_cube import (
    GEOMETRY_DIM,
    Features,
    cube_crs,
    features_of,
    geometry_dim,
    is_vector_cube,
    vector_cube,
    with_geometries,
)
from processes.zonal import engine as zonal
from processes.zonal.reduce import Statistic


# --- geometry processes --------------------------------------------------------------------------
def _vector_argument(value: Any, process: str, parameter: str) -> xr.DataArray:
    if is_vector_cube(value):
        return value
    if isinstance(value, gpd.GeoDataFrame) or is_geojson(value):
        return vector_cube(features_of(value, process, parameter))
    raise parameter_invalid(process, parameter, "expected a vector data cube (e.g. from load_geojson).")


def vector_buffer(geometries: Any, distance: float) -> xr.DataArray:
    cube = _vector_argument(geometries, "vector_buffer", "geometries")
    dim = geometry_dim(cube)
    crs = cube_crs(cube, dim)
    unit = crs.axis_info[0].unit_name if crs is not None and crs.axis_info else None
    if unit not in ("metre", "meter"):
        raise process_error("UnitMismatch", f"The unit of the geometries' reference system is {unit or 'unknown'}, "
                            "not meters. Use vector_reproject() to a metric CRS (e.g. UTM) first.")
    if not isinstance(distance, (int, float)) or isinstance(distance, bool) or distance == 0:
        raise parameter_invalid("vector_buffer", "distance", "expected a non-zero number of meters.")
    buffered = shapely.buffer(np.asarray(cube[dim].values, dtype=object), float(distance))
    return with_geometries(cube, dim, buffered, crs)


def vector_reproject(data: Any, projection: Any, dimension: str | None = None) -> xr.DataArray:
    cube = _vector_argument(data, "vector_reproject", "data")
    target = parse_crs(projection, "vector_reproject", "projection")
    if dimension is not None and (dimension not in cube.dims or dimension_type(cube, dimension) != "geometry"):
        raise DimensionNotAvailable(f"The vector cube has no geometry dimension '{dimension}'; its geometry "
                                    f"dimensions are {', '.join(dims_of_type(cube, 'geometry'))}.")
    for dim in [dimension] if dimension else dims_of_type(cube, "geometry"):
        source = cube_crs(cube, dim)
        if source is None:
            raise parameter_invalid("vector_reproject", "data", f"the geometries of '{dim}' have no CRS.")
        moved = reproject_geometries(list(cube[dim].values), source, target)
        cube = with_geometries(cube, dim, np.asarray(moved + [None], dtype=object)[:-1], target)
    return cube


RELATIONS = ("intersects", "disjoint", "equals", "touches", "crosses", "overlaps", "contains", "within")


def filter_vector(data: Any, geometries: Any, relation: str = "intersects") -> xr.DataArray:
    """Keep the geometries of ``data`` for which ``candidate <relation> union(geometries)`` holds."""
    cube = _vector_argument(data, "filter_vector", "data")
    if relation not in RELATIONS:
        raise parameter_invalid("filter_vector", "relation", f"'{relation}' is not one of {', '.join(RELATIONS)}.")
    dim = geometry_dim(cube)
    base = features_of(geometries, "filter_vector", "geometries")
    crs = cube_crs(cube, dim)
    shapes = list(base.geometries)
    if base.crs is not None and crs is not None:
        shapes = reproject_geometries(shapes, base.crs, crs)
    union = shapely.union_all(np.asarray(shapes + [None], dtype=object)[:-1])
    candidates = np.asarray(cube[dim].values, dtype=object)
    keep = getattr(shapely, relation)(candidates, union) & ~shapely.is_empty(candidates)
    return cube.isel({dim: np.flatnonzero(keep)})


# --- aggregate_spatial ---------------------------------------------------------------------------
_SIMPLE = {"mean": "mean", "median": "median", "min": "min", "max": "max", "sum": "sum", "sd": "sd",
           "variance": "variance"}


def recognised_statistic(reducer: Any) -> Statistic | None:
    """The statistic of a reducer that is one known process applied to ``data``; None for anything else."""
    process = getattr(reducer, "single_process", None)
    if process is None:
        return None
    node = next(iter(reducer.graph.nodes.values()))
    arguments = dict(node.get("arguments") or {})
    if arguments.pop("data", None) != {"from_parameter": "data"}:
        return None
    ignore = arguments.pop("ignore_nodata", True)
    if not isinstance(ignore, bool):
        return None
    if process in _SIMPLE and not arguments:
        return Statistic(_SIMPLE[process], ignore_nodata=ignore)
    if process == "count" and set(arguments) <= {"condition", "context"} and "ignore_nodata" not in node["arguments"]:
        condition = arguments.get("condition")
        if condition is None or condition is True:
            return Statistic("count", count_all=condition is True)
    if process == "quantiles" and set(arguments) <= {"probabilities", "q"}:
        probabilities, q = arguments.get("probabilities"), arguments.get("q")
        if q is None and isinstance(probabilities, list) and len(probabilities) == 1:
            p = probabilities[0]
            if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1:
                return Statistic("quantile", ignore_nodata=ignore, probability=float(p))
        if probabilities is None and q == 2:
            return Statistic("quantile", ignore_nodata=ignore, probability=0.5)
    return None


def _raster_argument(data: Any, process: str) -> tuple[xr.DataArray, str, str]:
    dims = spatial_dims(data) if is_raster_cube(data) else None
    if dims is None:
        raise parameter_invalid(process, "data", "expected a raster data cube with spatial dimensions x and y.")
    y, x = dims
    for dim in dims:
        if data.sizes[dim] == 0 or not zonal.is_regular(data[dim].values):
            raise parameter_invalid(process, "data", f"the spatial dimension '{dim}' is not a regular grid "
                                    "(resample_spatial makes one).")
    return data, y, x


def _native_geometries(features: Features, data: xr.DataArray) -> np.ndarray:
    crs = data.rio.crs
    geoms = list(features.geometries)
    if crs is not None and features.crs is not None:
        geoms = reproject_geometries(geoms, features.crs, pyproj.CRS(crs))
    return np.asarray(geoms + [None], dtype=object)[:-1]


def _lazy(data: xr.DataArray, order: list[str]) -> da.Array:
    arranged = data.transpose(*order)
    if isinstance(arranged.data, da.Array):
        return arranged.data
    return da.from_array(arranged.values, chunks=(*(-1,) * (len(order) - 2), 2048, 2048))


def _reduced_by_callback(
    values: da.Array, data: xr.DataArray, others: list[str], reducer: Any, context: Any
) -> xr.DataArray:
    """The general reducer: called once with every geometry's values along ``ARRAY_DIM``."""
    coords = {d: data[d].variable for d in others}
    array = xr.DataArray(values, dims=(GEOMETRY_DIM, *others, ARRAY_DIM), coords=coords)
    result = reducer(data=array, context=context)
    template = array.isel({ARRAY_DIM: 0}, drop=True)
    if not isinstance(result, xr.DataArray):
        if isinstance(result, (list, dict)) or (result is not None and not isinstance(result, (bool, int, float))):
            raise parameter_invalid("aggregate_spatial", "reducer", "the reducer must compute a single value.")
        return xr.full_like(template, np.nan if result is None else result, dtype=np.float64)
    if ARRAY_DIM in result.dims:
        if result.sizes[ARRAY_DIM] != 1:
            raise parameter_invalid("aggregate_spatial", "reducer", f"the reducer must compute a single value per "
                                    f"geometry, not {result.sizes[ARRAY_DIM]} (e.g. quantiles with one probability).")
        result = result.isel({ARRAY_DIM: 0}, drop=True)
    result, _ = xr.broadcast(result, template)
    return result.transpose(GEOMETRY_DIM, *others).drop_vars([c for c in result.coords if c not in others])


def aggregate_spatial(
    data: Any, geometries: Any, reducer: Any, target_dimension: str | None = None, context: Any = None, *,
    env: ProcessEnv | None = None,
) -> xr.DataArray:
    data, y, x = _raster_argument(data, "aggregate_spatial")
    if not callable(reducer):
        raise parameter_invalid("aggregate_spatial", "reducer", "expected a child process (e.g. mean).")
    if target_dimension is not None and (target_dimension in data.dims or target_dimension == GEOMETRY_DIM):
        raise process_error("TargetDimensionExists", f"A dimension '{target_dimension}' exists already; choose "
                            "another target_dimension name.")
    features = features_of(geometries, "aggregate_spatial", "geometries")
    others = [str(d) for d in data.dims if d not in (y, x)]
    array = _lazy(data, [*others, y, x])
    grid = zonal.Grid.from_centres(data[y].values, data[x].values)
    geoms = _native_geometries(features, data)
    statistic = recognised_statistic(reducer)
    coverage = env is not None and env.options["aggregate_spatial_pixels"] == "coverage"
    if coverage and statistic is None:
        raise parameter_invalid("aggregate_spatial", "reducer", "with the processing parameter "
                                "aggregate_spatial_pixels 'coverage' the reducer must be one of mean, sum, count, min, "
                                "max, median, quantiles (one probability), sd or variance, applied to the data "
                                "directly; use 'centre' for other reducers.")
    if statistic is not None:
        statistic = replace(statistic, with_counts=target_dimension is not None, coverage=coverage)
        values = xr.DataArray(zonal.zonal_statistics(array, grid, geoms, statistic),
                              dims=(GEOMETRY_DIM, *others, *([target_dimension] if target_dimension else [])))
    else:
        padded, totals = zonal.padded_values(array, grid, geoms)
        values = _reduced_by_callback(padded, data, others, reducer, context)
        if target_dimension is not None:
            valid = xr.DataArray(padded, dims=(GEOMETRY_DIM, *others, ARRAY_DIM)).notnull().sum(ARRAY_DIM)
            total = xr.DataArray(totals.astype(np.float64), dims=(GEOMETRY_DIM,)).broadcast_like(valid)
            values = xr.concat([values.astype(np.float64), total, valid.astype(np.float64)], dim=target_dimension)
            values = values.transpose(GEOMETRY_DIM, *others, target_dimension)
    dims: dict[str, tuple[DimType, Any]] = {d: (dimension_type(data, d), data[d].variable) for d in others}
    if target_dimension is not None:
        dims[target_dimension] = ("other", ["value", "total_count", "valid_count"])
    return vector_cube(features, values.data, dims, name=data.name)


# --- vector_to_raster ----------------------------------------------------------------------------
def _paint(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values[..., label]`` per pixel, NaN where no geometry is."""
    padded = np.concatenate([values, np.full((*values.shape[:-1], 1), np.nan)], axis=-1)
    return padded[..., np.where(labels < 0, values.shape[-1], labels)]


def _label_block(geoms: np.ndarray, grid: zonal.Grid, block_info=None) -> np.ndarray:
    """Which geometry each pixel of a block shows (the last one listed where they overlap); -1 for none."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    transform, outline = grid.window((r0, r1), (c0, c1))
    out = np.zeros((r1 - r0, c1 - c0), dtype=np.int32)
    local = np.flatnonzero(shapely.intersects(geoms, outline))
    if local.size:
        area = zonal.polygonal(geoms[local])
        for chosen, touched in ((area, False), (~area, True)):
            if chosen.any():
                rasterio.features.rasterize(zip(geoms[local[chosen]], local[chosen] + 1, strict=True), out=out,
                                            transform=transform, all_touched=touched)
    return out - 1


def vector_to_raster(data: Any, target: Any) -> xr.DataArray:
    cube = _vector_argument(data, "vector_to_raster", "data")
    target, y, x = _raster_argument(target, "vector_to_raster")
    dim = geometry_dim(cube)
    if not np.issubdtype(cube.dtype, np.number) and cube.dtype != bool:
        raise parameter_invalid("vector_to_raster", "data", "the vector cube must hold numbers.")
    others = [str(d) for d in cube.dims if d != dim]
    features = Features(np.asarray(cube[dim].values, dtype=object), cube_crs(cube, dim), {})
    geoms = _native_geometries(features, target)
    grid = zonal.Grid.from_centres(target[y].values, target[x].values)
    chunks = target.chunk().chunksizes if not isinstance(target.data, da.Array) else target.chunksizes
    labels = da.map_blocks(partial(_label_block, geoms, grid), chunks=(chunks[y], chunks[x]), dtype=np.int32,
                           meta=np.array((), dtype=np.int32))
    values = da.asarray(cube.transpose(*others, dim).astype(np.float64).data).rechunk(-1)
    axes = tuple(f"d{k}" for k in range(len(others)))
    painted = da.blockwise(_paint, (*axes, "y", "x"), labels, ("y", "x"), values, (*axes, "g"),
                           concatenate=True, dtype=np.float64)
    band_types: dict[str, DimType] = {d: dimension_type(cube, d) for d in others}
    if not any(t == "bands" for t in band_types.values()):
        kept = [d for d in others if band_types[d] == "other"]
        if len(kept) == 1:
            band_types[kept[0]] = "bands"
    raster = xr.DataArray(painted, dims=(*others, y, x), name=cube.name,
                          coords={**{d: cube[d].variable for d in others}, y: target[y].variable,
                                  x: target[x].variable})
    for d, kind in band_types.items():
        raster = with_dimension_type(raster, d, kind)
    for d in (y, x):
        raster[d].attrs = dict(target[d].attrs)
    if not others:
        raster = raster.expand_dims(bands=[str(cube.name or "value")])
        raster = with_dimension_type(raster, "bands", "bands")
    if target.rio.crs is not None:
        raster = raster.rio.write_crs(target.rio.crs)
    return raster


PROCESSES = {
    "aggregate_spatial": aggregate_spatial,
    "vector_buffer": vector_buffer,
    "vector_reproject": vector_reproject,
    "filter_vector": filter_vector,
    "vector_to_raster": vector_to_raster,
}
